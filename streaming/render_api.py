"""``POST /api/render``: one frame of a view state (see :mod:`streaming.view_schema`).

Body: a ``ViewState`` as JSON, e.g.::

    {"series_uid": "...",
     "plane": {"center_lps": [x, y, z], "row_dir": [..], "col_dir": [..],
               "pixel_spacing_mm": s, "size_px": [w, h]},
     "slab": {"mode": "mip" | "minip" | "avgip", "thickness_mm": t},   # optional
     "window": {"center": c, "width": w},                              # optional
     "invert": false}                                                  # optional

or ``"orientation": "axial" | "coronal" | "sagittal" | "acquisition"`` with ``position_mm`` or
``slice_index`` instead of ``plane``; plus zoom, pan, rotation, flips, presets, colour maps,
fusion layers and masks (README). ``?format=png`` (default), ``jpeg`` or ``raw``: raw is h×w
float32 little-endian, row-major, in the units of ``X-Units`` (HU for CT, SUVbw for PET with a
body-weight factor), with ``X-Shape: h,w``; pixels outside the volume are NaN. ``X-Window``
names the window applied and ``X-Plane`` the plane shown (JSON), for overlays; a CPR view
(``"cpr": {"path": {"points_lps": [[x, y, z], …], "kind": "spline"}, "mode": "straightened",
"rotation_deg": 0, "pixel_spacing_mm": s, "width_px": w}``) has ``X-CPR`` (size, spacing,
length of the centreline in mm) instead.
"""

from __future__ import annotations

import io
import json
from functools import partial

import numpy as np
import numpy.typing as npt
import simplejpeg
from aiohttp import web
from PIL import Image

from render_engine.errors import GeometryError
from render_engine.pipeline import Frame, FrameOfReferenceError
from render_engine.pipeline import render as render_view
from render_engine.view import ViewState
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.runtime import Runtime
from streaming.view_schema import parse_view
from streaming.volumes import render_volume


def render_frame(runtime: Runtime, state: ViewState) -> Frame:
    """Render ``state`` against the runtime's volumes (blocking; call off the event loop)."""
    try:
        return render_view(state, partial(render_volume, runtime))
    except (GeometryError, FrameOfReferenceError) as exc:
        raise ApiError(400, str(exc)) from None


def encode(pixels: npt.NDArray[np.uint8], fmt: str, *, quality: int = 90) -> bytes:
    """PNG (lossless, fast zlib level) or JPEG bytes of uint8 grey or RGB pixels.

    JPEG goes through libjpeg-turbo in one call that releases the GIL (simplejpeg), so
    encoding is not slowed by other Python threads (volume loads) the way a chunked encoder
    is."""
    if fmt == "jpeg":
        image = np.ascontiguousarray(pixels if pixels.ndim == 3 else pixels[:, :, None])
        return bytes(simplejpeg.encode_jpeg(image, quality=quality,
                                            colorspace="RGB" if image.shape[2] == 3 else "GRAY",
                                            colorsubsampling="444"))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


async def read_json(request: web.Request) -> object:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None


async def render(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    fmt = request.query.get("format", "png")
    if fmt not in ("png", "jpeg", "raw"):
        raise ApiError(400, f"format must be png, jpeg or raw, got {fmt!r}")
    state = parse_view(await read_json(request))
    if fmt == "raw" and state.render3d is not None and state.render3d.method == "vr":
        raise ApiError(400, "a volume rendering has colours, not values: use png or jpeg")
    frame = await run_blocking(request, render_frame, runtime, state)
    h, w = frame.values.shape
    headers = {"X-Units": frame.units, "X-Shape": f"{h},{w}",
               "X-Window": f"{frame.window.center:g},{frame.window.width:g}",
               "X-Render-Ms": f"{frame.render_ms:.2f}"}
    where = frame.geometry_json()
    if "plane" in where:
        headers["X-Plane"] = json.dumps(where["plane"], separators=(",", ":"))
    else:  # the centreline itself is in the state; the header stays small
        headers["X-CPR"] = json.dumps({k: v for k, v in where["cpr"].items()
                                       if k != "centreline_lps"}, separators=(",", ":"))
    if fmt == "raw":
        return web.Response(body=frame.values.astype("<f4").tobytes(),
                            content_type="application/octet-stream", headers=headers)
    body = await run_blocking(request, encode, frame.pixels, fmt)
    return web.Response(body=body, content_type=f"image/{fmt}", headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/render", render)
