"""Curved planar reformation (CPR) geometry: centrelines and the surfaces swept along them.

All points and vectors are DICOM patient coordinates (LPS, mm); arc lengths are mm along the
centreline from its first point. A :class:`CprView` yields a :class:`CprSurface`, the LPS
position of every output pixel, which :func:`render_engine.cpr.sample_cpr` samples like a plane.

A :class:`CurvedPath` runs through its control points as a polyline or a centripetal
Catmull-Rom spline (Barry-Goldman knots ``t_{k+1} - t_k = |P_{k+1} - P_k|^0.5``, which neither
overshoots into cusps nor loops; the end segments use mirrored phantom points). Normal frames
along it are rotation-minimising, computed by the double-reflection method (Wang, Jüttler,
Zheng, Liu, "Computation of rotation minimizing frames", ACM TOG 27(1), 2008).

The two CPR modes follow Kanitsar et al., "CPR - Curved Planar Reformation", IEEE Vis 2002:

* ``straightened``: row ``i`` lies at arc length ``σ_i`` of the centreline, columns run along
  the lateral vector ``cos θ · N(σ) + sin θ · B(σ)`` (rotation-minimising normal ``N``,
  binormal ``B = T × N``, ``θ = rotation_deg``, right-handed about the tangent ``T``). The
  centreline is the centre column; rows are ``s`` mm of arc apart.
* ``stretched``: every row is a line along one fixed vector of interest ``v`` (made
  perpendicular to the path's axis, then rotated by ``θ`` about it); the surface swept by those
  lines is developed into the image plane (row position ``∫ |T - (T·v) v| dσ``, column the
  course ``(P - P_0)·v``), so the centreline keeps its course across ``v``, lengths along the
  path are preserved and rows are not distorted.

Rows are ``s`` mm apart (square pixels), ``h = round(extent / s)`` (at least 2), centred on the
extent (arc length or developed height); row 0 is at the top, at the path's first end; lateral
× down is the surface normal, along which a slab thickens. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KINDS = ("polyline", "spline")
MODES = ("straightened", "stretched")
MAX_POINTS = 10_000  # control points of one path
MAX_SIDE_PX = 16_384  # rows or columns of one CPR image

_MIN_GAP_MM = 1e-6  # consecutive control points closer than this are a repeated point
_SUB = 16  # arc-length table entries per segment (each integrated by 5-point Gauss-Legendre)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(5)
_GL_X, _GL_W = (_GL_NODES + 1.0) / 2.0, _GL_WEIGHTS / 2.0  # on [0, 1]
_FRAME_STEP_MM = 0.5  # step of the rotation-minimising frame chain
_MAX_TABLE = 65_536


def _unit_rows(v: FloatArray) -> FloatArray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.where(n > 0, n, 1.0), dtype=np.float64)


def _dot(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("...k,...k->...", a, b), dtype=np.float64)


def _cos_sin_deg(angle_deg: float) -> tuple[float, float]:
    """cos and sin, exact at multiples of 90° (so 180° mirrors bit for bit)."""
    quarter = angle_deg / 90.0
    if quarter == round(quarter):
        return ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[int(round(quarter)) % 4]
    a = math.radians(angle_deg)
    return math.cos(a), math.sin(a)


def _ruled(origin: FloatArray, lateral: FloatArray, offsets: FloatArray) -> FloatArray:
    """``origin[i] + offsets[j] * lateral[i]``, (h, w, 3) C-contiguous."""
    out = np.empty((len(origin), len(offsets), 3))
    for k in range(3):  # one component at a time: long inner loops, 4x faster
        np.multiply(lateral[:, k, None], offsets[None, :], out=out[..., k])
        out[..., k] += origin[:, k, None]
    return out


def _real(value: object, name: str) -> float:
    """A finite real number (numpy scalars included), else :class:`GeometryError`."""
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return float(value)
    raise GeometryError(f"{name} must be a finite number, got {value!r}")


def _derivative(c: FloatArray, u: FloatArray) -> FloatArray:
    """p'(u) of cubics with coefficients ``c`` (..., 4, 3) at parameters ``u`` (...)."""
    uu = u[..., None]
    return c[..., 1, :] + uu * (2 * c[..., 2, :] + 3 * uu * c[..., 3, :])  # type: ignore[no-any-return]


