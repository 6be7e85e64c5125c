"""DICOMweb volumetric rendering (PS3.18 "Web Services for Volumetric Rendering", Sup 228).

``GET /dicomweb/studies/{study}/series/{series}/volumes/rendered`` renders the volume of a
series from query parameters alone (no Volumetric Presentation State): one image, or a swivel
animation. Sup 228 derives its parameters from the Volumetric Presentation State attributes
(PS3.3 C.11.23-C.11.28) and keeps the behaviour of the PS3.18 ``/rendered`` resources
(§8.3.5: ``viewport``, ``window``, ``quality``; §8.3.3.1: ``accept``). The supplement's own
resource path and keywords could not be confirmed from the sources at hand, so the path is
VoxCast's choice and a parameter is named after the lower-cased keyword of the VPS attribute it
stands for; VoxCast's own additions are listed as extensions (README table).

- ``renderingmethod``: VPS Rendering Method (0070,120D), ``MAXIMUM_IP``, ``MINIMUM_IP``,
  ``AVERAGE_IP``; plus ``MPR`` (thin plane) and ``VOLUME_RENDERED``; aliases ``mip``,
  ``minip``, ``avgip``, ``vr`` (case-insensitive). Without ``mprslabthickness`` an IP method
  projects the whole volume (3D rays); with it, a slab about the plane (MPR slab).
- ``mprslabthickness``: MPR Slab Thickness (0070,1503), mm; alone it means an AVERAGE_IP slab.
- ``viewpointposition``, ``viewpointlookatpoint``, ``viewpointupdirection``: Viewpoint
  Position / LookAt Point / Up Direction (0070,1603-1605), ``x,y,z`` in patient LPS mm; the
  view looks from the position to the look-at point, the image centre; up defaults to the head.
- ``renderprojection``: Render Projection (0070,1602), ``ORTHOGRAPHIC`` (default) or
  ``PERSPECTIVE`` (3D methods only; a 30° view angle sets the eye distance, not
  ``viewpointposition``).
- ``presentationanimationstyle``: (0070,1A01), ``SWIVEL`` only. ``swivelrange`` (0070,1A06):
  degrees, default 360, turning about the view's up direction through the image centre,
  starting at the initial view. ``animationstepsize`` (0070,1A05): degrees per frame.
  ``recommendedanimationrate`` (0070,1A03): frames per second of GIF/APNG (default 10).
- ``viewport``, ``window``, ``quality``, ``accept``: as for PS3.18 ``/rendered``.

Extensions: ``numberofframes`` (instead of ``animationstepsize``), ``orientation``
(``axial|coronal|sagittal|acquisition``, default coronal for 3D, axial for MPR), ``position``
(mm along the orientation's normal), ``orbit=azimuth,elevation`` and ``rotation`` (degrees),
``zoom``, ``pan=x,y`` (pixels), ``windowpreset``, ``colormap``, ``invert``, ``vrpreset``,
``shading``. Unknown parameters are 400, so that a typo never renders a silently different view.

Media types: one frame as ``image/jpeg`` (default, PS3.18 §8.7.4), ``image/png`` or
``image/gif``; an animation as ``image/gif`` (default), animated PNG (``image/png`` or
``image/apng``) or ``multipart/related; type="image/png"`` (or ``image/jpeg``), one part a
frame in order. ``X-Swivel-Angles-Deg`` lists each frame's angle.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web
from PIL import Image

from ingest import queries
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Orientation, Plane, Slab
from render_engine.view import Render3D, ViewState, ViewStateError, Window
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.dicomweb.common import MediaRange, MultipartWriter, accepted, parse_media_type
from streaming.render_api import encode, render_frame
from streaming.runtime import Runtime
from streaming.volumes import render_volume

PREFIX = "/dicomweb"
MAX_SIDE_PX = 2048          # one rendered image
MAX_ANIMATION_SIDE_PX = 1024
MAX_FRAMES = 120
MAX_ANIMATION_PIXELS = 40_000_000  # frames × width × height
DEFAULT_VIEWPORT = (512, 512)
DEFAULT_RATE = 10.0

_METHODS = {"mpr": "mpr", "maximum_ip": "mip", "minimum_ip": "minip", "average_ip": "avgip",
            "volume_rendered": "vr", "mip": "mip", "minip": "minip", "avgip": "avgip",
            "vr": "vr"}
_IMAGE_FORMATS = {"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif"}
KNOWN_PARAMETERS = frozenset({
    "renderingmethod", "mprslabthickness", "viewpointposition", "viewpointlookatpoint",
    "viewpointupdirection", "renderprojection", "presentationanimationstyle", "swivelrange",
    "animationstepsize", "recommendedanimationrate", "viewport", "window", "quality", "accept",
    "numberofframes", "orientation", "position", "orbit", "rotation", "zoom", "pan",
    "windowpreset", "colormap", "invert", "vrpreset", "shading",
    "token",  # the auth middleware's alternative to the Authorization header
})


# -- query parameters ----------------------------------------------------------------------

def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, f"query parameter {name!r} {message}")


def _numbers(query: Mapping[str, str], name: str, count: int | tuple[int, ...]
             ) -> tuple[float, ...] | None:
    raw = query.get(name)
    if raw is None:
        return None
    counts = (count,) if isinstance(count, int) else count
    try:
        values = tuple(float(p) for p in raw.split(","))
    except ValueError:
        values = ()
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        want = " or ".join(str(c) for c in counts)
        raise _bad(name, f"must be {want} comma-separated finite numbers, got {raw!r}")
    return values


def _number(query: Mapping[str, str], name: str, *, lo: float, hi: float,
            lo_open: bool = False) -> float | None:
    values = _numbers(query, name, 1)
    if values is None:
        return None
    value = values[0]
    if not (lo < value <= hi if lo_open else lo <= value <= hi):
        bracket = "(" if lo_open else "["
        raise _bad(name, f"must be within {bracket}{lo:g}, {hi:g}], got {value:g}")
    return value


def _choice(query: Mapping[str, str], name: str, options: tuple[str, ...]) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in options:
        raise _bad(name, f"must be one of {', '.join(options)}; got {raw!r}")
    return value


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    value = _choice(query, name, ("true", "false", "yes", "no", "1", "0"))
    return None if value is None else value in ("true", "yes", "1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Swivel:
    """A swivel animation: frame ``i`` turned by ``angles_deg[i]`` about the view's up axis."""

    angles_deg: tuple[float, ...]
    rate_fps: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumetricRequest:
    """The rendering a request asks for, validated, before any volume is looked at."""

    method: str                               # mpr | mip | minip | avgip | vr
    slab_mm: float | None = None
    viewpoint: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...] | None] | None
    orientation: Orientation
    position_mm: float | None = None
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
    swivel: Swivel | None = None
    quality: int = 90


