"""The wire form of a ``ViewState`` (JSON), validated at the edge with pydantic.

The same JSON goes into ``POST /api/render``, ``POST /api/measure`` and the session protocol,
and :func:`view_to_json` gives it back complete, so a state echoed by a session renders the same
pixels through ``POST /api/render``. Unknown keys are ignored; every number is checked.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from render_engine.curved import CprView
from render_engine.errors import GeometryError
from render_engine.planes import Orientation, Plane, Slab
from render_engine.view import Layer, Mask, Render3D, ViewState, ViewStateError, Window
from streaming.app import ApiError

Vec3 = tuple[float, float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaneIn(_Strict):
    center_lps: Vec3
    row_dir: Vec3
    col_dir: Vec3
    pixel_spacing_mm: float = Field(gt=0)
    size_px: tuple[int, int]


class SlabIn(_Strict):
    mode: Literal["mip", "minip", "avgip"] = "mip"
    thickness_mm: float = Field(ge=0, le=2000)


class WindowIn(_Strict):
    center: float
    width: float = Field(ge=1)


class LayerIn(_Strict):
    series_uid: str = Field(min_length=1, max_length=64)
    window: WindowIn | None = None
    preset: str | None = None
    colormap: str = "hot-iron"
    opacity: float = Field(default=0.5, ge=0, le=1)


class MaskIn(_Strict):
    shape: Literal["rectangle", "ellipse"]
    center_px: tuple[float, float] | None = None
    half_size_px: tuple[float, float] | None = None
    center_lps: Vec3 | None = None
    half_size_mm: tuple[float, float] | None = None
    color: tuple[int, int, int] = (0, 0, 0)


class Render3DIn(_Strict):
    method: Literal["mip", "minip", "avgip", "vr"] = "mip"
    preset: str | None = None
    projection: Literal["orthographic", "perspective"] = "orthographic"
    shading: bool = True


class ViewStateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    series_uid: str = Field(min_length=1, max_length=64)
    plane: PlaneIn | None = None
    orientation: Orientation | None = None
    cpr: dict[str, Any] | None = None
    position_mm: float | None = None
    slice_index: float | None = None
    size_px: tuple[int, int] | None = None
    orbit_deg: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    flip_horizontal: bool = False
    flip_vertical: bool = False
    zoom: float = Field(default=1.0, gt=0, le=1000)
    pan_px: tuple[float, float] = (0.0, 0.0)
    slab: SlabIn | None = None
    interpolation: Literal["linear", "nearest"] = "linear"
    window: WindowIn | None = None
    preset: str | None = None
    invert: bool = False
    colormap: str = "grey"
    layers: list[LayerIn] = Field(default_factory=list, max_length=4)
    masks: list[MaskIn] = Field(default_factory=list, max_length=32)
    render3d: Render3DIn | None = None


def _window(w: WindowIn | None) -> Window | None:
    return None if w is None else Window(center=w.center, width=w.width)


def parse_view(body: Any) -> ViewState:
    """A ``ViewState`` from decoded JSON; raises :class:`ApiError` 400 with the reason."""
    try:
        v = ViewStateIn.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(400, f"invalid view state: {where}: {err['msg']}") from None
    try:
        plane = None if v.plane is None else Plane(
            center_lps=np.array(v.plane.center_lps), row_dir=np.array(v.plane.row_dir),
            col_dir=np.array(v.plane.col_dir), pixel_spacing_mm=v.plane.pixel_spacing_mm,
            size_px=v.plane.size_px)
        cpr = None if v.cpr is None else CprView.from_json(v.cpr)
        return ViewState(
            series_uid=v.series_uid, plane=plane, orientation=v.orientation, cpr=cpr,
            position_mm=v.position_mm, slice_index=v.slice_index, size_px=v.size_px,
            orbit_deg=v.orbit_deg, rotation_deg=v.rotation_deg,
            flip_horizontal=v.flip_horizontal, flip_vertical=v.flip_vertical, zoom=v.zoom,
            pan_px=v.pan_px,
            slab=None if v.slab is None else Slab(thickness_mm=v.slab.thickness_mm,
                                                  mode=v.slab.mode),
            interpolation=v.interpolation, window=_window(v.window), preset=v.preset,
            invert=v.invert, colormap=v.colormap,
            layers=tuple(Layer(series_uid=x.series_uid, window=_window(x.window),
                               preset=x.preset, colormap=x.colormap, opacity=x.opacity)
                         for x in v.layers),
            masks=tuple(Mask(**m.model_dump()) for m in v.masks),
            render3d=None if v.render3d is None else Render3D(**v.render3d.model_dump()))
    except (GeometryError, ViewStateError) as exc:
        raise ApiError(400, f"invalid view state: {exc}") from None


def _window_json(w: Window | None) -> dict[str, float] | None:
    return None if w is None else {"center": w.center, "width": w.width}


def view_to_json(state: ViewState) -> dict[str, Any]:
    """The complete JSON of ``state`` (what :func:`parse_view` reads back to an equal state)."""
    return {
        "series_uid": state.series_uid,
        "plane": None if state.plane is None else state.plane.to_json(),
        "orientation": None if state.orientation is None else str(state.orientation),
        "cpr": None if state.cpr is None else state.cpr.to_json(),
        "position_mm": state.position_mm,
        "slice_index": state.slice_index,
        "size_px": None if state.size_px is None else list(state.size_px),
        "orbit_deg": list(state.orbit_deg),
        "rotation_deg": state.rotation_deg,
        "flip_horizontal": state.flip_horizontal,
        "flip_vertical": state.flip_vertical,
        "zoom": state.zoom,
        "pan_px": list(state.pan_px),
        "slab": None if state.slab is None else {"mode": state.slab.mode,
                                                 "thickness_mm": state.slab.thickness_mm},
        "interpolation": state.interpolation,
        "window": _window_json(state.window),
        "preset": state.preset,
        "invert": state.invert,
        "colormap": state.colormap,
        "layers": [{"series_uid": x.series_uid, "window": _window_json(x.window),
                    "preset": x.preset, "colormap": x.colormap, "opacity": x.opacity}
                   for x in state.layers],
        "masks": [{k: (list(val) if isinstance(val, tuple) else val)
                   for k, val in (("shape", m.shape), ("center_px", m.center_px),
                                  ("half_size_px", m.half_size_px),
                                  ("center_lps", m.center_lps),
                                  ("half_size_mm", m.half_size_mm), ("color", m.color))
                   if val is not None} for m in state.masks],
        "render3d": None if state.render3d is None else {
            "method": state.render3d.method, "preset": state.render3d.preset,
            "projection": state.render3d.projection, "shading": state.render3d.shading},
    }
