"""Coarse grids of voxel blocks for empty-space skipping in ray casting (CPU, numba).

A level-1 block of an axis with shift ``s`` covers the trilinear cells ``b·2**s …
(b+1)·2**s - 1`` and so the voxels ``b·2**s … (b+1)·2**s`` (one shared with the next block):
every sample whose cell lies in the block is a convex combination of those voxels, so it lies
within the block's [min, max]. Two coarser levels group 4 x 4 x 4 blocks of the level below.
MIP skips blocks whose maximum cannot raise a ray's maximum, MinIP likewise with minima, volume
rendering skips blocks whose value range reads only transparent entries of its LUT. Grids are
float32, shape ``(nbz, nby, nbx)`` with :func:`block_count` blocks per axis.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["LEVEL_SHIFT", "block_count", "block_minmax", "block_pyramid", "pool_blocks",
           "visible_blocks"]

LEVEL_SHIFT = 2  # each level's block holds 4 x 4 x 4 blocks of the level below (3 levels)


def block_count(n: int, shift: int) -> int:
    """Blocks along an axis of ``n`` voxels: cells 0 … max(n - 2, 0) in blocks of 2**shift."""
    return (max(n - 2, 0) >> shift) + 1


@numba.njit(parallel=True, cache=True)
def _rows_minmax(vol, shx, lo, hi):  # type: ignore[no-untyped-def]
    """Per row (z, y): min and max over each x block's voxels, lo/hi of shape (nz, ny, nbx)."""
    nz, ny, nx = vol.shape
    nbx = lo.shape[2]
    for z in numba.prange(nz):
        for y in range(ny):
            for bx in range(nbx):
                x0, x1 = bx << shx, min((bx + 1) << shx, nx - 1)
                a = np.float32(np.inf)
                b = np.float32(-np.inf)
                for x in range(x0, x1 + 1):
                    v = np.float32(vol[z, y, x])
                    a = min(a, v)
                    b = max(b, v)
                lo[z, y, bx] = a
                hi[z, y, bx] = b


@numba.njit(parallel=True, cache=True)
def _reduce_axis(src_lo, src_hi, axis, shift, lo, hi):  # type: ignore[no-untyped-def]
    """Min/max over blocks of 2**shift + 1 entries (the next block's first included) along
    ``axis`` 0 or 1 of (n0, n1, n2) arrays."""
    n0, n1, n2 = lo.shape
    m = src_lo.shape[axis]
    for p in numba.prange(n0):
        for q in range(n1):
            b = np.int64(p) if axis == 0 else np.int64(q)
            e0, e1 = b << shift, min((b + 1) << shift, m - 1)
            for r in range(n2):
                a = np.float32(np.inf)
                c = np.float32(-np.inf)
                for e in range(e0, e1 + 1):
                    if axis == 0:
                        a = min(a, src_lo[e, q, r])
                        c = max(c, src_hi[e, q, r])
                    else:
                        a = min(a, src_lo[p, e, r])
                        c = max(c, src_hi[p, e, r])
                lo[p, q, r] = a
                hi[p, q, r] = c


