"""Views as planes in patient space (DICOM LPS, millimetres).

A :class:`Plane` is everything a 2D view shows except the values: centre point, row and column
unit vectors, pixel spacing, output size. As in DICOM (PS3.3 C.7.6.2.1.1), ``row_dir`` is the
direction of increasing column index and ``col_dir`` of increasing row index; the centre of
output pixel (row i, column j) lies at::

    center_lps + (j - (w - 1) / 2) · s · row_dir + (i - (h - 1) / 2) · s · col_dir

Zoom, pan, in-plane rotation, flips and oblique tilts are changes of the plane that return new
planes; nothing here resamples pixels. Standard orientations follow the radiological display
convention: the patient's left on the right of the screen (axial, coronal), anterior on the
left (sagittal), head up. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry

FloatArray = npt.NDArray[np.float64]

_ORTHO_TOL = 1e-6


def unit_vector(v: npt.ArrayLike, name: str) -> FloatArray:
    """``v`` normalised; raises :class:`GeometryError` (naming ``name``) for a zero or
    non-finite vector."""
    a = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(a))
    if not np.isfinite(a).all() or n < 1e-12:
        raise GeometryError(f"{name} must be a finite non-zero 3-vector, got {a.tolist()}")
    return a / n


def rotation_matrix(axis: FloatArray, angle_deg: float) -> FloatArray:
    """Rotation matrix about unit ``axis`` by ``angle_deg`` (right-handed, Rodrigues)."""
    a = math.radians(angle_deg)
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(a) * k + (1.0 - math.cos(a)) * (k @ k)


_unit, _rotation = unit_vector, rotation_matrix


@dataclass(frozen=True, slots=True, kw_only=True)
class Plane:
    """A 2D view: a rectangle of ``size_px`` = (w, h) pixels of ``pixel_spacing_mm`` in LPS.

    Raises :class:`GeometryError` unless ``row_dir`` and ``col_dir`` are orthogonal (they are
    normalised), the spacing is positive and the size at least 1x1.
    """

    center_lps: FloatArray = field(repr=False)
    row_dir: FloatArray = field(repr=False)
    col_dir: FloatArray = field(repr=False)
    pixel_spacing_mm: float
    size_px: tuple[int, int]

    def __post_init__(self) -> None:
        center = np.asarray(self.center_lps, dtype=np.float64).reshape(3)
        if not np.isfinite(center).all():
            raise GeometryError("center_lps must be finite")
        row = _unit(self.row_dir, "row_dir")
        col = _unit(self.col_dir, "col_dir")
        if abs(float(row @ col)) > 1e-4:
            raise GeometryError(f"row_dir and col_dir are not orthogonal (dot {row @ col:.2e})")
        col = _unit(col - (row @ col) * row, "col_dir")  # exact orthogonality
        if not (math.isfinite(self.pixel_spacing_mm) and self.pixel_spacing_mm > 0):
            raise GeometryError(f"pixel_spacing_mm must be > 0, got {self.pixel_spacing_mm}")
        w, h = (int(v) for v in self.size_px)
        if w < 1 or h < 1:
            raise GeometryError(f"size_px must be at least 1x1, got {self.size_px}")
        object.__setattr__(self, "center_lps", center)
        object.__setattr__(self, "row_dir", row)
        object.__setattr__(self, "col_dir", col)
        object.__setattr__(self, "pixel_spacing_mm", float(self.pixel_spacing_mm))
        object.__setattr__(self, "size_px", (w, h))

    def _key(self) -> tuple[object, ...]:
        return (tuple(self.center_lps.tolist()), tuple(self.row_dir.tolist()),
                tuple(self.col_dir.tolist()), self.pixel_spacing_mm, self.size_px)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (arrays compared exactly), so view states holding an
        explicit plane compare and hash like any other."""
        if not isinstance(other, Plane):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # -- frames ------------------------------------------------------------------------------

    @property
    def normal(self) -> FloatArray:
        """``row_dir × col_dir``: the direction the viewer looks along (into the screen)."""
        return np.cross(self.row_dir, self.col_dir)

    @property
    def width_mm(self) -> float:
        return self.size_px[0] * self.pixel_spacing_mm

    @property
    def height_mm(self) -> float:
        return self.size_px[1] * self.pixel_spacing_mm

    def pixel_to_patient(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> FloatArray:
        """LPS mm of (continuous) output pixel positions; shape ``broadcast + (3,)``."""
        w, h = self.size_px
        r = np.asarray(rows, dtype=np.float64)[..., None] - (h - 1) / 2.0
        c = np.asarray(cols, dtype=np.float64)[..., None] - (w - 1) / 2.0
        s = self.pixel_spacing_mm
        return self.center_lps + c * s * self.row_dir + r * s * self.col_dir

    def patient_to_pixel(self, points_lps: npt.ArrayLike) -> FloatArray:
        """(row, column, distance along the normal in mm) of LPS points; ``(..., 3)``."""
        d = np.asarray(points_lps, dtype=np.float64) - self.center_lps
        w, h = self.size_px
        s = self.pixel_spacing_mm
        col = d @ self.row_dir / s + (w - 1) / 2.0
        row = d @ self.col_dir / s + (h - 1) / 2.0
        return np.stack([row, col, d @ self.normal], axis=-1)

    def pixel_grid_lps(self) -> FloatArray:
        """LPS of every output pixel centre, shape (h, w, 3)."""
        w, h = self.size_px
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        return self.pixel_to_patient(rows, cols)

    # -- view operations (each returns a new plane) ------------------------------------------

    def zoomed(self, factor: float, *, about_px: tuple[float, float] | None = None) -> Plane:
        """Magnify by ``factor`` (> 1 zooms in); the point under ``about_px`` = (row, col)
        stays under it (default: the centre)."""
        if not (math.isfinite(factor) and factor > 0):
            raise GeometryError(f"zoom factor must be > 0, got {factor}")
        spacing = self.pixel_spacing_mm / factor
        center = self.center_lps
        if about_px is not None:
            anchor = self.pixel_to_patient(*about_px)
            center = anchor + (center - anchor) / factor
        return replace(self, center_lps=center, pixel_spacing_mm=spacing)

    def panned(self, *, right_px: float = 0.0, down_px: float = 0.0) -> Plane:
        """Move the view window by screen pixels (the image content moves the other way)."""
        s = self.pixel_spacing_mm
        return replace(self, center_lps=self.center_lps + right_px * s * self.row_dir
                       + down_px * s * self.col_dir)

    def moved_along_normal(self, distance_mm: float) -> Plane:
        """Page: translate along the normal (into the screen for positive distances)."""
        return replace(self, center_lps=self.center_lps + distance_mm * self.normal)

    def rotated_in_plane(self, angle_deg: float) -> Plane:
        """Rotate the image content clockwise on screen by ``angle_deg`` about the centre."""
        rot = _rotation(self.normal, -angle_deg)
        return replace(self, row_dir=rot @ self.row_dir, col_dir=rot @ self.col_dir)

    def rotated_about(self, axis_lps: npt.ArrayLike, angle_deg: float, *,
                      pivot_lps: npt.ArrayLike | None = None) -> Plane:
        """Oblique MPR: rotate the whole plane about ``axis_lps`` through ``pivot_lps``
        (default: the centre), right-handed."""
        rot = _rotation(_unit(axis_lps, "axis_lps"), angle_deg)
        pivot = self.center_lps if pivot_lps is None else np.asarray(pivot_lps, dtype=np.float64)
        return replace(self, center_lps=pivot + rot @ (self.center_lps - pivot),
                       row_dir=rot @ self.row_dir, col_dir=rot @ self.col_dir)

    def flipped_horizontally(self) -> Plane:
        return replace(self, row_dir=-self.row_dir)

    def flipped_vertically(self) -> Plane:
        return replace(self, col_dir=-self.col_dir)

    def resized(self, size_px: tuple[int, int]) -> Plane:
        """Same centre and spacing, another output size (a viewport resize)."""
        return replace(self, size_px=size_px)

    def edge_labels(self) -> dict[str, str]:
        """Orientation labels of the four edges: {"left", "right", "top", "bottom"}."""
        return {"right": orientation_label(self.row_dir), "left": orientation_label(-self.row_dir),
                "bottom": orientation_label(self.col_dir), "top": orientation_label(-self.col_dir)}

    def to_json(self) -> dict[str, object]:
        return {"center_lps": self.center_lps.tolist(), "row_dir": self.row_dir.tolist(),
                "col_dir": self.col_dir.tolist(), "pixel_spacing_mm": self.pixel_spacing_mm,
                "size_px": list(self.size_px)}


def plane_through(point_lps: npt.ArrayLike, normal_lps: npt.ArrayLike, *,
                  pixel_spacing_mm: float, size_px: tuple[int, int],
                  up_hint_lps: npt.ArrayLike = (0.0, 0.0, 1.0)) -> Plane:
    """The plane through ``point_lps`` looking along ``normal_lps``.

    In-plane axes are chosen so the screen's up is as close as possible to ``up_hint_lps``
    (the patient's head by default, else anterior when the normal is head-foot).
    """
    n = _unit(normal_lps, "normal_lps")
    up = _unit(up_hint_lps, "up_hint_lps")
    if abs(float(up @ n)) > 0.99:
        up = np.array([0.0, -1.0, 0.0])  # anterior
    col = -(up - (up @ n) * n)  # col_dir points down the screen
    col = _unit(col, "col_dir")
    row = np.cross(col, n)  # so that row × col = n
    return Plane(center_lps=np.asarray(point_lps, dtype=np.float64), row_dir=row, col_dir=col,
                 pixel_spacing_mm=pixel_spacing_mm, size_px=size_px)


# Patient directions of the LPS axes (PS3.3 C.7.6.1.1.1), with H/F for head/foot.
_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))


