"""CPU (numba, parallel) kernels sampling a volume at arbitrary points, with or without a slab.

For surfaces that are not planes (CPR): the caller gives the continuous voxel index (z, y, x)
of every output pixel, ``index_points`` (h, w, 3) float64, and for a slab the index-space step
per millimetre along each pixel's normal, ``index_normals`` (h, w, 3). The inside rule and the
interpolation are those of :mod:`render_engine.kernels.cpu_sampling` (its ``_sample`` is reused),
so a point gives exactly the value a plane through it gives.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from render_engine.kernels.cpu_sampling import (
    AVGIP,
    LINEAR,
    MINIP,
    MIP,
    NEAREST,
    _accumulate,
    _finish,
    _sample,
)

__all__ = ["AVGIP", "LINEAR", "MINIP", "MIP", "NEAREST", "sample_points", "sample_points_slab"]


@numba.njit(parallel=True, cache=True)
def _points(vol, pts, out, order, fill):  # type: ignore[no-untyped-def]
    h, w = out.shape
    for i in numba.prange(h):
        for j in range(w):
            out[i, j] = _sample(vol, pts[i, j, 0], pts[i, j, 1], pts[i, j, 2], order, fill)


@numba.njit(parallel=True, cache=True)
def _points_slab(vol, pts, normals, offsets, out, order, mode, fill):  # type: ignore[no-untyped-def]
    h, w = out.shape
    nz, ny, nx = vol.shape
    n = offsets.shape[0]
    for i in numba.prange(h):
        for j in range(w):
            acc = 0.0
            count = 0
            for k in range(n):
                t = offsets[k]
                z = pts[i, j, 0] + t * normals[i, j, 0]
                y = pts[i, j, 1] + t * normals[i, j, 1]
                x = pts[i, j, 2] + t * normals[i, j, 2]
                if not (-0.5 <= z <= nz - 0.5 and -0.5 <= y <= ny - 0.5
                        and -0.5 <= x <= nx - 0.5):
                    continue
                acc, count = _accumulate(acc, count, _sample(vol, z, y, x, order, fill), mode)
            out[i, j] = _finish(acc, count, mode, fill)


def _grid(array: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    a = np.ascontiguousarray(array, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be (h, w, 3), got shape {a.shape}")
    return a


def sample_points(volume: npt.NDArray[np.generic], index_points: npt.ArrayLike, *,
                  order: int = LINEAR, fill: float = 0.0) -> npt.NDArray[np.float32]:
    """Values of ``volume`` (z, y, x) at continuous indices ``index_points`` (h, w, 3):
    float32 (h, w), ``fill`` outside. Raises ``ValueError`` for a wrong shape."""
    pts = _grid(index_points, "index_points")
    out = np.empty(pts.shape[:2], dtype=np.float32)
    _points(volume, pts, out, order, float(fill))
    return out


def sample_points_slab(volume: npt.NDArray[np.generic], index_points: npt.ArrayLike,
                       index_normals: npt.ArrayLike, offsets_mm: npt.ArrayLike, *,
                       mode: int = MIP, order: int = LINEAR,
                       fill: float = 0.0) -> npt.NDArray[np.float32]:
    """MIP / MinIP / AvgIP over the samples ``index_points + t · index_normals`` for ``t`` in
    ``offsets_mm`` (mm; normals are index steps per mm): float32 (h, w). Samples outside the
    volume are left out; a pixel with none inside gets ``fill``."""
    if mode not in (MIP, MINIP, AVGIP):
        raise ValueError(f"unknown slab mode {mode}")
    pts = _grid(index_points, "index_points")
    normals = _grid(np.broadcast_to(index_normals, pts.shape), "index_normals")
    out = np.empty(pts.shape[:2], dtype=np.float32)
    _points_slab(volume, pts, normals, np.ascontiguousarray(offsets_mm, dtype=np.float64).ravel(),
                 out, order, mode, float(fill))
    return out