def _speed_squared(c: FloatArray) -> FloatArray:
    """|p'(u)|² of cubics ``c`` (..., 4, 3) as quartic coefficients (..., 5), lowest first."""
    d1, d2, d3 = c[..., 1, :], 2 * c[..., 2, :], 3 * c[..., 3, :]
    return np.stack([_dot(d1, d1), 2 * _dot(d1, d2), _dot(d2, d2) + 2 * _dot(d1, d3),
                     2 * _dot(d2, d3), _dot(d3, d3)], axis=-1)


def _speed(q: FloatArray, u: FloatArray) -> FloatArray:
    """|p'(u)| from the quartic coefficients ``q`` (..., 5) of :func:`_speed_squared`."""
    q0, q1, q2, q3, q4 = (q[..., k] for k in range(5))
    return np.sqrt(np.maximum(q0 + u * (q1 + u * (q2 + u * (q3 + u * q4))), 0.0))


def _arc_integral(q: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """Arc length from ``u = a`` to ``u = b`` of cubics with squared-speed coefficients ``q``
    (..., 5) (5-point Gauss-Legendre; exact for polylines)."""
    u = a[..., None] + _GL_X * (b - a)[..., None]
    return np.asarray((b - a) * (_speed(q[..., None, :], u) @ _GL_W), dtype=np.float64)


def _double_reflection(x0: FloatArray, t0: FloatArray, r0: FloatArray, x1: FloatArray,
                       t1: FloatArray) -> FloatArray:
    """Carry normals ``r0`` at (points ``x0``, unit tangents ``t0``) to (``x1``, ``t1``) by
    Wang et al.'s two reflections; rows are independent steps, ``(m, 3)`` each."""
    v1 = x1 - x0
    c1 = _dot(v1, v1)
    k1 = np.divide(2.0, c1, out=np.zeros_like(c1), where=c1 > 1e-24)
    r_l = r0 - (k1 * _dot(v1, r0))[:, None] * v1
    t_l = t0 - (k1 * _dot(v1, t0))[:, None] * v1
    v2 = t1 - t_l
    c2 = _dot(v2, v2)
    k2 = np.divide(2.0, c2, out=np.zeros_like(c2), where=c2 > 1e-24)
    return np.asarray(r_l - (k2 * _dot(v2, r_l))[:, None] * v2, dtype=np.float64)


def _reference_normals(tangents: FloatArray) -> FloatArray:
    """Some unit normal per tangent: the patient axis least aligned with it, made orthogonal."""
    axes = np.eye(3)[np.argmin(np.abs(tangents), axis=1)]
    return _unit_rows(axes - _dot(axes, tangents)[:, None] * tangents)


def _least_advanced_axis(tangents: FloatArray) -> FloatArray:
    """The patient axis (L, P, H in that order of preference) the path advances least along."""
    advance = np.sum(tangents ** 2, axis=0)
    first = int(np.flatnonzero(advance <= advance.min() + 1e-9 * len(tangents))[0])
    return np.eye(3)[first]


def _vector3(value: object, name: str) -> FloatArray:
    try:
        a = np.asarray(value, dtype=np.float64).reshape(3)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{name} must be a 3-vector, got {value!r}") from exc
    n = float(np.linalg.norm(a))
    if not np.isfinite(a).all() or n < 1e-12:
        raise GeometryError(f"{name} must be a finite non-zero 3-vector, got {a.tolist()}")
    return a / n


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PathFrames:
    """Samples of a path: arc length (m,) in mm; points, unit tangents, rotation-minimising unit
    normals and binormals (``tangent × normal``), each (m, 3) in LPS."""

    arc_mm: FloatArray
    points_lps: FloatArray
    tangents_lps: FloatArray
    normals_lps: FloatArray
    binormals_lps: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvedPath:
    """A centreline through ``points_lps`` (n, 3), LPS mm, as a ``"polyline"`` or a centripetal
    Catmull-Rom ``"spline"``.

    Raises :class:`GeometryError` for fewer than 2 or more than :data:`MAX_POINTS` points, a
    non-finite coordinate, consecutive repeated points (closer than 1e-6 mm) or an unknown kind.
    A path that doubles back on itself has a cusp there; its tangent is the segment's chord.
    """

    points_lps: FloatArray = field(repr=False)
    kind: str = "spline"
    _coeffs: FloatArray = field(init=False, repr=False)  # (segments, 4, 3): p(u) = Σ c_k u^k
    _speed2: FloatArray = field(init=False, repr=False)  # (segments, 5): |p'(u)|² = Σ q_k u^k
    _cum_mm: FloatArray = field(init=False, repr=False)  # arc length at u = k / _SUB

    def __post_init__(self) -> None:
        try:
            p = np.array(self.points_lps, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise GeometryError("points_lps must be an (n, 3) array of numbers") from exc
        if p.ndim != 2 or p.shape[1] != 3 or not 2 <= p.shape[0] <= MAX_POINTS:
            raise GeometryError(f"points_lps must be (n, 3) with 2 <= n <= {MAX_POINTS}, "
                                f"got shape {p.shape}")
        if not np.isfinite(p).all():
            raise GeometryError("points_lps must be finite")
        gaps = np.linalg.norm(np.diff(p, axis=0), axis=1)
        if (gaps < _MIN_GAP_MM).any():
            raise GeometryError(f"repeated consecutive point at index {int(np.argmin(gaps)) + 1}")
        if self.kind not in KINDS:
            raise GeometryError(f"kind must be one of {KINDS}, got {self.kind!r}")
        p.setflags(write=False)
        coeffs = self._hermite(p, gaps)
        speed2 = _speed_squared(coeffs)
        a = np.tile(np.arange(_SUB) / _SUB, (len(coeffs), 1))
        cum = np.concatenate([[0.0], np.cumsum(_arc_integral(speed2[:, None], a, a + 1 / _SUB))])
        for name, value in (("points_lps", p), ("_coeffs", coeffs), ("_speed2", speed2),
                            ("_cum_mm", cum)):
            object.__setattr__(self, name, value)

    def _hermite(self, p: FloatArray, gaps: FloatArray) -> FloatArray:
        """Cubic coefficients per segment (Catmull-Rom in Hermite form, Yuksel et al. 2011)."""
        start, end = p[:-1], p[1:]
        if self.kind == "polyline":
            m1 = m2 = end - start
        else:
            ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
            dt = np.sqrt(np.concatenate([gaps[:1], gaps, gaps[-1:]]))[:, None]
            p0, p3 = ext[:-3], ext[3:]
            d0, d1, d2 = dt[:-2], dt[1:-1], dt[2:]
            m1 = ((start - p0) / d0 - (end - p0) / (d0 + d1) + (end - start) / d1) * d1
            m2 = ((end - start) / d1 - (p3 - start) / (d1 + d2) + (p3 - end) / d2) * d1
        return np.stack([start, m1, 3 * (end - start) - 2 * m1 - m2,
                         2 * (start - end) + m1 + m2], axis=1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CurvedPath):
            return NotImplemented
        return self.kind == other.kind and np.array_equal(self.points_lps, other.points_lps)

    def __hash__(self) -> int:
        return hash((self.kind, self.points_lps.tobytes()))

    # -- evaluation -------------------------------------------------------------------------

    def _locate(self, arcs: FloatArray) -> tuple[IntArray, FloatArray]:
        """(segment, parameter u in [0, 1]) of arc lengths (clamped to the path)."""
        cum = self._cum_mm
        s = np.clip(arcs, 0.0, cum[-1])
        f = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(cum) - 2)
        seg, u0 = f // _SUB, (f % _SUB) / _SUB
        rest, dl = s - cum[f], cum[f + 1] - cum[f]
        u = u0 + np.divide(rest, dl, out=np.zeros_like(rest), where=dl > 0) / _SUB
        if self.kind == "spline":  # Newton on the arc length; the linear guess is exact else
            q = self._speed2[seg]
            for _ in range(3):
                g = _arc_integral(q, u0, u) - rest
                u = np.clip(u - g / np.maximum(_speed(q, u), 1e-12), u0, u0 + 1.0 / _SUB)
        return seg.astype(np.int64), u

    @property
    def length_mm(self) -> float:
        """Arc length of the whole path, mm."""
        return float(self._cum_mm[-1])

    @property
    def knot_arc_mm(self) -> FloatArray:
        """Arc length (n,) at which the path passes each control point, mm."""
        return np.asarray(self._cum_mm[::_SUB], dtype=np.float64)

    def at_arc_mm(self, arc_mm: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Points and unit tangents, each ``shape + (3,)`` in LPS, at arc lengths (mm, clamped
        to ``[0, length_mm]``). On a polyline vertex the tangent is the next segment's."""
        arcs = np.asarray(arc_mm, dtype=np.float64)
        seg, u = self._locate(arcs)
        c = self._coeffs[seg]
        uu = u[..., None]
        points = c[..., 0, :] + uu * (c[..., 1, :] + uu * (c[..., 2, :] + uu * c[..., 3, :]))
        d = _derivative(c, u)
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        chord = c[..., 1, :] + c[..., 2, :] + c[..., 3, :]
        d = np.where(n > 1e-9 * np.linalg.norm(chord, axis=-1, keepdims=True), d, chord)
        return np.asarray(points, dtype=np.float64), _unit_rows(d)

    def default_up_lps(self) -> FloatArray:
        """The default vector of interest: the patient axis (L, P or H, preferred in that
        order) along which the path advances least, e.g. H for a dental arch."""
        _, tangents = self.at_arc_mm(np.linspace(0.0, self.length_mm, 257))
        return _least_advanced_axis(tangents)

    # -- rotation-minimising frames ----------------------------------------------------------

    def _chain(self, up_lps: npt.ArrayLike | None) -> tuple[FloatArray, ...]:
        """Frames every <= 0.5 mm: (arcs, points, tangents, normals)."""
        length = self.length_mm
        k = int(np.clip(math.ceil(length / _FRAME_STEP_MM), 16, _MAX_TABLE))
        arcs = np.linspace(0.0, length, k + 1)
        pts, tans = self.at_arc_mm(arcs)
        ref = _reference_normals(tans)
        ref_b = np.cross(tans, ref)
        moved = _double_reflection(pts[:-1], tans[:-1], ref[:-1], pts[1:], tans[1:])
        delta = np.arctan2(_dot(moved, ref_b[1:]), _dot(moved, ref[1:]))
        phi = np.concatenate([[0.0], np.cumsum(delta)])
        normals = np.cos(phi)[:, None] * ref + np.sin(phi)[:, None] * ref_b
        binormals = np.cross(tans, normals)
        # All rotation-minimising frames differ by one angle: pick the one whose normal is, on
        # average along the path, closest to the vector of interest.
        candidates = [] if up_lps is None else [_vector3(up_lps, "up_lps")]
        candidates.append(_least_advanced_axis(tans))
        psi = 0.0
        for v in candidates:
            sn, sb = float(np.sum(normals @ v)), float(np.sum(binormals @ v))
            if math.hypot(sn, sb) > 1e-9 * len(arcs):
                psi = math.atan2(sb, sn)
                break
        normals = math.cos(psi) * normals + math.sin(psi) * binormals
        return arcs, pts, tans, normals

    def frames_at(self, arc_mm: npt.ArrayLike, *, up_lps: npt.ArrayLike | None = None
                  ) -> PathFrames:
        """Rotation-minimising frames at arc lengths ``arc_mm`` (1-D, mm, clamped).

        All such frames differ by one rotation about the path; the one returned has its normal,
        averaged along the whole path, closest to ``up_lps`` (default :meth:`default_up_lps`).
        """
        arcs = np.clip(np.asarray(arc_mm, dtype=np.float64).reshape(-1), 0.0, self.length_mm)
        c_arcs, c_pts, c_tans, c_normals = self._chain(up_lps)
        pts, tans = self.at_arc_mm(arcs)
        k = np.clip(np.searchsorted(c_arcs, arcs, side="right") - 1, 0, len(c_arcs) - 1)
        normals = _double_reflection(c_pts[k], c_tans[k], c_normals[k], pts, tans)
        normals = _unit_rows(normals - _dot(normals, tans)[:, None] * tans)
        return PathFrames(arc_mm=arcs, points_lps=pts, tangents_lps=tans, normals_lps=normals,
                          binormals_lps=np.cross(tans, normals))

    def resampled(self, step_mm: float, *, up_lps: npt.ArrayLike | None = None) -> PathFrames:
        """Frames at arc lengths 0, step, 2·step, … and the end point (the last interval may be
        shorter). Raises :class:`GeometryError` for a non-positive step or too many samples."""
        length = self.length_mm
        if not 0 < length / _MAX_TABLE <= _real(step_mm, "step_mm"):
            raise GeometryError(f"step_mm must be >= length / {_MAX_TABLE}, got {step_mm}")
        arcs = np.arange(math.floor(length / step_mm) + 1) * step_mm
        if length - arcs[-1] > 1e-9 * max(length, 1.0):
            arcs = np.append(arcs, length)
        return self.frames_at(arcs, up_lps=up_lps)

    # -- serialisation -----------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {"points_lps": self.points_lps.tolist(), "kind": self.kind}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CurvedPath:
        """Inverse of :meth:`to_json`; raises :class:`GeometryError` for malformed input."""
        if not isinstance(data, Mapping) or "points_lps" not in data:
            raise GeometryError("a curved path needs 'points_lps'")
        return cls(points_lps=data["points_lps"], kind=str(data.get("kind", "spline")))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CprSurface:
    """Where every pixel of a CPR image lies in patient space (LPS mm), row by row.

    Pixel (row ``i``, column ``j``) is at ``row_origin_lps[i] + (j - (w - 1) / 2) · s ·
    row_lateral_lps[i]``; all rows are straight lines of square pixels, ``s`` mm apart.
    ``row_down_lps`` is the unit direction of increasing row at the centre column,
    ``row_normal_lps`` = lateral × down (unit). ``row_arc_mm`` is the arc length of the
    centreline point of each row and ``centreline_col`` its (continuous) column. ``size_px`` is
    (w, h) as for a plane. Continuous rows interpolate linearly between rows (and extrapolate
    beyond the first and last).
    """

    mode: str
    pixel_spacing_mm: float
    size_px: tuple[int, int]
    row_origin_lps: FloatArray
    row_lateral_lps: FloatArray
    row_down_lps: FloatArray
    row_normal_lps: FloatArray
    row_arc_mm: FloatArray
    centreline_col: FloatArray

    @property
    def centreline_lps(self) -> FloatArray:
        """The centreline point on each row, (h, 3) LPS."""
        w = self.size_px[0]
        lateral_mm = (self.centreline_col - (w - 1) / 2.0) * self.pixel_spacing_mm
        return np.asarray(self.row_origin_lps + lateral_mm[:, None] * self.row_lateral_lps,
                          dtype=np.float64)

    def column_offsets_mm(self) -> FloatArray:
        """Lateral offset of each column from the centre column, (w,) mm."""
        w = self.size_px[0]
        return np.asarray((np.arange(w) - (w - 1) / 2.0) * self.pixel_spacing_mm, dtype=np.float64)

    def grid_lps(self) -> FloatArray:
        """LPS of every pixel centre, (h, w, 3)."""
        return _ruled(self.row_origin_lps, self.row_lateral_lps, self.column_offsets_mm())

    def normals_lps(self) -> FloatArray:
        """Unit surface normal at every pixel, (h, w, 3) (a read-only broadcast of the rows')."""
        h, w = self.size_px[1], self.size_px[0]
        return np.broadcast_to(self.row_normal_lps[:, None, :], (h, w, 3))

    def index_grid(self, geometry: VolumeGeometry) -> FloatArray:
        """Continuous voxel indices (z, y, x) of every pixel, (h, w, 3) float64, C-contiguous."""
        inv_t = np.linalg.inv(geometry.affine[:3, :3]).T
        origin = (self.row_origin_lps - geometry.affine[:3, 3]) @ inv_t
        return _ruled(origin, self.row_lateral_lps @ inv_t, self.column_offsets_mm())

    def index_normals(self, geometry: VolumeGeometry) -> FloatArray:
        """Index-space step per mm along the surface normal at every pixel, (h, w, 3)."""
        steps = self.row_normal_lps @ np.linalg.inv(geometry.affine[:3, :3]).T
        h, w = self.size_px[1], self.size_px[0]
        return np.ascontiguousarray(np.broadcast_to(steps[:, None, :], (h, w, 3)))

    # -- pixel <-> patient -------------------------------------------------------------------

    def _rows_at(self, rows: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray,
                                                  FloatArray, FloatArray]:
        """(origin, unit lateral, unit normal, d origin / d row, d lateral / d row) at
        continuous rows."""
        k = np.clip(np.floor(rows), 0, self.size_px[1] - 2).astype(np.int64)
        t = (rows - k)[..., None]
        o0, o1 = self.row_origin_lps[k], self.row_origin_lps[k + 1]
        l0, l1 = self.row_lateral_lps[k], self.row_lateral_lps[k + 1]
        n0, n1 = self.row_normal_lps[k], self.row_normal_lps[k + 1]
        return (o0 + t * (o1 - o0), _unit_rows(l0 + t * (l1 - l0)), _unit_rows(n0 + t * (n1 - n0)),
                o1 - o0, l1 - l0)

    def pixel_to_patient(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """LPS mm of (continuous) pixel positions; shape ``broadcast + (3,)``."""
        r, c = np.broadcast_arrays(np.asarray(rows, dtype=np.float64),
                                   np.asarray(cols, dtype=np.float64))
        origin, lateral, *_ = self._rows_at(r)
        lateral_mm = (c - (self.size_px[0] - 1) / 2.0) * self.pixel_spacing_mm
        return np.asarray(origin + lateral_mm[..., None] * lateral, dtype=np.float64)

    def pixel_to_arc_mm(self, rows: npt.ArrayLike) -> FloatArray:
        """Arc length (mm along the centreline) of (continuous) rows."""
        r = np.asarray(rows, dtype=np.float64)
        arc = self.row_arc_mm
        k = np.clip(np.floor(r), 0, len(arc) - 2).astype(np.int64)
        return np.asarray(arc[k] + (r - k) * (arc[k + 1] - arc[k]), dtype=np.float64)

    def patient_to_pixel(self, points_lps: npt.ArrayLike) -> FloatArray:
        """(row, column, distance along the normal in mm) of LPS points, ``(..., 3)``.

        The row is that of the nearest row line (within the image's width), refined to a
        continuous position; points on the surface come back to their pixel exactly.
        """
        q = np.asarray(points_lps, dtype=np.float64)
        flat = q.reshape(-1, 3)
        h = self.size_px[1]
        half_width_mm = self.size_px[0] * self.pixel_spacing_mm / 2.0
        rows, chunk = np.empty(len(flat)), max(1, 2 ** 20 // h)
        for start in range(0, len(flat), chunk):
            block = flat[start:start + chunk]
            d = block[:, None, :] - self.row_origin_lps[None]
            a = _dot(d, self.row_lateral_lps[None])
            off = d - a[..., None] * self.row_lateral_lps[None]
            excess = np.maximum(np.abs(a) - half_width_mm, 0.0)
            rows[start:start + len(block)] = np.argmin(_dot(off, off) + excess ** 2, axis=1)
        best = rows.copy()
        for _ in range(4):  # Gauss-Newton along the row direction, within one row of the best
            origin, lateral, _, d_origin, d_lateral = self._rows_at(rows)
            d = flat - origin
            a = _dot(d, lateral)
            tangent = d_origin + a[:, None] * d_lateral
            step = _dot(d - a[:, None] * lateral, tangent) / np.maximum(
                _dot(tangent, tangent), 1e-24)
            rows = np.clip(rows + step, best - 1.0, best + 1.0)
        origin, lateral, normal, *_ = self._rows_at(rows)
        d = flat - origin
        a = _dot(d, lateral)
        cols = a / self.pixel_spacing_mm + (self.size_px[0] - 1) / 2.0
        dist = _dot(d - a[:, None] * lateral, normal)
        return np.stack([rows, cols, dist], axis=-1).reshape(q.shape)

    def nearest_pixel(self, points_lps: npt.ArrayLike) -> IntArray:
        """(row, column) of the pixel nearest to each LPS point, clipped to the image;
        ``(..., 2)`` int64."""
        rc = np.rint(self.patient_to_pixel(points_lps)[..., :2])
        return np.clip(rc, 0, [self.size_px[1] - 1, self.size_px[0] - 1]).astype(np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class CprView:
    """A CPR view of ``path``: ``width_px`` columns of ``pixel_spacing_mm`` (square pixels);
    the number of rows follows from the path's length.

    ``up_lps`` is the vector of interest (default :meth:`CurvedPath.default_up_lps`); in
    straightened mode it picks the rotation-minimising frame whose normal is on average
    closest to it, in stretched mode it is the direction of every row. ``rotation_deg`` turns
    the lateral vector right-handedly about the path (straightened: the local tangent;
    stretched: the axis from the first to the last point, or the path's principal axis when
    they nearly coincide). Raises :class:`GeometryError` for bad values.
    """

    path: CurvedPath
    pixel_spacing_mm: float
    width_px: int
    mode: str = "straightened"
    rotation_deg: float = 0.0
    up_lps: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, CurvedPath) or self.mode not in MODES:
            raise GeometryError(f"need a CurvedPath and a mode in {MODES}, got {self.mode!r}")
        spacing = _real(self.pixel_spacing_mm, "pixel_spacing_mm")
        width = _real(self.width_px, "width_px")
        if spacing <= 0 or width != int(width) or not 1 <= width <= MAX_SIDE_PX:
            raise GeometryError(f"need pixel_spacing_mm > 0 and an integer width_px in "
                                f"1..{MAX_SIDE_PX}, got {spacing}, {width}")
        if self.up_lps is not None:
            up = _vector3(self.up_lps, "up_lps")
            object.__setattr__(self, "up_lps", (float(up[0]), float(up[1]), float(up[2])))
        object.__setattr__(self, "pixel_spacing_mm", spacing)
        object.__setattr__(self, "width_px", int(width))
        object.__setattr__(self, "rotation_deg", _real(self.rotation_deg, "rotation_deg"))

    def _row_centres(self, extent_mm: float) -> FloatArray:
        """Centres of round(extent / spacing) >= 2 rows (mm down the image), centred on it."""
        h = max(2, math.floor(extent_mm / self.pixel_spacing_mm + 0.5))
        if h > MAX_SIDE_PX:
            raise GeometryError(f"CPR would have {h} rows (> {MAX_SIDE_PX}): coarser spacing")
        return np.asarray(extent_mm / 2.0 + (np.arange(h) - (h - 1) / 2.0) * self.pixel_spacing_mm,
                          dtype=np.float64)

    def surface(self) -> CprSurface:
        """The patient-space surface of this view (compute once per frame and reuse)."""
        path, w, s = self.path, self.width_px, self.pixel_spacing_mm
        cos_r, sin_r = _cos_sin_deg(self.rotation_deg)
        if self.mode == "straightened":
            frames = path.frames_at(self._row_centres(path.length_mm), up_lps=self.up_lps)
            arcs, origin, down = frames.arc_mm, frames.points_lps, frames.tangents_lps
            lateral = cos_r * frames.normals_lps + sin_r * frames.binormals_lps
            centre_col = np.full(len(arcs), (w - 1) / 2.0)
        else:
            arcs, origin, lateral, down, centre_col = self._stretched(cos_r, sin_r)
        normal = _unit_rows(np.cross(lateral, down))
        return CprSurface(mode=self.mode, pixel_spacing_mm=s, size_px=(w, len(arcs)),
                          row_origin_lps=origin, row_lateral_lps=lateral, row_down_lps=down,
                          row_normal_lps=normal, row_arc_mm=arcs, centreline_col=centre_col)

    def _stretched(self, cos_r: float, sin_r: float) -> tuple[FloatArray, ...]:
        path, s = self.path, self.pixel_spacing_mm
        length = path.length_mm
        pts = path.points_lps
        axis = pts[-1] - pts[0]
        if np.linalg.norm(axis) < 1e-3 * length:  # a (nearly) closed path: principal axis
            axis = np.linalg.svd(pts - pts.mean(axis=0))[2][0]
        axis = axis / np.linalg.norm(axis)
        v = path.default_up_lps() if self.up_lps is None else np.asarray(self.up_lps)
        v = v - (v @ axis) * axis
        if np.linalg.norm(v) < 1e-6:
            raise GeometryError("the vector of interest is parallel to the path's axis")
        v = v / np.linalg.norm(v)
        v = cos_r * v + sin_r * np.cross(axis, v)
        # Develop the surface of lines along v: image height grows with the path's speed
        # across v, the centreline's column with its course along v.
        k = int(np.clip(math.ceil(length / min(_FRAME_STEP_MM, s / 2.0)), 16, _MAX_TABLE))
        fine = np.linspace(0.0, length, k + 1)
        f_pts, f_tans = path.at_arc_mm(fine)
        speed = np.linalg.norm(f_tans - np.outer(f_tans @ v, v), axis=1)
        height = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(fine))])
        if height[-1] < 1e-6 * max(length, 1.0):
            raise GeometryError("the path runs along the vector of interest: nothing to show")
        arcs = np.interp(self._row_centres(float(height[-1])), height, fine)  # non-decreasing
        h = len(arcs)
        points, tans = path.at_arc_mm(arcs)
        course = (f_pts - f_pts[0]) @ v
        centre = (course.max() + course.min()) / 2.0
        along = (points - f_pts[0]) @ v
        across = tans - np.outer(tans @ v, v)
        valid = np.linalg.norm(across, axis=1) > 1e-6  # else: the last valid row's direction
        if not valid.any():  # degenerate: every sampled row runs along v
            across, valid = np.tile(np.cross(v, axis), (h, 1)), np.ones(h, dtype=bool)
        fill = np.maximum.accumulate(np.where(valid, np.arange(h), -1))
        fill = np.where(fill < 0, int(np.argmax(valid)), fill)
        down = _unit_rows(across[fill])
        origin = points + (centre - along)[:, None] * v
        centre_col = (along - centre) / s + (self.width_px - 1) / 2.0
        return arcs, origin, np.tile(v, (h, 1)), down, centre_col

    def sample_grid_lps(self) -> tuple[FloatArray, FloatArray]:
        """(LPS of every pixel centre, unit surface normal at every pixel), each (h, w, 3)."""
        surface = self.surface()
        return surface.grid_lps(), np.array(surface.normals_lps())

    def to_json(self) -> dict[str, object]:
        return {"path": self.path.to_json(), "mode": self.mode, "rotation_deg": self.rotation_deg,
                "pixel_spacing_mm": self.pixel_spacing_mm, "width_px": self.width_px,
                "up_lps": None if self.up_lps is None else list(self.up_lps)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CprView:
        """Inverse of :meth:`to_json`; raises :class:`GeometryError` for malformed input."""
        if not isinstance(data, Mapping):
            raise GeometryError("a CPR view must be an object")
        try:
            up = data.get("up_lps")
            return cls(path=CurvedPath.from_json(data["path"]),  # type: ignore[arg-type]
                       mode=str(data.get("mode", "straightened")),
                       rotation_deg=data.get("rotation_deg", 0.0),  # type: ignore[arg-type]
                       pixel_spacing_mm=data["pixel_spacing_mm"],  # type: ignore[arg-type]
                       width_px=data["width_px"],  # type: ignore[arg-type]
                       up_lps=None if up is None else tuple(up))  # type: ignore[arg-type]
        except KeyError as exc:
            raise GeometryError(f"a CPR view needs {exc}") from exc
        except TypeError as exc:
            raise GeometryError(f"malformed CPR view: {exc}") from exc
