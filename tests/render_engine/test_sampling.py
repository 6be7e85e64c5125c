"""Plane and slab sampling against independent references (SimpleITK, numpy)."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ingest.assemble import assemble_series
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Plane, Slab, plane_through, standard_plane
from render_engine.sampling import index_steps, sample, slab_step_mm
from tests.conftest import data_path


def _trilinear_numpy(vol: np.ndarray, idx: np.ndarray, fill: float) -> np.ndarray:
    """Slow, obvious reference: ITK's inside rule, clamped trilinear interpolation."""
    n = np.array(vol.shape, dtype=np.float64)
    inside = np.all((idx >= -0.5) & (idx <= n - 0.5), axis=-1)
    c = np.clip(idx, 0, n - 1)
    lo = np.minimum(np.floor(c).astype(int), np.maximum(n.astype(int) - 2, 0))
    hi = np.minimum(lo + 1, n.astype(int) - 1)
    f = c - lo
    out = np.zeros(idx.shape[:-1])
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                zz = np.where(dz, hi[..., 0], lo[..., 0])
                yy = np.where(dy, hi[..., 1], lo[..., 1])
                xx = np.where(dx, hi[..., 2], lo[..., 2])
                wgt = ((f[..., 0] if dz else 1 - f[..., 0]) * (f[..., 1] if dy else 1 - f[..., 1])
                       * (f[..., 2] if dx else 1 - f[..., 2]))
                out += wgt * vol[zz, yy, xx]
    return np.where(inside, out, fill)


def _axial_affine(dz: float, dy: float, dx: float) -> np.ndarray:
    """Index (z, y, x) → LPS for an axial stack: x → L, y → P, z → H."""
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([[0, 0, dz], [0, dy, 0], [dx, 0, 0]])
    return affine


def _random_volume(seed: int = 1) -> tuple[np.ndarray, VolumeGeometry]:
    rng = np.random.default_rng(seed)
    vol = rng.normal(0, 100, size=(24, 30, 28)).astype(np.float32)
    affine = np.eye(4)
    affine[:3, 0] = [0.3, 0.0, 2.0]  # sheared slice axis, like a gantry tilt
    affine[:3, 1] = [0.0, 1.2, 0.0]
    affine[:3, 2] = [0.9, 0.0, 0.0]
    affine[:3, 3] = [-10.0, -20.0, -30.0]
    return vol, VolumeGeometry(shape=vol.shape, affine=affine)  # type: ignore[arg-type]


def test_oblique_plane_matches_a_numpy_reference() -> None:
    vol, geometry = _random_volume()
    center = geometry.index_to_patient(np.array(vol.shape) / 2 - 0.5)
    plane = plane_through(center, [0.3, -0.5, 0.8], pixel_spacing_mm=0.7, size_px=(50, 40))
    got = sample(vol, geometry, plane, fill=-2000)
    ref = _trilinear_numpy(vol, geometry.patient_to_index(plane.pixel_grid_lps()), -2000)
    np.testing.assert_allclose(got, ref, atol=1e-3)
    assert (got == -2000).any() and (got != -2000).any()  # the plane leaves the volume


@pytest.mark.parametrize("mode", ["mip", "minip", "avgip"])
def test_oblique_slab_matches_a_numpy_reference(mode: str) -> None:
    vol, geometry = _random_volume(2)
    center = geometry.index_to_patient(np.array(vol.shape) / 2 - 0.5)
    plane = plane_through(center, [0.1, 0.4, 0.9], pixel_spacing_mm=0.8, size_px=(30, 24))
    slab = Slab(thickness_mm=6.0, mode=mode)
    got = sample(vol, geometry, plane, slab=slab, fill=-5000)
    offsets = slab.sample_offsets_mm(slab_step_mm(geometry))
    grid = plane.pixel_grid_lps()
    samples = np.stack([_trilinear_numpy(vol, geometry.patient_to_index(
        grid + t * plane.normal), np.nan) for t in offsets])
    reduce = {"mip": np.nanmax, "minip": np.nanmin, "avgip": np.nanmean}[mode]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: outside the volume
        ref = reduce(samples, axis=0)
    ref = np.where(np.isnan(ref), -5000, ref)
    np.testing.assert_allclose(got, ref, atol=1e-3)


