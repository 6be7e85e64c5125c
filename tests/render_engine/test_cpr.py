"""CPR: curved paths, rotation-minimising frames and curved-surface sampling, checked against
independent references (plane sampling, slow numpy interpolation, analytic phantoms)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.assemble import assemble_series
from render_engine.cpr import sample_cpr
from render_engine.curved import CprView, CurvedPath
from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.cpu_points import LINEAR, MIP, NEAREST, sample_points, sample_points_slab
from render_engine.planes import Plane, Slab
from render_engine.sampling import sample, slab_step_mm
from tests.conftest import data_path
from tests.render_engine.test_sampling import _random_volume, _trilinear_numpy

# -- references -------------------------------------------------------------------------------


def _nearest_numpy(vol: np.ndarray, idx: np.ndarray, fill: float) -> np.ndarray:
    n = np.array(vol.shape, dtype=np.float64)
    inside = np.all((idx >= -0.5) & (idx <= n - 0.5), axis=-1)
    k = np.floor(np.clip(idx, 0, n - 1) + 0.5).astype(int)
    return np.where(inside, vol[k[..., 0], k[..., 1], k[..., 2]], fill)


def _barry_goldman(p: np.ndarray, per_segment: int) -> np.ndarray:
    """Centripetal Catmull-Rom by the Barry-Goldman pyramid (mirrored end points), dense."""
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    for s in range(len(p) - 1):
        q = ext[s:s + 4]
        t = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(q, axis=0), axis=1) ** 0.5)])
        for tt in np.linspace(t[1], t[2], per_segment, endpoint=s == len(p) - 2):
            a = [((t[k + 1] - tt) * q[k] + (tt - t[k]) * q[k + 1]) / (t[k + 1] - t[k])
                 for k in range(3)]
            b = [((t[k + 2] - tt) * a[k] + (tt - t[k]) * a[k + 1]) / (t[k + 2] - t[k])
                 for k in range(2)]
            out.append(((t[2] - tt) * b[0] + (tt - t[1]) * b[1]) / (t[2] - t[1]))
    return np.array(out)


def _rmf_reference(x: np.ndarray, t: np.ndarray, r0: np.ndarray) -> np.ndarray:
    """Wang et al. 2008, algorithm as printed: one loop, two reflections per step."""
    r = [r0]
    for i in range(len(x) - 1):
        v1 = x[i + 1] - x[i]
        c1 = v1 @ v1
        r_l = r[i] - (2 / c1) * (v1 @ r[i]) * v1
        t_l = t[i] - (2 / c1) * (v1 @ t[i]) * v1
        v2 = t[i + 1] - t_l
        c2 = v2 @ v2
        r.append(r_l - (2 / c2) * (v2 @ r_l) * v2 if c2 > 1e-30 else r_l)
    return np.array(r)


def _curved_path(geometry: VolumeGeometry, kind: str = "spline") -> CurvedPath:
    idx = np.array([[4, 6, 5], [9, 12, 14], [14, 20, 11], [19, 24, 20]], dtype=np.float64)
    return CurvedPath(points_lps=geometry.index_to_patient(idx), kind=kind)


def _phantom(shape: tuple[int, int, int], spacing: tuple[float, float, float],
             distance: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, VolumeGeometry]:
    """A bright tube: 1000 · exp(-(d / 2.5 mm)²) of each voxel centre's distance ``d`` (mm)."""
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([[0.15, 0, spacing[0]], [0, spacing[1], 0],
                                      [spacing[2], 0, 0]])  # a little shear
    affine[:3, 3] = -affine[:3, :3] @ (np.array(shape) - 1) / 2  # centred on the origin
    geometry = VolumeGeometry(shape=shape, affine=affine)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    d = distance(geometry.index_to_patient(grid.astype(np.float64)))
    return (1000.0 * np.exp(-(d / 2.5) ** 2)).astype(np.float32), geometry


