"""Patient-space geometry: round trips (hypothesis), view operations, standard planes, labels."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.planes import (
    Orientation,
    Plane,
    Slab,
    orientation_label,
    plane_through,
    standard_plane,
)
from tests.conftest import data_path

finite = st.floats(min_value=-500, max_value=500, allow_nan=False, allow_infinity=False)
vec3 = st.tuples(finite, finite, finite)
angles = st.floats(min_value=-180, max_value=180, allow_nan=False)


def _rotation(axis: np.ndarray, deg: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    a = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


@st.composite
def volume_geometries(draw: st.DrawFn) -> VolumeGeometry:
    axis = np.array(draw(st.tuples(*[st.floats(0.1, 1.0)] * 3)))
    rot = _rotation(axis, draw(angles))
    spacing = draw(st.tuples(*[st.floats(0.2, 5.0)] * 3))
    shear = draw(st.floats(-0.4, 0.4))  # gantry tilt: the slice step leans along the columns
    affine = np.eye(4)
    affine[:3, 0] = rot[:, 2] * spacing[0] + rot[:, 1] * shear * spacing[0]
    affine[:3, 1] = rot[:, 1] * spacing[1]
    affine[:3, 2] = rot[:, 0] * spacing[2]
    affine[:3, 3] = draw(vec3)
    return VolumeGeometry(shape=(draw(st.integers(1, 300)), 256, 256), affine=affine)


@st.composite
def planes(draw: st.DrawFn) -> Plane:
    rot = _rotation(np.array(draw(st.tuples(*[st.floats(0.1, 1.0)] * 3))), draw(angles))
    return Plane(center_lps=np.array(draw(vec3)), row_dir=rot[:, 0], col_dir=rot[:, 1],
                 pixel_spacing_mm=draw(st.floats(0.05, 5.0)),
                 size_px=(draw(st.integers(1, 1024)), draw(st.integers(1, 1024))))


@settings(max_examples=200, deadline=None)
@given(volume_geometries(), vec3)
def test_patient_index_round_trip(geometry: VolumeGeometry, point: tuple[float, float, float]) -> None:
    index = geometry.patient_to_index(point)
    np.testing.assert_allclose(geometry.index_to_patient(index), point, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(planes(), st.floats(-2000, 2000), st.floats(-2000, 2000))
def test_pixel_patient_round_trip(plane: Plane, row: float, col: float) -> None:
    rcd = plane.patient_to_pixel(plane.pixel_to_patient(row, col))
    np.testing.assert_allclose(rcd, [row, col, 0.0], atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(planes(), st.floats(0.1, 10.0), st.floats(-300, 300), st.floats(-300, 300), angles,
       angles, vec3)
def test_view_operations_invert(plane: Plane, zoom: float, dx: float, dy: float, spin: float,
                                tilt: float, axis: tuple[float, float, float]) -> None:
    def same(a: Plane, b: Plane) -> None:
        np.testing.assert_allclose(a.center_lps, b.center_lps, atol=1e-6)
        np.testing.assert_allclose(a.row_dir, b.row_dir, atol=1e-9)
        np.testing.assert_allclose(a.col_dir, b.col_dir, atol=1e-9)
        assert a.pixel_spacing_mm == pytest.approx(b.pixel_spacing_mm, rel=1e-12)
        assert a.size_px == b.size_px

    anchor = (plane.size_px[1] * 0.3, plane.size_px[0] * 0.7)
    same(plane.zoomed(zoom, about_px=anchor).zoomed(1 / zoom, about_px=anchor), plane)
    same(plane.panned(right_px=dx, down_px=dy).panned(right_px=-dx, down_px=-dy), plane)
    same(plane.rotated_in_plane(spin).rotated_in_plane(-spin), plane)
    same(plane.flipped_horizontally().flipped_horizontally(), plane)
    same(plane.flipped_vertically().flipped_vertically(), plane)
    if np.linalg.norm(axis) > 1e-3:
        same(plane.rotated_about(axis, tilt).rotated_about(axis, -tilt), plane)
    # Zoom keeps the anchor pixel on the same patient point.
    np.testing.assert_allclose(plane.zoomed(zoom, about_px=anchor).pixel_to_patient(*anchor),
                               plane.pixel_to_patient(*anchor), atol=1e-6)


def test_pixel_centre_formula_of_the_contract() -> None:
    plane = Plane(center_lps=[10.0, 20.0, 30.0], row_dir=[1, 0, 0], col_dir=[0, 1, 0],
                  pixel_spacing_mm=0.5, size_px=(4, 3))
    # centre + (j - (w-1)/2)·s·row + (i - (h-1)/2)·s·col for (i, j) = (0, 0) and (2, 3)
    np.testing.assert_allclose(plane.pixel_to_patient(0, 0), [10 - 0.75, 20 - 0.5, 30])
    np.testing.assert_allclose(plane.pixel_to_patient(2, 3), [10 + 0.75, 20 + 0.5, 30])
    grid = plane.pixel_grid_lps()
    assert grid.shape == (3, 4, 3)
    np.testing.assert_allclose(grid[2, 3], plane.pixel_to_patient(2, 3))


def test_in_plane_rotation_is_clockwise_on_screen() -> None:
    plane = Plane(center_lps=[0, 0, 0], row_dir=[1, 0, 0], col_dir=[0, 1, 0],
                  pixel_spacing_mm=1.0, size_px=(3, 3))
    turned = plane.rotated_in_plane(90)
    # Content turns clockwise: what was at the top (anterior) is now at the right edge.
    assert plane.edge_labels()["top"] == "A"
    assert turned.edge_labels()["right"] == "A"


@pytest.mark.parametrize("bad", [
    {"row_dir": [1, 0, 0], "col_dir": [1, 0, 0]},
    {"row_dir": [0, 0, 0], "col_dir": [0, 1, 0]},
    {"pixel_spacing_mm": 0.0},
    {"size_px": (0, 10)},
    {"center_lps": [np.nan, 0, 0]},
])
def test_degenerate_planes_are_refused(bad: dict) -> None:
    args = {"center_lps": [0, 0, 0], "row_dir": [1, 0, 0], "col_dir": [0, 1, 0],
            "pixel_spacing_mm": 1.0, "size_px": (10, 10)} | bad
    with pytest.raises(GeometryError):
        Plane(**args)


def test_slab_offsets_and_validation() -> None:
    offsets = Slab(thickness_mm=20, mode="mip").sample_offsets_mm(0.5)
    assert offsets[0] == -10 and offsets[-1] == 10 and np.max(np.diff(offsets)) <= 0.5
    assert 0.0 in Slab(thickness_mm=20).sample_offsets_mm(0.49)  # the plane itself
    assert Slab(thickness_mm=0).sample_offsets_mm(0.5).tolist() == [0.0]
    with pytest.raises(GeometryError):
        Slab(thickness_mm=5, mode="max")
    with pytest.raises(GeometryError):
        Slab(thickness_mm=-1)


def test_orientation_labels() -> None:
    assert orientation_label([1, 0, 0]) == "L" and orientation_label([-1, 0, 0]) == "R"
    assert orientation_label([0, -1, 0]) == "A" and orientation_label([0, 0, 1]) == "H"
    assert orientation_label([0.8, 0.6, 0.0]) == "LP"
    assert orientation_label([0.0, -0.3, -0.95]) == "FA"


def _acrin_geometry() -> tuple[VolumeGeometry, list[pydicom.Dataset]]:
    files = sorted(data_path("petct-acrin042", "CT").iterdir())
    ds = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    iop = np.array([float(v) for v in ds[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ds.sort(key=lambda d: float(normal @ np.array([float(v) for v in d.ImagePositionPatient])))
    first, last = (np.array([float(v) for v in d.ImagePositionPatient]) for d in (ds[0], ds[-1]))
    geometry = VolumeGeometry.from_components(
        shape=(len(ds), int(ds[0].Rows), int(ds[0].Columns)), origin_lps=first,
        row_cosine=iop[:3], column_cosine=iop[3:], slice_step_lps=(last - first) / (len(ds) - 1),
        pixel_spacing_mm=tuple(float(v) for v in ds[0].PixelSpacing))  # type: ignore[arg-type]
    return geometry, ds


def test_standard_planes_of_a_head_first_supine_ct() -> None:
    geometry, ds = _acrin_geometry()
    assert ds[0].PatientPosition == "HFS"
    axial = standard_plane(geometry, "axial")
    assert axial.edge_labels() == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    coronal = standard_plane(geometry, Orientation.CORONAL)
    assert coronal.edge_labels() == {"right": "L", "left": "R", "bottom": "F", "top": "H"}
    sagittal = standard_plane(geometry, "sagittal")
    assert sagittal.edge_labels() == {"right": "P", "left": "A", "bottom": "F", "top": "H"}
    # The axial plane through slice k contains that slice's ImagePositionPatient.
    k = 40
    plane = standard_plane(geometry, "axial", slice_index=k)
    ipp = np.array([float(v) for v in ds[k].ImagePositionPatient])
    assert plane.patient_to_pixel(ipp)[2] == pytest.approx(0.0, abs=1e-3)
    plane = standard_plane(geometry, "axial", position_mm=float(ipp[2]))
    assert plane.patient_to_pixel(ipp)[2] == pytest.approx(0.0, abs=1e-3)
    # Fitted to show the whole volume at its own pixel spacing.
    assert axial.pixel_spacing_mm == pytest.approx(float(ds[0].PixelSpacing[0]))
    assert axial.size_px == (512, 512)


def test_acquisition_plane_of_the_decubitus_mr_follows_its_orientation() -> None:
    files = sorted(p for p in data_path("mr-t1-decubitus-siemens").rglob("*.dcm"))
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.PatientPosition == "HFDL"
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    geometry = VolumeGeometry.from_components(
        shape=(1, int(ds.Rows), int(ds.Columns)),
        origin_lps=[float(v) for v in ds.ImagePositionPatient], row_cosine=iop[:3],
        column_cosine=iop[3:], slice_step_lps=np.cross(iop[:3], iop[3:]),
        pixel_spacing_mm=tuple(float(v) for v in ds.PixelSpacing))  # type: ignore[arg-type]
    plane = standard_plane(geometry, "acquisition")
    np.testing.assert_allclose(plane.row_dir, iop[:3] / np.linalg.norm(iop[:3]), atol=1e-9)
    # The file says rows run to the patient's posterior and columns to the feet
    # (IOP 0\\1\\0\\0\\0\\-1 as stored): in patient terms a sagittal view, whatever the table position.
    np.testing.assert_allclose(iop, [0, 1, 0, 0, 0, -1])
    assert plane.edge_labels() == {"right": "P", "left": "A", "bottom": "F", "top": "H"}


def test_plane_through_a_point_with_a_normal() -> None:
    plane = plane_through([1, 2, 3], [0, 0, 1], pixel_spacing_mm=0.7, size_px=(100, 80))
    np.testing.assert_allclose(plane.normal, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(plane.center_lps, [1, 2, 3])
    assert plane.edge_labels()["top"] == "A"  # head-foot normal: anterior up
    oblique = plane_through([0, 0, 0], [1, 1, 0], pixel_spacing_mm=1, size_px=(10, 10))
    np.testing.assert_allclose(oblique.normal, np.array([1, 1, 0]) / np.sqrt(2), atol=1e-12)
    assert oblique.edge_labels()["top"] == "H"


def test_planes_and_view_states_holding_them_compare_by_value() -> None:
    from render_engine.view import ViewState

    def plane(x: float = 0.0) -> Plane:
        return Plane(center_lps=[x, 2.0, 3.0], row_dir=[1.0, 0.0, 0.0], col_dir=[0.0, 1.0, 0.0],
                     pixel_spacing_mm=0.5, size_px=(64, 32))

    assert plane() == plane() and hash(plane()) == hash(plane())
    assert plane() != plane(0.001)
    # a session compares the new state with the current one on every input
    a, b = (ViewState(series_uid="1.2.3", plane=plane()) for _ in range(2))
    assert a == b and a != ViewState(series_uid="1.2.3", plane=plane(1.0))
