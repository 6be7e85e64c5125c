"""CPU (numba, parallel) kernels sampling a volume on a plane, with or without a slab.

Coordinates are continuous voxel indices in (z, y, x) order. A point is inside the volume when
every index lies within the voxels' extent, ``-0.5 <= i <= n - 0.5`` (as ITK does); there it is
interpolated with the index clamped to ``[0, n - 1]``, elsewhere it takes ``fill``. A volume one
slice thick therefore renders on its own plane, half a slice either side.

The index of output pixel (row i, column j) and slab sample k is
``origin + j * d_col + i * d_row + offsets[k] * d_normal``; the three steps are index-space
vectors computed once per frame by the caller.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

NEAREST, LINEAR = 0, 1
MIP, MINIP, AVGIP = 0, 1, 2


@numba.njit(cache=True, inline="always")
def _sample(vol, z, y, x, order, fill):  # type: ignore[no-untyped-def]
    nz, ny, nx = vol.shape
    if not (-0.5 <= z <= nz - 0.5 and -0.5 <= y <= ny - 0.5 and -0.5 <= x <= nx - 0.5):
        return fill
    z = min(max(z, 0.0), nz - 1.0)
    y = min(max(y, 0.0), ny - 1.0)
    x = min(max(x, 0.0), nx - 1.0)
    if order == NEAREST:
        return float(vol[int(z + 0.5), int(y + 0.5), int(x + 0.5)])
    z0 = min(int(z), nz - 2) if nz > 1 else 0
    y0 = min(int(y), ny - 2) if ny > 1 else 0
    x0 = min(int(x), nx - 2) if nx > 1 else 0
    fz, fy, fx = z - z0, y - y0, x - x0
    z1 = z0 + 1 if nz > 1 else 0
    y1 = y0 + 1 if ny > 1 else 0
    x1 = x0 + 1 if nx > 1 else 0
    c00 = vol[z0, y0, x0] * (1.0 - fx) + vol[z0, y0, x1] * fx
    c01 = vol[z0, y1, x0] * (1.0 - fx) + vol[z0, y1, x1] * fx
    c10 = vol[z1, y0, x0] * (1.0 - fx) + vol[z1, y0, x1] * fx
    c11 = vol[z1, y1, x0] * (1.0 - fx) + vol[z1, y1, x1] * fx
    c0 = c00 * (1.0 - fy) + c01 * fy
    c1 = c10 * (1.0 - fy) + c11 * fy
    return c0 * (1.0 - fz) + c1 * fz


@numba.njit(cache=True, inline="always")
def _accumulate(acc, count, v, mode):  # type: ignore[no-untyped-def]
    """Fold sample ``v`` into a slab's running MIP / MinIP / sum; returns (acc, count)."""
    if count == 0:
        return v, 1
    if mode == MIP:
        return max(acc, v), count + 1
    if mode == MINIP:
        return min(acc, v), count + 1
    return acc + v, count + 1


@numba.njit(cache=True, inline="always")
def _finish(acc, count, mode, fill):  # type: ignore[no-untyped-def]
    """A slab pixel's value: ``fill`` without samples inside, the mean for AvgIP."""
    if count == 0:
        return fill
    return acc / count if mode == AVGIP else acc


@numba.njit(parallel=True, cache=True)
def _plane(vol, origin, d_col, d_row, out, order, fill):  # type: ignore[no-untyped-def]
    h, w = out.shape
    for i in numba.prange(h):
        bz = origin[0] + i * d_row[0]
        by = origin[1] + i * d_row[1]
        bx = origin[2] + i * d_row[2]
        for j in range(w):
            out[i, j] = _sample(vol, bz + j * d_col[0], by + j * d_col[1], bx + j * d_col[2],
                                order, fill)


@numba.njit(parallel=True, cache=True)
def _slab(vol, origin, d_col, d_row, d_normal, offsets, out, order, mode, fill):  # type: ignore[no-untyped-def]
    h, w = out.shape
    n = offsets.shape[0]
    for i in numba.prange(h):
        for j in range(w):
            bz = origin[0] + i * d_row[0] + j * d_col[0]
            by = origin[1] + i * d_row[1] + j * d_col[1]
            bx = origin[2] + i * d_row[2] + j * d_col[2]
            acc = 0.0
            count = 0
            for k in range(n):
                t = offsets[k]
                z = bz + t * d_normal[0]
                y = by + t * d_normal[1]
                x = bx + t * d_normal[2]
                nz, ny, nx = vol.shape
                if not (-0.5 <= z <= nz - 0.5 and -0.5 <= y <= ny - 0.5
                        and -0.5 <= x <= nx - 0.5):
                    continue
                acc, count = _accumulate(acc, count, _sample(vol, z, y, x, order, fill), mode)
            out[i, j] = _finish(acc, count, mode, fill)


@numba.njit(cache=True, inline="always")
def _at(vol, axis, a, u, v):  # type: ignore[no-untyped-def]
    """vol at integer ``a`` along ``axis`` and index (u, v) on the other two axes (in order)."""
    if axis == 0:
        return vol[a, u, v]
    if axis == 1:
        return vol[u, a, v]
    return vol[u, v, a]