def _arc_basis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    e1 = np.cross(n, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    return n, e1, np.cross(n, e1)


def _arc_distance(q: np.ndarray, r: float, n: np.ndarray, e1: np.ndarray, e2: np.ndarray,
                  th0: float, th1: float) -> np.ndarray:
    """Distance from points to the circular arc ``r (cos θ e1 + sin θ e2)``, θ in [th0, th1]."""
    a = np.arctan2(q @ e2, q @ e1) % (2 * np.pi)
    on_arc = (a >= th0) & (a <= th1)
    qn, qp = q @ n, np.hypot(q @ e1, q @ e2)
    circle = np.hypot(qp - r, qn)
    ends = [np.linalg.norm(q - r * (math.cos(t) * e1 + math.sin(t) * e2), axis=-1)
            for t in (th0, th1)]
    return np.where(on_arc, circle, np.minimum(*ends))


def _helix(t: np.ndarray, r: float = 14.0, c: float = 4.0) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return np.stack([r * np.cos(t), r * np.sin(t), c * t - 6 * c], axis=-1)


def _helix_distance(q: np.ndarray, r: float = 14.0, c: float = 4.0) -> np.ndarray:
    """Distance to the infinite helix: Newton on the foot-point parameter, three windings."""
    alpha = np.arctan2(q[..., 1], q[..., 0])
    best = np.full(q.shape[:-1], np.inf)
    for dk in (-1, 0, 1):
        t = alpha + 2 * np.pi * (np.round(((q[..., 2] + 6 * c) / c - alpha) / (2 * np.pi)) + dk)
        for _ in range(8):
            d = q - _helix(t, r, c)
            h1 = np.stack([-r * np.sin(t), r * np.cos(t), np.full_like(t, c)], axis=-1)
            h2 = np.stack([-r * np.cos(t), -r * np.sin(t), np.zeros_like(t)], axis=-1)
            g = -np.sum(d * h1, axis=-1)
            gg = np.sum(h1 * h1, axis=-1) - np.sum(d * h2, axis=-1)
            t = t - np.clip(g / np.where(gg > 1e-9, gg, 1e-9), -0.3, 0.3)
        best = np.minimum(best, np.linalg.norm(q - _helix(t, r, c), axis=-1))
    return best


# -- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("points", "kind"), [
    ([[0, 0, 0]], "spline"),  # one point
    ([], "spline"),
    ([[0, 0], [1, 1]], "spline"),  # not 3-D
    ([[0, 0, 0], [1, np.nan, 0]], "spline"),
    ([[0, 0, 0], [np.inf, 0, 0]], "polyline"),
    ([[0, 0, 0], [1, 2, 3], [1, 2, 3], [4, 4, 4]], "spline"),  # repeated point
    ([[0, 0, 0], [1, 2, 3]], "bezier"),
    ([[0, 0, 0], [1, 2]], "spline"),  # ragged
    ("abc", "spline"),
])
def test_invalid_paths_are_refused(points: object, kind: str) -> None:
    with pytest.raises(GeometryError):
        CurvedPath(points_lps=points, kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [{}, {"points_lps": [[0, 0, 0]]}, "text", None,
                                  {"points_lps": [[0, 0, 0], [1, 1]]},
                                  {"points_lps": [[0, 0, 0], [1, 1, 1]], "kind": "nurbs"}])
def test_path_from_json_invalid_and_truncated(data: object) -> None:
    with pytest.raises(GeometryError):
        CurvedPath.from_json(data)  # type: ignore[arg-type]


def test_path_json_round_trip_and_equality() -> None:
    path = CurvedPath(points_lps=np.array([[0, 0, 0], [10, 5, 0], [20, 5, 5.5]]), kind="polyline")
    again = CurvedPath.from_json(path.to_json())
    assert again == path and hash(again) == hash(path)
    assert again != CurvedPath(points_lps=path.points_lps, kind="spline")


def test_polyline_length_points_and_even_resampling() -> None:
    pts = np.array([[0, 0, 0], [3, 4, 0], [3, 4, 12.0]])
    path = CurvedPath(points_lps=pts, kind="polyline")
    assert path.length_mm == pytest.approx(17.0, abs=1e-12)
    np.testing.assert_allclose(path.knot_arc_mm, [0, 5, 17], atol=1e-12)
    p, t = path.at_arc_mm([2.5, 5.0, 11.0])
    np.testing.assert_allclose(p, np.array([[1.5, 2, 0], [3, 4, 0], [3, 4, 6]]), atol=1e-12)
    np.testing.assert_allclose(t, np.array([[0.6, 0.8, 0], [0, 0, 1], [0, 0, 1]]), atol=1e-12)
    frames = path.resampled(0.4)
    np.testing.assert_allclose(np.diff(frames.arc_mm[:-1]), 0.4, atol=1e-12)
    assert frames.arc_mm[-1] == pytest.approx(17.0)
    with pytest.raises(GeometryError):
        path.resampled(0.0)


