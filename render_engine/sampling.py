"""Sample a volume on a :class:`Plane` (optionally through a :class:`Slab`).

The geometry glue between patient space and the kernels: the plane's pixel grid is mapped to
continuous voxel indices through the inverse of the volume's affine (sheared or not), once per
frame; the kernels then walk index space. Values are the volume's own units (HU, Bq/ml, …).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.geometry import VolumeGeometry
from render_engine.kernels import cpu_sampling, gpu_sampling
from render_engine.kernels.backend import is_gpu_array
from render_engine.planes import Plane, Slab

_MODES = {"mip": cpu_sampling.MIP, "minip": cpu_sampling.MINIP, "avgip": cpu_sampling.AVGIP}
_ORDERS = {"nearest": cpu_sampling.NEAREST, "linear": cpu_sampling.LINEAR}


def index_steps(geometry: VolumeGeometry, plane: Plane) -> tuple[npt.NDArray[np.float64], ...]:
    """(index of pixel (0, 0), step per column, step per row, step per mm along the normal)."""
    inv = np.linalg.inv(geometry.affine[:3, :3])
    origin = geometry.patient_to_index(plane.pixel_to_patient(0, 0))
    s = plane.pixel_spacing_mm
    return origin, inv @ (s * plane.row_dir), inv @ (s * plane.col_dir), inv @ plane.normal


def slab_step_mm(geometry: VolumeGeometry) -> float:
    """Sampling step along a slab's normal: half the smallest voxel spacing."""
    return 0.5 * min(geometry.spacing_mm)


def sample(volume: npt.NDArray[np.generic], geometry: VolumeGeometry, plane: Plane, *,
           slab: Slab | None = None, interpolation: str = "linear",
           fill: float = 0.0) -> npt.NDArray[np.float32]:
    """Values of ``volume`` (z, y, x) on ``plane``: float32 (h, w), ``fill`` outside.

    Raises ``KeyError`` for an unknown interpolation; geometry errors come from the plane.
    """
    if tuple(volume.shape) != geometry.shape:
        raise ValueError(f"volume shape {volume.shape} != geometry shape {geometry.shape}")
    order = _ORDERS[interpolation]
    origin, d_col, d_row, d_normal = index_steps(geometry, plane)
    w, h = plane.size_px
    # A cupy volume (float32, see backend.to_gpu) renders on the GPU and returns a cupy array.
    kernels: Any = gpu_sampling if is_gpu_array(volume) else cpu_sampling
    if (slab is None or slab.thickness_mm == 0) and kernels is cpu_sampling:
        copied = grid_copy(volume, origin, d_col, d_row, (h, w), fill)
        if copied is not None:
            return copied
    if slab is None or slab.thickness_mm == 0:
        return kernels.sample_plane(volume, origin, d_col, d_row, (h, w),  # type: ignore[no-any-return]
                                    order=order, fill=fill)
    offsets = slab.sample_offsets_mm(slab_step_mm(geometry))
    return kernels.sample_slab(volume, origin, d_col, d_row, d_normal,  # type: ignore[no-any-return]
                               offsets, (h, w), mode=_MODES[slab.mode], order=order, fill=fill)


_GRID_TOLERANCE = 1e-4  # voxels: a plane this close to the voxel grid is on it


def _unit_axis(step: npt.NDArray[np.float64]) -> tuple[int, int] | None:
    """(axis, ±1) when ``step`` is one voxel along one index axis, else None."""
    rounded = np.rint(step)
    if np.abs(step - rounded).max() > 1e-6 or np.abs(rounded).sum() != 1:
        return None
    axis = int(np.flatnonzero(rounded)[0])
    return axis, int(rounded[axis])


def grid_copy(volume: npt.NDArray[np.generic], origin: npt.NDArray[np.float64],
              d_col: npt.NDArray[np.float64], d_row: npt.NDArray[np.float64],
              size_hw: tuple[int, int], fill: float) -> npt.NDArray[np.float32] | None:
    """The plane by indexing when its pixels are voxel centres (paging the acquired slices at
    their own resolution): the voxel values themselves, which is what interpolation gives
    there, at the cost of a copy. None when the plane is off the grid."""
    cols, rows = _unit_axis(d_col), _unit_axis(d_row)
    start = np.rint(origin)
    if cols is None or rows is None or cols[0] == rows[0] \
            or np.abs(origin - start).max() > _GRID_TOLERANCE:
        return None
    h, w = size_hw
    out = np.full((h, w), fill, dtype=np.float32)
    k = 3 - cols[0] - rows[0]
    at = int(start[k])
    if not 0 <= at < volume.shape[k]:
        return out

    def span(axis: int, sign: int, n: int) -> tuple[int, int]:
        """The output positions [lo, hi) whose index along ``axis`` is inside the volume."""
        first, size = int(start[axis]), volume.shape[axis]
        lo, hi = (max(0, -first), min(n, size - first)) if sign > 0 else \
            (max(0, first - size + 1), min(n, first + 1))
        return lo, max(lo, hi)

    c0, c1 = span(*cols, w)
    r0, r1 = span(*rows, h)
    if c0 == c1 or r0 == r1:
        return out
    index: list[object] = [0, 0, 0]
    index[k] = at
    for (axis, sign), (lo, hi) in ((cols, (c0, c1)), (rows, (r0, r1))):
        a, b = int(start[axis]) + sign * lo, int(start[axis]) + sign * (hi - 1)
        index[axis] = slice(a, b + 1) if sign > 0 else slice(a, (b - 1) if b > 0 else None, -1)
    block = volume[tuple(index)]  # type: ignore[arg-type]  # axes in index order; the rows' axis first if it comes first
    if rows[0] > cols[0]:
        block = block.T
    out[r0:r1, c0:c1] = block
    return out
