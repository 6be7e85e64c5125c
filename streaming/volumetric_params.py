"""Query parameters of the PS3.18 Rendered MPR / Rendered 3D Volume resources (§8.3.5.3).

Validates a request's parameters into a :class:`VolumetricRequest` (before any volume is
looked at), turns an anatomic ``orientation`` or a camera (``viewpointposition``,
``viewpointlookat``, ``viewpointup``) into an image plane, and writes the Rendered Volume
Response Module (PS3.18 Annex K, Table K.1-1) of what was actually rendered. The semantics, and
the VoxCast extensions, are documented in :mod:`streaming.volumetric` and the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.geometry import VolumeGeometry
from render_engine.planes import Orientation, Plane
from render_engine.view import Window
from streaming.app import ApiError

MAX_SIDE_PX = 2048          # one rendered image
MAX_ANIMATION_SIDE_PX = 1024
MAX_FRAMES = 120
MAX_ANIMATION_PIXELS = 40_000_000  # frames × width × height
DEFAULT_VIEWPORT = (512, 512)
DEFAULT_RATE = 10                  # frames (steps) per second when animationrate is absent
DEFAULT_CURVE_FRAMES = 32          # cross-curve frames when animationstepsize is absent

MPR, THREE_D = "mpr", "3d"         # the two resources (§10.4.1.1.7, §10.4.1.1.8)
# §8.3.5.3.3 values → VoxCast's method names; the values are the lower-cased Rendering Method
# (0070,120D) terms, written back upper-cased in the response module
METHODS = {"volume_rendered": "vr", "maximum_ip": "mip", "minimum_ip": "minip",
           "average_ip": "avgip"}
METHOD_TERMS = {v: k.upper() for k, v in METHODS.items()}
# §8.3.5.3.4: the camera looks from that side of the patient; (view direction, up) in LPS
ANATOMIC = {"a": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), "p": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
            "r": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)), "l": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
            "h": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)), "f": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0))}
STANDARD_PARAMETERS = frozenset({
    "volumeinputreference", "match", "renderingmethod", "orientation", "viewpointposition",
    "viewpointlookat", "viewpointup", "mprslab", "swivelrange", "volumetriccurvepoint",
    "animationstepsize", "animationrate", "renderedvolumetricmetadata",
    "viewport", "window", "quality", "accept"})  # the last four: §8.3.5.1, §8.3.3.1
EXTENSIONS = frozenset({
    "numberofframes", "plane", "position", "orbit", "rotation", "zoom", "pan", "windowpreset",
    "colormap", "invert", "vrpreset", "shading", "renderprojection", "cpr"})
KNOWN_PARAMETERS = STANDARD_PARAMETERS | EXTENSIONS | {"token"}  # token: the auth middleware's
REPEATABLE = frozenset({"volumetriccurvepoint"})


def bad(name: str, message: str) -> ApiError:
    return ApiError(400, f"query parameter {name!r} {message}")


def numbers(query: Mapping[str, str], name: str, count: int | tuple[int, ...],
            raw: str | None = None) -> tuple[float, ...] | None:
    raw = query.get(name) if raw is None else raw
    if raw is None:
        return None
    counts = (count,) if isinstance(count, int) else count
    try:
        values = tuple(float(p) for p in raw.split(","))
    except ValueError:
        values = ()
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        want = " or ".join(str(c) for c in counts)
        raise bad(name, f"must be {want} comma-separated finite numbers, got {raw!r}")
    return values


def number(query: Mapping[str, str], name: str, *, lo: float, hi: float,
           lo_open: bool = False, integer: bool = False) -> float | None:
    values = numbers(query, name, 1)
    if values is None:
        return None
    value = values[0]
    if not (lo < value <= hi if lo_open else lo <= value <= hi):
        bracket = "(" if lo_open else "["
        raise bad(name, f"must be within {bracket}{lo:g}, {hi:g}], got {value:g}")
    if integer and value != int(value):
        raise bad(name, f"must be an integer, got {value:g}")
    return value


def choice(query: Mapping[str, str], name: str, options: Sequence[str]) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in options:
        raise bad(name, f"must be one of {', '.join(options)}; got {raw!r}")
    return value


def flag(query: Mapping[str, str], name: str) -> bool | None:
    value = choice(query, name, ("true", "false", "yes", "no", "1", "0"))
    return None if value is None else value in ("true", "yes", "1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Animation:
    """``swivel``: frame ``i`` turned by ``i * step`` degrees about the up axis through the
    look-at point (§8.3.5.3.9); ``crosscurve``: frame ``i`` the plane across the curve at arc
    length ``i * step`` mm (§8.3.5.3.10, PS3.3 C.11.29 CROSSCURVE)."""

    style: str          # swivel | crosscurve
    step: float         # degrees | mm
    frames: int | None  # swivel: known now; crosscurve: from the curve's length
    range_deg: float | None
    rate: int
    rate_given: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumetricRequest:
    """The rendering a request asks for, validated, before any volume is looked at."""

    resource: str                             # mpr | 3d
    method: str                               # mip | minip | avgip | vr
    slab_mm: float | None = None              # renderedMPR: None = thin
    anatomic: str | None = None               # a p r l h f
    viewpoint: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...] | None] | None
    plane_ext: Orientation | None = None      # extension: VoxCast standard orientation
    position_mm: float | None = None
    curve: tuple[tuple[float, float, float], ...] | None = None
    cpr_mode: str | None = None               # extension: straightened | stretched
    projection: str = "orthographic"
    viewport: tuple[int, int] = DEFAULT_VIEWPORT
    window: Window | None = None
    window_preset: str | None = None
    colormap: str = "grey"
    invert: bool = False
    vr_preset: str | None = None
    shading: bool = True
    orbit_deg: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    zoom: float = 1.0
    pan_px: tuple[float, float] = (0.0, 0.0)
    animation: Animation | None = None
    quality: int = 90
    metadata: bool = False
    input_reference: str | None = None


def _window(query: Mapping[str, str]) -> Window | None:
    raw = query.get("window")
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) == 3:  # PS3.18 §8.3.5.1.4: center,width,function
        if parts[2].lower() != "linear":
            raise bad("window", f"function {parts[2]!r} is not served; VoxCast applies the "
                                "LINEAR VOI function (PS3.3 C.11.2.1.2.1)")
        parts = parts[:2]
    values = numbers({}, "window", 2, raw=",".join(parts))
    assert values is not None
    if values[1] < 1:
        raise bad("window", f"width must be >= 1, got {values[1]:g}")
    return Window(center=values[0], width=values[1])


def _viewport(query: Mapping[str, str], animated: bool) -> tuple[int, int]:
    values = numbers(query, "viewport", (2, 4, 6))
    if values is None:
        return DEFAULT_VIEWPORT
    if len(values) != 2:
        raise bad("viewport", "source region (sx,sy,sw,sh) is not served; use zoom and pan")
    side = MAX_ANIMATION_SIDE_PX if animated else MAX_SIDE_PX
    w, h = values
    if w != int(w) or h != int(h) or not (1 <= w <= side and 1 <= h <= side):
        raise bad("viewport", f"must be two integers within 1..{side}, got {query['viewport']!r}")
    return int(w), int(h)


def _curve(query: Any) -> tuple[tuple[float, float, float], ...] | None:
    getall = getattr(query, "getall", None)
    raws = list(getall("volumetriccurvepoint", [])) if getall else (
        [query["volumetriccurvepoint"]] if "volumetriccurvepoint" in query else [])
    if not raws:
        return None
    values: list[float] = []
    for raw in raws:
        parsed = numbers({}, "volumetriccurvepoint", tuple(range(3, 3 * 10_000 + 1, 3)), raw=raw)
        assert parsed is not None
        values.extend(parsed)
    points = tuple((values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3))
    if len(points) < 2:
        raise bad("volumetriccurvepoint", "needs at least two points (x,y,z in patient mm)")
    return points


def _animation(query: Mapping[str, str], resource: str, curve: bool) -> Animation | None:
    swivel_range = number(query, "swivelrange", lo=0.0, hi=360.0, lo_open=True)
    step = number(query, "animationstepsize", lo=0.0, hi=1e5, lo_open=True)
    frames = number(query, "numberofframes", lo=1, hi=MAX_FRAMES, integer=True)
    rate = number(query, "animationrate", lo=0.0, hi=1000.0, lo_open=True, integer=True)
    if step is not None and frames is not None:
        raise bad("numberofframes", "and 'animationstepsize' say the same thing: give one")
    rate_i = int(rate) if rate is not None else DEFAULT_RATE
    if curve and resource == MPR and query.get("cpr") is None:
        if swivel_range is not None:
            raise bad("swivelrange", "and 'volumetriccurvepoint' are two animations: give one")
        return Animation(style="crosscurve", step=step or 0.0, frames=int(frames or 0) or None,
                         range_deg=None, rate=rate_i, rate_given=rate is not None)
    if swivel_range is None and step is None and frames is None:
        if rate is not None:
            raise bad("animationrate", "needs an animation: swivelrange, animationstepsize or "
                                       "volumetriccurvepoint")
        return None
    if curve:
        raise bad("swivelrange" if swivel_range else "animationstepsize",
                  "does not apply to a CPR image (cpr=…)")
    range_deg = swivel_range or 360.0
    if step is not None and step > 360.0:
        raise bad("animationstepsize", f"is degrees of swivel, at most 360; got {step:g}")
    if frames is not None:
        step = range_deg / frames
    elif step is None:  # server's choice: even steps of at most 10°
        step = range_deg / math.ceil(range_deg / 10.0 - 1e-9)
    n = max(1, math.ceil(range_deg / step - 1e-9))  # §8.3.5.3.9: swivel range / step frames
    if n > MAX_FRAMES:
        raise bad("animationstepsize", f"gives {n} frames over {range_deg:g}°; at most "
                                       f"{MAX_FRAMES} are rendered")
    return Animation(style="swivel", step=step, frames=n, range_deg=range_deg, rate=rate_i,
                     rate_given=rate is not None)


def _check_names(query: Any, resource: str) -> None:
    unknown = sorted(set(query) - KNOWN_PARAMETERS)
    if unknown:
        raise bad(unknown[0], f"is not known here; known: {', '.join(sorted(KNOWN_PARAMETERS))}")
    getall = getattr(query, "getall", None)
    repeated = [n for n in set(query) - REPEATABLE if getall is not None and len(getall(n)) > 1]
    if repeated:
        raise bad(sorted(repeated)[0], "is given more than once")
    if "match" in query:
        raise bad("match", "(attribute matching, §8.3.5.3.2) is not served: a VoxCast series "
                           "is one volume")
    only = {MPR: ("mprslab", "volumetriccurvepoint", "cpr"),
            THREE_D: ("vrpreset", "shading", "renderprojection")}
    for other, names in only.items():
        for name in names:
            if other != resource and name in query:
                where = "renderedMPR" if other == MPR else "rendered3D"
                raise bad(name, f"applies to the {where} resource only")


def parse_request(query: Any, resource: str) -> VolumetricRequest:
    """Validate the query parameters of a ``resource`` (:data:`MPR` or :data:`THREE_D`)
    request; raises :class:`ApiError` 400 that names the parameter at fault."""
    _check_names(query, resource)
    raw_method = query.get("renderingmethod")
    method = METHODS.get((raw_method or "").strip().lower()) if raw_method else None
    if raw_method is not None and method is None:
        raise bad("renderingmethod", f"must be one of {', '.join(METHODS)}; got {raw_method!r}")
    if resource == MPR and method == "vr":
        raise bad("renderingmethod", "volume_rendered is not a slab method of renderedMPR; "
                                     "use rendered3D")
    method = method or ("avgip" if resource == MPR else "vr")  # §8.3.5.3.3 server defaults
    slab = number(query, "mprslab", lo=0.0, hi=2000.0)
    curve = _curve(query)
    cpr_mode = choice(query, "cpr", ("straightened", "stretched"))
    if cpr_mode is not None and curve is None:
        raise bad("cpr", "needs volumetriccurvepoint (at least two points)")
    position = numbers(query, "viewpointposition", 3)
    look_at = numbers(query, "viewpointlookat", 3)
    up = numbers(query, "viewpointup", 3)
    if (position is None) != (look_at is None):
        raise bad("viewpointposition" if position is None else "viewpointlookat",
                  "is needed with the other viewpoint parameter")
    anatomic = choice(query, "orientation", tuple(ANATOMIC))
    plane_ext = choice(query, "plane", tuple(o.value for o in Orientation))
    given = [n for n in ("orientation", "viewpointposition", "plane") if n in query]
    if len(given) > 1:  # §8.3.5.3: two mutually exclusive ways to orient the view
        raise bad(given[1], f"conflicts with {given[0]!r}; give one way to orient the view")
    if up is not None and position is None and not (curve and cpr_mode is None):
        raise bad("viewpointup", "needs viewpointposition and viewpointlookat")
    if "position" in query and position is not None:
        raise bad("position", "conflicts with viewpointposition")
    animation = _animation(query, resource, curve is not None)
    if animation is not None and animation.style == "crosscurve" and given:
        raise bad(given[0], "does not apply: the curve orients each cross-curve frame")
    if cpr_mode is not None and up is not None:
        raise bad("viewpointup", "does not apply to a CPR: its rows run along the curve")
    if cpr_mode is not None and plane_ext is not None:
        raise bad("plane", "does not apply to a CPR; use orientation or the viewpoint")
    projection = choice(query, "renderprojection", ("orthographic", "perspective"))
    viewport = _viewport(query, animation is not None)
    if animation is not None and animation.frames and \
            animation.frames * viewport[0] * viewport[1] > MAX_ANIMATION_PIXELS:
        raise bad("viewport", f"times {animation.frames} frames exceeds "
                              f"{MAX_ANIMATION_PIXELS} pixels; ask for fewer or smaller frames")
    orbit = numbers(query, "orbit", 2) or (0.0, 0.0)
    pan = numbers(query, "pan", 2) or (0.0, 0.0)
    quality = number(query, "quality", lo=1, hi=100, integer=True)
    vr_preset = query.get("vrpreset")
    if vr_preset is not None and method != "vr":
        raise bad("vrpreset", "applies to renderingmethod=volume_rendered only")
    metadata = choice(query, "renderedvolumetricmetadata", ("yes",)) is not None
    return VolumetricRequest(
        resource=resource, method=method, slab_mm=slab or None, anatomic=anatomic,
        viewpoint=(position, look_at, up) if position is not None and look_at is not None
        else None,
        plane_ext=Orientation(plane_ext) if plane_ext else None,
        position_mm=number(query, "position", lo=-1e5, hi=1e5), curve=curve,
        cpr_mode=cpr_mode if curve is not None else None,
        projection=projection or "orthographic", viewport=viewport, window=_window(query),
        window_preset=query.get("windowpreset"), colormap=query.get("colormap", "grey"),
        invert=bool(flag(query, "invert")), vr_preset=vr_preset,
        shading=flag(query, "shading") is not False, orbit_deg=(orbit[0], orbit[1]),
        rotation_deg=number(query, "rotation", lo=-3600.0, hi=3600.0) or 0.0,
        zoom=number(query, "zoom", lo=0.0, hi=100.0, lo_open=True) or 1.0,
        pan_px=(pan[0], pan[1]), animation=animation,
        quality=int(quality) if quality is not None else 90, metadata=metadata,
        input_reference=query.get("volumeinputreference"))


# -- geometry ------------------------------------------------------------------------------

def volume_centre(geometry: VolumeGeometry) -> npt.NDArray[np.float64]:
    nz, ny, nx = geometry.shape
    return np.asarray(geometry.index_to_patient([(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2]),
                      dtype=np.float64)


def anatomic_look_at(geometry: VolumeGeometry, letter: str,
                     position_mm: float | None) -> npt.NDArray[np.float64]:
    """The volume centre, moved to ``position_mm`` (LPS coordinate) along the axis the camera
    of ``letter`` looks along (extension ``position``)."""
    centre = volume_centre(geometry)
    if position_mm is not None:
        axis = int(np.argmax(np.abs(ANATOMIC[letter][0])))
        centre[axis] = position_mm
    return centre


def viewpoint_plane(geometry: VolumeGeometry, position: npt.ArrayLike, look_at: npt.ArrayLike,
                    up: npt.ArrayLike | None, size_px: tuple[int, int]) -> Plane:
    """The image plane of a camera (PS3.3 C.11.30; §8.3.5.3.5-7): centred on the look-at
    point, looking from ``position`` towards it (the plane's normal, row × col), ``up``
    towards the top of the image (default the patient's head, or anterior when looking along
    the body axis); the pixel spacing fits the whole volume box (voxel centres) into
    ``size_px``. LPS mm. Raises :class:`ApiError` 400 for a degenerate camera."""
    eye, centre = np.asarray(position, dtype=float), np.asarray(look_at, dtype=float)
    view = centre - eye
    if np.linalg.norm(view) < 1e-6:
        raise bad("viewpointlookat", "must differ from viewpointposition")
    view /= np.linalg.norm(view)
    if up is None:
        up_dir = np.array([0.0, 0.0, 1.0]) if abs(view[2]) < 0.99 else np.array([0.0, -1.0, 0.0])
    else:
        up_dir = np.asarray(up, dtype=float)
    down = -(up_dir - (up_dir @ view) * view)
    if np.linalg.norm(down) < 1e-6 * max(1.0, float(np.linalg.norm(up_dir))):
        raise bad("viewpointup", "must be non-zero and not parallel to the viewing direction")
    col = down / np.linalg.norm(down)
    row = np.cross(col, view)  # row × col = view: the plane looks along the view direction
    nz, ny, nx = geometry.shape
    corners = geometry.index_to_patient(np.array(
        [[z, y, x] for z in (0, nz - 1) for y in (0, ny - 1) for x in (0, nx - 1)],
        dtype=np.float64)) - centre
    w, h = size_px
    spacing = max(2 * float(np.max(np.abs(corners @ row))) / max(w - 1, 1),
                  2 * float(np.max(np.abs(corners @ col))) / max(h - 1, 1), 1e-6)
    return Plane(center_lps=centre, row_dir=row, col_dir=col, pixel_spacing_mm=spacing,
                 size_px=size_px)


def camera_of(plane: Plane, geometry: VolumeGeometry) -> tuple[list[float], ...]:
    """(position, look-at, up) of the camera whose image is ``plane``: looking along its
    normal at its centre, up the image, from outside the volume (the bounding sphere of its
    voxel centres about the look-at point)."""
    centre = np.asarray(plane.center_lps, dtype=float)
    view = np.cross(plane.row_dir, plane.col_dir)
    nz, ny, nx = geometry.shape
    corners = geometry.index_to_patient(np.array(
        [[z, y, x] for z in (0, nz - 1) for y in (0, ny - 1) for x in (0, nx - 1)],
        dtype=np.float64))
    distance = float(np.max(np.linalg.norm(corners - centre, axis=1))) + 1.0
    return ([float(v) for v in centre - distance * view], [float(v) for v in centre],
            [float(-v) for v in plane.col_dir])


# -- the Rendered Volume Response Module (Annex K) -----------------------------------------

def _fd(values: Sequence[float]) -> dict[str, Any]:
    return {"vr": "FD", "Value": [float(v) for v in values]}


def response_module(req: VolumetricRequest, camera: tuple[list[float], ...],
                    window: Window | None, frames: int, step: float | None,
                    curve: Sequence[Sequence[float]] | None) -> dict[str, Any]:
    """Table K.1-1 as DICOM JSON (PS3.18 F.2): the parameters actually applied."""
    position, look_at, up = camera
    out: dict[str, Any] = {
        "00720510": {"vr": "CS", "Value": ["MPR" if req.resource == MPR else "3D_RENDERING"]},
        "0070120D": {"vr": "CS", "Value": [METHOD_TERMS[req.method]]},
        "00701603": _fd(position), "00701604": _fd(look_at), "00701605": _fd(up)}
    if req.resource == MPR and req.slab_mm:
        out["00701503"] = _fd([req.slab_mm])
    if req.method != "vr" and window is not None:
        out["00281056"] = {"vr": "CS", "Value": ["LINEAR"]}
        out["00281051"] = {"vr": "DS", "Value": [window.width]}
        out["00281050"] = {"vr": "DS", "Value": [window.center]}
    anim = req.animation
    if anim is not None:
        if anim.style == "swivel":
            out["00701A06"] = _fd([anim.range_deg or 360.0])
        elif curve is not None:
            out["00701A04"] = {"vr": "SQ", "Value": [{
                "0070150C": {"vr": "UL", "Value": [len(curve)]},
                "0070150D": _fd([c for p in curve for c in p])}]}
        if step is not None:
            out["00701A05"] = _fd([step])
        out["00701A03"] = _fd([anim.rate])
    return dict(sorted(out.items()))
