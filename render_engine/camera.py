"""The camera of 3D views (ray casting), in patient space (DICOM LPS, millimetres).

A :class:`Camera` is a :class:`~render_engine.planes.Plane` that looks: the image plane through
``center_lps`` (the look-at point and the centre of rotation), ``row_dir`` to the screen's right,
``col_dir`` down the screen, ``pixel_spacing_mm`` at the centre, ``size_px`` = (w, h). The centre
of output pixel (row i, column j) on that plane is, as for planes::

    center_lps + (j - (w - 1) / 2) · s · row_dir + (i - (h - 1) / 2) · s · col_dir

Rays travel along ``normal = row_dir × col_dir`` (into the screen; the same normal as
``Plane.normal``). An *orthographic* camera casts one ray through every pixel centre, parallel to
the normal, over its whole length (the image plane only anchors the samples). A *perspective*
camera casts rays from the eye, ``distance_mm`` before the centre along the normal, through the
pixel centres of the image plane; ``view_angle_deg`` is the full vertical angle of that pyramid.

Operations return new cameras; nothing here touches voxels. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.planes import rotation_matrix as _rotation
from render_engine.planes import unit_vector as _unit

FloatArray = npt.NDArray[np.float64]

PROJECTIONS = ("orthographic", "perspective")
DEFAULT_VIEW_ANGLE_DEG = 30.0

# (row_dir, col_dir) of the standard 3D views in LPS. Side views have the head up; the anterior
# view shows the patient's right on the screen's left (as if facing the patient), the
# superior/inferior views have anterior up.
_VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),  # looks to P; L right, F down
    "posterior": ((-1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),  # looks to A; R right
    "left": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),  # eye at the patient's left, looks to R; P right
    "right": ((0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),  # eye at the right, looks to L; A right
    "superior": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # looks to F; R right, A up
    "inferior": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # looks to H; L right, A up
}
VIEWS = tuple(_VIEWS)


def _positive(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise GeometryError(f"{name} must be > 0, got {value}")
    return v


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Camera:
    """A 3D view: image plane, projection and (for perspective) eye distance and view angle.

    For a perspective camera give ``distance_mm`` or ``view_angle_deg`` (default 30°); the
    other one is derived from the image height at the centre, ``h · pixel_spacing_mm``, so that
    both are always consistent (giving both inconsistently raises). Orthographic cameras keep
    them as given and ignore them. Raises :class:`GeometryError` for non-orthogonal directions,
    a non-positive spacing or size, an unknown projection or a view angle outside (0, 180).
    """

    center_lps: FloatArray = field(repr=False)
    row_dir: FloatArray = field(repr=False)
    col_dir: FloatArray = field(repr=False)
    pixel_spacing_mm: float
    size_px: tuple[int, int]
    projection: str = "orthographic"
    view_angle_deg: float | None = None
    distance_mm: float | None = None

    def __post_init__(self) -> None:
        center = np.asarray(self.center_lps, dtype=np.float64).reshape(3)
        if not np.isfinite(center).all():
            raise GeometryError("center_lps must be finite")
        row = _unit(self.row_dir, "row_dir")
        col = _unit(self.col_dir, "col_dir")
        if abs(float(row @ col)) > 1e-4:
            raise GeometryError(f"row_dir and col_dir are not orthogonal (dot {row @ col:.2e})")
        col = _unit(col - (row @ col) * row, "col_dir")
        spacing = _positive(self.pixel_spacing_mm, "pixel_spacing_mm")
        w, h = (int(v) for v in self.size_px)
        if w < 1 or h < 1:
            raise GeometryError(f"size_px must be at least 1x1, got {self.size_px}")
        if self.projection not in PROJECTIONS:
            raise GeometryError(f"projection must be one of {PROJECTIONS}, "
                                f"got {self.projection!r}")
        angle = _positive(self.view_angle_deg, "view_angle_deg")
        if angle is not None and angle >= 180.0:
            raise GeometryError(f"view_angle_deg must be < 180, got {angle}")
        distance = _positive(self.distance_mm, "distance_mm")
        if self.projection == "perspective":
            assert spacing is not None
            half_h = 0.5 * h * spacing
            if distance is None:
                distance = half_h / math.tan(math.radians(angle or DEFAULT_VIEW_ANGLE_DEG) / 2)
            derived = 2.0 * math.degrees(math.atan(half_h / distance))
            if angle is not None and abs(derived - angle) > 1e-6 * max(angle, 1.0):
                raise GeometryError(f"view_angle_deg {angle} and distance_mm {distance} disagree "
                                    f"for an image {2 * half_h} mm high (angle {derived:.6f})")
            angle = derived
        object.__setattr__(self, "center_lps", center)
        object.__setattr__(self, "row_dir", row)
        object.__setattr__(self, "col_dir", col)
        object.__setattr__(self, "pixel_spacing_mm", spacing)
        object.__setattr__(self, "size_px", (w, h))
        object.__setattr__(self, "view_angle_deg", angle)
        object.__setattr__(self, "distance_mm", distance)

    def _key(self) -> tuple[object, ...]:
        return (tuple(self.center_lps), tuple(self.row_dir), tuple(self.col_dir),
                self.pixel_spacing_mm, self.size_px, self.projection, self.view_angle_deg,
                self.distance_mm)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (arrays compared exactly)."""
        return isinstance(other, Camera) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # -- frames ------------------------------------------------------------------------------

    @property
    def normal(self) -> FloatArray:
        """``row_dir × col_dir``: the viewing direction at the centre (into the screen), LPS."""
        return np.cross(self.row_dir, self.col_dir)

    @property
    def up_dir(self) -> FloatArray:
        """The screen's up, ``-col_dir`` (LPS unit vector)."""
        return -self.col_dir

    @property
    def is_perspective(self) -> bool:
        return self.projection == "perspective"

    @property
    def eye_lps(self) -> FloatArray:
        """The eye (centre of projection) of a perspective camera, LPS mm.

        Raises :class:`GeometryError` for an orthographic camera, which has none.
        """
        if not self.is_perspective:
            raise GeometryError("an orthographic camera has no eye point")
        assert self.distance_mm is not None
        return self.center_lps - self.distance_mm * self.normal

    def pixel_to_patient(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """LPS mm of (continuous) pixel positions on the image plane; ``broadcast + (3,)``."""
        w, h = self.size_px
        r = np.asarray(rows, dtype=np.float64)[..., None] - (h - 1) / 2.0
        c = np.asarray(cols, dtype=np.float64)[..., None] - (w - 1) / 2.0
        s = self.pixel_spacing_mm
        return self.center_lps + c * s * self.row_dir + r * s * self.col_dir

    def ray_for_pixel(self, row: float, col: float) -> tuple[FloatArray, FloatArray]:
        """(origin LPS mm, unit direction) of the ray through pixel (row, col).

        Orthographic: the origin is the pixel on the image plane, and the ray extends both ways.
        Perspective: the origin is the eye, and the ray starts there.
        """
        origins, directions = self._rays(np.asarray(row, dtype=np.float64),
                                         np.asarray(col, dtype=np.float64))
        return origins, directions

    def ray_grid(self) -> tuple[FloatArray, FloatArray]:
        """Origins and unit directions of every pixel's ray, each (h, w, 3), LPS."""
        w, h = self.size_px
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                                 indexing="ij")
        return self._rays(rows, cols)

    def _rays(self, rows: FloatArray, cols: FloatArray) -> tuple[FloatArray, FloatArray]:
        points = self.pixel_to_patient(rows, cols)
        if not self.is_perspective:
            return points, np.broadcast_to(self.normal, points.shape).copy()
        d = points - self.eye_lps
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return np.broadcast_to(self.eye_lps, points.shape).copy(), d

    def project(self, points_lps: npt.ArrayLike) -> FloatArray:
        """(row, column, depth) of LPS points, ``(..., 3)``.

        Row and column are continuous pixel positions where the point appears on screen; depth
        is the signed distance in mm beyond the image plane along the normal. A perspective
        camera projects through the eye (points at or behind the eye give non-finite pixels).
        """
        d = np.asarray(points_lps, dtype=np.float64) - self.center_lps
        depth = d @ self.normal
        u, v = d @ self.row_dir, d @ self.col_dir
        if self.is_perspective:
            assert self.distance_mm is not None
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(self.distance_mm + depth > 0,
                                 self.distance_mm / (self.distance_mm + depth), np.nan)
            u, v = u * scale, v * scale
        w, h = self.size_px
        s = self.pixel_spacing_mm
        return np.stack([v / s + (h - 1) / 2.0, u / s + (w - 1) / 2.0, depth], axis=-1)

    # -- camera operations (each returns a new camera) ---------------------------------------

    def orbited(self, azimuth_deg: float, elevation_deg: float = 0.0) -> Camera:
        """Turn the camera about its centre.

        Azimuth: about the screen's up axis (``-col_dir``), right-handed, so the eye moves to the
        screen's right (from an anterior view, +90° gives the left lateral view). Elevation:
        then about the (new) screen-right axis, so a positive angle raises the eye and looks
        down on the volume. Both in degrees; a full turn returns the same camera.
        """
        rot = _rotation(self.up_dir, float(azimuth_deg))
        row, col = rot @ self.row_dir, rot @ self.col_dir
        rot = _rotation(row, -float(elevation_deg))
        return replace(self, row_dir=row, col_dir=rot @ col)

    def swivel(self, frames: int, *, range_deg: float = 360.0,
               elevation_deg: float = 0.0) -> list[Camera]:
        """``frames`` cameras orbiting by equal azimuth steps over ``range_deg`` (a full turn
        leaves out its repeated end), e.g. the rotating PET MIP; raises :class:`GeometryError`
        for fewer than one frame."""
        if frames < 1:
            raise GeometryError(f"frames must be >= 1, got {frames}")
        full = abs(abs(range_deg) - 360.0) < 1e-9
        step = range_deg / (frames if full or frames == 1 else frames - 1)
        return [self.orbited(n * step, elevation_deg) for n in range(frames)]

    def rolled(self, angle_deg: float) -> Camera:
        """Rotate the image content clockwise on screen by ``angle_deg`` about the centre."""
        rot = _rotation(self.normal, -float(angle_deg))
        return replace(self, row_dir=rot @ self.row_dir, col_dir=rot @ self.col_dir)

    def zoomed(self, factor: float) -> Camera:
        """Magnify by ``factor`` (> 1 zooms in) about the centre.

        Perspective cameras keep their eye distance, so the view angle narrows (a zoom, not a
        dolly).
        """
        if not (math.isfinite(factor) and factor > 0):
            raise GeometryError(f"zoom factor must be > 0, got {factor}")
        return replace(self, pixel_spacing_mm=self.pixel_spacing_mm / factor,
                       view_angle_deg=None if self.is_perspective else self.view_angle_deg)

    def panned(self, *, right_px: float = 0.0, down_px: float = 0.0) -> Camera:
        """Move the camera (centre and eye) by screen pixels; the content moves the other way."""
        s = self.pixel_spacing_mm
        return replace(self, center_lps=self.center_lps + right_px * s * self.row_dir
                       + down_px * s * self.col_dir)

    def resized(self, size_px: tuple[int, int]) -> Camera:
        """Same centre, spacing and eye distance, another output size (a viewport resize)."""
        return replace(self, size_px=size_px,
                       view_angle_deg=None if self.is_perspective else self.view_angle_deg)

    def to_json(self) -> dict[str, Any]:
        return {"center_lps": self.center_lps.tolist(), "row_dir": self.row_dir.tolist(),
                "col_dir": self.col_dir.tolist(), "pixel_spacing_mm": self.pixel_spacing_mm,
                "size_px": list(self.size_px), "projection": self.projection,
                "view_angle_deg": self.view_angle_deg, "distance_mm": self.distance_mm}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Camera:
        """Inverse of :meth:`to_json`; raises :class:`GeometryError` for missing or bad fields."""
        try:
            w, h = (int(v) for v in data["size_px"])
            return cls(center_lps=np.asarray(data["center_lps"], dtype=np.float64),
                       row_dir=np.asarray(data["row_dir"], dtype=np.float64),
                       col_dir=np.asarray(data["col_dir"], dtype=np.float64),
                       pixel_spacing_mm=float(data["pixel_spacing_mm"]), size_px=(w, h),
                       projection=str(data.get("projection", "orthographic")),
                       view_angle_deg=data.get("view_angle_deg"),
                       distance_mm=data.get("distance_mm"))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, GeometryError):
                raise
            raise GeometryError(f"bad camera JSON: {exc!r}") from exc

    # -- standard cameras --------------------------------------------------------------------

    @classmethod
    def fit_volume(cls, geometry: VolumeGeometry, *, view: str = "anterior",
                   size_px: tuple[int, int] = (512, 512), projection: str = "orthographic",
                   view_angle_deg: float = DEFAULT_VIEW_ANGLE_DEG,
                   margin: float = 1.0) -> Camera:
        """A standard view that frames the volume's whole box (voxel extents, ITK's).

        ``view`` is where the eye is: "anterior" (facing the patient: the patient's right on
        the screen's left, head up), "posterior", "left", "right" (lateral views, head up),
        "superior", "inferior" (anterior up). The centre is the box centre. Orthographic: the
        pixel spacing makes the box's projection fit exactly (times ``margin``). Perspective:
        the eye is placed so that the box's bounding sphere fills ``view_angle_deg`` of the
        smaller image side. Raises ``KeyError`` for an unknown view.
        """
        if view not in _VIEWS:
            raise KeyError(f"unknown view {view!r}; known views: {', '.join(VIEWS)}")
        if not (math.isfinite(margin) and margin > 0):
            raise GeometryError(f"margin must be > 0, got {margin}")
        row, col = (np.asarray(v) for v in _VIEWS[view])
        nz, ny, nx = geometry.shape
        center = geometry.index_to_patient([(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2])
        box = np.array([[z, y, x] for z in (-0.5, nz - 0.5) for y in (-0.5, ny - 0.5)
                        for x in (-0.5, nx - 0.5)])
        corners = geometry.index_to_patient(box) - center
        w, h = (int(v) for v in size_px)
        if projection == "perspective":
            radius = float(np.max(np.linalg.norm(corners, axis=1))) * margin
            half_angle = math.radians(view_angle_deg) / 2
            distance = radius / math.sin(half_angle)
            spacing = 2.0 * distance * math.tan(half_angle) / max(min(w, h), 1)
            return cls(center_lps=center, row_dir=row, col_dir=col, pixel_spacing_mm=spacing,
                       size_px=(w, h), projection=projection, distance_mm=distance)
        half_w = float(np.max(np.abs(corners @ row)))
        half_h = float(np.max(np.abs(corners @ col)))
        spacing = max(2 * half_w / max(w, 1), 2 * half_h / max(h, 1), 1e-6) * margin
        return cls(center_lps=center, row_dir=row, col_dir=col, pixel_spacing_mm=spacing,
                   size_px=(w, h), projection=projection)