def _swivel(query: Mapping[str, str]) -> Swivel | None:
    names = ("swivelrange", "animationstepsize", "numberofframes", "recommendedanimationrate")
    style = _choice(query, "presentationanimationstyle", ("swivel", "input_seq", "flythrough"))
    if style is None:
        given = [n for n in names if n in query]
        if given:
            raise _bad(given[0], "needs presentationanimationstyle=SWIVEL")
        return None
    if style != "swivel":
        raise _bad("presentationanimationstyle", f"{style.upper()} is not served; only SWIVEL")
    range_deg = _number(query, "swivelrange", lo=0.0, hi=360.0, lo_open=True) or 360.0
    step = _number(query, "animationstepsize", lo=0.0, hi=360.0, lo_open=True)
    frames = _number(query, "numberofframes", lo=1, hi=MAX_FRAMES)
    rate = _number(query, "recommendedanimationrate", lo=0.0, hi=100.0, lo_open=True)
    full = abs(range_deg - 360.0) < 1e-9
    if step is not None and frames is not None:
        raise _bad("numberofframes", "and 'animationstepsize' say the same thing: give one")
    if frames is not None:
        if frames != int(frames):
            raise _bad("numberofframes", f"must be an integer, got {frames:g}")
        n = int(frames)
        step = range_deg / (n if full or n == 1 else n - 1)
    else:
        if step is None:  # server's choice: 10° steps over a full turn, else 11 frames
            step = 10.0 if full else range_deg / 10
        n = math.ceil(range_deg / step - 1e-9) if full else math.floor(range_deg / step + 1e-9) + 1
    if n > MAX_FRAMES:
        raise _bad("animationstepsize", f"gives {n} frames over {range_deg:g}°; at most "
                                        f"{MAX_FRAMES} are rendered")
    return Swivel(angles_deg=tuple(i * step for i in range(n)), rate_fps=rate or DEFAULT_RATE)


