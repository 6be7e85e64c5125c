"""The whole pipeline on the GPU gives the CPU's frames (MPR, slab, CPR, fusion, 3D MIP, volume
rendering); run where cupy sees a GPU, skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.curved import CprView, CurvedPath
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, to_gpu
from render_engine.pipeline import RenderVolume, render
from render_engine.planes import Slab
from render_engine.view import Layer, Render3D, ViewState, Window

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(cupy_or_none() is None, reason="needs cupy and an NVIDIA GPU")]


def _volumes(device: bool) -> dict[str, RenderVolume]:
    rng = np.random.default_rng(11)
    ct = rng.normal(40, 200, size=(40, 64, 60)).astype(np.float32)
    ct[10:30, 20:40, 20:40] = 900.0  # a bone block for the renderings
    pet = np.abs(rng.normal(0, 3000, size=(20, 32, 30))).astype(np.float32)
    a_ct, a_pet = np.eye(4), np.eye(4)
    a_ct[:3, :3] = np.column_stack([[0.3, 0, 2.0], [0, 0.9, 0], [0.9, 0, 0]])  # sheared
    a_pet[:3, :3] = np.column_stack([[0, 0, 4.0], [0, 1.8, 0], [1.8, 0, 0]])
    move = to_gpu if device else (lambda a: a)
    return {"ct": RenderVolume(series_uid="ct", data=move(ct), modality="CT", units="HU",
                               geometry=VolumeGeometry(shape=ct.shape, affine=a_ct)),
            "pet": RenderVolume(series_uid="pet", data=move(pet), modality="PT",
                                units="SUVbw", scale=1e-3,
                                geometry=VolumeGeometry(shape=pet.shape, affine=a_pet))}


PATH = CurvedPath(points_lps=[[10, 10, 20], [30, 25, 40], [45, 50, 60]], kind="spline")
STATES = [
    ViewState(series_uid="ct", orientation="axial", size_px=(96, 80), rotation_deg=20,
              orbit_deg=(15, 10), window=Window(center=40, width=400)),
    ViewState(series_uid="ct", orientation="coronal", size_px=(96, 80),
              slab=Slab(thickness_mm=10, mode="mip"), window=Window(center=300, width=1500)),
    ViewState(series_uid="ct", orientation="axial", size_px=(96, 80),
              window=Window(center=40, width=400),
              layers=(Layer(series_uid="pet", window=Window(center=2.5, width=5),
                            colormap="rainbow"),)),
    ViewState(series_uid="ct", cpr=CprView(path=PATH, pixel_spacing_mm=0.7, width_px=64),
              window=Window(center=40, width=400)),
    ViewState(series_uid="pet", orientation="coronal", size_px=(96, 80), orbit_deg=(40, 0),
              render3d=Render3D(method="mip"), preset="pet-suv-0-5"),
    ViewState(series_uid="ct", orientation="coronal", size_px=(96, 80), orbit_deg=(30, 20),
              render3d=Render3D(method="vr", preset="ct-bone")),
]


@pytest.mark.parametrize("state", STATES, ids=["oblique", "slab", "fusion", "cpr", "mip3d", "vr"])
def test_gpu_frames_equal_cpu_frames(state: ViewState) -> None:
    cpu, gpu = _volumes(False), _volumes(True)
    a = render(state, cpu.__getitem__)
    b = render(state, gpu.__getitem__)
    assert a.pixels.shape == b.pixels.shape and isinstance(b.pixels, np.ndarray)
    diff = np.abs(a.pixels.astype(int) - b.pixels.astype(int))
    assert np.percentile(diff, 99.5) <= 1 and diff.max() <= 8, diff.max()
    both = np.isfinite(a.values) & np.isfinite(b.values)
    # Rays and samples exactly on the volume's border may fall either side in float32.
    assert (np.isfinite(a.values) != np.isfinite(b.values)).mean() < 0.005
    if both.any():
        np.testing.assert_allclose(b.values[both], a.values[both], rtol=1e-4, atol=1e-2)