def block_minmax(volume: npt.NDArray[np.generic], shifts: tuple[int, int, int]
                 ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Min and max (float32) of the voxels each trilinear cell block can read.

    Block ``b`` along an axis covers cells ``b·2**s … (b+1)·2**s - 1`` and so voxels
    ``b·2**s … (b+1)·2**s`` (one shared with the next block); shape ``(nbz, nby, nbx)`` from
    :func:`block_count`.
    """
    nz, ny, _ = volume.shape
    nbz, nby, nbx = (block_count(n, s) for n, s in zip(volume.shape, shifts, strict=True))
    # Separable: along x within rows, then along y, then along z.
    lo_x = np.empty((nz, ny, nbx), dtype=np.float32)
    hi_x = np.empty_like(lo_x)
    _rows_minmax(np.ascontiguousarray(volume), shifts[2], lo_x, hi_x)
    lo_y = np.empty((nz, nby, nbx), dtype=np.float32)
    hi_y = np.empty_like(lo_y)
    _reduce_axis(lo_x, hi_x, 1, shifts[1], lo_y, hi_y)
    bmin = np.empty((nbz, nby, nbx), dtype=np.float32)
    bmax = np.empty_like(bmin)
    _reduce_axis(lo_y, hi_y, 0, shifts[0], bmin, bmax)
    return bmin, bmax


def pool_blocks(xp: Any, grid: Any, op: str) -> Any:
    """The next level's grid, over blocks of 4 x 4 x 4 blocks of ``grid``: ``op`` "max" or
    "min", with numpy or cupy as ``xp``."""
    f = 1 << LEVEL_SHIFT
    pad = [(0, (-n) % f) for n in grid.shape]
    g = xp.pad(grid, pad, mode="edge")  # repeats values: neutral for both max and min
    nz, ny, nx = (n // f for n in g.shape)
    g = g.reshape(nz, f, ny, f, nx, f)
    reduce = xp.max if op == "max" else xp.min
    return xp.ascontiguousarray(reduce(g, axis=(1, 3, 5)))


@numba.njit(parallel=True, cache=True)
def _pool(lo, hi, out_lo, out_hi, f):  # type: ignore[no-untyped-def]
    n0, n1, n2 = lo.shape
    for a in numba.prange(out_lo.shape[0]):
        for b in range(out_lo.shape[1]):
            for c in range(out_lo.shape[2]):
                x = np.float32(np.inf)
                y = np.float32(-np.inf)
                for i in range(a * f, min(a * f + f, n0)):
                    for j in range(b * f, min(b * f + f, n1)):
                        for k in range(c * f, min(c * f + f, n2)):
                            x = min(x, lo[i, j, k])
                            y = max(y, hi[i, j, k])
                out_lo[a, b, c] = x
                out_hi[a, b, c] = y


def _pool_cpu(lo: npt.NDArray[np.float32], hi: npt.NDArray[np.float32]
              ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """:func:`pool_blocks` of both grids at once, in numba."""
    f = 1 << LEVEL_SHIFT
    shape = tuple(-(-n // f) for n in lo.shape)
    out_lo = np.empty(shape, dtype=np.float32)
    out_hi = np.empty(shape, dtype=np.float32)
    _pool(lo, hi, out_lo, out_hi, f)
    return out_lo, out_hi


def block_pyramid(volume: npt.NDArray[np.generic], shifts: tuple[int, int, int]
                  ) -> tuple[tuple[npt.NDArray[np.float32], ...], tuple[npt.NDArray[np.float32], ...]]:
    """(minima, maxima) of the three block levels, finest first (see :func:`block_minmax`)."""
    lo, hi = block_minmax(volume, shifts)
    lo2, hi2 = _pool_cpu(lo, hi)
    lo3, hi3 = _pool_cpu(lo2, hi2)
    return (lo, lo2, lo3), (hi, hi2, hi3)


@numba.njit(parallel=True, cache=True)
def _visible(bmin, bmax, visible_prefix, lut_lo, lut_scale, out):  # type: ignore[no-untyped-def]
    n = visible_prefix.shape[0] - 1
    lo_flat, hi_flat, o = bmin.reshape(-1), bmax.reshape(-1), out.reshape(-1)
    for q in numba.prange(lo_flat.shape[0]):
        first = int((lo_flat[q] - lut_lo) * lut_scale + np.float32(0.5)) - 1
        last = int((hi_flat[q] - lut_lo) * lut_scale + np.float32(0.5)) + 1
        first = min(max(first, 0), n - 1)
        last = min(max(last, 0), n - 1)
        o[q] = 1 if visible_prefix[last + 1] > visible_prefix[first] else 0


def visible_blocks(bmin: npt.NDArray[np.float32], bmax: npt.NDArray[np.float32],
                   alpha: npt.NDArray[np.float32], lut_lo: float,
                   lut_scale: float) -> npt.NDArray[np.uint8]:
    """1 for blocks whose value range [bmin, bmax] reads a LUT entry with opacity > 0 (the
    entries the kernel would read, one entry of slack either side), else 0; uint8."""
    prefix = np.concatenate([[0], np.cumsum(np.asarray(alpha) > 0)]).astype(np.int64)
    out = np.empty(bmin.shape, dtype=np.uint8)
    _visible(np.ascontiguousarray(bmin), np.ascontiguousarray(bmax), prefix,
             np.float32(lut_lo), np.float32(lut_scale), out)
    return out