def _window(query: Mapping[str, str]) -> Window | None:
    raw = query.get("window")
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) == 3:  # PS3.18 §8.3.5.1.4: center,width,function
        if parts[2].lower() != "linear":
            raise _bad("window", f"function {parts[2]!r} is not served; VoxCast applies the "
                                 "LINEAR VOI function (PS3.3 C.11.2.1.2.1)")
        parts = parts[:2]
    values = _numbers({"window": ",".join(parts)}, "window", 2)
    assert values is not None
    if values[1] < 1:
        raise _bad("window", f"width must be >= 1, got {values[1]:g}")
    return Window(center=values[0], width=values[1])


def _viewport(query: Mapping[str, str], animated: bool) -> tuple[int, int]:
    values = _numbers(query, "viewport", (2, 4, 6))
    if values is None:
        return DEFAULT_VIEWPORT
    if len(values) != 2:
        raise _bad("viewport", "source region (sx,sy,sw,sh) is not served; use zoom and pan")
    side = MAX_ANIMATION_SIDE_PX if animated else MAX_SIDE_PX
    w, h = values
    if w != int(w) or h != int(h) or not (1 <= w <= side and 1 <= h <= side):
        raise _bad("viewport", f"must be two integers within 1..{side}, got {query['viewport']!r}")
    return int(w), int(h)


