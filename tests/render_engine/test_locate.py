"""Lesion sync (R32) against the DICOM attributes, SimpleITK, and round trips (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.assemble import assemble_series
from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.locate import locate, locate_in_series, plane_through_point
from render_engine.planes import Plane
from tests.conftest import data_path


@dataclass
class Series:
    geometry: VolumeGeometry
    positions_lps: np.ndarray  # ImagePositionPatient of every file, (n, 3)
    normal_lps: np.ndarray  # row cosine × column cosine of ImageOrientationPatient
    folder: str


def _series(*parts: str) -> Series:
    folder = data_path(*parts)
    datasets: list[pydicom.Dataset] = [pydicom.dcmread(p) for p in sorted(folder.iterdir())
                                       if p.is_file() and p.suffix != ".txt"]
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=np.float64)
    return Series(geometry=assemble_series(datasets).geometry,
                  positions_lps=np.array([ds.ImagePositionPatient for ds in datasets],
                                         dtype=np.float64),
                  normal_lps=np.cross(iop[:3], iop[3:]), folder=str(folder))


@pytest.fixture(scope="module")
def acrin() -> tuple[Series, Series]:
    return _series("petct-acrin042", "CT"), _series("petct-acrin042", "PT_AC")


@pytest.fixture(scope="module")
def phantoms() -> tuple[Series, Series]:
    return (_series("ct-phantom-philips-2studies", "study1_S21570_S2010_5mm"),
            _series("ct-phantom-philips-2studies", "study2_S21610_S2010_tilt-18.5"))


def _check_nearest_slice(point: np.ndarray, series: Series, found: dict[str, object]) -> None:
    """The located slice is the file whose image plane (IPP, IOP normal) is nearest the point.

    The volume's slice k starts at the file's ImagePositionPatient up to the assembler's
    tolerance for uneven gaps (the ACRIN PET's vary by 0.02 mm: SimpleITK warns of it).
    """
    distances = np.abs((point - series.positions_lps) @ series.normal_lps)
    nearest = int(np.argmin(distances))
    assert np.partition(distances, 1)[1] > distances[nearest] + 0.1  # not a tie
    k = found["nearest_slice_index"]
    assert isinstance(k, int)
    origin_k = series.geometry.index_to_patient([k, 0, 0])
    assert int(np.argmin(np.linalg.norm(series.positions_lps - origin_k, axis=1))) == nearest
    np.testing.assert_allclose(origin_k, series.positions_lps[nearest], atol=0.02)
    assert found["slice_distance_mm"] == pytest.approx(distances[nearest], abs=0.02)


def _check_views(point: np.ndarray, found: dict[str, object]) -> None:
    views = found["views"]
    assert isinstance(views, dict)
    assert sorted(views) == ["acquisition", "axial", "coronal", "sagittal"]
    for view in views.values():
        plane = Plane(**view["plane"])
        x, y = view["position_px"]
        np.testing.assert_allclose(plane.pixel_to_patient(y, x), point, atol=1e-6)
        assert abs(plane.patient_to_pixel(point)[2]) < 1e-6  # the plane passes through it
        # The pixel a viewer marks (the nearest one) is within half a pixel of the point.
        centre = plane.pixel_to_patient(round(y), round(x))
        assert np.linalg.norm(centre - point) <= plane.pixel_spacing_mm * np.sqrt(0.5) + 1e-9
        assert view["inside_view"]


def test_a_ct_point_maps_to_the_pet_slice_with_the_nearest_image_position(
        acrin: tuple[Series, Series]) -> None:
    ct, pet = acrin
    assert ct.geometry.frame_of_reference_uid == pet.geometry.frame_of_reference_uid
    image = sitk.ImageSeriesReader()
    image.SetFileNames(image.GetGDCMSeriesFileNames(pet.folder))
    pet_image = image.Execute()
    for ct_index in [(10.2, 100.7, 200.1), (67.3, 256.0, 256.0), (120.9, 400.3, 80.6),
                     (134.0, 300.0, 350.0)]:
        point = ct.geometry.index_to_patient(ct_index)
        found = locate(point, pet.geometry)
        assert found["inside"] and found["frame_of_reference_uid"] == \
            pet.geometry.frame_of_reference_uid
        _check_nearest_slice(point, pet, found)
        # SimpleITK's own physical → index mapping of the PET, (x, y, z) order.
        ref = pet_image.TransformPhysicalPointToContinuousIndex(point.tolist())
        np.testing.assert_allclose(found["index_zyx"], ref[::-1], atol=0.01)
        _check_views(point, found)
        # Standard views pass through the point: the axial plane at its z, the sagittal at x.
        views = found["views"]
        assert views["axial"]["plane"]["center_lps"][2] == pytest.approx(point[2])
        assert views["coronal"]["plane"]["center_lps"][1] == pytest.approx(point[1])
        assert views["sagittal"]["plane"]["center_lps"][0] == pytest.approx(point[0])
        # And back on the CT: the same point, its own index.
        back = locate(point, ct.geometry)
        np.testing.assert_allclose(back["index_zyx"], ct_index, atol=1e-9)
        _check_nearest_slice(point, ct, back)


def test_tilted_and_untilted_phantoms_locate_one_point_consistently(
        phantoms: tuple[Series, Series]) -> None:
    flat, tilted = phantoms
    assert tilted.geometry.is_sheared and not flat.geometry.is_sheared
    assert abs(float(tilted.normal_lps @ flat.normal_lps)) < 0.96  # the tilt: about 18.5°
    centre = (flat.geometry.index_to_patient(np.array(flat.geometry.shape) / 2)
              + tilted.geometry.index_to_patient(np.array(tilted.geometry.shape) / 2)) / 2
    for offset in [(0.0, 0.0, 0.0), (20.0, -15.0, 7.3), (-31.0, 12.0, -11.0)]:
        point = centre + np.array(offset)
        both = locate_in_series(point, {"flat": flat.geometry, "tilted": tilted.geometry},
                                frame_of_reference_uid=flat.geometry.frame_of_reference_uid)
        assert sorted(both) == ["flat", "tilted"]
        for name, series in (("flat", flat), ("tilted", tilted)):
            found = both[name]
            assert found["inside"]
            np.testing.assert_allclose(series.geometry.index_to_patient(found["index_zyx"]),
                                       point, atol=1e-6)
            _check_nearest_slice(point, series, found)
            _check_views(point, found)
            acquisition = Plane(**found["views"]["acquisition"]["plane"])
            assert abs(float(acquisition.normal @ series.normal_lps)) == pytest.approx(1.0)
        # One patient plane per standard orientation, whichever series it was fitted to.
        for orientation in ("axial", "coronal", "sagittal"):
            a = Plane(**both["flat"]["views"][orientation]["plane"])
            b = Plane(**both["tilted"]["views"][orientation]["plane"])
            np.testing.assert_allclose(a.normal, b.normal, atol=1e-12)
            assert float((a.center_lps - b.center_lps) @ a.normal) == pytest.approx(0, abs=1e-9)


def test_series_of_another_frame_of_reference_are_left_out(
        acrin: tuple[Series, Series], phantoms: tuple[Series, Series]) -> None:
    ct, pet = acrin
    geometries = {"ct": ct.geometry, "phantom": phantoms[0].geometry, "pet": pet.geometry,
                  "unknown": VolumeGeometry(shape=(2, 2, 2), affine=np.eye(4))}
    point = ct.geometry.index_to_patient([50.0, 200.0, 220.0])
    found = locate_in_series(point, geometries,
                             frame_of_reference_uid=ct.geometry.frame_of_reference_uid)
    assert list(found) == ["ct", "pet"]
    assert locate_in_series(point, geometries, frame_of_reference_uid=None) == {}


def test_inside_follows_the_itk_half_voxel_rule() -> None:
    geometry = VolumeGeometry(shape=(4, 5, 6), affine=np.diag([2.0, 1.0, 0.5, 1.0]))
    # LPS = (x, y, z) = (2 k, j, 0.5 i) with this affine (index order z, y, x).
    assert locate([-1.0, 0.0, 0.0], geometry)["inside"]  # k = -0.5
    assert not locate([-1.001, 0.0, 0.0], geometry)["inside"]
    assert locate([7.0, 4.5, 2.75], geometry)["inside"]  # k = 3.5, j = 4.5, i = 5.5
    outside = locate([20.0, 2.0, 1.0], geometry)
    assert not outside["inside"]
    assert outside["nearest_slice_index"] == 3 and outside["slice_distance_mm"] == pytest.approx(
        14.0)


@pytest.mark.parametrize("point", [[1.0, 2.0], [float("nan"), 0.0, 0.0], "abc",
                                   [[1.0, 2.0, 3.0]], [1.0, None, 2.0]])
def test_bad_points_raise_a_value_error(point: object) -> None:
    geometry = VolumeGeometry(shape=(4, 5, 6), affine=np.eye(4))
    with pytest.raises(GeometryError) as info:
        locate(point, geometry)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    with pytest.raises(GeometryError):
        locate_in_series(point, {}, frame_of_reference_uid="1.2")  # type: ignore[arg-type]


def test_the_sagittal_position_is_taken_along_the_plane_normal() -> None:
    geometry = VolumeGeometry(shape=(10, 20, 30), affine=np.eye(4))
    plane = plane_through_point(geometry, "sagittal", [12.0, 3.0, 4.0])
    assert plane.normal[0] == pytest.approx(-1.0)  # radiological: the normal points to -x
    assert plane.center_lps[0] == pytest.approx(12.0)


# -- property: every located position maps back to the point ------------------------------------


def _rotation(axis: np.ndarray, deg: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    a = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


@st.composite
def geometries(draw: st.DrawFn) -> VolumeGeometry:
    rot = _rotation(np.array(draw(st.tuples(*[st.floats(0.1, 1.0)] * 3))),
                    draw(st.floats(-180, 180)))
    spacing = draw(st.tuples(*[st.floats(0.3, 5.0)] * 3))
    shear = draw(st.floats(-0.4, 0.4))  # gantry tilt
    affine = np.eye(4)
    affine[:3, 0] = rot[:, 2] * spacing[0] + rot[:, 1] * shear * spacing[0]
    affine[:3, 1] = rot[:, 1] * spacing[1]
    affine[:3, 2] = rot[:, 0] * spacing[2]
    affine[:3, 3] = draw(st.tuples(*[st.floats(-300, 300)] * 3))
    shape = (draw(st.integers(1, 80)), draw(st.integers(1, 128)), draw(st.integers(1, 128)))
    return VolumeGeometry(shape=shape, affine=affine, frame_of_reference_uid="1.2.3")


@settings(max_examples=150, deadline=None)
@given(geometries(), st.tuples(*[st.floats(-0.7, 1.7)] * 3))
def test_located_positions_map_back_to_the_point(
        geometry: VolumeGeometry, fraction: tuple[float, float, float]) -> None:
    n = np.array(geometry.shape, dtype=np.float64)
    point = geometry.index_to_patient(np.array(fraction) * n - 0.5)
    found = locate(point, geometry)
    index = np.array(found["index_zyx"])
    np.testing.assert_allclose(geometry.index_to_patient(index), point, atol=1e-6)
    f = np.array(fraction)
    if not np.any(np.isclose(f, 0.0, atol=1e-9) | np.isclose(f, 1.0, atol=1e-9)):
        assert found["inside"] == bool(np.all((f >= 0.0) & (f <= 1.0)))
    k = found["nearest_slice_index"]
    step_along_normal = abs(float(geometry.affine[:3, 0] @ geometry.slice_normal))
    assert found["slice_distance_mm"] == pytest.approx(abs(index[0] - k) * step_along_normal,
                                                       abs=1e-6)
    if -0.5 <= index[0] <= n[0] - 0.5:
        assert found["slice_distance_mm"] <= step_along_normal / 2 + 1e-6
    for view in found["views"].values():
        plane = Plane(**view["plane"])
        x, y = view["position_px"]
        np.testing.assert_allclose(plane.pixel_to_patient(y, x), point, atol=1e-6)
        assert abs(plane.patient_to_pixel(point)[2]) < 1e-6