def orientation_label(direction_lps: npt.ArrayLike, *, threshold: float = 0.25) -> str:
    """Letters of a direction, largest component first (e.g. ``"LP"``, ``"H"``).

    Components smaller than ``threshold`` of the unit vector are left out, as viewers do for
    oblique edges.
    """
    d = _unit(direction_lps, "direction_lps")
    order = np.argsort(-np.abs(d))
    letters = [(_LETTERS[i][0] if d[i] > 0 else _LETTERS[i][1])
               for i in order if abs(d[i]) >= threshold]
    return "".join(letters)


class Orientation(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
    ACQUISITION = "acquisition"


# Radiological display: (row_dir, col_dir) of each standard orientation in LPS.
_STANDARD_AXES: dict[Orientation, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    Orientation.AXIAL: ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # L right, P down, looking to H
    Orientation.CORONAL: ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),  # L right, F down
    Orientation.SAGITTAL: ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),  # P right, F down
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Slab:
    """A thick view: ``thickness_mm`` centred on the plane, projected with ``mode``."""

    thickness_mm: float
    mode: str = "mip"

    MODES = ("mip", "minip", "avgip")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.thickness_mm) and self.thickness_mm >= 0):
            raise GeometryError(f"slab thickness_mm must be >= 0, got {self.thickness_mm}")
        if self.mode not in self.MODES:
            raise GeometryError(f"slab mode must be one of {self.MODES}, got {self.mode!r}")

    def sample_offsets_mm(self, step_mm: float) -> FloatArray:
        """Offsets along the normal, symmetric about 0, at most ``step_mm`` apart; an odd count,
        so the plane itself is always one of the samples."""
        if self.thickness_mm == 0:
            return np.zeros(1)
        n = max(3, math.ceil(self.thickness_mm / step_mm) + 1)
        n += 1 - n % 2
        return np.linspace(-self.thickness_mm / 2, self.thickness_mm / 2, n)