def parse_request(query: Mapping[str, str]) -> VolumetricRequest:
    """Validate the query parameters (module docstring); raises :class:`ApiError` 400 that
    names the parameter at fault."""
    unknown = sorted(set(query) - KNOWN_PARAMETERS)
    if unknown:
        raise _bad(unknown[0], f"is not known here; known: {', '.join(sorted(KNOWN_PARAMETERS))}")
    getall = getattr(query, "getall", None)  # a MultiDict: each parameter once
    repeated = [n for n in set(query) if getall is not None and len(getall(n)) > 1]
    if repeated:
        raise _bad(sorted(repeated)[0], "is given more than once")
    raw_method = query.get("renderingmethod")
    method = _METHODS.get((raw_method or "").strip().lower()) if raw_method else None
    if raw_method is not None and method is None:
        raise _bad("renderingmethod", "must be MPR, MAXIMUM_IP, MINIMUM_IP, AVERAGE_IP or "
                                      f"VOLUME_RENDERED; got {raw_method!r}")
    slab = _number(query, "mprslabthickness", lo=0.0, hi=2000.0)
    if method is None:
        method = "avgip" if slab else "mpr"
    if slab is not None and method in ("vr", "mpr") and slab > 0:
        raise _bad("mprslabthickness", f"applies to MAXIMUM_IP, MINIMUM_IP and AVERAGE_IP, "
                                       f"not to {raw_method}")
    three_d = method == "vr" or (method != "mpr" and slab is None)
    position = _numbers(query, "viewpointposition", 3)
    look_at = _numbers(query, "viewpointlookatpoint", 3)
    up = _numbers(query, "viewpointupdirection", 3)
    if (position is None) != (look_at is None):
        raise _bad("viewpointposition" if position is None else "viewpointlookatpoint",
                   "is needed with the other viewpoint parameter")
    if up is not None and position is None:
        raise _bad("viewpointupdirection", "needs viewpointposition and viewpointlookatpoint")
    orientation = _choice(query, "orientation", tuple(o.value for o in Orientation))
    for name in ("orientation", "position"):
        if position is not None and name in query:
            raise _bad(name, "conflicts with viewpointposition; give one of them")
    projection = _choice(query, "renderprojection", ("orthographic", "perspective"))
    if projection == "perspective" and not three_d:
        raise _bad("renderprojection", "PERSPECTIVE applies to 3D methods (an IP through the "
                                       "whole volume or VOLUME_RENDERED), not to MPR")
    swivel = _swivel(query)
    viewport = _viewport(query, swivel is not None)
    if swivel is not None and len(swivel.angles_deg) * viewport[0] * viewport[1] > \
            MAX_ANIMATION_PIXELS:
        raise _bad("viewport", f"times {len(swivel.angles_deg)} frames exceeds "
                               f"{MAX_ANIMATION_PIXELS} pixels; ask for fewer or smaller frames")
    orbit = _numbers(query, "orbit", 2) or (0.0, 0.0)
    pan = _numbers(query, "pan", 2) or (0.0, 0.0)
    quality = _number(query, "quality", lo=1, hi=100)
    if quality is not None and quality != int(quality):
        raise _bad("quality", f"must be an integer 1-100, got {query['quality']!r}")
    vr_preset = query.get("vrpreset")
    if vr_preset is not None and method != "vr":
        raise _bad("vrpreset", "applies to renderingmethod=VOLUME_RENDERED only")
    return VolumetricRequest(
        method=method, slab_mm=slab if method != "mpr" else None,
        viewpoint=(position, look_at, up) if position is not None and look_at is not None
        else None,
        orientation=Orientation(orientation or ("coronal" if three_d else "axial")),
        position_mm=_number(query, "position", lo=-1e5, hi=1e5),
        projection=projection or "orthographic", viewport=viewport, window=_window(query),
        window_preset=query.get("windowpreset"), colormap=query.get("colormap", "grey"),
        invert=bool(_flag(query, "invert")), vr_preset=vr_preset,
        shading=_flag(query, "shading") is not False, orbit_deg=(orbit[0], orbit[1]),
        rotation_deg=_number(query, "rotation", lo=-3600.0, hi=3600.0) or 0.0,
        zoom=_number(query, "zoom", lo=0.0, hi=100.0, lo_open=True) or 1.0,
        pan_px=(pan[0], pan[1]), swivel=swivel,
        quality=int(quality) if quality is not None else 90)


# -- view states ---------------------------------------------------------------------------

def viewpoint_plane(geometry: VolumeGeometry, position: npt.ArrayLike, look_at: npt.ArrayLike,
                    up: npt.ArrayLike | None, size_px: tuple[int, int]) -> Plane:
    """The image plane of a VPS viewpoint (PS3.3 C.11.27): centred on the look-at point,
    looking from ``position`` towards it (the plane's normal), ``up`` towards the top of the
    screen (default the patient's head, or anterior when looking along the body axis); the
    pixel spacing fits the whole volume box (voxel centres) into ``size_px``. LPS mm.
    Raises :class:`ApiError` 400 for a degenerate viewpoint."""
    eye, centre = np.asarray(position, dtype=float), np.asarray(look_at, dtype=float)
    view = centre - eye
    if np.linalg.norm(view) < 1e-6:
        raise _bad("viewpointlookatpoint", "must differ from viewpointposition")
    view /= np.linalg.norm(view)
    if up is None:
        up_dir = np.array([0.0, 0.0, 1.0]) if abs(view[2]) < 0.99 else np.array([0.0, -1.0, 0.0])
    else:
        up_dir = np.asarray(up, dtype=float)
    down = -(up_dir - (up_dir @ view) * view)
    if np.linalg.norm(down) < 1e-6 * max(1.0, float(np.linalg.norm(up_dir))):
        raise _bad("viewpointupdirection", "must be non-zero and not parallel to the viewing "
                                           "direction")
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


