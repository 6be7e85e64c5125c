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
    if slab is None or slab.thickness_mm == 0:
        return kernels.sample_plane(volume, origin, d_col, d_row, (h, w),  # type: ignore[no-any-return]
                                    order=order, fill=fill)
    offsets = slab.sample_offsets_mm(slab_step_mm(geometry))
    return kernels.sample_slab(volume, origin, d_col, d_row, d_normal,  # type: ignore[no-any-return]
                               offsets, (h, w), mode=_MODES[slab.mode], order=order, fill=fill)