@pytest.mark.parametrize(("mode", "reduce"), [("mip", np.max), ("minip", np.min)])
def test_axis_aligned_slab_equals_numpy_reduction(mode: str, reduce: np.ufunc) -> None:
    rng = np.random.default_rng(3)
    vol = rng.integers(-1000, 1000, size=(20, 16, 12)).astype(np.int16)
    geometry = VolumeGeometry(shape=vol.shape, affine=_axial_affine(2.0, 1.0, 1.0))  # type: ignore[arg-type]
    k = 9
    plane = standard_plane(geometry, "axial", slice_index=k)
    # 8 mm at 2 mm slices: slices k-2 … k+2 are sampled exactly, the rest lie between them.
    got = sample(vol, geometry, plane, slab=Slab(thickness_mm=8.0, mode=mode))
    np.testing.assert_array_equal(got, reduce(vol[k - 2:k + 3], axis=0).astype(np.float32))
    single = sample(vol, geometry, plane, interpolation="nearest")
    np.testing.assert_array_equal(single, vol[k].astype(np.float32))


def test_one_slice_volume_renders_on_its_own_plane() -> None:
    vol = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    geometry = VolumeGeometry(shape=(1, 3, 4), affine=_axial_affine(5.0, 1.0, 1.0))
    plane = standard_plane(geometry, "axial")
    np.testing.assert_array_equal(sample(vol, geometry, plane), vol[0])
    off = plane.moved_along_normal(3.0)  # beyond half the 5 mm thickness
    assert (sample(vol, geometry, off, fill=-1) == -1).all()


def _sitk_ct() -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    folder = data_path("petct-acrin042", "CT")
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_oblique_mpr_of_the_acrin_ct_matches_simpleitk_resample() -> None:
    image = _sitk_ct()
    vol = sitk.GetArrayFromImage(image).astype(np.float32)  # (z, y, x), HU
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())  # (x, y, z)
    affine = np.eye(4)
    affine[:3, 0] = direction[:, 2] * spacing[2]
    affine[:3, 1] = direction[:, 1] * spacing[1]
    affine[:3, 2] = direction[:, 0] * spacing[0]
    affine[:3, 3] = image.GetOrigin()
    geometry = VolumeGeometry(shape=vol.shape, affine=affine)  # type: ignore[arg-type]
    axial = standard_plane(geometry, "axial", size_px=(384, 384))
    plane = axial.rotated_about([1.0, 0.0, 0.0], 25.0).rotated_about([0.0, 1.0, 0.3], -15.0)
    got = sample(vol, geometry, plane, fill=np.nan)

    w, h = plane.size_px
    ref_grid = sitk.Image(w, h, 1, sitk.sitkFloat32)
    ref_grid.SetOrigin(tuple(plane.pixel_to_patient(0, 0)))
    ref_grid.SetSpacing((plane.pixel_spacing_mm, plane.pixel_spacing_mm, 1.0))
    ref_grid.SetDirection(tuple(np.column_stack(
        [plane.row_dir, plane.col_dir, plane.normal]).ravel()))
    ref = sitk.GetArrayFromImage(sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), ref_grid, sitk.Transform(), sitk.sitkLinear,
        float("nan")))[0]
    # Away from the border: both defined and at least one voxel inside the volume.
    idx = geometry.patient_to_index(plane.pixel_grid_lps())
    interior = np.all((idx >= 1) & (idx <= np.array(vol.shape) - 2), axis=-1)
    assert interior.mean() > 0.3
    diff = np.abs(got - ref)[interior]
    assert np.nanmax(diff) <= 1.0, np.nanmax(diff)


def _assembled(folder: str) -> tuple[np.ndarray, VolumeGeometry]:
    files = [p for p in data_path(*folder.split("/")).iterdir() if p.is_file()
             and p.suffix != ".txt"]
    volume = assemble_series([pydicom.dcmread(p) for p in files])
    return volume.data, volume.geometry