def view_states(req: VolumetricRequest, series_uid: str,
                geometry: VolumeGeometry) -> list[ViewState]:
    """One :class:`ViewState` per frame (one unless a swivel). Raises :class:`ApiError` 400
    for names the engine does not know (presets, colour maps)."""
    where: dict[str, Any]
    if req.viewpoint is not None:
        position, look_at, up = req.viewpoint
        where = {"plane": viewpoint_plane(geometry, position, look_at, up, req.viewport)}
    else:
        where = {"orientation": req.orientation, "position_mm": req.position_mm}
    render3d: Render3D | None = None
    slab: Slab | None = None
    try:
        if req.method == "vr":
            render3d = Render3D(method="vr", preset=req.vr_preset,
                                projection=req.projection,  # type: ignore[arg-type]
                                shading=req.shading)
        elif req.slab_mm is None and req.method != "mpr":
            render3d = Render3D(method=req.method,  # type: ignore[arg-type]
                                projection=req.projection)  # type: ignore[arg-type]
        elif req.slab_mm is not None:
            slab = Slab(thickness_mm=req.slab_mm, mode=req.method)
        first = ViewState(series_uid=series_uid, size_px=req.viewport, orbit_deg=req.orbit_deg,
                          rotation_deg=req.rotation_deg, zoom=req.zoom, pan_px=req.pan_px,
                          slab=slab, window=req.window, preset=req.window_preset,
                          invert=req.invert, colormap=req.colormap, render3d=render3d, **where)
    except ViewStateError as exc:
        text = str(exc)
        name = ("windowpreset" if "window preset" in text else "colormap" if "colour map" in text
                else "vrpreset" if "rendering preset" in text else "renderingmethod")
        raise _bad(name, f"is not accepted: {text}") from None
    if req.swivel is None:
        return [first]
    azimuth, elevation = req.orbit_deg
    return [replace(first, orbit_deg=(azimuth + a, elevation)) for a in req.swivel.angles_deg]


def volume_geometry(runtime: Runtime, study: str, series: str) -> VolumeGeometry:
    """The geometry of the series' volume; 404 for an unknown study/series pair or a series
    without a volume (not an image stack), 409 while it is being built, 422 if it failed."""
    info = queries.get_series(runtime.catalog, series)  # NotFoundError → 404
    if info["study_uid"] != study:
        raise ApiError(404, f"series {series} is not in study {study}")
    if not info["volume_path"]:
        state = info["volume_state"]
        if state == "not_volumetric":
            raise ApiError(404, f"series {series} ({info['modality']}) is not volumetric: it is "
                                "not a stack of images and has no volume to render")
        if state == "failed":
            raise ApiError(422, f"the volume of series {series} could not be built")
        raise ApiError(409, f"the volume of series {series} is not built yet (state {state})")
    return render_volume(runtime, series).geometry


# -- media types and responses -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    kind: str        # image | animated | multipart
    fmt: str         # jpeg | png | gif
    content_type: str


def _choose(r: MediaRange, animated: bool) -> Output | None:
    if r.media_type == "multipart/related":
        part = r.part_type or "image/png"
        fmt = {"image/png": "png", "image/jpeg": "jpeg"}.get(part)
        return Output("multipart", fmt, part) if fmt else None
    if r.media_type in ("*/*", "image/*"):
        return Output("animated", "gif", "image/gif") if animated else Output(
            "image", "jpeg", "image/jpeg")
    if r.media_type == "image/apng" and animated:
        return Output("animated", "png", "image/apng")
    fmt = _IMAGE_FORMATS.get(r.media_type)
    if fmt is None or (animated and fmt == "jpeg"):
        return None
    return Output("animated" if animated else "image", fmt, r.media_type)


