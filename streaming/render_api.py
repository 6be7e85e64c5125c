"""``POST /api/render``: one frame of a view state (an explicit plane in patient space).

Body (JSON)::

    {"series_uid": "...",
     "plane": {"center_lps": [x, y, z], "row_dir": [..], "col_dir": [..],
               "pixel_spacing_mm": s, "size_px": [w, h]},
     "slab": {"mode": "mip" | "minip" | "avgip", "thickness_mm": t},   # optional
     "window": {"center": c, "width": w},                              # optional
     "invert": false}                                                  # optional

``?format=png`` (default), ``jpeg`` or ``raw``: raw is h×w float32 little-endian, row-major,
in the units of ``X-Units`` (HU for CT, SUVbw for PET with a body-weight factor), with
``X-Shape: h,w``; pixels outside the volume are NaN. Without a window, the series' first
window preset is used, else the 1st–99th percentile of the frame.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from aiohttp import web
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest import queries
from render_engine.errors import GeometryError
from render_engine.kernels.window import window_to_uint8
from render_engine.planes import Plane, Slab
from render_engine.sampling import sample
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.runtime import Runtime

MAX_OUTPUT_PIXELS = 4096 * 4096


class PlaneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    center_lps: tuple[float, float, float]
    row_dir: tuple[float, float, float]
    col_dir: tuple[float, float, float]
    pixel_spacing_mm: float = Field(gt=0)
    size_px: tuple[int, int]


class SlabIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["mip", "minip", "avgip"] = "mip"
    thickness_mm: float = Field(ge=0, le=2000)


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    center: float
    width: float = Field(ge=1)


class ViewStateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    series_uid: str = Field(min_length=1, max_length=64)
    plane: PlaneIn
    slab: SlabIn | None = None
    window: WindowIn | None = None
    invert: bool = False


def _render(runtime: Runtime, view: ViewStateIn) -> tuple[npt.NDArray[np.float32], str,
                                                           dict[str, Any]]:
    series = queries.get_series(runtime.catalog, view.series_uid)
    if not series["volume_path"]:
        raise ApiError(409, f"volume of series {view.series_uid} is not available "
                            f"(state {series['volume_state']})")
    w, h = view.plane.size_px
    if w < 1 or h < 1 or w * h > MAX_OUTPUT_PIXELS:
        raise ApiError(400, f"size_px must be between 1x1 and {MAX_OUTPUT_PIXELS} pixels")
    try:
        plane = Plane(center_lps=np.array(view.plane.center_lps),
                      row_dir=np.array(view.plane.row_dir), col_dir=np.array(view.plane.col_dir),
                      pixel_spacing_mm=view.plane.pixel_spacing_mm, size_px=(w, h))
        slab = (Slab(thickness_mm=view.slab.thickness_mm, mode=view.slab.mode)
                if view.slab else None)
    except GeometryError as exc:
        raise ApiError(400, str(exc)) from None
    volume = runtime.memory.get(series["volume_path"])
    values = sample(volume.data, volume.geometry, plane, slab=slab, fill=np.nan)
    meta = volume.metadata
    units = str(meta.get("units") or "")
    factor = meta.get("suv_bw_factor")
    if meta.get("modality") == "PT" and factor:
        values = values * np.float32(factor)
        units = "SUVbw"
    return values, units, meta


def _default_window(values: npt.NDArray[np.float32], meta: dict[str, Any],
                    units: str) -> tuple[float, float]:
    presets = meta.get("window_presets") or []
    if presets and units != "SUVbw":
        return float(presets[0]["center"]), max(1.0, float(presets[0]["width"]))
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1.0, 99.0])
    return float(lo + hi) / 2.0, max(1.0, float(hi - lo))


async def render(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    fmt = request.query.get("format", "png")
    if fmt not in ("png", "jpeg", "raw"):
        raise ApiError(400, f"format must be png, jpeg or raw, got {fmt!r}")
    try:
        view = ViewStateIn.model_validate(await request.json())
    except ValidationError as exc:
        raise ApiError(400, f"invalid view state: {exc.errors()[0]['loc']}: "
                            f"{exc.errors()[0]['msg']}") from None
    values, units, meta = await run_blocking(request, _render, runtime, view)
    h, w = values.shape
    headers = {"X-Units": units, "X-Shape": f"{h},{w}"}
    if fmt == "raw":
        return web.Response(body=values.astype("<f4").tobytes(),
                            content_type="application/octet-stream", headers=headers)
    if view.window is not None:
        center, width = view.window.center, view.window.width
    else:
        center, width = _default_window(values, meta, units)
    pixels = window_to_uint8(values, center=center, width=width, invert=view.invert)
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    else:
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    headers["X-Window"] = f"{center:g},{width:g}"
    return web.Response(body=buf.getvalue(), content_type=f"image/{fmt}", headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/render", render)
