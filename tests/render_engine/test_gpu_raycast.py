"""The GPU ray casting kernels give the CPU kernels' images (run where cupy sees a GPU; skipped
elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.camera import Camera
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, to_gpu
from render_engine.raycast import BlockGrid, render_projection, render_volume
from render_engine.transfer import TransferFunction, preset

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(cupy_or_none() is None, reason="needs cupy and an NVIDIA GPU")]


def _volume() -> tuple[np.ndarray, VolumeGeometry]:
    """Noisy background with bright and dark structures, on a sheared anisotropic grid."""
    rng = np.random.default_rng(7)
    vol = rng.normal(-200, 150, size=(60, 70, 80)).astype(np.float32)
    vol[20:35, 10:30, 30:60] += 1400
    vol[40:50, 45:60, 5:25] -= 700
    zz, yy, xx = np.mgrid[0:60, 0:70, 0:80]
    vol[(zz - 30) ** 2 / 4 + (yy - 50) ** 2 + (xx - 50) ** 2 < 100] = 900
    affine = np.eye(4)
    affine[:3, 0] = [0.0, 0.6, 2.5]  # sheared slice axis
    affine[:3, 1] = [0.0, 0.9, 0.0]
    affine[:3, 2] = [0.9, 0.0, 0.0]
    return vol, VolumeGeometry(shape=vol.shape, affine=affine)  # type: ignore[arg-type]


def _cameras(geometry: VolumeGeometry) -> list[Camera]:
    ortho = Camera.fit_volume(geometry, view="anterior", size_px=(150, 120))
    persp = Camera.fit_volume(geometry, view="left", size_px=(120, 150),
                              projection="perspective")
    return [ortho, ortho.orbited(37.0, 21.0), persp.orbited(-60.0, 30.0)]


@pytest.mark.parametrize("mode", ["mip", "minip", "avgip"])
def test_gpu_projection_equals_cpu(mode: str) -> None:
    vol, geometry = _volume()
    gpu_vol = to_gpu(vol)
    blocks_gpu = BlockGrid.of(gpu_vol, geometry)
    blocks_cpu = BlockGrid.of(vol, geometry)
    for lo_g, lo_c in zip(blocks_gpu.minimum, blocks_cpu.minimum, strict=True):
        np.testing.assert_array_equal(lo_g.get(), lo_c)
    for cam in _cameras(geometry):
        cpu = render_projection(vol, geometry, cam, mode=mode, fill=-3000.0, blocks=blocks_cpu)
        gpu = render_projection(gpu_vol, geometry, cam, mode=mode, fill=-3000.0,
                                blocks=blocks_gpu).get()
        assert (cpu == -3000.0).any() and (cpu != -3000.0).any()
        np.testing.assert_allclose(gpu, cpu, atol=0.05, rtol=1e-4)


@pytest.mark.parametrize("shading", [False, True])
def test_gpu_volume_rendering_equals_cpu(shading: bool) -> None:
    vol, geometry = _volume()
    gpu_vol = to_gpu(vol)
    tf = TransferFunction(color_points=((0.0, 0.9, 0.5, 0.3), (1200.0, 1.0, 1.0, 0.9)),
                          opacity_points=((0.0, 0.0), (400.0, 0.15), (1200.0, 0.8)))
    for transfer in (tf, preset("ct-bone")):
        for cam in _cameras(geometry):
            cpu = render_volume(vol, geometry, cam, transfer, shading=shading,
                                background=(0.1, 0.2, 0.3))
            gpu = render_volume(gpu_vol, geometry, cam, transfer, shading=shading,
                                background=(0.1, 0.2, 0.3)).get()
            # LUT entries chosen on either side of a rounding edge, FMA contraction and early
            # termination one sample apart move a few pixels a little.
            diff = np.abs(gpu - cpu)
            assert np.mean(diff) < 2e-3
            assert np.mean(diff > 0.02) < 0.002