def negotiate_output(request: web.Request, animated: bool) -> Output:
    """The response form from the ``accept`` query parameter (PS3.18 §8.3.3.1, it overrides
    the header) or the Accept header; 406 naming what is offered."""
    raw = request.query.get("accept")
    if raw is not None:
        items = re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', raw)
        ranges = sorted((parse_media_type(i) for i in items if i.strip()), key=lambda r: -r.q)
    else:
        ranges = accepted(request)
    for r in ranges:
        out = _choose(r, animated)
        if out is not None:
            return out
    offered = ("image/gif, image/png (APNG), image/apng, multipart/related; type=\"image/png\" "
               "or \"image/jpeg\"") if animated else ("image/jpeg, image/png, image/gif, "
                                                      "multipart/related")
    raise ApiError(406, f"none of the acceptable media types can be served here; this "
                        f"resource offers {offered}")


def encode_frame(pixels: npt.NDArray[np.uint8], fmt: str, quality: int) -> bytes:
    if fmt == "gif":
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="GIF")
        return buf.getvalue()
    return encode(pixels, fmt, quality=quality)


def encode_animation(frames: list[npt.NDArray[np.uint8]], fmt: str, rate_fps: float) -> bytes:
    """Animated GIF or PNG (APNG) of ``frames``, looping, ``rate_fps`` frames a second."""
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    duration = max(10, round(1000.0 / rate_fps))
    options: dict[str, Any] = {"save_all": True, "append_images": images[1:], "loop": 0,
                               "duration": duration}
    if fmt == "png":
        options |= {"compress_level": 1, "default_image": False}
    images[0].save(buf, format="GIF" if fmt == "gif" else "PNG", **options)
    return buf.getvalue()


async def rendered_volume(request: web.Request) -> web.StreamResponse:
    """``GET …/studies/{study}/series/{series}/volumes/rendered`` (module docstring)."""
    req = parse_request(request.query)
    out = negotiate_output(request, req.swivel is not None)
    runtime = request.app[RUNTIME]
    study, series = request.match_info["study"], request.match_info["series"]
    geometry = await run_blocking(request, volume_geometry, runtime, study, series)
    states = view_states(req, series, geometry)
    first = await run_blocking(request, render_frame, runtime, states[0])
    if req.window is None and req.window_preset is None and req.method != "vr":
        # a default window may follow the frame's values: keep the first frame's for all
        states = [states[0]] + [replace(s, window=first.window) for s in states[1:]]
    headers = {"X-Window": f"{first.window.center:g},{first.window.width:g}"}
    if first.plane is not None:
        headers["X-Plane"] = json.dumps(first.plane.to_json(), separators=(",", ":"))
    if req.swivel is not None:
        headers["X-Swivel-Angles-Deg"] = ",".join(f"{a:g}" for a in req.swivel.angles_deg)
    if out.kind == "multipart":
        writer = MultipartWriter(request, out.content_type)
        writer.response.headers.update(headers)
        frame = first
        for i, state in enumerate(states):
            if i:
                frame = await run_blocking(request, render_frame, runtime, state)
            body = await run_blocking(request, encode_frame, frame.pixels, out.fmt, req.quality)
            await writer.part(body, out.content_type)
        return await writer.finish()
    if out.kind == "image":
        body = await run_blocking(request, encode_frame, first.pixels, out.fmt, req.quality)
        return web.Response(body=body, content_type=out.content_type, headers=headers)
    pixels = [first.pixels]
    for state in states[1:]:
        pixels.append((await run_blocking(request, render_frame, runtime, state)).pixels)
    assert req.swivel is not None
    body = await run_blocking(request, encode_animation, pixels, out.fmt, req.swivel.rate_fps)
    return web.Response(body=body, content_type=out.content_type, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/studies/{{study}}/series/{{series}}/volumes/rendered",
                       rendered_volume)