def _volume_corners(geometry: VolumeGeometry) -> FloatArray:
    nz, ny, nx = geometry.shape
    idx = np.array([[z, y, x] for z in (0, nz - 1) for y in (0, ny - 1) for x in (0, nx - 1)],
                   dtype=np.float64)
    return geometry.index_to_patient(idx)


def standard_plane(geometry: VolumeGeometry, orientation: Orientation | str, *,
                   size_px: tuple[int, int] | None = None, position_mm: float | None = None,
                   slice_index: float | None = None) -> Plane:
    """A standard view of a volume, fitted to show the whole volume.

    ``position_mm``: where the plane crosses its normal axis, as the patient coordinate along
    that normal (e.g. the z of an axial plane, in LPS mm). ``slice_index``: the plane through
    slice ``k`` of the volume (index along its own slice axis, continuous). Neither: the middle.
    The pixel spacing is the volume's finest in-plane spacing unless ``size_px`` asks for a fit.
    """
    orientation = Orientation(orientation)
    if orientation is Orientation.ACQUISITION:
        row = geometry.affine[:3, 2]
        col = geometry.affine[:3, 1]
    else:
        row, col = (np.asarray(v) for v in _STANDARD_AXES[orientation])
    row, col = _unit(row, "row"), _unit(col, "col")
    normal = np.cross(row, col)
    nz, ny, nx = geometry.shape
    center = geometry.index_to_patient([(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2])
    if slice_index is not None:
        through = geometry.index_to_patient([slice_index, (ny - 1) / 2, (nx - 1) / 2])
        center = center + ((through - center) @ normal) * normal
    elif position_mm is not None:
        center = center + (position_mm - float(center @ normal)) * normal
    corners = _volume_corners(geometry) - center
    half_w = float(np.max(np.abs(corners @ row)))
    half_h = float(np.max(np.abs(corners @ col)))
    spacing = float(min(geometry.spacing_mm[1], geometry.spacing_mm[2]))
    if size_px is None:
        w = max(1, int(round(2 * half_w / spacing)) + 1)
        h = max(1, int(round(2 * half_h / spacing)) + 1)
        size_px = (w, h)
    else:
        w, h = size_px
        spacing = max(2 * half_w / max(w - 1, 1), 2 * half_h / max(h - 1, 1), 1e-6)
    return Plane(center_lps=center, row_dir=row, col_dir=col, pixel_spacing_mm=spacing,
                 size_px=size_px)
