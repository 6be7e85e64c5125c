"""Lesion sync (R32): where a patient-space point lies in each series of a frame of reference.

A point located on one view (``Plane.pixel_to_patient``) is a point in patient space (LPS, mm).
Every series sharing the view's FrameOfReferenceUID places its voxels in that same space
(PS3.3 C.7.4.1.1.1), so mapping the point into another series needs only that series' affine —
never a slice number, which means nothing across series (DESIGN: "everything lives in patient
space"). Series of different frames of reference are not comparable this way (registration is
another matter) and are left out by :func:`locate_in_series`. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Orientation, Plane, standard_plane

FloatArray = npt.NDArray[np.float64]

# The orientations a located point is shown in, acquisition first.
ORIENTATIONS = (Orientation.ACQUISITION, Orientation.AXIAL, Orientation.CORONAL,
                Orientation.SAGITTAL)


def _point(point_lps: npt.ArrayLike) -> FloatArray:
    try:
        p = np.asarray(point_lps, dtype=np.float64)
    except (TypeError, ValueError):
        raise GeometryError(f"point_lps must be three numbers, got {point_lps!r}") from None
    if p.shape != (3,) or not np.isfinite(p).all():
        raise GeometryError(f"point_lps must be three finite numbers, got {point_lps!r}")
    return p


def plane_through_point(geometry: VolumeGeometry, orientation: Orientation | str,
                        point_lps: npt.ArrayLike, *,
                        size_px: tuple[int, int] | None = None) -> Plane:
    """The standard ``orientation`` view of ``geometry`` moved so it passes through the point.

    ``standard_plane``'s ``position_mm`` is the patient coordinate along the plane's *normal*
    (``row_dir × col_dir``): for a sagittal view the normal is -x (R → L on screen is P → A),
    so the position is ``point · normal``, not the point's x; computed here from the normal.
    """
    p = _point(point_lps)
    normal = standard_plane(geometry, orientation, size_px=size_px).normal
    return standard_plane(geometry, orientation, size_px=size_px,
                          position_mm=float(p @ normal))


def _view(plane: Plane, point: FloatArray) -> dict[str, Any]:
    row, col, _ = plane.patient_to_pixel(point)
    w, h = plane.size_px
    inside = bool(-0.5 <= col <= w - 0.5 and -0.5 <= row <= h - 0.5)
    return {"plane": plane.to_json(), "position_px": [float(col), float(row)],
            "inside_view": inside}


def locate(point_lps: npt.ArrayLike, geometry: VolumeGeometry, *,
           size_px: tuple[int, int] | None = None) -> dict[str, Any]:
    """Where the LPS point ``point_lps`` (mm) lies in the series of ``geometry``.

    JSON-ready result:

    - ``point_lps``: the point, mm; ``frame_of_reference_uid``: the geometry's.
    - ``index_zyx``: continuous voxel index (z, y, x) of the point (sheared affines included:
      a gantry tilt maps exactly).
    - ``inside``: the ITK rule, every index within ``-0.5 … n - 0.5`` (the point lies in a
      voxel of the volume).
    - ``nearest_slice_index``: the acquisition slice (index along z, clamped to 0 … nz - 1)
      whose plane is nearest: ``round(z)``, as the slices are planes of constant z;
      ``slice_distance_mm``: the point's distance to that slice's plane, along the slice normal
      (row cosine × column cosine), mm, >= 0. Slice k's plane passes through the position
      of voxel (k, 0, 0), i.e. that slice's ImagePositionPatient (PS3.3 C.7.6.2.1.1).
    - ``views``: for ``acquisition``, ``axial``, ``coronal``, ``sagittal``: ``plane`` (a
      :meth:`Plane.to_json`: the standard view of the volume, of ``size_px`` when given, moved
      along its normal to pass through the point), ``position_px`` [x, y] (x = column,
      y = row: ``plane.pixel_to_patient(y, x)`` is the point) and ``inside_view``.

    Raises :class:`GeometryError` (a ``ValueError``) unless the point is three finite numbers.
    """
    p = _point(point_lps)
    index = geometry.patient_to_index(p)
    n = np.asarray(geometry.shape, dtype=np.float64)
    inside = bool(np.all((index >= -0.5) & (index <= n - 0.5)))
    k = int(min(max(math.floor(index[0] + 0.5), 0), geometry.shape[0] - 1))
    on_slice = geometry.index_to_patient([float(k), 0.0, 0.0])
    distance = abs(float((p - on_slice) @ geometry.slice_normal))
    views = {str(o): _view(plane_through_point(geometry, o, p, size_px=size_px), p)
             for o in ORIENTATIONS}
    return {"point_lps": p.tolist(), "frame_of_reference_uid": geometry.frame_of_reference_uid,
            "index_zyx": index.tolist(), "inside": inside, "nearest_slice_index": k,
            "slice_distance_mm": distance, "views": views}


def locate_in_series(point_lps: npt.ArrayLike, geometries: Mapping[str, VolumeGeometry], *,
                     frame_of_reference_uid: str | None,
                     size_px: tuple[int, int] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`locate` the point in every series of ``geometries`` (series UID → geometry)
    that shares ``frame_of_reference_uid``, in the mapping's order.

    A series whose geometry has no frame of reference, or another one, is left out: its
    patient coordinates need not match (PS3.3 C.7.4.1.1.1). With
    ``frame_of_reference_uid=None`` (the source series has none) nothing can be matched and
    the result is empty; :func:`locate` still serves the source series itself. Raises
    :class:`GeometryError` for a bad point.
    """
    p = _point(point_lps)
    if frame_of_reference_uid is None:
        return {}
    return {uid: locate(p, geometry, size_px=size_px) for uid, geometry in geometries.items()
            if geometry.frame_of_reference_uid == frame_of_reference_uid}