def test_tilted_and_untilted_phantoms_agree_on_the_same_patient_plane() -> None:
    flat_vol, flat_geo = _assembled("ct-phantom-philips-2studies/study1_S21570_S2010_5mm")
    tilt_vol, tilt_geo = _assembled("ct-phantom-philips-2studies/study2_S21610_S2010_tilt-18.5")
    assert tilt_geo.is_sheared and not flat_geo.is_sheared
    assert flat_geo.frame_of_reference_uid == tilt_geo.frame_of_reference_uid
    # A sagittal plane through the middle of the overlap shows the tilt most.
    center = (flat_geo.index_to_patient(np.array(flat_geo.shape) / 2)
              + tilt_geo.index_to_patient(np.array(tilt_geo.shape) / 2)) / 2
    plane = plane_through(center, [1.0, 0.0, 0.0], pixel_spacing_mm=0.8, size_px=(256, 96))
    a = sample(flat_vol, flat_geo, plane, fill=np.nan)
    b = sample(tilt_vol, tilt_geo, plane, fill=np.nan)
    both = np.isfinite(a) & np.isfinite(b)
    assert both.mean() > 0.3
    ncc = np.corrcoef(a[both], b[both])[0, 1]
    assert ncc > 0.9, ncc
    # Without the shear (slices stacked along the normal) the same plane agrees far worse.
    unsheared = tilt_geo.affine.copy()
    unsheared[:3, 0] = tilt_geo.slice_normal * np.linalg.norm(tilt_geo.affine[:3, 0]) * np.sign(
        float(tilt_geo.slice_normal @ tilt_geo.affine[:3, 0]))
    naive = VolumeGeometry(shape=tilt_geo.shape, affine=unsheared)
    c = sample(tilt_vol, naive, plane, fill=np.nan)
    both_c = np.isfinite(a) & np.isfinite(c)
    assert np.corrcoef(a[both_c], c[both_c])[0, 1] < ncc


def test_index_steps_walk_the_pixel_grid() -> None:
    vol, geometry = _random_volume()
    plane = Plane(center_lps=[0, 0, 0], row_dir=[0.6, 0.8, 0], col_dir=[0, 0, 1],
                  pixel_spacing_mm=0.5, size_px=(7, 5))
    origin, d_col, d_row, _ = index_steps(geometry, plane)
    np.testing.assert_allclose(origin + 6 * d_col + 4 * d_row,
                               geometry.patient_to_index(plane.pixel_to_patient(4, 6)), atol=1e-9)


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("mode", ["mip", "minip", "avgip"])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_axis_aligned_slab_fast_path_equals_the_general_kernel(orientation: str, mode: str,
                                                               interpolation: str) -> None:
    from render_engine.kernels import cpu_sampling

    rng = np.random.default_rng(3)
    vol = rng.normal(0, 100, size=(17, 23, 19)).astype(np.int16)
    geometry = VolumeGeometry(shape=vol.shape, affine=_axial_affine(2.5, 0.9, 0.7))
    order = cpu_sampling.LINEAR if interpolation == "linear" else cpu_sampling.NEAREST
    code = {"mip": cpu_sampling.MIP, "minip": cpu_sampling.MINIP, "avgip": cpu_sampling.AVGIP}
    # Centred, and half out of the volume (the slab clipped at the border), and a zoomed view.
    base = standard_plane(geometry, orientation, size_px=(40, 36))
    for plane in (base, base.moved_along_normal(-9.0).zoomed(1.7).panned(right_px=5)):
        slab = Slab(thickness_mm=7.3, mode=mode)
        origin, d_col, d_row, d_normal = index_steps(geometry, plane)
        offsets = slab.sample_offsets_mm(slab_step_mm(geometry))
        assert np.count_nonzero(np.abs(d_normal) > 1e-9) == 1  # the fast path's case
        general = np.empty((36, 40), dtype=np.float32)
        cpu_sampling._slab(vol, origin, d_col, d_row, d_normal, offsets, general, order,
                           code[mode], np.nan)
        fast = sample(vol, geometry, plane, slab=slab, interpolation=interpolation, fill=np.nan)
        np.testing.assert_allclose(fast, general, rtol=1e-6, atol=1e-3)
        assert np.isnan(fast).any() == np.isnan(general).any()
