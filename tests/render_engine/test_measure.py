"""ROI measurement (R34, R35, R38) against hand-checked grids, numpy and SimpleITK references."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ingest.assemble import assemble_series
from render_engine.errors import RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.measure import (
    Angle,
    Circle,
    Ellipse,
    HistogramSpec,
    Line,
    MeasureError,
    Point,
    Polygon,
    Rectangle,
    auto_window,
    measure,
    roi_mask,
    shape_from_json,
    shape_to_json,
)
from render_engine.planes import Plane, plane_through, standard_plane
from render_engine.sampling import sample
from tests.conftest import data_path


def _flat_plane(w: int, h: int, spacing: float = 1.0) -> Plane:
    return Plane(center_lps=np.zeros(3), row_dir=np.array([1.0, 0.0, 0.0]),
                 col_dir=np.array([0.0, 1.0, 0.0]), pixel_spacing_mm=spacing, size_px=(w, h))


def _oblique_plane() -> Plane:
    return plane_through([10.0, -20.0, 30.0], [0.3, -0.5, 0.8], pixel_spacing_mm=0.7,
                         size_px=(64, 48)).rotated_in_plane(17.0).zoomed(1.7)


def _grid(mask: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in mask])


# -- membership on tiny hand-checked grids -----------------------------------------------------


def test_rectangle_edges_are_inclusive() -> None:
    got = roi_mask(Rectangle(corner_a=(3.0, 3.0), corner_b=(1.0, 0.5)), (6, 5))
    np.testing.assert_array_equal(got, _grid(["......",
                                              ".###..",
                                              ".###..",
                                              ".###..",
                                              "......"]))


def test_ellipse_boundary_is_inside() -> None:
    # (dx/2)² + (dy/1)² <= 1 about (2, 2): the four axis ends lie exactly on the boundary.
    got = roi_mask(Ellipse(center=(2.0, 2.0), radii=(2.0, 1.0)), (6, 5))
    np.testing.assert_array_equal(got, _grid(["......",
                                              "..#...",
                                              "#####.",
                                              "..#...",
                                              "......"]))


def test_circle_takes_the_pixels_whose_centre_is_within_the_radius() -> None:
    got = roi_mask(Circle(center=(2.5, 2.0), radius=1.6), (6, 5))  # 1.5² + 0² <= 1.6² < 1.5² + 1²
    np.testing.assert_array_equal(got, _grid(["......",
                                              "..##..",
                                              ".####.",
                                              "..##..",
                                              "......"]))


def test_polygon_is_closed_even_where_scanlines_leave_edges_out() -> None:
    # A triangle pointing down: its bottom vertex (3, 4) and its top edge lie on pixel centres;
    # row 2 spans x 1.67 … 4.33, row 3 x 2.33 … 3.67.
    got = roi_mask(Polygon(vertices=((1.0, 1.0), (5.0, 1.0), (3.0, 4.0))), (7, 6))
    np.testing.assert_array_equal(got, _grid([".......",
                                              ".#####.",
                                              "..###..",
                                              "...#...",
                                              "...#...",
                                              "......."]))
    square = roi_mask(Polygon(vertices=((1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0))), (5, 5))
    np.testing.assert_array_equal(square, roi_mask(
        Rectangle(corner_a=(1.0, 1.0), corner_b=(3.0, 3.0)), (5, 5)))


def _on_segment(px: float, py: float, a: np.ndarray, b: np.ndarray) -> bool:
    d = b - a
    cross = d[0] * (py - a[1]) - d[1] * (px - a[0])
    dot = (px - a[0]) * d[0] + (py - a[1]) * d[1]
    return abs(cross) <= 1e-9 and -1e-9 <= dot <= d @ d + 1e-9


def _inside_reference(px: float, py: float, vertices: np.ndarray) -> bool:
    """Slow, obvious reference: on an edge, or an odd number of ray crossings to the right."""
    inside = False
    for a, b in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        if _on_segment(px, py, a, b):
            return True
        if (a[1] > py) != (b[1] > py):
            x = a[0] + (py - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            inside ^= x > px
    return inside


@pytest.mark.parametrize("seed", range(6))
def test_polygon_membership_matches_a_ray_casting_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    # Half the vertices on pixel centres (boundary cases), the rest anywhere; may self-cross.
    vertices = rng.uniform(-2.0, 17.0, size=(n, 2))
    vertices[::2] = np.round(vertices[::2])
    try:
        shape = Polygon(vertices=tuple((float(x), float(y)) for x, y in vertices))
    except MeasureError:
        pytest.skip("degenerate polygon")
    got = roi_mask(shape, (16, 14))
    ref = np.array([[_inside_reference(j, i, vertices) for j in range(16)] for i in range(14)])
    np.testing.assert_array_equal(got, ref)


def test_shapes_beyond_the_view_are_clipped_to_it() -> None:
    shape = Ellipse(center=(-3.0, 2.0), radii=(4.0, 2.0))
    # Column 0: (3/4)² + (dy/2)² <= 1 for |dy| <= 1; column 1: dy = 0 only.
    np.testing.assert_array_equal(roi_mask(shape, (5, 5)), _grid([".....",
                                                                  "#....",
                                                                  "##...",
                                                                  "#....",
                                                                  "....."]))
    got = measure(np.ones((5, 5), np.float32), _flat_plane(5, 5, 2.0), shape, units="HU")
    assert got["count"] == 4 and got["area_mm2"] == 16.0
    assert got["shape_area_mm2"] == pytest.approx(math.pi * 8 * 4.0)  # the drawn ellipse
    assert not roi_mask(Rectangle(corner_a=(10.0, 10.0), corner_b=(20.0, 20.0)), (5, 5)).any()


# -- statistics, NaN, histogram ------------------------------------------------------------------


def test_area_statistics_match_numpy_and_skip_nan() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(40.0, 15.0, size=(40, 50)).astype(np.float32)
    values[:, :12] = np.nan  # the plane leaves the volume on the left
    plane = _flat_plane(50, 40, spacing=0.8)
    shape = Ellipse(center=(20.0, 18.0), radii=(14.0, 9.5))
    got = measure(values, plane, shape, units="HU")
    mask = roi_mask(shape, (50, 40))
    inside = values[mask]
    finite = inside[np.isfinite(inside)]
    assert got["type"] == "ellipse" and got["units"] == "HU"
    assert got["count"] == finite.size and got["outside_count"] == int(np.isnan(inside).sum()) > 0
    assert got["mean"] == pytest.approx(float(np.mean(finite, dtype=np.float64)), abs=1e-9)
    assert got["std"] == pytest.approx(float(np.std(finite, dtype=np.float64)), rel=1e-9)
    assert got["median"] == pytest.approx(float(np.median(finite)), abs=1e-5)
    assert (got["min"], got["max"]) == (float(finite.min()), float(finite.max()))
    assert got["area_mm2"] == pytest.approx(finite.size * 0.64)
    assert got["shape_area_mm2"] == pytest.approx(math.pi * 14.0 * 9.5 * 0.64)
    hist = got["histogram"]
    assert len(hist["edges"]) == 65 and len(hist["counts"]) == 64
    assert sum(hist["counts"]) == got["count"]
    ref_counts, ref_edges = np.histogram(finite.astype(np.float64), bins=64,
                                         range=(float(finite.min()), float(finite.max())))
    np.testing.assert_allclose(hist["edges"], ref_edges)
    assert hist["counts"] == ref_counts.tolist()
    json.dumps(got, allow_nan=False)  # JSON-ready: no NaN anywhere


def test_histogram_with_a_shared_range_counts_what_falls_outside_it() -> None:
    values = np.arange(100, dtype=np.float32).reshape(10, 10)
    shape = Rectangle(corner_a=(0.0, 0.0), corner_b=(9.0, 9.0),
                      histogram=HistogramSpec(bins=4, value_range=(10.0, 50.0)))
    hist = measure(values, _flat_plane(10, 10), shape, units="HU")["histogram"]
    assert hist["edges"] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert hist["counts"] == [10, 10, 10, 11]  # the last bin is closed, as numpy's
    assert (hist["below"], hist["above"]) == (10, 49)
    assert sum(hist["counts"]) + hist["below"] + hist["above"] == 100


def test_an_roi_entirely_outside_the_volume_has_no_statistics() -> None:
    values = np.full((8, 8), np.nan, dtype=np.float32)
    got = measure(values, _flat_plane(8, 8), Circle(center=(4.0, 4.0), radius=2.0), units="HU")
    assert got["count"] == 0 and got["outside_count"] == 13 and got["area_mm2"] == 0
    assert got["mean"] is None and got["window"] is None
    assert got["histogram"] == {"edges": [], "counts": [], "below": 0, "above": 0}
    json.dumps(got, allow_nan=False)
    with pytest.raises(MeasureError):
        auto_window(values, Circle(center=(4.0, 4.0), radius=2.0), _flat_plane(8, 8))


def test_constant_roi_has_a_one_unit_histogram_and_window() -> None:
    values = np.full((6, 6), 7.0, dtype=np.float32)
    got = measure(values, _flat_plane(6, 6), Rectangle(corner_a=(0.0, 0.0),
                                                      corner_b=(5.0, 5.0)), units="SUVbw")
    assert got["std"] == 0.0 and got["histogram"]["edges"][0] == 6.5
    assert sum(got["histogram"]["counts"]) == 36
    assert got["window"] == {"center": 7.0, "width": 1.0}


def test_auto_window_is_the_half_percent_tails_of_the_roi() -> None:
    values = np.arange(1000, dtype=np.float32).reshape(20, 50)
    plane = _flat_plane(50, 20)
    whole = Rectangle(corner_a=(0.0, 0.0), corner_b=(49.0, 19.0))
    lo, hi = np.percentile(np.arange(1000.0), [0.5, 99.5])
    center, width = auto_window(values, whole, plane)
    assert center == pytest.approx((lo + hi) / 2) and width == pytest.approx(hi - lo)
    assert measure(values, plane, whole, units="HU")["window"] == pytest.approx(
        {"center": center, "width": width})
    mask = np.zeros((20, 50), dtype=bool)
    mask[3, 5:9] = True  # 155 … 158
    # Percentile positions 0.005 · 3 and 0.995 · 3 between the sorted values.
    assert auto_window(values, mask, plane) == pytest.approx((156.5, 157.985 - 155.015))
    with pytest.raises(MeasureError):
        auto_window(values, mask[:, :10], plane)


# -- point, line, angle --------------------------------------------------------------------------


def test_point_value_is_bilinear_between_pixel_centres() -> None:
    ys, xs = np.mgrid[0:6, 0:8].astype(np.float32)
    values = 3.0 * xs - 2.0 * ys + 5.0  # bilinear interpolation reproduces a plane exactly
    plane = _flat_plane(8, 6, spacing=0.5)
    got = measure(values, plane, Point(at=(2.25, 3.5)), units="HU")
    assert got["value"] == pytest.approx(3.0 * 2.25 - 2.0 * 3.5 + 5.0)
    np.testing.assert_allclose(got["position_lps"], plane.pixel_to_patient(3.5, 2.25))
    assert measure(values, plane, Point(at=(4.0, 1.0)), units="HU")["value"] == values[1, 4]
    assert measure(values, plane, Point(at=(7.5, 5.5)), units="HU")["value"] == values[5, 7]
    assert measure(values, plane, Point(at=(7.6, 1.0)), units="HU")["value"] is None
    values[2, 3] = np.nan
    assert measure(values, plane, Point(at=(3.1, 2.2)), units="HU")["value"] is None
    assert measure(values, plane, Point(at=(3.6, 2.0)), units="HU")["value"] == values[2, 4]


def test_line_length_is_the_true_distance_on_an_oblique_zoomed_plane() -> None:
    plane = _oblique_plane()
    a, b = plane.pixel_to_patient(3.2, 5.5), plane.pixel_to_patient(40.0, 61.25)
    got = measure(np.zeros((48, 64), np.float32), plane,
                  Line(start=(5.5, 3.2), end=(61.25, 40.0)), units="HU")
    assert got["length_mm"] == pytest.approx(float(np.linalg.norm(b - a)), rel=1e-12)
    assert got["length_mm"] == pytest.approx(math.hypot(55.75, 36.8) * 0.7 / 1.7, rel=1e-12)
    np.testing.assert_allclose(got["start_lps"], a)
    zoomed = plane.zoomed(3.0, about_px=(10.0, 20.0))
    (r0, c0, _), (r1, c1, _) = zoomed.patient_to_pixel(np.stack([a, b]))
    again = measure(np.zeros((48, 64), np.float32), zoomed,
                    Line(start=(c0, r0), end=(c1, r1)), units="HU")
    assert again["length_mm"] == pytest.approx(got["length_mm"], rel=1e-9)


def test_line_profile_samples_the_values_about_once_a_pixel() -> None:
    ys, xs = np.mgrid[0:10, 0:20].astype(np.float32)
    values = xs + 10.0 * ys
    got = measure(values, _flat_plane(20, 10, 2.0), Line(start=(1.0, 2.0), end=(13.0, 7.0)),
                  units="HU")
    profile = got["profile"]
    assert got["length_mm"] == pytest.approx(26.0) and len(profile["values"]) == 14
    t = np.linspace(0, 1, 14)
    np.testing.assert_allclose(profile["values"], (1 + 12 * t) + 10 * (2 + 5 * t), atol=1e-4)
    np.testing.assert_allclose(profile["distance_mm"], 26.0 * t)
    click = measure(values, _flat_plane(20, 10), Line(start=(3.0, 3.0), end=(3.0, 3.0)),
                    units="HU")
    assert click["length_mm"] == 0.0 and click["profile"]["values"] == [33.0]


@pytest.mark.parametrize(("a", "b", "expected"), [
    ((5.0, 0.0), (0.0, 3.0), 90.0), ((2.0, 2.0), (4.0, 0.0), 45.0),
    ((1.0, 0.0), (-7.0, 0.0), 180.0), ((1.0, 1.0), (3.0, 3.0), 0.0),
    ((1.0, math.sqrt(3.0)), (1.0, 0.0), 60.0)])
def test_angle_of_known_vectors(a: tuple[float, float], b: tuple[float, float],
                                expected: float) -> None:
    plane = _oblique_plane()  # isotropic pixels: the angle on screen is the angle in the patient
    vertex = (20.0, 15.0)
    shape = Angle(vertex=vertex, a=(vertex[0] + a[0], vertex[1] + a[1]),
                  b=(vertex[0] + b[0], vertex[1] + b[1]))
    got = measure(np.zeros((48, 64), np.float32), plane, shape, units="HU")
    assert got["angle_deg"] == pytest.approx(expected, abs=1e-9)


# -- the wire contract ---------------------------------------------------------------------------


def _lps(plane: Plane, xy: tuple[float, float]) -> list[float]:
    return plane.pixel_to_patient(xy[1], xy[0]).tolist()  # type: ignore[no-any-return]


def _twins(plane: Plane) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    s = plane.pixel_spacing_mm
    poly = [(4.0, 5.0), (40.0, 8.5), (30.0, 33.0), (9.5, 28.0)]
    return [
        ({"type": "point", "at_px": [12.5, 7.25]}, {"type": "point", "at_lps": _lps(plane, (12.5, 7.25))}),
        ({"type": "line", "from_px": [3, 4], "to_px": [50, 30.5]},
         {"type": "line", "from_lps": _lps(plane, (3, 4)), "to_lps": _lps(plane, (50, 30.5))}),
        ({"type": "angle", "vertex_px": [20, 20], "a_px": [30, 22], "b_px": [11, 35]},
         {"type": "angle", "vertex_lps": _lps(plane, (20, 20)), "a_lps": _lps(plane, (30, 22)),
          "b_lps": _lps(plane, (11, 35))}),
        ({"type": "rectangle", "from_px": [5, 6], "to_px": [41, 30], "bins": 16},
         {"type": "rectangle", "from_lps": _lps(plane, (5, 6)), "to_lps": _lps(plane, (41, 30)),
          "bins": 16}),
        ({"type": "ellipse", "center_px": [30, 22], "radii_px": [15.5, 9], "range": [-10, 10]},
         {"type": "ellipse", "center_lps": _lps(plane, (30, 22)), "radii_mm": [15.5 * s, 9 * s],
          "range": [-10, 10]}),
        ({"type": "circle", "center_px": [30, 22], "radius_px": 11},
         {"type": "circle", "center_lps": _lps(plane, (30, 22)), "radius_mm": 11 * s}),
        ({"type": "polygon", "points_px": [list(p) for p in poly]},
         {"type": "polygon", "points_lps": [_lps(plane, p) for p in poly]}),
    ]


def _structure(x: Any) -> Any:
    """The result with every number replaced by its kind: what must match exactly."""
    if isinstance(x, dict):
        return {k: _structure(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_structure(v) for v in x]
    return type(x).__name__ if isinstance(x, (int, float)) else x


def _numbers(x: Any) -> list[float]:
    if isinstance(x, dict):
        return [n for k in sorted(x) for n in _numbers(x[k])]
    if isinstance(x, list):
        return [n for v in x for n in _numbers(v)]
    return [float(x)] if isinstance(x, (int, float)) and not isinstance(x, bool) else []


@pytest.mark.parametrize("index", range(7))
def test_lps_shapes_measure_as_their_pixel_twins(index: int) -> None:
    plane = _oblique_plane()
    px, lps = _twins(plane)[index]
    values = np.random.default_rng(index).normal(0, 50, size=(48, 64)).astype(np.float32)
    a = measure(values, plane, shape_from_json(px, plane), units="HU")
    b = measure(values, plane, shape_from_json(lps, plane), units="HU")
    assert _structure(a) == _structure(b)
    np.testing.assert_allclose(_numbers(a), _numbers(b), rtol=1e-9, atol=1e-7)
    shape = shape_from_json(px, plane)
    assert shape_from_json(shape_to_json(shape), plane) == shape


def test_points_off_the_plane_are_projected_onto_it() -> None:
    plane = _oblique_plane()
    on = np.asarray(_lps(plane, (7.0, 9.0)))
    off = (on + 4.0 * plane.normal).tolist()
    got = shape_from_json({"type": "point", "at_lps": off}, plane)
    assert got.at == pytest.approx((7.0, 9.0))  # type: ignore[union-attr]


_BAD: dict[str, Any] = {
    "not_an_object_invalid": ["point", 1, 2],
    "no_type_truncated": {"at_px": [1, 2]},
    "unknown_type_invalid": {"type": "star", "at_px": [1, 2]},
    "type_not_string_invalid": {"type": 3, "at_px": [1, 2]},
    "missing_position_truncated": {"type": "line", "from_px": [1, 2]},
    "short_position_truncated": {"type": "line", "from_px": [1, 2], "to_px": [3]},
    "lps_with_two_numbers_truncated": {"type": "point", "at_lps": [1, 2]},
    "both_twins_invalid": {"type": "point", "at_px": [1, 2], "at_lps": [1, 2, 3]},
    "string_number_invalid": {"type": "point", "at_px": ["1", 2]},
    "boolean_number_invalid": {"type": "point", "at_px": [True, 2]},
    "nan_invalid": {"type": "point", "at_px": [float("nan"), 2]},
    "infinite_invalid": {"type": "circle", "center_px": [1, 2], "radius_px": float("inf")},
    "huge_coordinate_invalid": {"type": "point", "at_px": [1e12, 2]},
    "negative_radius_invalid": {"type": "circle", "center_px": [1, 2], "radius_px": -3},
    "zero_radius_mm_invalid": {"type": "ellipse", "center_px": [1, 2], "radii_mm": [0, 3]},
    "flat_rectangle_invalid": {"type": "rectangle", "from_px": [1, 2], "to_px": [5, 2]},
    "two_point_polygon_truncated": {"type": "polygon", "points_px": [[0, 0], [3, 3]]},
    "collinear_polygon_invalid": {"type": "polygon", "points_px": [[0, 0], [1, 1], [2, 2]]},
    "polygon_not_list_invalid": {"type": "polygon", "points_px": "0,0 1,1 2,0"},
    "polygon_too_many_invalid": {"type": "polygon", "points_px": [[i, i % 7] for i in range(5000)]},
    "zero_arm_angle_invalid": {"type": "angle", "vertex_px": [1, 1], "a_px": [1, 1], "b_px": [2, 3]},
    "bins_zero_invalid": {"type": "circle", "center_px": [1, 2], "radius_px": 3, "bins": 0},
    "bins_float_invalid": {"type": "circle", "center_px": [1, 2], "radius_px": 3, "bins": 8.5},
    "bins_bool_invalid": {"type": "circle", "center_px": [1, 2], "radius_px": 3, "bins": True},
    "range_reversed_invalid": {"type": "circle", "center_px": [1, 2], "radius_px": 3,
                               "range": [10, -10]},
    "range_truncated": {"type": "circle", "center_px": [1, 2], "radius_px": 3, "range": [10]},
    "bins_on_a_point_invalid": {"type": "point", "at_px": [1, 2], "bins": 8},
    "unknown_key_invalid": {"type": "circle", "center_px": [1, 2], "radius": 3},
}


@pytest.mark.parametrize("name", sorted(_BAD))
def test_bad_shapes_raise_a_value_error_naming_the_problem(name: str) -> None:
    with pytest.raises(MeasureError) as info:
        shape_from_json(_BAD[name], _flat_plane(10, 10))
    assert isinstance(info.value, ValueError) and isinstance(info.value, RenderError)
    assert str(info.value)


def test_unknown_keys_pass_when_allowed_and_values_must_fit_the_plane() -> None:
    plane = _flat_plane(10, 10)
    shape = shape_from_json({"type": "point", "at_px": [1, 2], "label": "L1"}, plane,
                            allow_unknown_keys=True)
    assert shape == Point(at=(1.0, 2.0))
    with pytest.raises(MeasureError):
        measure(np.zeros((10, 11), np.float32), plane, shape, units="HU")


# -- a real CT: statistics against SimpleITK, area against the analytic ellipse ------------------


@pytest.fixture(scope="module")
def acrin_ct() -> tuple[np.ndarray, VolumeGeometry, sitk.Image]:
    folder = data_path("petct-acrin042", "CT")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    volume = assemble_series([pydicom.dcmread(p) for p in files])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return volume.data, volume.geometry, reader.Execute()


def _sitk_on_plane(image: sitk.Image, plane: Plane) -> np.ndarray:
    w, h = plane.size_px
    grid = sitk.Image(w, h, 1, sitk.sitkFloat32)
    grid.SetOrigin(tuple(plane.pixel_to_patient(0, 0)))
    grid.SetSpacing((plane.pixel_spacing_mm, plane.pixel_spacing_mm, 1.0))
    grid.SetDirection(tuple(np.column_stack([plane.row_dir, plane.col_dir, plane.normal]).ravel()))
    return sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), grid,
                                                sitk.Transform(), sitk.sitkLinear,
                                                float("nan")))[0]


def test_big_ellipse_on_an_oblique_ct_plane_matches_simpleitk_and_pi_ab(
        acrin_ct: tuple[np.ndarray, VolumeGeometry, sitk.Image]) -> None:
    data, geometry, image = acrin_ct
    axial = standard_plane(geometry, "axial", size_px=(384, 384), slice_index=70)
    plane = axial.rotated_about([1.0, 0.0, 0.0], 20.0).rotated_about([0.0, 1.0, 0.2], -10.0)
    values = sample(data, geometry, plane, fill=np.nan)
    a_mm, b_mm = 120.0, 75.0  # an ellipse over most of the chest: lungs, mediastinum, muscle
    s = plane.pixel_spacing_mm
    wire = {"type": "ellipse", "center_lps": plane.center_lps.tolist(), "radii_mm": [a_mm, b_mm]}
    got = measure(values, plane, shape_from_json(wire, plane), units="HU")

    ref = _sitk_on_plane(image, plane)
    w, h = plane.size_px
    rows, cols = np.mgrid[0:h, 0:w]
    inside = (((cols - (w - 1) / 2) * s / a_mm) ** 2 + ((rows - (h - 1) / 2) * s / b_mm) ** 2
              <= 1.0)
    ref_values = ref[inside].astype(np.float64)
    assert np.isfinite(ref_values).all() and got["outside_count"] == 0
    assert got["count"] == inside.sum() > 15000
    assert got["mean"] == pytest.approx(ref_values.mean(), abs=0.1)
    assert got["std"] == pytest.approx(ref_values.std(), abs=0.1)  # population std
    assert got["area_mm2"] == pytest.approx(math.pi * a_mm * b_mm, rel=0.01)
    assert got["shape_area_mm2"] == pytest.approx(math.pi * a_mm * b_mm, rel=1e-12)
    assert ref_values.std() > 100  # a heterogeneous region, not a flat patch

    # Zoom changes the pixels, not the patient region: same area, nearly the same statistics.
    zoomed = plane.zoomed(1.6).resized((600, 400))
    again = measure(sample(data, geometry, zoomed, fill=np.nan), zoomed,
                    shape_from_json(wire, zoomed), units="HU")
    assert again["count"] > got["count"] * 2
    assert again["area_mm2"] == pytest.approx(math.pi * a_mm * b_mm, rel=0.01)
    assert again["mean"] == pytest.approx(got["mean"], abs=1.0)


def test_point_value_on_the_ct_is_the_stored_hu(
        acrin_ct: tuple[np.ndarray, VolumeGeometry, sitk.Image]) -> None:
    data, geometry, _ = acrin_ct
    k, j, i = 60, 250, 300
    plane = standard_plane(geometry, "axial", slice_index=k)
    row, col, dist = plane.patient_to_pixel(geometry.index_to_patient([k, j, i]))
    assert abs(dist) < 1e-6
    values = sample(data, geometry, plane, fill=np.nan)
    got = measure(values, plane, Point(at=(float(col), float(row))), units="HU")
    assert got["value"] == pytest.approx(float(data[k, j, i]), abs=1e-3)
