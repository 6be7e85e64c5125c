"""``ViewState``: everything one viewport shows, as one frozen value.

A view is a plane in patient space (DESIGN.md): either given explicitly or as a standard
orientation (axial, coronal, sagittal, acquisition) at a position, then changed by the viewer's
operations — orbit (oblique MPR; 3D rotation), in-plane rotation, flips, zoom, pan — in that
order, each a change of the plane. :meth:`ViewState.plane_for` resolves the final plane against
a volume's geometry; rendering it is :func:`render_engine.pipeline.render`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from render_engine.colour import COLORMAPS, WINDOW_PRESETS
from render_engine.curved import CprSurface, CprView
from render_engine.errors import GeometryError, RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Orientation, Plane, Slab, standard_plane

DEFAULT_SIZE_PX = (512, 512)
MAX_OUTPUT_PIXELS = 4096 * 4096


class ViewStateError(RenderError, ValueError):
    """A view state that cannot be rendered (unknown names, bad numbers)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Window centre and width in data units (HU, SUVbw, …), PS3.3 C.11.2.1.2."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.width) and self.width >= 1):
            raise ViewStateError(f"window needs a finite centre and a width >= 1, got "
                                 f"{self.center}, {self.width}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """A fusion layer: another series (same frame of reference) sampled on the same plane and
    blended over the base image with ``opacity`` through ``colormap``."""

    series_uid: str
    window: Window | None = None
    preset: str | None = None
    colormap: str = "hot-iron"
    opacity: float = 0.5

    def __post_init__(self) -> None:
        _check_names(self.preset, self.colormap)
        if not 0.0 <= self.opacity <= 1.0:
            raise ViewStateError(f"layer opacity must be within 0..1, got {self.opacity}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Mask:
    """An opaque occlusion mask (R33), a ``rectangle`` or ``ellipse``.

    In output pixels (``center_px``, ``half_size_px`` = (x, y) half extents; x = column,
    y = row): fixed on the screen, e.g. over burned-in text. Or anchored in patient space
    (``center_lps``, ``half_size_mm``): the shape is laid in the current plane around the
    projection of ``center_lps`` and follows zoom and pan.
    """

    shape: Literal["rectangle", "ellipse"]
    center_px: tuple[float, float] | None = None
    half_size_px: tuple[float, float] | None = None
    center_lps: tuple[float, float, float] | None = None
    half_size_mm: tuple[float, float] | None = None
    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.shape not in ("rectangle", "ellipse"):
            raise ViewStateError(f"mask shape must be rectangle or ellipse, got {self.shape!r}")
        in_px = self.center_px is not None and self.half_size_px is not None
        in_lps = self.center_lps is not None and self.half_size_mm is not None
        if in_px == in_lps:
            raise ViewStateError("a mask needs either center_px and half_size_px or "
                                 "center_lps and half_size_mm")
        half = self.half_size_px if in_px else self.half_size_mm
        if half is None or min(half) <= 0:
            raise ViewStateError("mask half sizes must be > 0")

    def covers(self, plane: Plane | CprSurface) -> np.ndarray:
        """Boolean (h, w): the output pixels whose centres the mask covers on ``plane`` (or a
        CPR surface: ``center_lps`` goes to its nearest point on the surface)."""
        w, h = plane.size_px
        if self.center_lps is not None and self.half_size_mm is not None:
            row, col, _ = plane.patient_to_pixel(np.asarray(self.center_lps, dtype=np.float64))
            cx, cy = float(col), float(row)
            hx = self.half_size_mm[0] / plane.pixel_spacing_mm
            hy = self.half_size_mm[1] / plane.pixel_spacing_mm
        else:
            assert self.center_px is not None and self.half_size_px is not None
            (cx, cy), (hx, hy) = self.center_px, self.half_size_px
        dx = (np.arange(w, dtype=np.float64) - cx)[None, :] / hx
        dy = (np.arange(h, dtype=np.float64) - cy)[:, None] / hy
        if self.shape == "rectangle":
            return (np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)
        return np.asarray(dx * dx + dy * dy <= 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Render3D:
    """A 3D view: rays cast through the whole volume along the view plane's normal (the plane
    is the camera's image plane). ``method``: ``mip`` / ``minip`` / ``avgip`` projections
    (values in data units, windowed like a plane: the rotating PET MIP) or ``vr``, volume
    rendering through the transfer ``preset`` (ct-bone, ct-soft-tissue, ct-vessels, ct-lung,
    pet; default ct-bone, pet for PET) with Blinn-Phong ``shading``."""

    method: Literal["mip", "minip", "avgip", "vr"] = "mip"
    preset: str | None = None
    projection: Literal["orthographic", "perspective"] = "orthographic"
    shading: bool = True

    def __post_init__(self) -> None:
        from render_engine.transfer import PRESET_NAMES

        if self.method not in ("mip", "minip", "avgip", "vr"):
            raise ViewStateError(f"3D method must be mip, minip, avgip or vr, got "
                                 f"{self.method!r}")
        if self.preset is not None and self.preset not in PRESET_NAMES:
            raise ViewStateError(f"unknown volume rendering preset {self.preset!r}; known: "
                                 f"{', '.join(PRESET_NAMES)}")
        if self.projection not in ("orthographic", "perspective"):
            raise ViewStateError(f"projection must be orthographic or perspective, got "
                                 f"{self.projection!r}")


def _check_names(preset: str | None, colormap: str) -> None:
    if preset is not None and preset not in WINDOW_PRESETS:
        raise ViewStateError(f"unknown window preset {preset!r}; "
                             f"known: {', '.join(WINDOW_PRESETS)}")
    if colormap not in COLORMAPS:
        raise ViewStateError(f"unknown colour map {colormap!r}; known: {', '.join(COLORMAPS)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewState:
    """One viewport's view, complete: same state, same pixels.

    Geometry: ``plane`` (explicit), ``cpr`` (a curved planar reformation along a centreline;
    only ``zoom`` of the view operations applies: it divides the CPR's pixel spacing) or
    ``orientation`` (+ ``position_mm`` along its normal in
    LPS mm, or ``slice_index`` along the volume's slice axis; neither = the middle) fitted to
    ``size_px``; then ``orbit_deg`` = (azimuth about the screen's vertical axis, elevation
    about its horizontal axis) through the plane centre, ``rotation_deg`` (clockwise on
    screen), ``flip_horizontal`` / ``flip_vertical``, ``zoom`` (> 1 magnifies, about the
    centre) and ``pan_px`` (screen pixels, after zoom). Display: ``window`` (data units) or
    ``preset`` (a name of :data:`render_engine.colour.WINDOW_PRESETS`; a preset's own invert
    combines with ``invert``), else the series' default; ``colormap``; ``layers`` for fusion;
    ``masks`` for occlusion. ``render3d`` turns the view into a 3D one whose camera image
    plane is the plane above (orbit rotates the camera about the plane centre).
    """

    series_uid: str
    plane: Plane | None = None
    orientation: Orientation | None = None
    cpr: CprView | None = None
    position_mm: float | None = None
    slice_index: float | None = None
    size_px: tuple[int, int] | None = None
    orbit_deg: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    flip_horizontal: bool = False
    flip_vertical: bool = False
    zoom: float = 1.0
    pan_px: tuple[float, float] = (0.0, 0.0)
    slab: Slab | None = None
    interpolation: Literal["linear", "nearest"] = "linear"
    window: Window | None = None
    preset: str | None = None
    invert: bool = False
    colormap: str = "grey"
    layers: tuple[Layer, ...] = ()
    masks: tuple[Mask, ...] = field(default=())
    render3d: Render3D | None = None

    def __post_init__(self) -> None:
        if not self.series_uid:
            raise ViewStateError("series_uid is required")
        given = sum(x is not None for x in (self.plane, self.orientation, self.cpr))
        if given != 1:
            raise ViewStateError("give exactly one of an explicit plane, an orientation or a "
                                 "CPR view")
        if self.orientation is not None:
            try:
                object.__setattr__(self, "orientation", Orientation(self.orientation))
            except ValueError:
                raise ViewStateError(f"unknown orientation {self.orientation!r}; known: "
                                     f"{', '.join(o.value for o in Orientation)}") from None
        if self.position_mm is not None and self.slice_index is not None:
            raise ViewStateError("give position_mm or slice_index, not both")
        size = self.size_px or (self.plane.size_px if self.plane else DEFAULT_SIZE_PX)
        if size[0] < 1 or size[1] < 1 or size[0] * size[1] > MAX_OUTPUT_PIXELS:
            raise ViewStateError(f"size_px must be between 1x1 and {MAX_OUTPUT_PIXELS} pixels, "
                                 f"got {size}")
        numbers = (*self.orbit_deg, self.rotation_deg, self.zoom, *self.pan_px)
        if not all(math.isfinite(v) for v in numbers) or self.zoom <= 0:
            raise ViewStateError("orbit, rotation, zoom and pan must be finite, zoom > 0")
        if self.interpolation not in ("linear", "nearest"):
            raise ViewStateError(f"interpolation must be linear or nearest, "
                                 f"got {self.interpolation!r}")
        _check_names(self.preset, self.colormap)
        if self.render3d is not None and self.cpr is not None:
            raise ViewStateError("a view is either 3D or a CPR, not both")

    @property
    def output_size_px(self) -> tuple[int, int]:
        """(w, h) of the rendered frame."""
        if self.size_px is not None:
            return self.size_px
        return self.plane.size_px if self.plane is not None else DEFAULT_SIZE_PX

    def base_plane(self, geometry: VolumeGeometry) -> Plane:
        """The plane before the viewer's operations: explicit, or the standard one."""
        if self.plane is not None:
            return self.plane.resized(self.output_size_px)
        assert self.orientation is not None
        return standard_plane(geometry, self.orientation, size_px=self.output_size_px,
                              position_mm=self.position_mm, slice_index=self.slice_index)

    def cpr_view(self) -> CprView:
        """The CPR this state shows (zoom applied); raises :class:`ViewStateError` for a
        state without one."""
        if self.cpr is None:
            raise ViewStateError("this view is not a CPR")
        if self.zoom == 1.0:
            return self.cpr
        return replace(self.cpr, pixel_spacing_mm=self.cpr.pixel_spacing_mm / self.zoom)

    def plane_for(self, geometry: VolumeGeometry) -> Plane:
        """The plane this state shows of a volume with ``geometry`` (LPS mm).

        Raises :class:`GeometryError` for a degenerate result, :class:`ViewStateError` for a
        CPR state (its surface is :meth:`cpr_view`)."""
        if self.cpr is not None:
            raise ViewStateError("a CPR view is a curved surface, not a plane")
        plane = self.base_plane(geometry)
        azimuth, elevation = self.orbit_deg
        if azimuth:
            plane = plane.rotated_about(-plane.col_dir, azimuth)
        if elevation:
            plane = plane.rotated_about(plane.row_dir, elevation)
        if self.rotation_deg:
            plane = plane.rotated_in_plane(self.rotation_deg)
        if self.flip_horizontal:
            plane = plane.flipped_horizontally()
        if self.flip_vertical:
            plane = plane.flipped_vertically()
        if self.zoom != 1.0:
            plane = plane.zoomed(self.zoom)
        if self.pan_px != (0.0, 0.0):
            plane = plane.panned(right_px=self.pan_px[0], down_px=self.pan_px[1])
        return plane


def magnifier(state: ViewState, geometry: VolumeGeometry, *, at_px: tuple[float, float],
              factor: float = 2.0, size_px: tuple[int, int] = (200, 200)) -> ViewState:
    """The magnifying-glass view: the same state as an explicit plane centred on output pixel
    ``at_px`` = (x, y) of ``state``, ``factor`` times finer, ``size_px`` large. No separate
    code path: it renders like any other view. Masks are carried over, anchored in patient
    space, so the lens never uncovers what a mask hides."""
    if not (math.isfinite(factor) and factor > 0):
        raise GeometryError(f"magnifier factor must be > 0, got {factor}")
    plane = state.plane_for(geometry)
    center = plane.pixel_to_patient(at_px[1], at_px[0])
    lens = Plane(center_lps=center, row_dir=plane.row_dir, col_dir=plane.col_dir,
                 pixel_spacing_mm=plane.pixel_spacing_mm / factor, size_px=size_px)
    return ViewState(series_uid=state.series_uid, plane=lens, slab=state.slab,
                     interpolation=state.interpolation, window=state.window,
                     preset=state.preset, invert=state.invert, colormap=state.colormap,
                     layers=state.layers, masks=_anchored_masks(state.masks, plane))


def _anchored_masks(masks: tuple[Mask, ...], plane: Plane) -> tuple[Mask, ...]:
    """``masks`` with those given in output pixels of ``plane`` anchored in patient space."""
    return tuple(m if m.center_px is None or m.half_size_px is None else Mask(
        shape=m.shape, color=m.color,
        center_lps=tuple(plane.pixel_to_patient(m.center_px[1], m.center_px[0]).tolist()),
        half_size_mm=(m.half_size_px[0] * plane.pixel_spacing_mm,
                      m.half_size_px[1] * plane.pixel_spacing_mm)) for m in masks)


def explicit(state: ViewState, geometry: VolumeGeometry, *, downscale: float = 1.0
             ) -> ViewState:
    """The same view with its plane made explicit (as computed on ``geometry``, the full
    volume's), ``downscale`` times coarser: the same field of view in fewer pixels. A stream
    renders interactive frames this way, and first frames from a coarse pyramid level, whose
    own geometry would fit a slightly different plane."""
    if not (math.isfinite(downscale) and downscale >= 1.0):
        raise ViewStateError(f"downscale must be >= 1, got {downscale}")
    if state.cpr is not None:
        if downscale == 1.0:
            return state
        cpr = state.cpr_view()
        return replace(state, zoom=1.0, cpr=replace(
            cpr, pixel_spacing_mm=cpr.pixel_spacing_mm * downscale,
            width_px=max(1, round(cpr.width_px / downscale))))
    plane = state.plane_for(geometry)
    w, h = plane.size_px
    small = Plane(center_lps=plane.center_lps, row_dir=plane.row_dir, col_dir=plane.col_dir,
                  pixel_spacing_mm=plane.pixel_spacing_mm * downscale,
                  size_px=(max(1, round(w / downscale)), max(1, round(h / downscale))))
    return replace(state, plane=small, orientation=None, position_mm=None, slice_index=None,
                   size_px=None, orbit_deg=(0.0, 0.0), rotation_deg=0.0,
                   flip_horizontal=False, flip_vertical=False, zoom=1.0, pan_px=(0.0, 0.0),
                   masks=_anchored_masks(state.masks, plane))