def test_spline_is_the_centripetal_catmull_rom_of_barry_and_goldman() -> None:
    rng = np.random.default_rng(5)
    pts = np.cumsum(rng.uniform(-20, 20, size=(6, 3)), axis=0)
    path = CurvedPath(points_lps=pts, kind="spline")
    ref = _barry_goldman(pts, 4000)
    ref_arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(ref, axis=0), axis=1))])
    assert path.length_mm == pytest.approx(ref_arc[-1], rel=1e-6)
    mine, _ = path.at_arc_mm(ref_arc[::97])
    np.testing.assert_allclose(mine, ref[::97], atol=2e-3)
    np.testing.assert_allclose(path.at_arc_mm(path.knot_arc_mm)[0], pts, atol=1e-9)


def test_spline_through_two_points_is_the_segment() -> None:
    path = CurvedPath(points_lps=np.array([[1, 2, 3], [4, 6, 3.0]]))
    assert path.length_mm == pytest.approx(5.0, rel=1e-12)
    p, t = path.at_arc_mm(np.linspace(0, 5, 11))
    np.testing.assert_allclose(p, np.array([1, 2, 3]) + np.outer(np.linspace(0, 1, 11), [3, 4, 0]),
                               atol=1e-9)
    np.testing.assert_allclose(t, np.tile([0.6, 0.8, 0], (11, 1)), atol=1e-12)


def test_frames_follow_the_double_reflection_reference_on_a_helix() -> None:
    path = CurvedPath(points_lps=_helix(np.linspace(0, 4 * np.pi, 40)), kind="spline")
    frames = path.resampled(0.25)
    ref = _rmf_reference(frames.points_lps, frames.tangents_lps, frames.normals_lps[0])
    np.testing.assert_allclose(frames.normals_lps, ref, atol=1e-4)
    # Rotation-minimising: the normal turns only towards the tangent, never about it, while
    # the Frenet frame of this helix twists at its torsion c / (r² + c²) = 0.019 rad/mm.
    dn = np.gradient(frames.normals_lps, frames.arc_mm, axis=0)
    twist = np.sum(dn * frames.binormals_lps, axis=1)[2:-2]
    assert np.abs(twist).max() < 1e-4


def test_a_planar_curve_keeps_the_plane_normal_as_its_frame_normal() -> None:
    n, e1, e2 = _arc_basis()
    th = np.linspace(0.2, 3.5, 12)
    path = CurvedPath(points_lps=20 * (np.outer(np.cos(th), e1) + np.outer(np.sin(th), e2)))
    frames = path.resampled(0.5, up_lps=n)
    np.testing.assert_allclose(frames.normals_lps, np.tile(n, (len(frames.arc_mm), 1)), atol=1e-9)


_walks = st.lists(st.tuples(st.floats(6.0, 30.0), st.floats(0.0, 35.0), st.floats(-180, 180)),
                  min_size=1, max_size=5)


def _walk(steps: list[tuple[float, float, float]], seed_dir: tuple[float, float, float]
          ) -> np.ndarray:
    """A path of ``steps`` (length mm, turn °, twist °) from the origin."""
    d = np.asarray(seed_dir) / np.linalg.norm(seed_dir)
    pts = [np.zeros(3)]
    for length, turn, twist in steps:
        side = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
        side /= np.linalg.norm(side)
        side = math.cos(math.radians(twist)) * side + math.sin(math.radians(twist)) * np.cross(d, side)
        d = math.cos(math.radians(turn)) * d + math.sin(math.radians(turn)) * side
        pts.append(pts[-1] + length * d)
    return np.array(pts)


_dirs = st.tuples(st.floats(0.1, 1), st.floats(-1, 1), st.floats(-1, 1))


@settings(max_examples=60, deadline=None)
@given(_walks, _dirs, st.sampled_from(["spline", "polyline"]),
       st.one_of(st.none(), _dirs), st.floats(0.1, 3.0))