@numba.njit(parallel=True, cache=True)
def _slab_along_axis(vol, origin, d_col, d_row, axis, step, offsets, out, order, mode,  # type: ignore[no-untyped-def]
                     fill):
    """The slab when its normal runs along one index axis: exact trilinear values from one
    bilinear interpolation per crossed slice instead of one trilinear per sample."""
    h, w = out.shape
    n = offsets.shape[0]
    na = vol.shape[axis]
    ua, va = (1, 2) if axis == 0 else ((0, 2) if axis == 1 else (0, 1))
    nu, nv = vol.shape[ua], vol.shape[va]
    span = int(abs(step) * (offsets[n - 1] - offsets[0])) + 4
    for i in numba.prange(h):
        cache = np.empty(span, dtype=np.float64)
        for j in range(w):
            b = (origin[0] + i * d_row[0] + j * d_col[0], origin[1] + i * d_row[1] + j * d_col[1],
                 origin[2] + i * d_row[2] + j * d_col[2])
            u, v = b[ua], b[va]
            a_first = b[axis] + offsets[0] * step
            a_last = b[axis] + offsets[n - 1] * step
            lo, hi = min(a_first, a_last), max(a_first, a_last)
            if not (-0.5 <= u <= nu - 0.5 and -0.5 <= v <= nv - 0.5) or hi < -0.5 \
                    or lo > na - 0.5:
                out[i, j] = fill
                continue
            u = min(max(u, 0.0), nu - 1.0)
            v = min(max(v, 0.0), nv - 1.0)
            if order == NEAREST:
                u0, v0, fu, fv, u1, v1 = int(u + 0.5), int(v + 0.5), 0.0, 0.0, 0, 0
            else:
                u0 = min(int(u), nu - 2) if nu > 1 else 0
                v0 = min(int(v), nv - 2) if nv > 1 else 0
                fu, fv = u - u0, v - v0
            u1 = u0 + 1 if (nu > 1 and order != NEAREST) else u0
            v1 = v0 + 1 if (nv > 1 and order != NEAREST) else v0
            m_lo = int(min(max(lo, 0.0), na - 1.0))
            m_hi = min(int(min(max(hi, 0.0), na - 1.0)) + 1, na - 1)
            for m in range(m_lo, m_hi + 1):
                c0 = _at(vol, axis, m, u0, v0) * (1.0 - fv) + _at(vol, axis, m, u0, v1) * fv
                c1 = _at(vol, axis, m, u1, v0) * (1.0 - fv) + _at(vol, axis, m, u1, v1) * fv
                cache[m - m_lo] = c0 * (1.0 - fu) + c1 * fu
            acc = 0.0
            count = 0
            for k in range(n):
                a = b[axis] + offsets[k] * step
                if not -0.5 <= a <= na - 0.5:
                    continue
                a = min(max(a, 0.0), na - 1.0)
                if order == NEAREST:
                    val = cache[int(a + 0.5) - m_lo]
                else:
                    a0 = min(int(a), na - 2) if na > 1 else 0
                    fa = a - a0
                    a1 = a0 + 1 if na > 1 else 0
                    val = cache[a0 - m_lo] * (1.0 - fa) + cache[a1 - m_lo] * fa
                acc, count = _accumulate(acc, count, val, mode)
            out[i, j] = _finish(acc, count, mode, fill)


def sample_plane(volume: npt.NDArray[np.generic], origin: npt.NDArray[np.float64],
                 d_col: npt.NDArray[np.float64], d_row: npt.NDArray[np.float64],
                 size_hw: tuple[int, int], *, order: int = LINEAR,
                 fill: float = 0.0) -> npt.NDArray[np.float32]:
    """Values on a plane (float32, shape ``size_hw``); see the module docstring."""
    out = np.empty(size_hw, dtype=np.float32)
    _plane(volume, np.ascontiguousarray(origin, dtype=np.float64),
           np.ascontiguousarray(d_col, dtype=np.float64),
           np.ascontiguousarray(d_row, dtype=np.float64), out, order, float(fill))
    return out


def sample_slab(volume: npt.NDArray[np.generic], origin: npt.NDArray[np.float64],
                d_col: npt.NDArray[np.float64], d_row: npt.NDArray[np.float64],
                d_normal: npt.NDArray[np.float64], offsets: npt.NDArray[np.float64],
                size_hw: tuple[int, int], *, mode: int = MIP, order: int = LINEAR,
                fill: float = 0.0) -> npt.NDArray[np.float32]:
    """MIP / MinIP / AvgIP of the samples at ``offsets`` along ``d_normal`` (float32)."""
    out = np.empty(size_hw, dtype=np.float32)
    d_normal = np.asarray(d_normal, dtype=np.float64)
    along = np.flatnonzero(np.abs(d_normal) > 1e-12 * np.abs(d_normal).max())
    if along.size == 1:  # normal along an index axis: the common axial/coronal/sagittal slab
        axis = int(along[0])
        _slab_along_axis(volume, np.ascontiguousarray(origin, dtype=np.float64),
                         np.ascontiguousarray(d_col, dtype=np.float64),
                         np.ascontiguousarray(d_row, dtype=np.float64), axis,
                         float(d_normal[axis]),
                         np.ascontiguousarray(offsets, dtype=np.float64), out, order, mode,
                         float(fill))
        return out
    _slab(volume, np.ascontiguousarray(origin, dtype=np.float64),
          np.ascontiguousarray(d_col, dtype=np.float64),
          np.ascontiguousarray(d_row, dtype=np.float64),
          np.ascontiguousarray(d_normal, dtype=np.float64),
          np.ascontiguousarray(offsets, dtype=np.float64), out, order, mode, float(fill))
    return out
