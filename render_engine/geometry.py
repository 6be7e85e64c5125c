"""Patient-space geometry of volumes (DICOM LPS, millimetres).

A volume's voxel ``(k, j, i)`` — index order ``(z, y, x)``, i.e. (slice, row, column) — maps to
patient coordinates through a 4x4 affine ``A``::

    [x_lps, y_lps, z_lps, 1]^T = A @ [k, j, i, 1]^T

Column 0 of ``A`` is the step between slices (mm), column 1 the step between rows (the DICOM
column direction cosine times the row spacing), column 2 the step between columns (the row
direction cosine times the column spacing), column 3 the position of voxel (0, 0, 0) — the
centre of the first transmitted pixel of the first slice (PS3.3 C.7.6.2.1.1).

The slice axis need not be perpendicular to rows and columns: a gantry-tilted CT has a sheared
affine, represented exactly, without resampling. Pure numpy; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from render_engine.errors import GeometryError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeGeometry:
    """Shape and index→patient affine of a volume, without its voxels.

    ``shape`` is ``(z, y, x)``; ``affine`` maps index ``(z, y, x)`` to LPS millimetres.
    Raises :class:`GeometryError` for a singular affine or a non-positive shape.
    """

    shape: tuple[int, int, int]
    affine: FloatArray = field(repr=False)
    frame_of_reference_uid: str | None = None

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise GeometryError(f"affine must be 4x4, got {affine.shape}")
        if not np.allclose(affine[3], [0.0, 0.0, 0.0, 1.0]):
            raise GeometryError("affine's last row must be [0, 0, 0, 1]")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise GeometryError("affine is singular")
        if len(self.shape) != 3 or any(int(n) < 1 for n in self.shape):
            raise GeometryError(f"shape must be three positive sizes, got {self.shape}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))

    @classmethod
    def from_components(
        cls,
        *,
        shape: tuple[int, int, int],
        origin_lps: npt.ArrayLike,
        row_cosine: npt.ArrayLike,
        column_cosine: npt.ArrayLike,
        slice_step_lps: npt.ArrayLike,
        pixel_spacing_mm: tuple[float, float],
        frame_of_reference_uid: str | None = None,
    ) -> VolumeGeometry:
        """Build from DICOM image-plane components.

        ``row_cosine`` / ``column_cosine`` are ImageOrientationPatient's two halves (the
        direction of increasing column index and of increasing row index); ``pixel_spacing_mm``
        is PixelSpacing as stored: (between rows, between columns). ``slice_step_lps`` is the
        vector from one slice's ImagePositionPatient to the next (sheared when tilted).
        """
        row_spacing, col_spacing = (float(v) for v in pixel_spacing_mm)
        affine = np.eye(4)
        affine[:3, 0] = np.asarray(slice_step_lps, dtype=np.float64)
        affine[:3, 1] = np.asarray(column_cosine, dtype=np.float64) * row_spacing
        affine[:3, 2] = np.asarray(row_cosine, dtype=np.float64) * col_spacing
        affine[:3, 3] = np.asarray(origin_lps, dtype=np.float64)
        return cls(shape=shape, affine=affine, frame_of_reference_uid=frame_of_reference_uid)

    @property
    def origin_lps(self) -> FloatArray:
        """Patient position of voxel (0, 0, 0), mm."""
        return self.affine[:3, 3].copy()

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Step lengths along (z, y, x) in mm (the slice step includes any shear)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def direction(self) -> FloatArray:
        """Unit axis directions as columns, in (z, y, x) order."""
        m = self.affine[:3, :3]
        return m / np.linalg.norm(m, axis=0)

    @property
    def slice_normal(self) -> FloatArray:
        """Unit normal of the row/column plane (row cosine x column cosine), LPS."""
        n = np.cross(self.affine[:3, 2], self.affine[:3, 1])
        return n / np.linalg.norm(n)

    @property
    def is_sheared(self) -> bool:
        """True when the slice axis is not perpendicular to rows and columns (gantry tilt)."""
        d = self.direction
        return bool(abs(float(d[:, 0] @ d[:, 1])) > 1e-6 or abs(float(d[:, 0] @ d[:, 2])) > 1e-6)

    def index_to_patient(self, index_zyx: npt.ArrayLike) -> FloatArray:
        """Map index coordinates ``(..., 3)`` in (z, y, x) order to LPS mm ``(..., 3)``."""
        idx = np.asarray(index_zyx, dtype=np.float64)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def patient_to_index(self, point_lps: npt.ArrayLike) -> FloatArray:
        """Map LPS mm points ``(..., 3)`` to continuous (z, y, x) indices ``(..., 3)``."""
        p = np.asarray(point_lps, dtype=np.float64) - self.affine[:3, 3]
        return p @ np.linalg.inv(self.affine[:3, :3]).T

    def downsampled(self, factors_zyx: tuple[int, int, int], shape: tuple[int, int, int]) -> VolumeGeometry:
        """Geometry of a level made by averaging blocks of ``factors_zyx`` voxels.

        The new voxel centre is the centre of its block: index ``n`` of the new level lies at
        old index ``n * f + (f - 1) / 2``.
        """
        f = np.asarray(factors_zyx, dtype=np.float64)
        affine = self.affine.copy()
        affine[:3, :3] = self.affine[:3, :3] * f
        affine[:3, 3] = self.index_to_patient((f - 1.0) / 2.0)
        return VolumeGeometry(shape=shape, affine=affine,
                              frame_of_reference_uid=self.frame_of_reference_uid)

    def to_json(self) -> dict[str, object]:
        return {
            "shape": list(self.shape),
            "affine": self.affine.tolist(),
            "frame_of_reference_uid": self.frame_of_reference_uid,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> VolumeGeometry:
        shape = tuple(int(v) for v in data["shape"])  # type: ignore[attr-defined]
        return cls(shape=shape,  # type: ignore[arg-type]
                   affine=np.asarray(data["affine"], dtype=np.float64),
                   frame_of_reference_uid=data.get("frame_of_reference_uid"))  # type: ignore[arg-type]
