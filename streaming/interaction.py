"""What each viewport message of the session protocol does to a ``ViewState``.

Pure functions: ``apply(message, state, geometry, initial) -> ViewState``. Every operation is
a change of the view state (and so of the plane in patient space); nothing here renders.
Window drags scale with the current width (a 256-pixel drag changes the width by itself), as
on a reading workstation.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from render_engine.colour import WINDOW_PRESETS
from render_engine.errors import RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Slab
from render_engine.transfer import PRESET_NAMES as TRANSFER_PRESETS
from render_engine.view import Render3D, ViewState, Window
from streaming.app import ApiError
from streaming.protocol import ProtocolError, number, pair
from streaming.view_schema import parse_view, view_to_json

MIN_ZOOM, MAX_ZOOM = 0.05, 64.0
MAX_SIZE_PX = 2048
CPR_PAGE_DEG = 5.0  # paging a CPR turns it about its centreline


def _err(message: dict[str, Any], text: str) -> ProtocolError:
    return ProtocolError(f"{message['type']}: {text}", seq=message.get("seq"))


def _slice_axis(state: ViewState, geometry: VolumeGeometry) -> tuple[np.ndarray, float, float]:
    """(normal, lo, hi): the plane's normal and the range of patient positions along it that
    the volume spans."""
    plane = state.plane_for(geometry)
    normal = plane.normal
    nz, ny, nx = geometry.shape
    corners = geometry.index_to_patient(np.array(
        [[z, y, x] for z in (0, nz - 1) for y in (0, ny - 1) for x in (0, nx - 1)], float))
    along = corners @ normal
    return normal, float(along.min()), float(along.max())


def slice_step_mm(geometry: VolumeGeometry, normal: np.ndarray) -> float:
    """The distance between neighbouring slices along ``normal``: the voxel grid's extent in
    that direction per index step (the slice spacing for the acquisition axis)."""
    steps = np.abs(geometry.affine[:3, :3].T @ normal)  # mm per index step along each axis
    return float(max(steps.max(), 1e-3))


def slice_position(state: ViewState, geometry: VolumeGeometry) -> dict[str, Any] | None:
    """Where a planar view is in its stack, for the ``state`` event: ``{"index", "count",
    "position_mm", "spacing_mm"}``. ``position_mm`` is the plane centre along the plane normal
    (``center_lps · normal``, patient LPS mm), ``spacing_mm`` the slice step along it
    (:func:`slice_step_mm`), ``count`` the slices of that step across the volume's extent
    ``[lo, hi]`` along the normal and ``index`` the nearest one (halves up), clamped (for the
    acquisition plane: the volume's slice index, axis 0 of ``(z, y, x)``). ``None`` for a 3D
    or CPR view. ``geometry`` is the full-resolution one."""
    if state.render3d is not None or state.cpr is not None:
        return None
    normal, lo, hi = _slice_axis(state, geometry)
    step = slice_step_mm(geometry, normal)
    position = float(state.plane_for(geometry).center_lps @ normal)
    count = int(round((hi - lo) / step)) + 1
    # Nearest slice, halves up (a plane between two slices, e.g. the centre of an even stack,
    # must not flip with rounding noise or banker's rounding as it pages).
    index = min(max(math.floor((position - lo) / step + 0.5 + 1e-6), 0), count - 1)
    return {"index": index, "count": count, "position_mm": position, "spacing_mm": step}


def page(state: ViewState, geometry: VolumeGeometry, *, delta: float | None = None,
         index: float | None = None, position_mm: float | None = None,
         wrap: bool = False) -> ViewState:
    """Move the view through the volume: by ``delta`` slices, to slice ``index`` (along the
    volume's slice axis) or to ``position_mm`` along the normal. Clamped to the volume, or
    wrapped round (cine)."""
    if state.cpr is not None:
        if delta is None:
            raise RenderError("a CPR pages by delta only (it turns about its centreline)")
        turned = replace(state.cpr, rotation_deg=(state.cpr.rotation_deg + delta * CPR_PAGE_DEG)
                         % 360.0)
        return replace(state, cpr=turned)
    if state.render3d is not None:
        raise RenderError("a 3D view has no slices; orbit it")
    normal, lo, hi = _slice_axis(state, geometry)
    if state.orientation is not None and index is None and position_mm is None \
            and state.slice_index is not None:
        n = geometry.shape[0]
        target = state.slice_index + (delta or 0.0)
        target = target % n if wrap else min(max(target, 0.0), n - 1.0)
        return replace(state, slice_index=float(target))
    if state.orientation is not None and index is not None:
        return replace(state, slice_index=float(min(max(index, 0.0), geometry.shape[0] - 1.0)),
                       position_mm=None)
    step = slice_step_mm(geometry, normal)
    base = state.base_plane(geometry)
    current = float(base.center_lps @ normal)
    if position_mm is None:
        if index is not None:
            through = geometry.index_to_patient([index, 0.0, 0.0])
            position_mm = float(through @ normal)
        else:
            position_mm = current + (delta or 0.0) * step
    if wrap and (position_mm > hi + 1e-6 or position_mm < lo - 1e-6):
        position_mm = lo if position_mm > hi else hi
    position_mm = min(max(position_mm, lo), hi)
    if state.orientation is not None:
        return replace(state, position_mm=position_mm, slice_index=None)
    assert state.plane is not None
    return replace(state, plane=state.plane.moved_along_normal(position_mm - current))


def _window(state: ViewState, message: dict[str, Any], current: Window) -> ViewState:
    if "center" in message or "width" in message:
        center = number(message, "center", default=current.center)
        width = number(message, "width", lo=1e-6, default=current.width)
    elif "drag_px" in message:
        dx, dy = pair(message, "drag_px", lo=-1e5, hi=1e5)
        width = max(current.width * math.exp(dx / 256.0), 1e-3)
        center = current.center - dy * current.width / 256.0
    else:
        dc, dw = pair(message, "delta", default=(0.0, 0.0))
        center, width = current.center + dc, max(current.width + dw, 1e-3)
    return replace(state, window=Window(center=center, width=width), preset=None)


def _zoom(state: ViewState, message: dict[str, Any]) -> ViewState:
    factor = number(message, "factor", lo=1e-3, hi=1e3)
    zoom = min(max(state.zoom * factor, MIN_ZOOM), MAX_ZOOM)
    if "at_px" not in message or state.cpr is not None:
        return replace(state, zoom=zoom)
    # Keep the content under at_px in place: pan is in screen pixels after zoom.
    x, y = pair(message, "at_px", lo=-1e5, hi=1e5)
    w, h = state.output_size_px
    d = (x - (w - 1) / 2.0, y - (h - 1) / 2.0)
    ratio = zoom / state.zoom
    pan = tuple((p + di) * ratio - di for p, di in zip(state.pan_px, d, strict=True))
    return replace(state, zoom=zoom, pan_px=(float(pan[0]), float(pan[1])))


def _mode(state: ViewState, message: dict[str, Any]) -> ViewState:
    render = message.get("render")
    if render == "mpr":
        return replace(state, render3d=None)
    if render not in ("mip", "minip", "avgip", "vr"):
        raise _err(message, f"render must be mpr, mip, minip, avgip or vr, got {render!r}")
    preset = message.get("preset")
    if preset is not None and preset not in TRANSFER_PRESETS:
        raise _err(message, f"unknown volume-rendering preset {preset!r}; known: "
                            f"{', '.join(TRANSFER_PRESETS)}")
    if state.cpr is not None:
        raise _err(message, "a CPR view cannot be shown in 3D")
    return replace(state, render3d=Render3D(method=render, preset=preset), slab=None)


def _view_set(state: ViewState, message: dict[str, Any]) -> ViewState:
    changes = message.get("set")
    if not isinstance(changes, dict):
        raise _err(message, "set must be an object of ViewState fields")
    merged = view_to_json(state)
    if any(k in changes for k in ("plane", "orientation", "cpr")):
        for k in ("plane", "orientation", "cpr", "position_mm", "slice_index"):
            merged[k] = None
    if "window" in changes or "preset" in changes:
        merged["window"] = merged["preset"] = None
    merged.update(changes)
    merged["series_uid"] = changes.get("series_uid", state.series_uid)
    try:
        return parse_view(merged)
    except ApiError as exc:
        raise _err(message, exc.message) from None


def apply(message: dict[str, Any], state: ViewState, geometry: VolumeGeometry,
          initial: ViewState, current_window: Window) -> ViewState:
    """The state after ``message``; raises :class:`ProtocolError` for a message that does not
    fit the view (the state is then unchanged)."""
    kind = message["type"]
    try:
        return _apply(kind, message, state, geometry, initial, current_window)
    except (RenderError, ValueError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise _err(message, str(exc)) from None


def _apply(kind: str, message: dict[str, Any], state: ViewState, geometry: VolumeGeometry,
           initial: ViewState, current_window: Window) -> ViewState:
    if kind == "page":
        if "index" in message:
            return page(state, geometry, index=number(message, "index", lo=-1e6, hi=1e6))
        if "position_mm" in message:
            return page(state, geometry,
                        position_mm=number(message, "position_mm", lo=-1e6, hi=1e6))
        return page(state, geometry, delta=number(message, "delta", lo=-1e5, hi=1e5))
    if kind == "view":
        return _view_set(state, message)
    if kind == "reset":
        return replace(initial, size_px=state.size_px)
    if kind == "window":
        return _window(state, message, current_window)
    if kind == "preset":
        name = message.get("name")
        if name not in WINDOW_PRESETS:
            raise _err(message, f"unknown preset {name!r}; known: {', '.join(WINDOW_PRESETS)}")
        return replace(state, preset=name, window=None)
    if kind == "zoom":
        return _zoom(state, message)
    if kind == "pan":
        dx, dy = pair(message, "delta_px", lo=-1e5, hi=1e5)
        return replace(state, pan_px=(state.pan_px[0] - dx, state.pan_px[1] - dy))
    if kind == "rotate":
        if "deg" in message:
            return replace(state, rotation_deg=number(message, "deg", lo=-3600, hi=3600) % 360)
        delta = number(message, "delta_deg", lo=-3600, hi=3600)
        return replace(state, rotation_deg=(state.rotation_deg + delta) % 360.0)
    if kind == "flip":
        axis = message.get("axis", "horizontal")
        if axis == "horizontal":
            return replace(state, flip_horizontal=not state.flip_horizontal)
        if axis == "vertical":
            return replace(state, flip_vertical=not state.flip_vertical)
        raise _err(message, f"axis must be horizontal or vertical, got {axis!r}")
    if kind == "invert":
        return replace(state, invert=not state.invert)
    if kind == "slab":
        thickness = number(message, "thickness_mm", lo=0, hi=500)
        mode = message.get("mode", state.slab.mode if state.slab else "mip")
        if mode not in Slab.MODES:
            raise _err(message, f"mode must be one of {Slab.MODES}, got {mode!r}")
        return replace(state, slab=Slab(thickness_mm=thickness, mode=mode) if thickness else None)
    if kind == "mode":
        return _mode(state, message)
    if kind == "orbit":
        if "deg" in message:
            az, el = pair(message, "deg", lo=-3600, hi=3600)
        else:
            da, de = pair(message, "delta_deg", lo=-3600, hi=3600)
            az, el = state.orbit_deg[0] + da, state.orbit_deg[1] + de
        return replace(state, orbit_deg=(az % 360.0, el % 360.0))
    if kind == "size":
        w, h = pair(message, "size_px", lo=16, hi=MAX_SIZE_PX)
        return replace(state, size_px=(int(w), int(h)))
    raise _err(message, "not a view operation")