def test_frames_stay_orthonormal(steps: list[tuple[float, float, float]],
                                 seed_dir: tuple[float, float, float], kind: str,
                                 up: tuple[float, float, float] | None, step: float) -> None:
    frames = CurvedPath(points_lps=_walk(steps, seed_dir), kind=kind).resampled(step, up_lps=up)
    basis = np.stack([frames.tangents_lps, frames.normals_lps, frames.binormals_lps], axis=1)
    gram = basis @ basis.transpose(0, 2, 1)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-9)
    assert np.allclose(np.linalg.det(basis), 1.0)


@settings(max_examples=60, deadline=None)
@given(_walks, _dirs, st.sampled_from(["straightened", "stretched"]), st.floats(-180, 180),
       st.integers(0, 2 ** 31))
def test_pixel_to_patient_to_pixel_round_trips(steps: list[tuple[float, float, float]],
                                               seed_dir: tuple[float, float, float], mode: str,
                                               rotation: float, seed: int) -> None:
    pts = _walk(steps, seed_dir)
    up = None
    if mode == "stretched":  # rows along the normal of the path's mean plane: no shadows cross
        up = tuple(np.linalg.svd(pts - pts.mean(axis=0))[2][-1]) if len(pts) > 2 else None
    view = CprView(path=CurvedPath(points_lps=pts), mode=mode, pixel_spacing_mm=0.5,
                   width_px=11, rotation_deg=rotation if mode == "straightened" else 0.0,
                   up_lps=up)
    try:
        surface = view.surface()
    except GeometryError:  # a straight stretched path along its vector of interest
        return
    w, h = surface.size_px
    rng = np.random.default_rng(seed)
    rows, cols = rng.uniform(0, h - 1, 50), rng.uniform(0, w - 1, 50)
    back = surface.patient_to_pixel(surface.pixel_to_patient(rows, cols))
    np.testing.assert_allclose(back[:, 0], rows, atol=1e-6)
    np.testing.assert_allclose(back[:, 1], cols, atol=1e-6)
    np.testing.assert_allclose(back[:, 2], 0.0, atol=1e-6)
    pixels = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), axis=-1)
    np.testing.assert_array_equal(surface.nearest_pixel(surface.grid_lps()), pixels)


# -- views ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"mode": "curved"}, {"pixel_spacing_mm": 0.0}, {"pixel_spacing_mm": float("nan")},
    {"width_px": 0}, {"width_px": 2.5}, {"width_px": "8"}, {"up_lps": (0, 0, 0)},
    {"up_lps": (1, 2)}, {"rotation_deg": float("inf")}, {"width_px": 100_000},
])
def test_invalid_views_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"path": CurvedPath(points_lps=np.array([[0, 0, 0], [0, 0, 10.0]])),
                               "pixel_spacing_mm": 0.5, "width_px": 8, **kwargs}
    with pytest.raises(GeometryError):
        CprView(**args)  # type: ignore[arg-type]


def test_stretched_view_along_its_vector_of_interest_is_refused() -> None:
    path = CurvedPath(points_lps=np.array([[0, 0, 0], [0, 0, 10.0]]))
    with pytest.raises(GeometryError):
        CprView(path=path, mode="stretched", pixel_spacing_mm=0.5, width_px=8,
                up_lps=(0, 0, 1)).surface()
    with pytest.raises(GeometryError):  # too many rows
        CprView(path=path, pixel_spacing_mm=1e-4, width_px=8).surface()


def test_view_json_round_trip_and_malformed() -> None:
    view = CprView(path=CurvedPath(points_lps=np.array([[0, 0, 0], [5, 0, 10], [9, 3, 20.0]])),
                   mode="stretched", rotation_deg=33.0, pixel_spacing_mm=0.6, width_px=64,
                   up_lps=(0.0, 2.0, 0.0))
    assert CprView.from_json(view.to_json()) == view
    assert view.up_lps == (0.0, 1.0, 0.0)
    for bad in ({}, {"path": view.path.to_json()}, {**view.to_json(), "width_px": "wide"},
                {**view.to_json(), "up_lps": 3}, [1, 2]):
        with pytest.raises(GeometryError):
            CprView.from_json(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["straightened", "stretched"])
