"""Measurements on a view (R38 point and circle values, R35 ROI histograms, R34 auto window).

A view is a :class:`~render_engine.planes.Plane` in patient space (LPS mm); its values are the
``(h, w)`` array sampled on it (:func:`render_engine.sampling.sample`, ``fill=NaN``) in the
volume's units (HU, SUVbw): statistics come from stored values, never display pixels. Shapes
are in *output-pixel coordinates*: ``x`` = column, ``y`` = row, continuous, pixel (row i,
column j) centred at (x=j, y=i), i.e. ``Plane.pixel_to_patient(rows=y, cols=x)``. The plane
maps pixels to patient space, so lengths are in mm and areas in mm² whatever the zoom.

A pixel belongs to an area shape when its centre is inside: rectangle and polygon edges
inclusive (polygons fill by the even-odd rule), ellipse ``((x-cx)/rx)² + ((y-cy)/ry)² <= 1``,
each within 1e-9 px of rounding. Only the view's pixels are measured; NaN pixels (the plane
left the volume) are left out of the statistics and counted in ``outside_count``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from render_engine.errors import RenderError
from render_engine.kernels.backend import to_host
from render_engine.planes import Plane

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]
XY = tuple[float, float]

DEFAULT_BINS = 64
MAX_BINS = 4096
MAX_POLYGON_VERTICES = 2048
MAX_PROFILE_SAMPLES = 8192
MAX_COORDINATE_PX = 1e6
AUTO_WINDOW_PERCENTILES = (0.5, 99.5)
_EPS = 1e-9  # px: rounding allowance of the membership tests


class MeasureError(RenderError, ValueError):
    """A shape or a measurement request is invalid; ``field`` names the offending wire key."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _number(value: Any, where: str) -> float:
    numeric = isinstance(value, (int, float, np.integer, np.floating))
    try:
        out = float(value) if numeric and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer beyond float range
        out = math.nan
    if not math.isfinite(out):
        raise MeasureError(f"{where} must be a finite number, got {value!r:.40}", field=where)
    return out


def _numbers(value: Any, n: int, where: str) -> tuple[float, ...]:
    value = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise MeasureError(f"{where} must be a list of {n} numbers, got {value!r:.60}", field=where)
    return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(value))


def _xy(value: Any, where: str) -> XY:
    x, y = _numbers(value, 2, where)
    if not (abs(x) <= MAX_COORDINATE_PX and abs(y) <= MAX_COORDINATE_PX):  # NaN too
        raise MeasureError(f"{where} is beyond ±{MAX_COORDINATE_PX:g} px", field=where)
    return (x, y)


def _positive(value: Any, where: str) -> float:
    out = _number(value, where)
    if out <= 0:
        raise MeasureError(f"{where} must be > 0, got {value!r}", field=where)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class HistogramSpec:
    """``bins`` (1…``MAX_BINS``) equal bins over ``value_range`` (lo < hi, value units; default
    the ROI's [min, max]). One spec for two ROIs compares them side by side (R35)."""

    bins: int = DEFAULT_BINS
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, (int, np.integer)) \
                or not 1 <= self.bins <= MAX_BINS:
            raise MeasureError(f"bins must be an integer in 1…{MAX_BINS}, got {self.bins!r}",
                               field="bins")
        object.__setattr__(self, "bins", int(self.bins))
        if self.value_range is not None:
            lo, hi = _numbers(self.value_range, 2, "range")
            if not lo < hi:
                raise MeasureError(f"range needs lo < hi, got {[lo, hi]}", field="range")
            object.__setattr__(self, "value_range", (lo, hi))


# Each shape's wire fields: (attribute, wire name, kind). A "position" travels as <name>_px
# [x, y] or <name>_lps [x, y, z] (projected onto the plane); a "length" or "lengths" as
# <name>_px or <name>_mm; "positions" as <name>_px [[x, y], …] or <name>_lps [[x, y, z], …].
Wire = tuple[tuple[str, str, str], ...]


