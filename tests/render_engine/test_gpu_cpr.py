"""The GPU point kernels give the CPU kernels' values on CPR surfaces (run where cupy sees a GPU;
skipped elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.cpr import sample_cpr
from render_engine.curved import CprView, CurvedPath
from render_engine.geometry import VolumeGeometry
from render_engine.kernels import cpu_points, gpu_points
from render_engine.kernels.backend import cupy_or_none, to_gpu
from render_engine.planes import Slab

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


def _view(geometry: VolumeGeometry, mode: str) -> CprView:
    idx = np.array([[5, 10, 8], [20, 30, 40], [35, 45, 30], [55, 60, 70]], dtype=np.float64)
    return CprView(path=CurvedPath(points_lps=geometry.index_to_patient(idx)), mode=mode,
                   pixel_spacing_mm=0.5, width_px=150, rotation_deg=25.0)


@pytest.mark.parametrize("mode", ["straightened", "stretched"])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
@pytest.mark.parametrize("slab", [None, Slab(thickness_mm=12, mode="mip"),
                                  Slab(thickness_mm=12, mode="minip"),
                                  Slab(thickness_mm=12, mode="avgip")])
def test_gpu_cpr_equals_cpu(mode: str, interpolation: str, slab: Slab | None) -> None:
    vol, geometry = _volume()
    view = _view(geometry, mode)
    cpu = sample_cpr(vol, geometry, view, slab=slab, interpolation=interpolation, fill=-3000)
    gpu = sample_cpr(to_gpu(vol), geometry, view, slab=slab, interpolation=interpolation,
                     fill=-3000).get()  # type: ignore[attr-defined]
    assert gpu.shape == cpu.shape and gpu.dtype == np.float32
    assert (cpu == -3000).any() and (cpu != -3000).any()
    if interpolation == "nearest" and slab is None:
        # Rounding exactly at .5 may pick the other neighbour: nearly all must be identical.
        assert np.mean(cpu == gpu) > 0.999
    else:
        np.testing.assert_allclose(gpu, cpu, atol=0.05, rtol=1e-4)


def test_gpu_points_take_host_or_device_points() -> None:
    cp = cupy_or_none()
    assert cp is not None
    vol, _ = _volume()
    rng = np.random.default_rng(3)
    pts = rng.uniform([-2, -2, -2], [62, 72, 82], size=(33, 17, 3))
    normals = rng.normal(size=(33, 17, 3))
    offsets = np.linspace(-2, 2, 5)
    cpu = cpu_points.sample_points(vol, pts, fill=-1)
    dev = to_gpu(vol)
    np.testing.assert_allclose(gpu_points.sample_points(dev, pts, fill=-1).get(), cpu,
                               atol=0.05, rtol=1e-4)
    np.testing.assert_allclose(gpu_points.sample_points(dev, cp.asarray(pts), fill=-1).get(), cpu,
                               atol=0.05, rtol=1e-4)
    slab_cpu = cpu_points.sample_points_slab(vol, pts, normals, offsets, mode=cpu_points.AVGIP,
                                             fill=-1)
    slab_gpu = gpu_points.sample_points_slab(dev, cp.asarray(pts), normals, offsets,
                                             mode=cpu_points.AVGIP, fill=-1).get()
    np.testing.assert_allclose(slab_gpu, slab_cpu, atol=0.05, rtol=1e-4)
    with pytest.raises(ValueError):
        gpu_points.sample_points(cp.asarray(vol, dtype=cp.float64), pts)