@pytest.mark.parametrize("kind", ["spline", "polyline"])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
@pytest.mark.parametrize("slab", [None, Slab(thickness_mm=5.0, mode="mip"),
                                  Slab(thickness_mm=5.0, mode="avgip")])
def test_a_straight_path_gives_the_pixels_of_the_equivalent_plane(
        mode: str, kind: str, interpolation: str, slab: Slab | None) -> None:
    vol, geometry = _random_volume()
    c = geometry.index_to_patient(np.array(vol.shape) / 2 - 0.5)
    a, b = c + np.array([-8.0, -3.0, -10.0]), c + np.array([9.0, 4.0, 12.0])
    view = CprView(path=CurvedPath(points_lps=np.array([a, b]), kind=kind), mode=mode, width_px=37,
                   pixel_spacing_mm=0.7, rotation_deg=20.0, up_lps=(0.2, 1.0, 0.1))
    surface = view.surface()
    lateral = surface.row_lateral_lps[0]
    assert abs(lateral @ (b - a)) < 1e-9
    plane = Plane(center_lps=(a + b) / 2, row_dir=lateral, col_dir=b - a, pixel_spacing_mm=0.7,
                  size_px=surface.size_px)
    got = sample_cpr(vol, geometry, view, slab=slab, interpolation=interpolation, fill=-999)
    ref = sample(vol, geometry, plane, slab=slab, interpolation=interpolation, fill=-999)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    assert np.mean(got == ref) > 0.99  # bit for bit but for rounding of the last place


def test_image_height_times_spacing_is_the_arc_length() -> None:
    path = CurvedPath(points_lps=np.array([[0, 0, 0], [40, 0, 0.0]]))
    surface = CprView(path=path, pixel_spacing_mm=0.5, width_px=9).surface()
    assert surface.size_px == (9, 80)
    curved = CurvedPath(points_lps=_helix(np.linspace(0, 3 * np.pi, 15)))
    for spacing in (0.3, 0.5, 0.77, 1.6):
        s = CprView(path=curved, pixel_spacing_mm=spacing, width_px=9).surface()
        h = s.size_px[1]
        assert abs(h * spacing - curved.length_mm) <= spacing / 2
        np.testing.assert_allclose(np.diff(s.row_arc_mm), spacing, atol=1e-9)
        assert s.row_arc_mm[0] + s.row_arc_mm[-1] == pytest.approx(curved.length_mm)
        np.testing.assert_allclose(s.pixel_to_arc_mm(np.arange(h)), s.row_arc_mm, atol=1e-12)
        np.testing.assert_allclose(s.centreline_lps, curved.at_arc_mm(s.row_arc_mm)[0],
                                   atol=1e-9)
        np.testing.assert_allclose(s.nearest_pixel(s.centreline_lps),
                                   np.column_stack([np.arange(h), np.full(h, 4)]))


def _centroid(image: np.ndarray) -> np.ndarray:
    """Per row: the column of the band's centre of mass (a symmetric band: its axis)."""
    w = np.clip(image, 0, None)
    return np.asarray((w * np.arange(image.shape[1])).sum(axis=1) / w.sum(axis=1))


@pytest.fixture(scope="module")
def arc_phantom() -> tuple[np.ndarray, VolumeGeometry, np.ndarray]:
    n, e1, e2 = _arc_basis()
    vol, geometry = _phantom((52, 70, 76), (1.1, 0.9, 0.8),
                             lambda q: _arc_distance(q, 20.0, n, e1, e2, 0.1, 4.2))
    th = np.linspace(0.3, 4.0, 40)  # dense enough that the spline's ends follow the circle
    return vol, geometry, 20.0 * (np.outer(np.cos(th), e1) + np.outer(np.sin(th), e2))


