"""The GPU kernels give the CPU kernels' values (run where cupy sees a GPU; skipped elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, to_gpu
from render_engine.planes import Slab, plane_through
from render_engine.sampling import sample

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(cupy_or_none() is None, reason="needs cupy and an NVIDIA GPU")]


def _volume() -> tuple[np.ndarray, VolumeGeometry]:
    rng = np.random.default_rng(7)
    vol = rng.normal(0, 300, size=(60, 70, 80)).astype(np.float32)
    affine = np.eye(4)
    affine[:3, 0] = [0.0, 0.6, 2.5]  # sheared slice axis
    affine[:3, 1] = [0.0, 0.9, 0.0]
    affine[:3, 2] = [0.9, 0.0, 0.0]
    return vol, VolumeGeometry(shape=vol.shape, affine=affine)  # type: ignore[arg-type]


@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
@pytest.mark.parametrize("slab", [None, Slab(thickness_mm=12, mode="mip"),
                                  Slab(thickness_mm=12, mode="minip"),
                                  Slab(thickness_mm=12, mode="avgip")])
def test_gpu_equals_cpu(interpolation: str, slab: Slab | None) -> None:
    vol, geometry = _volume()
    center = geometry.index_to_patient(np.array(vol.shape) / 2)
    plane = plane_through(center, [0.2, -0.4, 0.9], pixel_spacing_mm=0.5, size_px=(160, 120))
    cpu = sample(vol, geometry, plane, slab=slab, interpolation=interpolation, fill=-3000)
    gpu = sample(to_gpu(vol), geometry, plane, slab=slab, interpolation=interpolation,
                 fill=-3000).get()
    assert (cpu == -3000).any() and (cpu != -3000).any()
    if interpolation == "nearest" and slab is None:
        # Rounding exactly at .5 may pick the other neighbour: nearly all must be identical.
        assert np.mean(cpu == gpu) > 0.999
    else:
        np.testing.assert_allclose(gpu, cpu, atol=0.05, rtol=1e-4)
