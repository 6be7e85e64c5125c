"""``render(state, volumes) -> Frame``: a pure function from a view state to pixels.

The base series is sampled on the state's plane (with its slab), in its own units scaled to the
display unit (HU; SUVbw for PET through the stored factor); the window maps those values to grey
levels (PS3.3 C.11.2.1.2), a colour map to RGB; fusion layers are sampled on the *same* plane
(no pre-resampling onto the base grid) and blended on top; occlusion masks are painted last.
Same state and same volumes, same pixels: nothing here keeps state between calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from render_engine.camera import Camera
from render_engine.colour import apply_colormap, blend, window_preset
from render_engine.cpr import sample_cpr
from render_engine.curved import CprSurface
from render_engine.errors import RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import to_host
from render_engine.kernels.window import window_to_uint8
from render_engine.planes import Plane
from render_engine.raycast import BlockGrid, render_projection, render_volume
from render_engine.sampling import sample
from render_engine.transfer import preset as transfer_preset
from render_engine.view import MAX_OUTPUT_PIXELS, Layer, ViewState, ViewStateError, Window

# Where a view samples: a plane, or the curved surface of a CPR.
Surface = Plane | CprSurface


class FrameOfReferenceError(RenderError, ValueError):
    """A fusion layer lies in another frame of reference than the base series."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderVolume:
    """What the renderer needs of one series: voxels (numpy, or cupy on the GPU), geometry,
    and how stored values become display units (``values * scale`` in ``units``)."""

    series_uid: str
    data: Any = field(repr=False)
    geometry: VolumeGeometry
    modality: str = ""
    units: str = ""
    scale: float = 1.0
    default_window: Window | None = None
    default_invert: bool = False  # MONOCHROME1: low values white
    frame_of_reference_uid: str = ""
    # Facts derived from the voxels and kept with them by the cache (e.g. the ray caster's
    # block grid), so repeated 3D frames of one volume do not recompute them.
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class VolumeSource(Protocol):
    """Looks volumes up by series UID; raises ``KeyError`` for an unknown one."""

    def __call__(self, series_uid: str) -> RenderVolume: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One rendered view: ``pixels`` uint8 (h, w) grey or (h, w, 3) RGB; ``values`` the base
    series' sampled float32 values in ``units`` (NaN outside the volume), the numbers that
    measurements use; the ``surface`` shown (a :class:`Plane`, or a :class:`CprSurface`) for
    overlays, and the ``window`` applied."""

    pixels: npt.NDArray[np.uint8] = field(repr=False)
    values: npt.NDArray[np.float32] = field(repr=False)
    units: str
    surface: Surface
    window: Window
    render_ms: float

    @property
    def plane(self) -> Plane | None:
        """The plane shown, or None for a curved view."""
        return self.surface if isinstance(self.surface, Plane) else None

    def geometry_json(self) -> dict[str, Any]:
        """Where the pixels lie in patient space, for overlays: ``{"plane": ...}`` or
        ``{"cpr": {"size_px", "pixel_spacing_mm", "length_mm", "centreline_lps"}}``."""
        if isinstance(self.surface, Plane):
            return {"plane": self.surface.to_json()}
        s = self.surface
        return {"cpr": {"size_px": list(s.size_px), "pixel_spacing_mm": s.pixel_spacing_mm,
                        "length_mm": float(s.row_arc_mm[-1] - s.row_arc_mm[0]),
                        "centreline_lps": np.asarray(s.centreline_lps).tolist()}}


def surface_for(state: ViewState, geometry: VolumeGeometry) -> Surface:
    """The plane (or CPR surface) ``state`` shows of a volume with ``geometry``; raises
    :class:`ViewStateError` for a CPR too large to render."""
    if state.cpr is None:
        return state.plane_for(geometry)
    surface = state.cpr_view().surface()
    w, h = surface.size_px
    if w * h > MAX_OUTPUT_PIXELS:
        raise ViewStateError(f"the CPR would be {w}x{h} pixels; raise its pixel spacing")
    return surface


def sample_values(volume: RenderVolume, surface: Surface,
                  state: ViewState) -> npt.NDArray[np.float32]:
    """A series' values on ``surface`` in display units, NaN outside (float32, host)."""
    if isinstance(surface, Plane):
        values = sample(volume.data, volume.geometry, surface, slab=state.slab,
                        interpolation=state.interpolation, fill=np.nan)
    else:
        values = sample_cpr(volume.data, volume.geometry, surface, slab=state.slab,
                            interpolation=state.interpolation, fill=np.nan)
    values = to_host(values)
    if volume.scale != 1.0:
        values = values * np.float32(volume.scale)
    return np.asarray(values, dtype=np.float32)