@pytest.mark.parametrize("rotation", [0.0, 30.0, 90.0, 135.0, 180.0, 271.0])
@pytest.mark.parametrize("kind", ["spline", "polyline"])
def test_a_tube_along_an_arc_straightens_to_the_centre_column(
        arc_phantom: tuple[np.ndarray, VolumeGeometry, np.ndarray], rotation: float,
        kind: str) -> None:
    vol, geometry, pts = arc_phantom
    if kind == "polyline":  # a fine polyline along the same arc
        n, e1, e2 = _arc_basis()
        th = np.linspace(0.3, 4.0, 400)
        pts = 20.0 * (np.outer(np.cos(th), e1) + np.outer(np.sin(th), e2))
    view = CprView(path=CurvedPath(points_lps=pts, kind=kind), pixel_spacing_mm=0.5,
                   width_px=41, rotation_deg=rotation)
    image = sample_cpr(vol, geometry, view, fill=-1)
    assert image.shape[0] * 0.5 == pytest.approx(20.0 * 3.7, abs=0.5)
    assert np.abs(_centroid(image) - 20).max() < 0.1, np.abs(_centroid(image) - 20).max()
    assert image[:, 20].min() > 900
    assert image[:, :4].max() < 5 and image[:, -4:].max() < 5  # 8.5 mm off the axis: dark
    # A circular tube shows the same width at every rotation: half maximum at ±2.08 mm.
    half = np.sum(image > 500, axis=1) * 0.5
    assert np.abs(half - 2 * 2.5 * math.sqrt(math.log(2))).max() <= 1.0


@pytest.fixture(scope="module")
def helix_phantom() -> tuple[np.ndarray, VolumeGeometry]:
    return _phantom((60, 72, 72), (0.9, 0.85, 0.85), _helix_distance)


@pytest.mark.parametrize("rotation", [0.0, 45.0, 100.0, 180.0, 300.0])
def test_a_tube_along_a_helix_straightens_to_the_centre_column(
        helix_phantom: tuple[np.ndarray, VolumeGeometry], rotation: float) -> None:
    vol, geometry = helix_phantom
    t = np.linspace(1.0, 2.6 * np.pi, 48)
    path = CurvedPath(points_lps=_helix(t))
    image = sample_cpr(vol, geometry, CprView(path=path, pixel_spacing_mm=0.5, width_px=31,
                                              rotation_deg=rotation), fill=-1)
    assert np.abs(_centroid(image) - 15).max() < 0.15, np.abs(_centroid(image) - 15).max()
    assert image[:, 15].min() > 900
    assert image[:, :3].max() < 10 and image[:, -3:].max() < 10


def test_stretched_keeps_the_course_across_the_vector_and_the_length_along_the_path() -> None:
    e1, e2, n = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])

    def distance(q: np.ndarray) -> np.ndarray:
        return _arc_distance(q, 20.0, n, e1, e2, 0.4, 2.75)

    vol, geometry = _phantom((40, 72, 76), (1.0, 0.8, 0.8), distance)
    th = np.linspace(0.55, np.pi - 0.55, 30)  # an axial arc bulging towards P, L to R
    path = CurvedPath(points_lps=20.0 * (np.outer(np.cos(th), e1) + np.outer(np.sin(th), e2)))
    view = CprView(path=path, mode="stretched", pixel_spacing_mm=0.5, width_px=61,
                   up_lps=(0.0, 1.0, 0.0))
    surface = view.surface()
    np.testing.assert_allclose(surface.row_lateral_lps, np.tile(e2, (surface.size_px[1], 1)),
                               atol=1e-12)
    course = surface.centreline_col
    assert np.ptp(course) * 0.5 == pytest.approx(20 * (1 - math.sin(0.55)), abs=0.6)
    on_path = path.at_arc_mm(surface.row_arc_mm)[0] @ e2  # the course along P, mm
    np.testing.assert_allclose((course - course[0]) * 0.5, on_path - on_path[0], atol=1e-9)
    image = sample_cpr(vol, geometry, surface, fill=-1)
    # The tube crosses each row where the centreline does (rows run along P, not across the
    # tube, so the band is lopsided: compare with the analytic tube on the same pixels).
    grid = surface.grid_lps()
    analytic = 1000.0 * np.exp(-(distance(grid) / 2.5) ** 2)
    assert np.abs(np.argmax(analytic, axis=1) - course).max() <= 0.5
    assert np.abs(_centroid(image) - _centroid(analytic)).max() < 0.1
    assert np.abs(image - analytic).max() < 80  # trilinear interpolation of 0.8-1 mm voxels
    # Lengths along the path are kept: the centreline drawn in the image is as long as it is.
    drawn = np.sum(np.hypot(np.diff(course), 1.0)) * 0.5
    assert drawn == pytest.approx(surface.row_arc_mm[-1] - surface.row_arc_mm[0], rel=1e-3)
    # Rows are undistorted: neighbouring pixels are one spacing apart in patient space.
    np.testing.assert_allclose(np.linalg.norm(np.diff(grid, axis=1), axis=-1), 0.5, atol=1e-9)
    # Seen along the normal of the path's plane, stretched and straightened CPR agree.
    flat = CprView(path=path, mode="stretched", pixel_spacing_mm=0.5, width_px=61,
                   up_lps=tuple(n))
    straight = CprView(path=path, pixel_spacing_mm=0.5, width_px=61, up_lps=tuple(n))
    np.testing.assert_allclose(sample_cpr(vol, geometry, flat), sample_cpr(vol, geometry, straight),
                               atol=0.05)


