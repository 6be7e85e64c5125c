"""DICOMweb volumetric rendering: PS3.18 Rendered MPR / Rendered 3D Volume resources.

Supplement 228, in PS3.18 since 2024d. Resources (§10.4.1.1.7 Rendered MPR Volume, §10.4.1.1.8
Rendered 3D Volume; examples Annex B.32-B.34), under ``/dicomweb``:

- ``/studies/{study}/series/{series}/renderedMPR`` and ``…/rendered3D``: the series' volume;
- ``/studies/{study}/renderedMPR`` and ``…/rendered3D``: the series chosen by
  ``volumeinputreference`` (an instance UID of it, or its series UID), else the study's only
  volumetric series, else 400 naming the candidates;
- lower-case ``renderedmpr`` / ``rendered3d`` (as spelled in B.33, B.34) are the same resources.

Query parameters (§8.3.5.3, Table 8.3.5-3; parsed by :mod:`streaming.volumetric_params`):
``renderingmethod`` (``volume_rendered | maximum_ip | minimum_ip | average_ip``; default
``average_ip`` on renderedMPR, the slab method, and ``volume_rendered`` on rendered3D; a 3D IP
projects the whole volume, orthographic), ``orientation`` (``a p r l h f``: the side of the
patient the camera looks from, up superior, or anterior for ``h``/``f``; default ``f`` = axial
for MPR, ``a`` = coronal for 3D), ``viewpointposition`` / ``viewpointlookat`` /
``viewpointup`` (patient LPS mm; the image is centred on the look-at point; mutually exclusive
with ``orientation``), ``mprslab`` (mm, renderedMPR; absent or 0: a thin MPR),
``swivelrange`` (degrees about the up axis through the look-at point; default 360 when only
``animationstepsize`` is given), ``animationstepsize`` (degrees of swivel, or mm along the curve;
``swivelrange / step`` frames), ``volumetriccurvepoint`` (renderedMPR; repeated, or one list of
x,y,z triplets: a CROSSCURVE animation of planes across the curve, PS3.3 C.11.29),
``animationrate`` (frames per second, integer; default 10), ``renderedvolumetricmetadata=yes``
(answer the Rendered Volume Response Module, Annex K, as application/dicom+json instead of
pixels), ``volumeinputreference``; and from §8.3.5.1 / §8.3.3.1 ``viewport``, ``window``,
``quality``, ``accept``. ``match`` is 400 (not served), as is any unknown parameter.

VoxCast extensions: ``cpr=straightened|stretched`` (with ``volumetriccurvepoint``: one curved
planar reformation image instead of the animation, seen from ``orientation`` / the viewpoint),
``numberofframes`` (instead of ``animationstepsize``), ``plane=axial|coronal|sagittal|
acquisition`` (instead of ``orientation``), ``position`` (mm, LPS coordinate along the viewing
axis), ``orbit``, ``rotation``, ``zoom``, ``pan``, ``windowpreset``, ``colormap``, ``invert``,
``vrpreset``, ``shading``, ``renderprojection`` (rendered3D).

Media types: one frame as ``image/jpeg`` (default, §8.7.4), ``image/png`` or ``image/gif``; an
animation as ``image/gif`` (default), animated PNG (``image/png``, ``image/apng``) or
``multipart/related; type="image/png"`` (or ``image/jpeg``), a frame a part (video/mp4 is not
offered: 406). ``X-Window``, ``X-Plane`` / ``X-CPR``, ``X-Swivel-Angles-Deg`` /
``X-Curve-Arcs-Mm`` describe what was rendered.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web
from PIL import Image
from sqlalchemy import select

from ingest import queries
from ingest.catalog import Instance, Series, Study
from render_engine.curved import CprView, CurvedPath
from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Slab
from render_engine.view import Render3D, ViewState, ViewStateError
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.dicomweb.common import MediaRange, MultipartWriter, accepted, parse_media_type
from streaming.render_api import encode, render_frame
from streaming.runtime import Runtime
from streaming.volumes import published_volume_path, render_volume
from streaming.volumetric_params import (
    ANATOMIC,
    DEFAULT_CURVE_FRAMES,
    MAX_ANIMATION_PIXELS,
    MAX_FRAMES,
    MPR,
    THREE_D,
    VolumetricRequest,
    anatomic_look_at,
    bad,
    camera_of,
    parse_request,
    response_module,
    viewpoint_plane,
)

PREFIX = "/dicomweb"
_IMAGE_FORMATS = {"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif"}
DICOM_JSON = "application/dicom+json"


# -- which volume --------------------------------------------------------------------------

def _series_of_instance(runtime: Runtime, sop_uid: str) -> tuple[str, str] | None:
    with runtime.catalog.session() as session:
        row = session.execute(
            select(Series.series_instance_uid, Study.study_instance_uid)
            .join(Instance, Instance.series_pk == Series.id)
            .join(Study, Series.study_pk == Study.id)
            .where(Instance.sop_instance_uid == sop_uid)).first()
    return (row[0], row[1]) if row else None


def resolve_series(runtime: Runtime, study: str, series: str | None,
                   reference: str | None) -> str:
    """The series whose volume a request renders (module docstring); 404 for UIDs not in
    the study, 400 for an ambiguous study-level request."""
    if reference is not None:
        found = _series_of_instance(runtime, reference)
        if found is None and (series is None or reference == series):
            info = queries.get_series(runtime.catalog, reference)  # a series UID, or 404
            found = (reference, info["study_uid"])
        if found is None or found[1] != study or (series is not None and found[0] != series):
            raise ApiError(404, f"volumeinputreference {reference} is not an instance of "
                                f"{'series ' + series if series else 'study ' + study}")
        return found[0]
    if series is not None:
        return series
    paths = queries.volume_paths(runtime.catalog, study)  # NotFoundError → 404
    if len(paths) != 1:
        raise bad("volumeinputreference", f"is needed: study {study} has {len(paths)} "
                                          f"volumetric series ({', '.join(sorted(paths))})")
    return next(iter(paths))


def volume_geometry(runtime: Runtime, study: str, series: str) -> VolumeGeometry:
    """The geometry of the series' volume; 404 for an unknown study/series pair or a series
    without a volume (not an image stack), 409 while it is being built, 422 if it failed."""
    info = queries.get_series(runtime.catalog, series)  # NotFoundError → 404
    if info["study_uid"] != study:
        raise ApiError(404, f"series {series} is not in study {study}")
    published_volume_path(info)
    return render_volume(runtime, series).geometry


# -- view states ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Views:
    """The frames to render, and what the response module reports of them."""

    states: list[ViewState]
    steps: list[float] | None = None          # swivel degrees, or curve arc mm, per frame
    step: float | None = None
    cpr_camera: tuple[list[float], ...] | None = None


def _view_direction(req: VolumetricRequest, default: str) -> npt.NDArray[np.float64]:
    if req.viewpoint is not None:
        position, look_at, _ = req.viewpoint
        view = np.subtract(look_at, position)
        if np.linalg.norm(view) < 1e-6:
            raise bad("viewpointlookat", "must differ from viewpointposition")
        return np.asarray(view / np.linalg.norm(view), dtype=np.float64)
    return np.asarray(ANATOMIC[req.anatomic or default][0], dtype=np.float64)


def _cpr(req: VolumetricRequest, path: CurvedPath, geometry: VolumeGeometry
         ) -> tuple[dict[str, Any], tuple[list[float], ...]]:
    """A CPR (extension) seen from the requested side: the lateral (image right) direction is
    chord × view, rows run from the first point (top) to the last."""
    points = path.points_lps
    chord = points[-1] - points[0]
    if np.linalg.norm(chord) < 1e-6:
        chord = path.at_arc_mm(path.length_mm)[0] - points[0]
    chord = chord / max(float(np.linalg.norm(chord)), 1e-12)
    view = _view_direction(req, "a")
    lateral = np.cross(chord, view)
    if np.linalg.norm(lateral) < 1e-3:
        raise bad("cpr", "cannot be seen along the curve: choose another orientation")
    lateral /= np.linalg.norm(lateral)
    w, h = req.viewport
    cpr = CprView(path=path, pixel_spacing_mm=path.length_mm / h, width_px=w,
                  mode=req.cpr_mode or "straightened",
                  up_lps=(float(lateral[0]), float(lateral[1]), float(lateral[2])))
    look_at = (points[0] + points[-1]) / 2.0
    distance = float(np.max(np.linalg.norm(points - look_at, axis=1))) + 1.0
    camera = ([float(v) for v in look_at - distance * view], [float(v) for v in look_at],
              [float(-v) for v in chord])
    return {"cpr": cpr}, camera


def view_states(req: VolumetricRequest, series_uid: str, geometry: VolumeGeometry) -> Views:
    """One :class:`ViewState` per frame. Raises :class:`ApiError` 400 for names the engine
    does not know (presets, colour maps) or a degenerate geometry."""
    w, h = req.viewport
    path: CurvedPath | None = None
    cpr_camera = None
    try:
        if req.curve is not None:
            path = CurvedPath(points_lps=np.asarray(req.curve, dtype=np.float64), kind="spline")
    except GeometryError as exc:
        raise bad("volumetriccurvepoint", f"is not a usable curve: {exc}") from None
    where: dict[str, Any]
    if path is not None and req.cpr_mode is not None:
        try:
            where, cpr_camera = _cpr(req, path, geometry)
        except GeometryError as exc:
            raise bad("cpr", f"is not possible here: {exc}") from None
    elif req.viewpoint is not None:
        position, look_at, up = req.viewpoint
        where = {"plane": viewpoint_plane(geometry, position, look_at, up, req.viewport)}
    elif req.plane_ext is not None:
        where = {"orientation": req.plane_ext, "position_mm": req.position_mm}
    elif path is None:
        letter = req.anatomic or ("f" if req.resource == MPR else "a")
        view_dir, up_dir = ANATOMIC[letter]
        centre = anatomic_look_at(geometry, letter, req.position_mm)
        where = {"plane": viewpoint_plane(geometry, centre - np.asarray(view_dir), centre,
                                          up_dir, req.viewport)}
    else:
        where = {}  # cross-curve planes, below
    render3d: Render3D | None = None
    slab: Slab | None = None
    if req.resource == THREE_D:
        render3d = Render3D(method=req.method, preset=req.vr_preset,  # type: ignore[arg-type]
                            projection=req.projection,  # type: ignore[arg-type]
                            shading=req.shading)
    elif req.slab_mm:
        slab = Slab(thickness_mm=req.slab_mm, mode=req.method)
    common: dict[str, Any] = {"series_uid": series_uid, "size_px": (w, h),
              "orbit_deg": req.orbit_deg,
              "rotation_deg": req.rotation_deg, "zoom": req.zoom, "pan_px": req.pan_px,
              "slab": slab, "window": req.window, "preset": req.window_preset,
              "invert": req.invert, "colormap": req.colormap, "render3d": render3d}
    anim = req.animation
    try:
        if anim is not None and anim.style == "crosscurve":
            assert path is not None
            length = path.length_mm
            n = anim.frames or (DEFAULT_CURVE_FRAMES if not anim.step else
                                math.floor(length / anim.step + 1e-9) + 1)
            if n > MAX_FRAMES:
                raise bad("animationstepsize", f"gives {n} frames along {length:.1f} mm of "
                                               f"curve; at most {MAX_FRAMES} are rendered")
            step = anim.step or (length / (n - 1) if n > 1 else length)
            arcs = np.arange(n) * step
            points, tangents = path.at_arc_mm(arcs)
            up = req.viewpoint[2] if req.viewpoint else None
            states = [ViewState(plane=viewpoint_plane(geometry, p - t, p, up, req.viewport),
                                **common) for p, t in zip(points, tangents, strict=True)]
            return Views(states, [float(a) for a in arcs], float(step))
        first = ViewState(**where, **common)
    except ViewStateError as exc:
        text = str(exc)
        name = ("windowpreset" if "window preset" in text else "colormap" if "colour map" in text
                else "vrpreset" if "rendering preset" in text else "renderingmethod")
        raise bad(name, f"is not accepted: {text}") from None
    if anim is None:
        return Views([first], cpr_camera=cpr_camera)
    assert anim.frames is not None
    angles = [i * anim.step for i in range(anim.frames)]
    azimuth, elevation = req.orbit_deg
    return Views([replace(first, orbit_deg=(azimuth + a, elevation)) for a in angles],
                 angles, anim.step)


# -- media types and responses -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    kind: str        # image | animated | multipart | metadata
    fmt: str         # jpeg | png | gif | json
    content_type: str


def _choose(r: MediaRange, animated: bool, metadata: bool) -> Output | None:
    if metadata:
        ok = r.media_type in (DICOM_JSON, "application/json", "application/*", "*/*")
        return Output("metadata", "json", DICOM_JSON) if ok else None
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


def negotiate_output(request: web.Request, animated: bool, metadata: bool) -> Output:
    """The response form from the ``accept`` query parameter (PS3.18 §8.3.3.1, it overrides
    the header) or the Accept header; 406 naming what is offered."""
    raw = request.query.get("accept")
    if raw is not None:
        items = re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', raw)
        ranges = sorted((parse_media_type(i) for i in items if i.strip()), key=lambda r: -r.q)
    else:
        ranges = accepted(request)
    for r in ranges:
        out = _choose(r, animated, metadata)
        if out is not None:
            return out
    offered = DICOM_JSON if metadata else (
        "image/gif, image/png (APNG), image/apng, multipart/related; type=\"image/png\" or "
        "\"image/jpeg\"" if animated else "image/jpeg, image/png, image/gif, multipart/related")
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


async def _rendered_volume(request: web.Request, resource: str) -> web.StreamResponse:
    req = parse_request(request.query, resource)
    animated = req.animation is not None
    out = negotiate_output(request, animated, req.metadata)
    runtime = request.app[RUNTIME]
    study = request.match_info["study"]
    series = await run_blocking(request, resolve_series, runtime, study,
                                request.match_info.get("series"), req.input_reference)
    geometry = await run_blocking(request, volume_geometry, runtime, study, series)
    views = view_states(req, series, geometry)
    states = views.states
    if animated and len(states) * req.viewport[0] * req.viewport[1] > MAX_ANIMATION_PIXELS:
        raise bad("viewport", f"times {len(states)} frames exceeds {MAX_ANIMATION_PIXELS} "
                              "pixels; ask for fewer or smaller frames")
    first = await run_blocking(request, render_frame, runtime, states[0])
    if req.window is None and req.window_preset is None and req.method != "vr":
        # a default window may follow the frame's values: keep the first frame's for all
        states = [states[0]] + [replace(s, window=first.window) for s in states[1:]]
    if out.kind == "metadata":
        camera = views.cpr_camera or camera_of(first.plane, geometry)  # type: ignore[arg-type]
        module = response_module(req, camera, first.window, len(states), views.step, req.curve)
        return web.Response(text=json.dumps(module), content_type=DICOM_JSON)
    headers = {"X-Window": f"{first.window.center:g},{first.window.width:g}"}
    geometry_json = first.geometry_json()
    key, value = next(iter(geometry_json.items()))
    headers["X-Plane" if key == "plane" else "X-CPR"] = json.dumps(value, separators=(",", ":"))
    if views.steps is not None:
        name = "X-Swivel-Angles-Deg" if req.animation and req.animation.style == "swivel" \
            else "X-Curve-Arcs-Mm"
        headers[name] = ",".join(f"{a:g}" for a in views.steps)
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
    assert req.animation is not None
    body = await run_blocking(request, encode_animation, pixels, out.fmt, req.animation.rate)
    return web.Response(body=body, content_type=out.content_type, headers=headers)


async def rendered_mpr(request: web.Request) -> web.StreamResponse:
    """``GET …/renderedMPR`` (PS3.18 §10.4.1.1.7; module docstring)."""
    return await _rendered_volume(request, MPR)


async def rendered_3d(request: web.Request) -> web.StreamResponse:
    """``GET …/rendered3D`` (PS3.18 §10.4.1.1.8; module docstring)."""
    return await _rendered_volume(request, THREE_D)


def add_routes(app: web.Application) -> None:
    for base in (f"{PREFIX}/studies/{{study}}", f"{PREFIX}/studies/{{study}}/series/{{series}}"):
        for name in ("renderedMPR", "renderedmpr"):
            app.router.add_get(f"{base}/{name}", rendered_mpr)
        for name in ("rendered3D", "rendered3d"):
            app.router.add_get(f"{base}/{name}", rendered_3d)