def _coerce(shape: Any) -> None:
    """Validate a shape's fields (named after their wire keys) and store them as floats."""
    for attr, name, kind in shape.wire:
        value, where = getattr(shape, attr), f"{name}_px"
        if kind == "position":
            value = _xy(value, where)
        elif kind == "length":
            value = _positive(value, where)
        elif kind == "lengths":
            value = tuple(_positive(v, f"{where}[{i}]") for i, v in enumerate(_xy(value, where)))
        else:
            value = value.tolist() if isinstance(value, np.ndarray) else value
            if not isinstance(value, (list, tuple)) or not 3 <= len(value) <= MAX_POLYGON_VERTICES:
                raise MeasureError(f"{where} needs 3…{MAX_POLYGON_VERTICES} points", field=where)
            value = tuple(_xy(v, f"{where}[{i}]") for i, v in enumerate(value))
        object.__setattr__(shape, attr, value)
    if not isinstance(getattr(shape, "histogram", HistogramSpec()), HistogramSpec):
        raise MeasureError("histogram must be a HistogramSpec", field="bins")


class _Shape:
    """Base of the shape value objects: validates and normalises the fields of ``wire``."""

    __slots__ = ()
    kind: ClassVar[str]
    wire: ClassVar[Wire]

    def __post_init__(self) -> None:
        _coerce(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Point(_Shape):
    """A single position ``at`` = (x, y), px."""

    kind: ClassVar[str] = "point"
    wire: ClassVar[Wire] = (("at", "at", "position"),)
    at: XY


@dataclass(frozen=True, slots=True, kw_only=True)
class Line(_Shape):
    """A segment from ``start`` to ``end`` (x, y), px; zero length is allowed (a click)."""

    kind: ClassVar[str] = "line"
    wire: ClassVar[Wire] = (("start", "from", "position"), ("end", "to", "position"))
    start: XY
    end: XY


@dataclass(frozen=True, slots=True, kw_only=True)
class Angle(_Shape):
    """The angle at ``vertex`` between the arms towards ``a`` and ``b`` (x, y), px (arms > 0)."""

    kind: ClassVar[str] = "angle"
    wire: ClassVar[Wire] = (("vertex", "vertex", "position"), ("a", "a", "position"),
                            ("b", "b", "position"))
    vertex: XY
    a: XY
    b: XY

    def __post_init__(self) -> None:
        _coerce(self)
        for name in ("a", "b"):
            if getattr(self, name) == self.vertex:
                raise MeasureError(f"angle arm {name} has zero length", field=f"{name}_px")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rectangle(_Shape):
    """Rectangle aligned with the view between opposite corners (x, y), px (width, height > 0)."""

    kind: ClassVar[str] = "rectangle"
    wire: ClassVar[Wire] = (("corner_a", "from", "position"), ("corner_b", "to", "position"))
    corner_a: XY
    corner_b: XY
    histogram: HistogramSpec = field(default_factory=HistogramSpec)

    def __post_init__(self) -> None:
        _coerce(self)
        if self.area_px == 0:
            raise MeasureError("rectangle has zero width or height", field="to_px")

    @property
    def area_px(self) -> float:
        return abs(self.corner_b[0] - self.corner_a[0]) * abs(self.corner_b[1] - self.corner_a[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Ellipse(_Shape):
    """Ellipse with axes along the view's x and y: ``center`` (x, y), ``radii`` (rx, ry), px."""

    kind: ClassVar[str] = "ellipse"
    wire: ClassVar[Wire] = (("center", "center", "position"), ("radii", "radii", "lengths"))
    center: XY
    radii: XY
    histogram: HistogramSpec = field(default_factory=HistogramSpec)

    @property
    def area_px(self) -> float:
        return math.pi * self.radii[0] * self.radii[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Circle(_Shape):
    """Circle of ``radius`` px (> 0) about ``center`` (x, y), px: R38's "mean in a circle"."""

    kind: ClassVar[str] = "circle"
    wire: ClassVar[Wire] = (("center", "center", "position"), ("radius", "radius", "length"))
    center: XY
    radius: float
    histogram: HistogramSpec = field(default_factory=HistogramSpec)

    @property
    def area_px(self) -> float:
        return math.pi * self.radius**2


@dataclass(frozen=True, slots=True, kw_only=True)
class Polygon(_Shape):
    """Closed polygon through 3…``MAX_POLYGON_VERTICES`` ``vertices`` (x, y), px, with a
    non-zero area, filled by the even-odd rule."""

    kind: ClassVar[str] = "polygon"
    wire: ClassVar[Wire] = (("vertices", "points", "positions"),)
    vertices: tuple[XY, ...]
    histogram: HistogramSpec = field(default_factory=HistogramSpec)

    def __post_init__(self) -> None:
        _coerce(self)
        if self.area_px <= 1e-12:
            raise MeasureError("polygon encloses no area", field="points_px")

    @property
    def area_px(self) -> float:
        """Enclosed area by the shoelace formula, px² (self-intersections net out)."""
        x, y = np.asarray(self.vertices, dtype=np.float64).T
        return float(abs(x @ np.roll(y, -1) - y @ np.roll(x, -1)) / 2.0)


AreaShape = Rectangle | Ellipse | Circle | Polygon
Shape = Point | Line | Angle | AreaShape
_AREA_TYPES = (Rectangle, Ellipse, Circle, Polygon)
_SHAPES: dict[str, type[Shape]] = {c.kind: c for c in (Point, Line, Angle, *_AREA_TYPES)}

# -- the wire contract --------------------------------------------------------------------------


def _lps_to_xy(point: Any, where: str, plane: Plane) -> XY:
    row, col, _ = plane.patient_to_pixel(np.asarray(_numbers(point, 3, where)))
    return (float(col), float(row))


def _wire_value(obj: Mapping[str, Any], name: str, kind: str, plane: Plane) -> Any:
    px_key, other_key = f"{name}_px", f"{name}_{'mm' if kind.startswith('length') else 'lps'}"
    if (px_key in obj) == (other_key in obj):
        raise MeasureError(f"{obj.get('type')} needs exactly one of {px_key!r} and "
                           f"{other_key!r}", field=px_key)
    key = px_key if px_key in obj else other_key
    value, scale = obj[key], (1.0 if key == px_key else plane.pixel_spacing_mm)
    if kind == "position":
        return _xy(value, key) if key == px_key else _lps_to_xy(value, key, plane)
    if kind == "length":
        return _number(value, key) / scale
    if kind == "lengths":
        return tuple(v / scale for v in _xy(value, key))
    if not isinstance(value, (list, tuple)) or len(value) > MAX_POLYGON_VERTICES:
        raise MeasureError(f"{key} must be a list of at most {MAX_POLYGON_VERTICES} points",
                           field=key)
    return tuple(_xy(p, f"{key}[{i}]") if key == px_key
                 else _lps_to_xy(p, f"{key}[{i}]", plane) for i, p in enumerate(value))


def shape_from_json(obj: Any, plane: Plane, *, allow_unknown_keys: bool = False) -> Shape:
    """Parse a wire shape drawn on ``plane`` into output-pixel coordinates.

    ``{"type": "point", "at_px": [x, y]}``, ``line`` / ``rectangle``: ``from_px``, ``to_px``;
    ``angle``: ``vertex_px``, ``a_px``, ``b_px``; ``ellipse``: ``center_px``, ``radii_px``
    [rx, ry]; ``circle``: ``center_px``, ``radius_px``; ``polygon``: ``points_px`` [[x, y], …].
    Every position may instead be given in patient space as ``*_lps`` [x, y, z] (mm), projected
    orthogonally onto the plane; every length as ``*_mm`` (``radius_mm``, ``radii_mm`` along
    the view's x and y). Area shapes accept ``"bins"`` (int, default ``DEFAULT_BINS``) and
    ``"range"`` [lo, hi] for the histogram. Raises :class:`MeasureError` (a ``ValueError``)
    for anything else, unknown keys included unless ``allow_unknown_keys``.
    """
    if not isinstance(obj, Mapping):
        raise MeasureError(f"shape must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _SHAPES:
        raise MeasureError(f"shape type must be one of {sorted(_SHAPES)}, got {kind!r}",
                           field="type")
    cls = _SHAPES[kind]
    is_area = issubclass(cls, _AREA_TYPES)
    if not allow_unknown_keys:
        allowed = {"type", *(("bins", "range") if is_area else ())}
        for _, name, k in cls.wire:
            allowed |= {f"{name}_px", f"{name}_{'mm' if k.startswith('length') else 'lps'}"}
        unknown = sorted(str(key) for key in obj if key not in allowed)
        if unknown:
            raise MeasureError(f"unknown keys for a {kind}: {unknown} (allowed: "
                               f"{sorted(allowed)})", field=unknown[0])
    args = {attr: _wire_value(obj, name, k, plane) for attr, name, k in cls.wire}
    if is_area:
        args["histogram"] = HistogramSpec(bins=obj.get("bins", DEFAULT_BINS),
                                          value_range=obj.get("range"))
    return cls(**args)


def shape_to_json(shape: Shape) -> dict[str, Any]:
    """The wire form of ``shape`` in pixel coordinates (``shape_from_json``'s inverse)."""
    out: dict[str, Any] = {"type": shape.kind}
    for attr, name, kind in shape.wire:
        value = getattr(shape, attr)
        out[f"{name}_px"] = ([list(p) for p in value] if kind == "positions"
                             else value if kind == "length" else list(value))
    if isinstance(shape, _AREA_TYPES):
        out["bins"] = shape.histogram.bins
        if shape.histogram.value_range is not None:
            out["range"] = list(shape.histogram.value_range)
    return out


# -- masks --------------------------------------------------------------------------------------


def _span(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Integer pixel range [a, b) covering [lo, hi] with a one-pixel margin, clipped to 0…n."""
    a = min(max(math.floor(lo) - 1, 0), n)
    return a, min(max(math.ceil(hi) + 2, a), n)


def _polygon_mask(vertices: npt.NDArray[np.float64], xs: npt.NDArray[np.float64],
                  ys: npt.NDArray[np.float64]) -> BoolArray:
    """Closed even-odd membership of the pixel centres (xs × ys, consecutive) by scanlines."""
    mask = np.zeros((ys.size, xs.size), dtype=bool)
    if xs.size == 0 or ys.size == 0:
        return mask
    c0, r0 = xs[0], ys[0]
    x0, y0 = vertices[:, 0], vertices[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Edge e crosses the scanlines r with min(y) <= r < max(y) (half-open, so every scanline
    # crosses the boundary an even number of times; horizontal edges cross none).
    first = np.clip(np.ceil(np.minimum(y0, y1)) - r0, 0, ys.size).astype(np.intp)
    stop = np.clip(np.ceil(np.maximum(y0, y1)) - r0, 0, ys.size).astype(np.intp)
    n = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(x0.size), n)
    row = first[edge] + np.arange(edge.size) - np.repeat(np.cumsum(n) - n, n)
    y = row + r0
    xc = x0[edge] + (y - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((xc, row))  # by row, then x: consecutive pairs bound the inside runs
    row, xc = row[order], xc[order]
    rows, starts, ends = row[0::2], xc[0::2], xc[1::2]
    a = np.clip(np.ceil(starts - _EPS) - c0, 0, xs.size).astype(np.intp)
    b = np.clip(np.floor(ends + _EPS) - c0 + 1, 0, xs.size).astype(np.intp)
    keep = b > a
    diff = np.zeros((ys.size, xs.size + 1), dtype=np.int8)
    np.add.at(diff, (rows[keep], a[keep]), 1)
    np.add.at(diff, (rows[keep], b[keep]), -1)
    mask = np.cumsum(diff[:, :-1], axis=1, dtype=np.int8) > 0
    # Closed boundary: centres on a vertex or on a horizontal edge, which the half-open rule
    # may leave out (a lowest vertex, a bottom edge).
    vr, vc = np.rint(y0) - r0, np.rint(x0) - c0
    on = ((np.abs(y0 - np.rint(y0)) <= _EPS) & (np.abs(x0 - np.rint(x0)) <= _EPS)
          & (vr >= 0) & (vr < ys.size) & (vc >= 0) & (vc < xs.size))
    mask[vr[on].astype(np.intp), vc[on].astype(np.intp)] = True
    flat = ((np.abs(y1 - y0) <= _EPS) & (np.abs(y0 - np.rint(y0)) <= _EPS)
            & (vr >= 0) & (vr < ys.size))
    for e in np.nonzero(flat)[0]:
        lo, hi = min(x0[e], x1[e]), max(x0[e], x1[e])
        mask[int(vr[e])] |= (xs >= lo - _EPS) & (xs <= hi + _EPS)
    return mask


def _mask_window(shape: AreaShape, size_px: tuple[int, int]) -> tuple[slice, slice, BoolArray]:
    """(rows, columns, mask): the shape's membership on the view pixels it may touch."""
    w, h = size_px
    if isinstance(shape, Rectangle):
        (xa, ya), (xb, yb) = shape.corner_a, shape.corner_b
        lo_x, hi_x, lo_y, hi_y = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
    elif isinstance(shape, Polygon):
        v = np.asarray(shape.vertices, dtype=np.float64)
        (lo_x, lo_y), (hi_x, hi_y) = v.min(axis=0), v.max(axis=0)
    else:
        (cx, cy) = shape.center
        rx, ry = shape.radii if isinstance(shape, Ellipse) else (shape.radius, shape.radius)
        lo_x, hi_x, lo_y, hi_y = cx - rx, cx + rx, cy - ry, cy + ry
    c0, c1 = _span(lo_x, hi_x, w)
    r0, r1 = _span(lo_y, hi_y, h)
    xs, ys = np.arange(c0, c1, dtype=np.float64), np.arange(r0, r1, dtype=np.float64)
    if isinstance(shape, Rectangle):
        mask = (((ys >= lo_y - _EPS) & (ys <= hi_y + _EPS))[:, None]
                & ((xs >= lo_x - _EPS) & (xs <= hi_x + _EPS))[None, :])
    elif isinstance(shape, Polygon):
        mask = _polygon_mask(v, xs, ys)
    else:
        dx = ((xs - cx) / rx) ** 2
        dy = ((ys - cy) / ry) ** 2
        mask = dy[:, None] + dx[None, :] <= 1.0 + _EPS
    return slice(r0, r1), slice(c0, c1), mask


def roi_mask(shape: AreaShape, size_px: tuple[int, int]) -> BoolArray:
    """Boolean ``(h, w)`` mask of the pixels of a ``size_px`` = (w, h) view whose centre is
    inside ``shape``: an ROI, or an occlusion mask (R33)."""
    if not isinstance(shape, _AREA_TYPES):
        raise MeasureError(f"a mask needs an area shape, got {shape.kind}", field="type")
    rows, cols, window = _mask_window(shape, size_px)
    mask = np.zeros((size_px[1], size_px[0]), dtype=bool)
    mask[rows, cols] = window
    return mask


# -- measurements -------------------------------------------------------------------------------


def _host_values(values: Any, plane: Plane) -> FloatArray:
    v = np.asarray(to_host(values))
    w, h = plane.size_px
    if v.shape != (h, w):
        raise MeasureError(f"values shape {v.shape} is not the plane's (h, w) = {(h, w)}")
    return v if np.issubdtype(v.dtype, np.floating) else v.astype(np.float32)


def _interpolate(values: FloatArray, xs: FloatArray, ys: FloatArray) -> npt.NDArray[np.float64]:
    """Bilinear between pixel centres; NaN outside the view (ITK rule: -0.5 … n - 0.5).

    Where a neighbour with weight is NaN (the volume's edge), the nearest pixel's value.
    """
    h, w = values.shape
    inside = (xs >= -0.5) & (xs <= w - 0.5) & (ys >= -0.5) & (ys <= h - 0.5)
    cx, cy = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    x0 = np.minimum(np.floor(cx).astype(np.intp), max(w - 2, 0))
    y0 = np.minimum(np.floor(cy).astype(np.intp), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = cx - x0, cy - y0  # float64: the arithmetic below is float64
    with np.errstate(invalid="ignore"):
        out = ((1 - fy) * ((1 - fx) * values[y0, x0] + fx * values[y0, x1])
               + fy * ((1 - fx) * values[y1, x0] + fx * values[y1, x1]))
    nearest = values[np.floor(cy + 0.5).astype(np.intp), np.floor(cx + 0.5).astype(np.intp)]
    out = np.where(np.isnan(out), nearest, out)
    return np.where(inside, out, np.nan)


def _lps(plane: Plane, xy: XY) -> npt.NDArray[np.float64]:
    return plane.pixel_to_patient(xy[1], xy[0])


def _measure_point(values: FloatArray, plane: Plane, shape: Point) -> dict[str, Any]:
    x, y = shape.at
    value = _interpolate(values, np.array([x]), np.array([y]))[0]
    return {"position_px": [x, y], "position_lps": _lps(plane, shape.at).tolist(),
            "value": None if math.isnan(value) else float(value)}


def _measure_line(values: FloatArray, plane: Plane, shape: Line) -> dict[str, Any]:
    start, end = _lps(plane, shape.start), _lps(plane, shape.end)
    length_mm = float(np.linalg.norm(end - start))
    n = int(min(math.ceil(length_mm / plane.pixel_spacing_mm) + 1, MAX_PROFILE_SAMPLES))
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    xs = shape.start[0] + t * (shape.end[0] - shape.start[0])
    ys = shape.start[1] + t * (shape.end[1] - shape.start[1])
    profile = _interpolate(values, xs, ys)
    return {"start_lps": start.tolist(), "end_lps": end.tolist(), "length_mm": length_mm,
            "profile": {"distance_mm": (t * length_mm).tolist(),
                        "values": [None if math.isnan(p) else p for p in profile.tolist()]}}


def _measure_angle(plane: Plane, shape: Angle) -> dict[str, Any]:
    vertex = _lps(plane, shape.vertex)
    u, v = _lps(plane, shape.a) - vertex, _lps(plane, shape.b) - vertex
    angle = math.degrees(math.atan2(float(np.linalg.norm(np.cross(u, v))), float(u @ v)))
    return {"vertex_lps": vertex.tolist(), "angle_deg": angle}


def _roi_values(values: FloatArray, shape: AreaShape) -> tuple[FloatArray, int]:
    """(finite values inside the shape, number of inside pixels that are NaN)."""
    rows, cols, mask = _mask_window(shape, (values.shape[1], values.shape[0]))
    picked = values[rows, cols][mask]
    nan = np.isnan(picked)
    finite = picked[~nan] if nan.any() else picked
    return finite, int(picked.size - finite.size)


def _window_of(lo: float, hi: float) -> tuple[float, float]:
    return (lo + hi) / 2.0, max(hi - lo, 1.0)


def _quantile(ordered: FloatArray, q: float) -> float:
    """The ``q``-th percentile of sorted values, linear interpolation (numpy's default)."""
    pos = q / 100.0 * (ordered.size - 1)
    i = int(math.floor(pos))
    j = min(i + 1, ordered.size - 1)
    return float(ordered[i]) + (pos - i) * (float(ordered[j]) - float(ordered[i]))


def _histogram(ordered: FloatArray, spec: HistogramSpec) -> dict[str, Any]:
    """Counts of sorted values in [e_i, e_i+1), the last bin closed (as ``numpy.histogram``)."""
    if spec.value_range is not None:
        lo, hi = spec.value_range
    elif ordered.size == 0:
        return {"edges": [], "counts": [], "below": 0, "above": 0}
    else:
        lo, hi = float(ordered[0]), float(ordered[-1])
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, spec.bins + 1)
    index = np.searchsorted(ordered, edges, side="left")
    index[-1] = np.searchsorted(ordered, hi, side="right")
    return {"edges": edges.tolist(), "counts": np.diff(index).tolist(),
            "below": int(index[0]), "above": int(ordered.size - index[-1])}


def _measure_area(values: FloatArray, plane: Plane, shape: AreaShape) -> dict[str, Any]:
    ordered, outside = _roi_values(values, shape)  # a fresh array: sorted in place
    ordered.sort()  # one sort serves min, max, median, percentiles and histogram
    pixel_area = plane.pixel_spacing_mm**2
    n = ordered.size
    out: dict[str, Any] = {"count": n, "outside_count": outside, "area_mm2": n * pixel_area,
                           "shape_area_mm2": shape.area_px * pixel_area}
    if n == 0:
        out.update(mean=None, std=None, min=None, max=None, median=None, window=None)
    else:
        center, width = _window_of(*(_quantile(ordered, q) for q in AUTO_WINDOW_PERCENTILES))
        # Float64 sums without float64 temporaries; E[x²] - E[x]² is exact enough at HU/SUV.
        mean = float(ordered.sum(dtype=np.float64)) / n
        square = float(np.einsum("i,i->", ordered, ordered, dtype=np.float64)) / n
        out.update(mean=mean, std=math.sqrt(max(square - mean * mean, 0.0)),
                   min=float(ordered[0]), max=float(ordered[-1]), median=_quantile(ordered, 50.0),
                   window={"center": center, "width": width})
    out["histogram"] = _histogram(ordered, shape.histogram)
    return out


def measure(values: npt.ArrayLike, plane: Plane, shape: Shape, *, units: str) -> dict[str, Any]:
    """Measure ``shape`` on a view: ``values`` (h, w) sampled on ``plane``, NaN outside.

    Every result has ``type`` (the shape's) and ``units`` (of the values: "HU", "SUVbw", …;
    passed through). Then, JSON-ready (no NaN: a missing value is ``None``):

    - point: ``position_px`` [x, y], ``position_lps`` [x, y, z] mm, ``value``: bilinear between
      the four surrounding pixel centres of the sampled plane (at a pixel centre exactly that
      pixel, the volume's trilinear value there; the nearest pixel where a neighbour is NaN);
      ``None`` outside the view or the volume.
    - line: ``start_lps``, ``end_lps``, ``length_mm`` (the patient-space distance of the end
      points: right for any zoom or obliquity), ``profile`` {``distance_mm``, ``values``}
      sampled about once per pixel (at most ``MAX_PROFILE_SAMPLES`` points) with the point rule.
    - angle: ``vertex_lps``, ``angle_deg`` in [0, 180] between the two arms (in patient space).
    - area shapes: ``count`` (pixels measured), ``outside_count`` (inside the shape but NaN),
      ``area_mm2`` = count × pixel_spacing_mm², ``shape_area_mm2`` (the drawn shape's exact
      area), ``mean``, ``std`` (*population* standard deviation, ddof = 0: the pixels are the
      whole region), ``min``, ``max``, ``median``, ``window`` {``center``, ``width``} (the
      :func:`auto_window` rule), ``histogram`` {``edges`` (bins + 1), ``counts``, ``below``,
      ``above``} with ``sum(counts) + below + above == count``. With no pixel measured, the
      statistics and ``window`` are ``None``.

    Raises :class:`MeasureError` when ``values`` is not the plane's (h, w).
    """
    v = _host_values(values, plane)
    if isinstance(shape, _AREA_TYPES):
        result = _measure_area(v, plane, shape)
    elif isinstance(shape, (Point, Line, Angle)):
        result = (_measure_point(v, plane, shape) if isinstance(shape, Point) else
                  _measure_line(v, plane, shape) if isinstance(shape, Line) else
                  _measure_angle(plane, shape))
    else:
        raise MeasureError(f"not a shape: {shape!r}", field="type")
    return {"type": shape.kind, "units": units, **result}


def auto_window(values: npt.ArrayLike, roi: AreaShape | BoolArray,
                plane: Plane) -> tuple[float, float]:
    """ROI-driven window (R34): (center, width) in the values' units.

    Rule: ``lo``, ``hi`` = the 0.5th and 99.5th percentiles (linear interpolation) of the
    finite values inside ``roi`` (an area shape, or a boolean (h, w) mask of the view);
    center = (lo + hi) / 2, width = max(hi - lo, 1) — PS3.3 C.11.2.1.2 requires width >= 1.
    Raises :class:`MeasureError` when the ROI holds no value inside the volume, or for a
    mask of the wrong shape.
    """
    v = _host_values(values, plane)
    if isinstance(roi, _AREA_TYPES):
        finite, _ = _roi_values(v, roi)
    elif (mask := np.asarray(roi)).shape != v.shape or mask.dtype != np.bool_:
        raise MeasureError(f"mask must be bool {v.shape}, got {mask.dtype} {mask.shape}")
    else:
        finite = v[mask & ~np.isnan(v)]
    if finite.size == 0:
        raise MeasureError("the ROI holds no value inside the volume")
    finite.sort()  # boolean indexing made it a fresh array
    return _window_of(*(_quantile(finite, q) for q in AUTO_WINDOW_PERCENTILES))
