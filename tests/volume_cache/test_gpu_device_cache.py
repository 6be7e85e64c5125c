"""A session's volume on the GPU: the device cache's copy renders the CPU's pixels (run where
cupy sees a GPU, skipped elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, is_gpu_array, to_gpu
from render_engine.pipeline import render
from render_engine.view import Render3D, ViewState, Window
from streaming.volumes import as_render_volume
from volume_cache.device import DeviceVolumeCache
from volume_cache.memory import CachedVolume

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(cupy_or_none() is None, reason="needs cupy and an NVIDIA GPU")]


def test_device_copy_renders_the_host_pixels() -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(-1000, 1500, (40, 64, 64)).astype(np.int16)
    affine = np.diag([2.5, 0.8, 0.8, 1.0])
    cached = CachedVolume(data=data, geometry=VolumeGeometry(shape=data.shape, affine=affine),
                          metadata={"modality": "CT", "units": "HU"})
    device = DeviceVolumeCache(2**30, to_gpu)
    on_gpu = as_render_volume("s", cached, device=device, key="volumes/s.zarr")
    on_cpu = as_render_volume("s", cached)
    assert is_gpu_array(on_gpu.data) and not is_gpu_array(on_cpu.data)
    for state in (ViewState(series_uid="s", orientation="axial", size_px=(96, 96),
                            orbit_deg=(17, 9), window=Window(center=0, width=2000)),
                  ViewState(series_uid="s", orientation="coronal", size_px=(96, 96),
                            render3d=Render3D(method="mip"), window=Window(center=0, width=2000))):
        gpu = render(state, lambda _uid: on_gpu).values
        cpu = render(state, lambda _uid: on_cpu).values
        np.testing.assert_allclose(gpu, cpu, atol=0.5, equal_nan=True)
    assert len(device) == 1