def percentile_window(values: npt.NDArray[np.floating]) -> Window:
    """The 1st–99th percentile of the finite values as a window (width ≥ 1)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Window(center=0.0, width=1.0)
    lo, hi = (float(v) for v in np.percentile(finite, [1.0, 99.0]))
    return Window(center=(lo + hi) / 2.0, width=max(1.0, hi - lo))


def resolve_window(window: Window | None, preset: str | None, volume: RenderVolume,
                   values: npt.NDArray[np.floating]) -> tuple[Window, bool]:
    """(window, whether to invert before the viewer's own invert): explicit > preset (with
    its invert) > the series' own default > SUV 0–5 for PET in SUVbw > the frame's 1st–99th
    percentile; MONOCHROME1 series invert unless a preset says otherwise."""
    if preset is not None and window is None:
        p = window_preset(preset)
        return Window(center=p.center, width=p.width), p.invert
    invert = volume.default_invert
    if window is not None:
        return window, invert
    if volume.default_window is not None:
        return volume.default_window, invert
    if volume.units == "SUVbw":
        return Window(center=2.5, width=5.0), invert
    return percentile_window(values), invert


def _layer_rgb(layer: Layer, volumes: VolumeSource, base: RenderVolume, plane: Surface,
               state: ViewState) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    volume = volumes(layer.series_uid)
    if (base.frame_of_reference_uid and volume.frame_of_reference_uid
            and volume.frame_of_reference_uid != base.frame_of_reference_uid):
        raise FrameOfReferenceError(
            f"fusion layer {layer.series_uid} is in another frame of reference than "
            f"{base.series_uid}; register the series first")
    values = sample_values(volume, plane, state)
    window, preset_invert = resolve_window(layer.window, layer.preset, volume, values)
    grey = window_to_uint8(values, center=window.center, width=window.width,
                           invert=preset_invert)
    weight = np.isfinite(values).astype(np.float32)  # no data → no tint
    return apply_colormap(grey, layer.colormap), weight


def _blocks(volume: RenderVolume) -> BlockGrid:
    grid = volume.derived.get("block_grid")
    if grid is None:
        grid = volume.derived["block_grid"] = BlockGrid.of(volume.data, volume.geometry)
    return grid  # type: ignore[no-any-return]


def _camera(state: ViewState, plane: Plane) -> Camera:
    assert state.render3d is not None
    return Camera(center_lps=plane.center_lps, row_dir=plane.row_dir, col_dir=plane.col_dir,
                  pixel_spacing_mm=plane.pixel_spacing_mm, size_px=plane.size_px,
                  projection=state.render3d.projection)


def project_values(volume: RenderVolume, plane: Plane,
                   state: ViewState) -> npt.NDArray[np.float32]:
    """A 3D projection (MIP / MinIP / AvgIP through the whole volume) of ``state`` on the
    camera image ``plane``, in display units, NaN where a ray misses the volume."""
    assert state.render3d is not None
    method = state.render3d.method
    values = render_projection(volume.data, volume.geometry, _camera(state, plane), mode=method,
                               fill=np.nan,
                               blocks=_blocks(volume) if method != "avgip" else None)
    values = np.asarray(to_host(values), dtype=np.float32)
    return values * np.float32(volume.scale) if volume.scale != 1.0 else values


def _volume_rendering(state: ViewState, base: RenderVolume, plane: Plane,
                      start: float) -> Frame:
    assert state.render3d is not None
    name = state.render3d.preset or ("pet" if base.modality == "PT" else "ct-bone")
    rgb = render_volume(base.data, base.geometry, _camera(state, plane), transfer_preset(name),
                        shading=state.render3d.shading, value_scale=base.scale,
                        blocks=_blocks(base), dtype="uint8")
    pixels = np.ascontiguousarray(to_host(rgb))
    for mask in state.masks:
        pixels[mask.covers(plane)] = mask.color
    h, w = pixels.shape[:2]
    return Frame(pixels=pixels, values=np.full((h, w), np.nan, dtype=np.float32),
                 units="", surface=plane, window=Window(center=0.0, width=1.0),
                 render_ms=(time.perf_counter() - start) * 1e3)


def render(state: ViewState, volumes: VolumeSource) -> Frame:
    """Render ``state``; raises ``KeyError`` for an unknown series, :class:`RenderError`
    (``GeometryError``, ``FrameOfReferenceError``, …) for a state that cannot be shown.

    A volume rendering (``render3d.method == "vr"``) has RGB pixels and no values (NaN)."""
    start = time.perf_counter()
    base = volumes(state.series_uid)
    plane = surface_for(state, base.geometry)
    if state.render3d is not None:
        assert isinstance(plane, Plane)
        if state.render3d.method == "vr":
            return _volume_rendering(state, base, plane, start)
        values = project_values(base, plane, state)
    else:
        values = sample_values(base, plane, state)
    window, preset_invert = resolve_window(state.window, state.preset, base, values)
    grey = window_to_uint8(values, center=window.center, width=window.width,
                           invert=state.invert != preset_invert)
    pixels: npt.NDArray[np.uint8]
    if state.colormap == "grey" and not state.layers and not _coloured_masks(state):
        pixels = grey
    else:
        pixels = apply_colormap(grey, state.colormap)
        for layer in state.layers if state.render3d is None else ():
            over, weight = _layer_rgb(layer, volumes, base, plane, state)
            pixels = blend(pixels, over, layer.opacity, weight=weight)
    for mask in state.masks:
        covered = mask.covers(plane)
        pixels = pixels.copy() if not pixels.flags.writeable else pixels
        pixels[covered] = mask.color if pixels.ndim == 3 else mask.color[0]
    return Frame(pixels=pixels, values=values, units=base.units, surface=plane, window=window,
                 render_ms=(time.perf_counter() - start) * 1e3)


def _coloured_masks(state: ViewState) -> bool:
    return any(len(set(m.color)) > 1 for m in state.masks)


def warm_up() -> float:
    """Compile every kernel a view can use (numba compiles on first call, seconds per kernel)
    by rendering tiny synthetic views; returns the seconds it took. A server calls it in the
    background at start, so that the first real frame is not the one that pays."""
    from render_engine.curved import CprView, CurvedPath
    from render_engine.planes import Orientation, Slab
    from render_engine.view import Render3D

    start = time.perf_counter()
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([[0.0, 0.0, 2.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    path = CurvedPath(points_lps=np.array([[1.0, 1.0, 2.0], [4.0, 5.0, 6.0]]), kind="polyline")
    states = [ViewState(series_uid="warm-up", orientation=Orientation.AXIAL, size_px=(8, 8),
                        rotation_deg=10, orbit_deg=(5, 5)),
              ViewState(series_uid="warm-up", orientation=Orientation.AXIAL, size_px=(8, 8),
                        slab=Slab(thickness_mm=4)),
              ViewState(series_uid="warm-up", orientation=Orientation.AXIAL, size_px=(8, 8),
                        orbit_deg=(20, 0), slab=Slab(thickness_mm=4)),
              ViewState(series_uid="warm-up", cpr=CprView(path=path, pixel_spacing_mm=1.0,
                                                           width_px=4)),
              *(ViewState(series_uid="warm-up", orientation=Orientation.CORONAL, size_px=(8, 8),
                          render3d=Render3D(method=m)) for m in ("mip", "minip", "avgip", "vr"))]
    for dtype in (np.int16, np.float32):  # CT is stored as int16 HU, PET as float32
        data = np.zeros((6, 7, 8), dtype=dtype)
        data[2:4, 2:5, 2:6] = 500
        volume = RenderVolume(series_uid="warm-up", data=data, units="HU",
                              geometry=VolumeGeometry(shape=data.shape, affine=affine))
        for state in states:
            render(state, lambda _uid, v=volume: v)
    return time.perf_counter() - start
