"""Sample a volume on a curved planar reformation (:class:`~render_engine.curved.CprView`).

The surface's pixels are mapped to continuous voxel indices through the inverse of the volume's
affine (sheared or not), once per frame; the point kernels then sample them with the same
inside rule and interpolation as plane sampling, so a CPR along a straight line gives the
pixels of the equivalent :class:`~render_engine.planes.Plane`. A slab thickens the surface
along its per-pixel normals. Values are the volume's own units (HU, Bq/ml, …).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.curved import CprSurface, CprView
from render_engine.geometry import VolumeGeometry
from render_engine.kernels import cpu_points, gpu_points
from render_engine.kernels.backend import is_gpu_array
from render_engine.planes import Slab
from render_engine.sampling import slab_step_mm

_MODES = {"mip": cpu_points.MIP, "minip": cpu_points.MINIP, "avgip": cpu_points.AVGIP}
_ORDERS = {"nearest": cpu_points.NEAREST, "linear": cpu_points.LINEAR}


def sample_cpr(volume: npt.NDArray[np.generic], geometry: VolumeGeometry,
               view: CprView | CprSurface, *, slab: Slab | None = None,
               interpolation: str = "linear", fill: float = 0.0) -> npt.NDArray[np.float32]:
    """Values of ``volume`` (z, y, x) on a CPR: float32 (h, w), ``fill`` outside the volume.

    ``view`` may be a :class:`CprView` or its precomputed :class:`CprSurface` (to reuse the
    surface across frames: window changes, slabs, several volumes). A cupy volume (float32,
    see ``backend.to_gpu``) renders on the GPU and returns a cupy array. The slab is sampled
    every half smallest voxel spacing along each pixel's normal. Raises ``ValueError`` when
    the volume's shape is not the geometry's, ``KeyError`` for an unknown interpolation.
    """
    if tuple(volume.shape) != geometry.shape:
        raise ValueError(f"volume shape {volume.shape} != geometry shape {geometry.shape}")
    order = _ORDERS[interpolation]
    surface = view.surface() if isinstance(view, CprView) else view
    points = surface.index_grid(geometry)
    kernels: Any = gpu_points if is_gpu_array(volume) else cpu_points
    if slab is None or slab.thickness_mm == 0:
        return kernels.sample_points(volume, points, order=order,  # type: ignore[no-any-return]
                                     fill=fill)
    offsets = slab.sample_offsets_mm(slab_step_mm(geometry))
    return kernels.sample_points_slab(  # type: ignore[no-any-return]
        volume, points, surface.index_normals(geometry), offsets, mode=_MODES[slab.mode],
        order=order, fill=fill)