@pytest.mark.parametrize("mode", ["straightened", "stretched"])
@pytest.mark.parametrize("rotation", [0.0, 90.0, 37.0])
def test_rotating_by_180_degrees_mirrors_left_right(mode: str, rotation: float) -> None:
    vol, geometry = _random_volume(3)
    path = _curved_path(geometry)
    images = [sample_cpr(vol, geometry, CprView(path=path, mode=mode, pixel_spacing_mm=0.6,
                                                width_px=33, rotation_deg=r), fill=-7)
              for r in (rotation, rotation + 180.0)]
    if rotation % 90 == 0:
        np.testing.assert_array_equal(images[1], images[0][:, ::-1])
    else:
        np.testing.assert_allclose(images[1], images[0][:, ::-1], atol=1e-3)
    assert (images[0] != -7).mean() > 0.5


@pytest.mark.parametrize("mode", ["mip", "minip", "avgip"])
@pytest.mark.parametrize("view_mode", ["straightened", "stretched"])
def test_curved_slab_matches_a_numpy_reference(mode: str, view_mode: str) -> None:
    vol, geometry = _random_volume(4)
    view = CprView(path=_curved_path(geometry), mode=view_mode, pixel_spacing_mm=0.6,
                   width_px=29, rotation_deg=15.0)
    slab = Slab(thickness_mm=4.0, mode=mode)
    got = sample_cpr(vol, geometry, view, slab=slab, fill=-5000)
    plain = sample_cpr(vol, geometry, view, fill=-5000)
    grid, normals = view.sample_grid_lps()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-12)
    offsets = slab.sample_offsets_mm(slab_step_mm(geometry))
    samples = np.stack([_trilinear_numpy(vol, geometry.patient_to_index(grid + t * normals),
                                         np.nan) for t in offsets])
    reduce: Callable[..., np.ndarray] = getattr(np, {"mip": "nanmax", "minip": "nanmin",
                                                    "avgip": "nanmean"}[mode])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: outside the volume
        ref = reduce(samples, axis=0)
    np.testing.assert_allclose(got, np.where(np.isnan(ref), -5000, ref), atol=1e-3)
    if mode == "mip":
        assert (got >= plain).all() and (got > plain).mean() > 0.5
    if mode == "minip":
        assert (got[plain != -5000] <= plain[plain != -5000]).all()


# -- kernels ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_sample_points_matches_numpy_references(dtype: type) -> None:
    rng = np.random.default_rng(8)
    vol: np.ndarray = rng.integers(-1000, 1000, size=(9, 13, 11)).astype(dtype)
    pts = rng.uniform([-1.5, -1.5, -1.5], [10, 14, 12], size=(40, 30, 3))
    pts[0, :3] = [[-0.5, 0, 0], [8.5, 12.5, 10.5], [8.5000001, 0, 0]]  # on and past the edges
    got = sample_points(vol, pts, order=LINEAR, fill=-3)
    np.testing.assert_allclose(got, _trilinear_numpy(vol.astype(np.float64), pts, -3), atol=1e-3)
    assert got[0, 2] == -3 and got[0, 0] == vol[0, 0, 0]
    near = sample_points(vol, pts, order=NEAREST, fill=-3)
    np.testing.assert_array_equal(near, _nearest_numpy(vol, pts, -3))
    assert (got == -3).any() and (got != -3).any()


def test_sample_points_slab_follows_per_pixel_normals() -> None:
    rng = np.random.default_rng(9)
    vol = rng.normal(0, 50, size=(10, 12, 14)).astype(np.float32)
    pts = rng.uniform([0, 0, 0], [9, 11, 13], size=(7, 5, 3))
    normals = rng.normal(size=(7, 5, 3))
    offsets = np.linspace(-3, 3, 7)
    got = sample_points_slab(vol, pts, normals, offsets, mode=MIP, fill=-1e4)
    ref = np.stack([_trilinear_numpy(vol, pts + t * normals, np.nan) for t in offsets])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmax(ref, axis=0)
    np.testing.assert_allclose(got, np.where(np.isnan(ref), -1e4, ref), atol=1e-3)


def test_bad_shapes_and_names_are_refused() -> None:
    vol, geometry = _random_volume()
    with pytest.raises(ValueError):
        sample_points(vol, np.zeros((4, 3)))
    with pytest.raises(ValueError):
        sample_points_slab(vol, np.zeros((2, 2, 3)), np.zeros((2, 2, 3)), [0.0], mode=9)
    view = CprView(path=_curved_path(geometry), pixel_spacing_mm=1.0, width_px=8)
    with pytest.raises(ValueError):
        sample_cpr(vol[1:], geometry, view)
    with pytest.raises(KeyError):
        sample_cpr(vol, geometry, view, interpolation="cubic")


# -- real data --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acrin_ct() -> tuple[np.ndarray, VolumeGeometry]:
    folder = data_path("petct-acrin042", "CT")
    volume = assemble_series([pydicom.dcmread(p) for p in sorted(folder.iterdir())
                              if p.suffix == ".dcm"])
    return volume.data, volume.geometry


@pytest.mark.parametrize("angle_deg", [0.0, 30.0])
@pytest.mark.parametrize("up", [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0)])  # a coronal-ish or axial MPR
def test_cpr_along_a_straight_axial_line_of_the_acrin_ct_is_the_mpr(
        acrin_ct: tuple[np.ndarray, VolumeGeometry], angle_deg: float,
        up: tuple[float, float, float]) -> None:
    vol, geometry = acrin_ct
    centre = geometry.index_to_patient(np.array(vol.shape) / 2.0)
    a = math.radians(angle_deg)
    direction = np.array([math.cos(a), math.sin(a), 0.0])  # within the axial plane
    ends = [centre - 150 * direction, centre + 150 * direction]
    view = CprView(path=CurvedPath(points_lps=np.array(ends)), pixel_spacing_mm=0.8,
                   width_px=320, up_lps=up)
    surface = view.surface()
    plane = Plane(center_lps=centre, row_dir=surface.row_lateral_lps[0], col_dir=direction,
                  pixel_spacing_mm=0.8, size_px=surface.size_px)
    got = sample_cpr(vol, geometry, surface, fill=-2000)
    ref = sample(vol, geometry, plane, fill=-2000)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-2)
    assert got.std() > 100  # real anatomy, not air
    expected = np.asarray(up) - (np.asarray(up) @ direction) * direction  # up, across the path
    np.testing.assert_allclose(surface.row_lateral_lps[0], expected / np.linalg.norm(expected),
                               atol=1e-12)


def test_curved_cpr_of_the_acrin_ct_matches_a_numpy_reference(
        acrin_ct: tuple[np.ndarray, VolumeGeometry]) -> None:
    vol, geometry = acrin_ct
    nz, ny, nx = vol.shape
    ks = np.linspace(3, nz - 4, 6)
    idx = np.stack([ks, ny / 2 + 40 * np.sin(ks / 20), nx / 2 + 60 * np.cos(ks / 25)], axis=1)
    path = CurvedPath(points_lps=geometry.index_to_patient(idx))
    for mode in ("straightened", "stretched"):
        view = CprView(path=path, mode=mode, pixel_spacing_mm=1.5, width_px=200,
                       up_lps=(1.0, 0.0, 0.0))
        got = sample_cpr(vol, geometry, view, fill=-2000)
        ref = _trilinear_numpy(vol, geometry.patient_to_index(view.surface().grid_lps()), -2000)
        np.testing.assert_allclose(got, ref, atol=1e-2)
        assert (got != -2000).mean() > 0.9
