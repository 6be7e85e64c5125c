"""CPU (numba, parallel over image tiles) ray casting through a volume in index space.

Coordinates are continuous voxel indices ``(z, y, x)``, as in :mod:`cpu_sampling`: a point is
inside when ``-0.5 <= i <= n - 0.5`` on every axis (ITK's rule) and is interpolated trilinearly
with its index clamped to ``[0, n - 1]``. Every pixel's ray is clipped to that box once; its
samples lie at whole multiples ``k`` of one step from the ray's anchor, so they never move with
the clipping and axis-aligned rays at half-voxel steps hit voxel centres exactly.

Rays come packed by :func:`pack_rays` (float64): the index of pixel (0, 0) on the image plane,
index steps per output column and per row, and either a fixed ray step (orthographic: the ray of
pixel (i, j) is ``origin + j d_col + i d_row + k d_ray`` for every integer ``k``) or an eye point
(perspective: ``eye + k · step_mm · v / |v|_mm`` for ``k >= 0``, ``v`` from the eye to the
pixel). The index→patient matrix comes along to measure steps in mm and to turn index-space
gradients into patient space (through the inverse transpose), so sheared volumes shade right.

Speed-ups that never change a pixel: rays walk the three levels of block grids of
:mod:`cpu_blocks` and sample only the level-1 blocks that matter, in runs to each block's exit
(MIP and MinIP: blocks that may beat the ray's extreme so far, which starts from the sample
where the neighbouring ray peaked; volume rendering: blocks with visible values); volume
rendering stops a ray at ``alpha_stop`` and keeps the corner differences of the last shaded cell
for the next sample in it. Pixels are processed in tiles, whose rays share cached voxels;
values are float32, positions float64; indices are unsigned (no wraparound checks); fast-math
keeps NaN and infinity semantics and no contraction or reassociation, so the same sample gives
the same bits wherever it is taken.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from render_engine.kernels.cpu_blocks import (
    LEVEL_SHIFT,
    block_count,
    block_minmax,
    block_pyramid,
    pool_blocks,
    visible_blocks,
)
from render_engine.kernels.cpu_sampling import AVGIP, MINIP, MIP

__all__ = ["AVGIP", "LEVEL_SHIFT", "MINIP", "MIP", "block_count", "block_minmax",
           "block_pyramid", "composite", "pack_rays", "pool_blocks", "project", "tile_order",
           "visible_blocks"]

# Fast-math flags that keep NaN/inf comparisons meaningful and every call site bit-identical
# (no contraction or reassociation), so skipping blocks never changes a pixel.
_FM = {"nsz", "arcp", "afn"}

# Layout of the packed ray parameters (float64).
P_ORIGIN, P_DCOL, P_DROW, P_DRAY, P_EYE = 0, 3, 6, 9, 12
P_PERSPECTIVE, P_STEP_MM, P_TO_LPS, P_GRAD_TO_LPS = 15, 16, 17, 26
P_SIZE = 35

TILE_ROWS, TILE_COLS = 8, 32  # pixels per tile (rows, columns)
COARSE_STRIDE = 8  # samples between the lower-bound samples of MIP/MinIP
EXIT_MARGIN = 1e-6  # samples; rounding errors of the exit parameter are ~1e-12


def pack_rays(origin: npt.ArrayLike, d_col: npt.ArrayLike, d_row: npt.ArrayLike, *,
              index_to_lps: npt.ArrayLike, step_mm: float, d_ray: npt.ArrayLike | None = None,
              eye: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
    """Pack one frame's rays (all index-space vectors in (z, y, x) order) into float64 (35,).

    ``index_to_lps`` is the 3x3 linear part of the volume's affine (index → LPS mm). Give
    ``d_ray`` (orthographic: the index step of one sample, ``step_mm`` long) or ``eye``
    (perspective: the eye's index position; steps of ``step_mm`` along each pixel's ray).
    Raises ``ValueError`` unless exactly one of them is given and ``step_mm > 0``.
    """
    if (d_ray is None) == (eye is None):
        raise ValueError("give exactly one of d_ray (orthographic) and eye (perspective)")
    if not (math.isfinite(step_mm) and step_mm > 0):
        raise ValueError(f"step_mm must be > 0, got {step_mm}")
    m = np.asarray(index_to_lps, dtype=np.float64).reshape(3, 3)
    p = np.zeros(P_SIZE, dtype=np.float64)
    p[P_ORIGIN:P_ORIGIN + 3] = np.asarray(origin, dtype=np.float64).reshape(3)
    p[P_DCOL:P_DCOL + 3] = np.asarray(d_col, dtype=np.float64).reshape(3)
    p[P_DROW:P_DROW + 3] = np.asarray(d_row, dtype=np.float64).reshape(3)
    if d_ray is not None:
        p[P_DRAY:P_DRAY + 3] = np.asarray(d_ray, dtype=np.float64).reshape(3)
    else:
        p[P_EYE:P_EYE + 3] = np.asarray(eye, dtype=np.float64).reshape(3)
        p[P_PERSPECTIVE] = 1.0
    p[P_STEP_MM] = float(step_mm)
    p[P_TO_LPS:P_TO_LPS + 9] = m.ravel()
    p[P_GRAD_TO_LPS:P_GRAD_TO_LPS + 9] = np.linalg.inv(m).T.ravel()
    return p


def tile_order(h: int, w: int, groups: int = 8) -> npt.NDArray[np.int64]:
    """Top-left pixels (row, column) of the image's tiles of ``TILE_ROWS x TILE_COLS``.

    Neighbouring rays read neighbouring voxels, so a tile keeps its voxels in cache. Tiles are
    interleaved in ``groups`` (0, 8, 16, …, 1, 9, …) so that the contiguous shares numba gives
    each thread sample the whole image evenly (costly tiles cluster)."""
    rows, cols = np.meshgrid(np.arange(0, h, TILE_ROWS), np.arange(0, w, TILE_COLS),
                             indexing="ij")
    tiles = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.int64)
    order = np.concatenate([np.arange(g, len(tiles), groups)
                            for g in range(min(groups, len(tiles)))])
    return np.ascontiguousarray(tiles[order])


# -- per-sample helpers ------------------------------------------------------------------------

@numba.njit(inline="always", fastmath=_FM)
def _ray(p, i, j):  # type: ignore[no-untyped-def]
    """Anchor, index step and admissible t range of the ray of pixel (i, j)."""
    tz = p[0] + j * p[3] + i * p[6]
    ty = p[1] + j * p[4] + i * p[7]
    tx = p[2] + j * p[5] + i * p[8]
    if p[15] == 0.0:
        return tz, ty, tx, p[9], p[10], p[11], -np.inf, np.inf
    vz, vy, vx = tz - p[12], ty - p[13], tx - p[14]
    lx = p[17] * vz + p[18] * vy + p[19] * vx
    ly = p[20] * vz + p[21] * vy + p[22] * vx
    lz = p[23] * vz + p[24] * vy + p[25] * vx
    s = p[16] / math.sqrt(lx * lx + ly * ly + lz * lz)
    return p[12], p[13], p[14], vz * s, vy * s, vx * s, 0.0, np.inf


@numba.njit(inline="always")
def _clip_axis(s, d, n, t0, t1):  # type: ignore[no-untyped-def]
    if abs(d) < 1e-12:
        if s < -0.5 or s > n - 0.5:
            return 1.0, 0.0
        return t0, t1
    ta = (-0.5 - s) / d
    tb = (n - 0.5 - s) / d
    if ta > tb:
        ta, tb = tb, ta
    return max(t0, ta), min(t1, tb)


@numba.njit(inline="always")
def _clip(sz, sy, sx, dz, dy, dx, nz, ny, nx, t0, t1):  # type: ignore[no-untyped-def]
    """First and last sample number inside the volume box (k0 > k1: the ray misses)."""
    t0, t1 = _clip_axis(sz, dz, nz, t0, t1)
    t0, t1 = _clip_axis(sy, dy, ny, t0, t1)
    t0, t1 = _clip_axis(sx, dx, nx, t0, t1)
    if not t0 <= t1:
        return 1, 0
    return int(math.ceil(t0 - 1e-9)), int(math.floor(t1 + 1e-9))


@numba.njit(inline="always", fastmath=_FM)
def _locate(c, nm1, nm2):  # type: ignore[no-untyped-def]
    """Cell (lower corner) and float32 fraction of a coordinate, clamped to the voxel grid."""
    c = min(max(c, 0.0), nm1)
    i = min(int(c), nm2)
    return i, np.float32(c - i)


@numba.njit(inline="always")
def _base(iz, iy, ix, stz, sty):  # type: ignore[no-untyped-def]
    """Flat index of voxel (iz, iy, ix) >= 0, unsigned so that loads skip wraparound checks."""
    return np.uint64(iz) * stz + np.uint64(iy) * sty + np.uint64(ix)


@numba.njit(inline="always", fastmath=_FM)
def _interp(flat, base, oz, oy, ox, fz, fy, fx):  # type: ignore[no-untyped-def]
    """Trilinear interpolation in the cell at flat index ``base`` (unsigned offsets)."""
    a = np.float32(flat[base])
    b = np.float32(flat[base + ox])
    c = np.float32(flat[base + oy])
    d = np.float32(flat[base + oy + ox])
    e = np.float32(flat[base + oz])
    f = np.float32(flat[base + oz + ox])
    g = np.float32(flat[base + oz + oy])
    h = np.float32(flat[base + oz + oy + ox])
    c00 = a + fx * (b - a)
    c01 = c + fx * (d - c)
    c10 = e + fx * (f - e)
    c11 = g + fx * (h - g)
    c0 = c00 + fy * (c01 - c00)
    c1 = c10 + fy * (c11 - c10)
    return c0 + fz * (c1 - c0)


@numba.njit(inline="always", fastmath=_FM)
def _sample(flat, dims, z, y, x):  # type: ignore[no-untyped-def]
    """Trilinear value at a continuous index (clamped; callers keep it inside)."""
    nm1z, nm1y, nm1x, nm2z, nm2y, nm2x, sz_, sy_, oz, oy, ox = dims
    iz, fz = _locate(z, nm1z, nm2z)
    iy, fy = _locate(y, nm1y, nm2y)
    ix, fx = _locate(x, nm1x, nm2x)
    return _interp(flat, _base(iz, iy, ix, sz_, sy_), oz, oy, ox, fz, fy, fx)


@numba.njit(inline="always", fastmath=_FM)
def _sample_inner(flat, dims, z, y, x):  # type: ignore[no-untyped-def]
    """:func:`_sample` where ``0 <= index < n - 1`` on every axis, which needs no clamping
    (and gives the same bits)."""
    _, _, _, _, _, _, sz_, sy_, oz, oy, ox = dims
    iz, iy, ix = int(z), int(y), int(x)
    return _interp(flat, _base(iz, iy, ix, sz_, sy_), oz, oy, ox, np.float32(z - iz),
                   np.float32(y - iy), np.float32(x - ix))


@numba.njit(inline="always")
def _inner(dims, z, y, x):  # type: ignore[no-untyped-def]
    """True where :func:`_sample_inner` may be used."""
    return 0.0 <= z < dims[0] and 0.0 <= y < dims[1] and 0.0 <= x < dims[2]


@numba.njit(inline="always", fastmath=_FM)
def _gradient(flat, dims, z, y, x, cache, cached):  # type: ignore[no-untyped-def]
    """Central differences of the interpolated volume one voxel either side, per index axis
    (z, y, x): the trilinear interpolation of the voxels' central differences.

    Inside the grid the corners' differences are kept in ``cache`` (float32, 24) for the cell
    at flat index ``cached``, so that further samples in the same cell only interpolate; near
    the border it takes six clamped samples. Returns (gz, gy, gx, the cached cell)."""
    nm1z, nm1y, nm1x, nm2z, nm2y, nm2x, stz, sty, _, _, _ = dims
    iz, fz = _locate(z, nm1z, nm2z)
    iy, fy = _locate(y, nm1y, nm2y)
    ix, fx = _locate(x, nm1x, nm2x)
    if not (1 <= iz < nm2z and 1 <= iy < nm2y and 1 <= ix < nm2x):
        half = np.float32(0.5)
        return ((_sample(flat, dims, z + 1.0, y, x) - _sample(flat, dims, z - 1.0, y, x)) * half,
                (_sample(flat, dims, z, y + 1.0, x) - _sample(flat, dims, z, y - 1.0, x)) * half,
                (_sample(flat, dims, z, y, x + 1.0) - _sample(flat, dims, z, y, x - 1.0)) * half,
                cached)
    b = _base(iz, iy, ix, stz, sty)
    if b != cached:
        _corner_differences(flat, b, stz, sty, cache)
    return (_trilerp(cache, 0, fz, fy, fx), _trilerp(cache, 8, fz, fy, fx),
            _trilerp(cache, 16, fz, fy, fx), b)


@numba.njit(inline="always", fastmath=_FM)
def _corner_differences(flat, b, stz, sty, out):  # type: ignore[no-untyped-def]
    """Half central differences along z, y, x (``out[0:8]``, ``[8:16]``, ``[16:24]``) at the
    cell's eight corners, corner ``c`` = (dz, dy, dx) in binary; ``b`` is an interior cell."""
    half = np.float32(0.5)
    one = np.uint64(1)
    for c in range(8):
        q = b + np.uint64(c >> 2) * stz + np.uint64((c >> 1) & 1) * sty + np.uint64(c & 1)
        out[c] = half * np.float32(flat[q + stz] - flat[q - stz])
        out[8 + c] = half * np.float32(flat[q + sty] - flat[q - sty])
        out[16 + c] = half * np.float32(flat[q + one] - flat[q - one])


@numba.njit(inline="always", fastmath=_FM)
def _trilerp(c, o, fz, fy, fx):  # type: ignore[no-untyped-def]
    """Trilinear interpolation of the corners ``c[o:o+8]`` ordered (dz, dy, dx)."""
    c00 = c[o] + fx * (c[o + 1] - c[o])
    c01 = c[o + 2] + fx * (c[o + 3] - c[o + 2])
    c10 = c[o + 4] + fx * (c[o + 5] - c[o + 4])
    c11 = c[o + 6] + fx * (c[o + 7] - c[o + 6])
    c0 = c00 + fy * (c01 - c00)
    c1 = c10 + fy * (c11 - c10)
    return c0 + fz * (c1 - c0)


@numba.njit(inline="always", fastmath=_FM)
def _power(x, p, n):  # type: ignore[no-untyped-def]
    """``x ** p`` for the specular term: by squaring when ``p`` is the integer ``n >= 0``
    (far cheaper than ``powf``), else ``x ** p``."""
    if n < 0:
        return x ** p
    r = np.float32(1.0)
    while n > 0:
        if n & 1:
            r *= x
        x *= x
        n >>= 1
    return r


@numba.njit(inline="always", fastmath=_FM)
def _block_exit(s, inv_d, cell, shift, t):  # type: ignore[no-untyped-def]
    """Smaller of ``t`` and the ray parameter where it leaves the cell's block on one axis."""
    if inv_d > 0.0:
        return min(t, ((((cell >> shift) + 1) << shift) - s) * inv_d)
    if inv_d < 0.0:
        return min(t, (((cell >> shift) << shift) - s) * inv_d)
    return t


@numba.njit(inline="always", fastmath=_FM)
def _exit_t(sz, sy, sx, iz_, iy_, ix_, iz, iy, ix, shz, shy, shx):  # type: ignore[no-untyped-def]
    """Ray parameter where the ray leaves the block of cell (iz, iy, ix) with the given shifts
    (``i*_`` are the inverse steps; never later than the true exit)."""
    t = _block_exit(sz, iz_, iz, shz, np.inf)
    t = _block_exit(sy, iy_, iy, shy, t)
    return _block_exit(sx, ix_, ix, shx, t)


@numba.njit(inline="always")
def _inv(d):  # type: ignore[no-untyped-def]
    return 1.0 / d if abs(d) >= 1e-12 else 0.0


@numba.njit(inline="always")
def _at(grid, iz, iy, ix, shz, shy, shx):  # type: ignore[no-untyped-def]
    """The block value of cell (iz, iy, ix) >= 0 (unsigned indices: no wraparound checks)."""
    return grid[np.uint64(iz >> shz), np.uint64(iy >> shy), np.uint64(ix >> shx)]


@numba.njit(inline="always", fastmath=_FM)
def _next_run(k, k1, sz, sy, sx, dz, dy, dx, dims, shifts, g1, g2, g3, sign,  # type: ignore[no-untyped-def]
              bound):
    """The next run of samples (first, last) from sample ``k`` on that lies in a level-1 block
    worth sampling; ``first > k1`` when none is left.

    A block is skipped when ``sign * value <= bound`` on the coarsest level that says so
    (levels of 4**2, 4 and 1 level-1 blocks). A skip resumes at the first sample past the
    block's exit, less a margin far above rounding errors (so at worst one sample of the block
    is looked at again, never one of the next block left out); the computed exit is never later
    than the true one, as clamped positions at the volume's faces stay in their block. A run
    ends at the block's exit.
    """
    nm1z, nm1y, nm1x, nm2z, nm2y, nm2x, _, _, _, _, _ = dims
    s1z, s1y, s1x = shifts[0], shifts[1], shifts[2]
    s2z, s2y, s2x = s1z + LEVEL_SHIFT, s1y + LEVEL_SHIFT, s1x + LEVEL_SHIFT
    s3z, s3y, s3x = s2z + LEVEL_SHIFT, s2y + LEVEL_SHIFT, s2x + LEVEL_SHIFT
    iz_, iy_, ix_ = _inv(dz), _inv(dy), _inv(dx)
    while k <= k1:
        iz, _ = _locate(sz + k * dz, nm1z, nm2z)
        iy, _ = _locate(sy + k * dy, nm1y, nm2y)
        ix, _ = _locate(sx + k * dx, nm1x, nm2x)
        if sign * _at(g3, iz, iy, ix, s3z, s3y, s3x) <= bound:
            t = _exit_t(sz, sy, sx, iz_, iy_, ix_, iz, iy, ix, s3z, s3y, s3x)
        elif sign * _at(g2, iz, iy, ix, s2z, s2y, s2x) <= bound:
            t = _exit_t(sz, sy, sx, iz_, iy_, ix_, iz, iy, ix, s2z, s2y, s2x)
        else:
            t = _exit_t(sz, sy, sx, iz_, iy_, ix_, iz, iy, ix, s1z, s1y, s1x)
            if sign * _at(g1, iz, iy, ix, s1z, s1y, s1x) > bound:
                return k, min(k1, max(k, int(math.floor(t))))
        k = max(k + 1, int(math.ceil(t - EXIT_MARGIN)))
    return k, k1


def _dims(volume: npt.NDArray[np.generic]) -> tuple[Any, ...]:
    """Clamp limits, then (unsigned) element strides and neighbour offsets of a volume as
    :func:`_flat` lays it out."""
    nz, ny, nx = volume.shape
    stz, sty = _strides(volume)
    u = np.uint64
    return (float(nz - 1), float(ny - 1), float(nx - 1), max(nz - 2, 0), max(ny - 2, 0),
            max(nx - 2, 0), u(stz), u(sty), u(stz if nz > 1 else 0), u(sty if ny > 1 else 0),
            u(1 if nx > 1 else 0))


# -- kernels -----------------------------------------------------------------------------------

@numba.njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True)
def _project(flat, shape, dims, p, tiles, out, mode, fill, g1, g2, g3, shifts,  # type: ignore[no-untyped-def]
             use_grid, coarse):
    nz, ny, nx = shape[0], shape[1], shape[2]
    h, w = out.shape
    sign = np.float32(-1.0) if mode == MINIP else np.float32(1.0)
    for task in numba.prange(tiles.shape[0]):
        i0, j0 = tiles[task, 0], tiles[task, 1]
        for i in range(i0, min(i0 + TILE_ROWS, h)):
            k_prev = np.int64(-1)  # where the previous pixel of the row had its extreme
            for j in range(j0, min(j0 + TILE_COLS, w)):
                sz, sy, sx, dz, dy, dx, t0, t1 = _ray(p, i, j)
                k0, k1 = _clip(sz, sy, sx, dz, dy, dx, nz, ny, nx, t0, t1)
                if k0 > k1:
                    out[i, j] = fill
                    k_prev = -1
                    continue
                if mode == AVGIP:
                    total = 0.0
                    first = _sample(flat, dims, sz + k0 * dz, sy + k0 * dy, sx + k0 * dx)
                    last = first
                    for k in range(k0, k1 + 1):
                        last = _sample(flat, dims, sz + k * dz, sy + k * dy, sx + k * dx)
                        total += last
                    if k1 > k0:  # trapezoid rule: the mean of the interpolated profile
                        out[i, j] = (total - 0.5 * (first + last)) / (k1 - k0)
                    else:
                        out[i, j] = first
                    continue
                acc = sign * _sample(flat, dims, sz + k0 * dz, sy + k0 * dy, sx + k0 * dx)
                k_best = k0
                if use_grid:
                    # A lower bound of the ray's extreme, so that blocks that cannot beat it
                    # are skipped: the sample where the previous ray had its own (neighbouring
                    # rays peak together), else a coarse pass.
                    if k0 <= k_prev <= k1:
                        v = sign * _sample(flat, dims, sz + k_prev * dz, sy + k_prev * dy,
                                           sx + k_prev * dx)
                        if v > acc:
                            acc, k_best = v, k_prev
                    else:
                        for k in range(k0 + coarse, k1 + 1, coarse):
                            v = sign * _sample(flat, dims, sz + k * dz, sy + k * dy,
                                               sx + k * dx)
                            if v > acc:
                                acc, k_best = v, k
                k = k0 + 1
                while k <= k1:
                    k_end = k1
                    if use_grid:
                        k, k_end = _next_run(k, k1, sz, sy, sx, dz, dy, dx, dims, shifts, g1,
                                             g2, g3, sign, acc)
                    inner = (_inner(dims, sz + k * dz, sy + k * dy, sx + k * dx)
                             and _inner(dims, sz + k_end * dz, sy + k_end * dy, sx + k_end * dx))
                    for kk in range(k, k_end + 1):
                        z, y, x = sz + kk * dz, sy + kk * dy, sx + kk * dx
                        v = sign * (_sample_inner(flat, dims, z, y, x) if inner
                                    else _sample(flat, dims, z, y, x))
                        if v > acc:
                            acc, k_best = v, kk
                    k = k_end + 1
                out[i, j] = sign * acc
                k_prev = k_best


@numba.njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True)
def _composite(flat, shape, dims, p, tiles, out, lut, lut_lo, lut_scale, background,  # type: ignore[no-untyped-def]
               material, shading, g1, g2, g3, shifts, use_grid, alpha_stop):
    nz, ny, nx = shape[0], shape[1], shape[2]
    h, w = out.shape[0], out.shape[1]
    n_lut = lut.shape[0]
    ka, kd, ks, power = material[0], material[1], material[2], material[3]
    int_power = int(power) if power == int(power) and 0 <= power <= 256 else -1
    g = p[26:35]
    one = np.float32(1.0)
    for task in numba.prange(tiles.shape[0]):
        i0, j0 = tiles[task, 0], tiles[task, 1]
        cache = np.empty(24, dtype=np.float32)  # corner differences of one cell, for shading
        cached = np.uint64(0) - np.uint64(1)  # no cell
        for i in range(i0, min(i0 + TILE_ROWS, h)):
            for j in range(j0, min(j0 + TILE_COLS, w)):
                sz, sy, sx, dz, dy, dx, t0, t1 = _ray(p, i, j)
                k0, k1 = _clip(sz, sy, sx, dz, dy, dx, nz, ny, nx, t0, t1)
                # Headlight: towards the eye, in patient space.
                lx = p[17] * dz + p[18] * dy + p[19] * dx
                ly = p[20] * dz + p[21] * dy + p[22] * dx
                lz = p[23] * dz + p[24] * dy + p[25] * dx
                ln = -1.0 / math.sqrt(lx * lx + ly * ly + lz * lz)
                lx, ly, lz = lx * ln, ly * ln, lz * ln
                r = np.float32(0.0)
                gr = np.float32(0.0)
                b = np.float32(0.0)
                a = np.float32(0.0)
                k = k0
                while k <= k1:
                    k_end = k1
                    if use_grid:  # the next block with visible values
                        k, k_end = _next_run(k, k1, sz, sy, sx, dz, dy, dx, dims, shifts, g1,
                                             g2, g3, one, 0.5)
                    inner = (_inner(dims, sz + k * dz, sy + k * dy, sx + k * dx)
                             and _inner(dims, sz + k_end * dz, sy + k_end * dy, sx + k_end * dx))
                    for kk in range(k, k_end + 1):
                        z, y, x = sz + kk * dz, sy + kk * dy, sx + kk * dx
                        v = (_sample_inner(flat, dims, z, y, x) if inner
                             else _sample(flat, dims, z, y, x))
                        li = min(max(int((v - lut_lo) * lut_scale + np.float32(0.5)), 0),
                                 n_lut - 1)
                        sa = lut[li, 3]
                        if sa <= 0.0:
                            continue
                        cr, cg, cb = lut[li, 0], lut[li, 1], lut[li, 2]
                        if shading:
                            gz, gy, gx, cached = _gradient(flat, dims, z, y, x, cache, cached)
                            px = g[0] * gz + g[1] * gy + g[2] * gx
                            py = g[3] * gz + g[4] * gy + g[5] * gx
                            pz = g[6] * gz + g[7] * gy + g[8] * gx
                            gn = math.sqrt(px * px + py * py + pz * pz)
                            if gn > 0.0:
                                ndl = np.float32(abs(px * lx + py * ly + pz * lz) / gn)
                                lit = ka + kd * ndl
                                spec = ks * _power(ndl, power, int_power) * sa
                            else:
                                lit = ka + kd
                                spec = np.float32(0.0)
                            cr = min(cr * lit + spec, sa)  # stays a premultiplied colour
                            cg = min(cg * lit + spec, sa)
                            cb = min(cb * lit + spec, sa)
                        tr = one - a
                        r += tr * cr
                        gr += tr * cg
                        b += tr * cb
                        a += tr * sa
                        if a >= alpha_stop:
                            break
                    k = k1 + 1 if a >= alpha_stop else k_end + 1
                tr = one - a
                out[i, j, 0] = r + tr * background[0]
                out[i, j, 1] = gr + tr * background[1]
                out[i, j, 2] = b + tr * background[2]


# -- wrappers ----------------------------------------------------------------------------------

def _strides(volume: npt.NDArray[np.generic]) -> tuple[int, int]:
    """Element strides (slice, row) of a volume whose rows are contiguous; C order otherwise."""
    sz, sy, sx = (s // volume.itemsize for s in volume.strides)
    if sx == 1 and sy >= volume.shape[2] and sz >= sy * volume.shape[1]:
        return sz, sy
    return volume.shape[1] * volume.shape[2], volume.shape[2]


def _flat(volume: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """The volume's voxels as one flat array, without a copy when its rows are contiguous and
    its strides positive (e.g. a padded layout), else a C-ordered copy."""
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got {volume.ndim}-D")
    nz, ny, nx = volume.shape
    sz, sy = _strides(volume)
    if (sz, sy) == (ny * nx, nx) and not volume.flags.c_contiguous:
        volume = np.ascontiguousarray(volume)
    extent = (nz - 1) * sz + (ny - 1) * sy + nx
    return np.lib.stride_tricks.as_strided(volume, shape=(extent,), strides=(volume.itemsize,))


_NO_GRID = np.zeros((1, 1, 1), dtype=np.float32)


def project(volume: npt.NDArray[np.generic], rays: npt.NDArray[np.float64],
            size_hw: tuple[int, int], *, mode: int = MIP, fill: float = 0.0,
            block_levels: tuple[npt.NDArray[np.float32], ...] | None = None,
            block_shifts: tuple[int, int, int] = (2, 2, 2)) -> npt.NDArray[np.float32]:
    """MIP / MinIP / AvgIP along every pixel's ray: float32 (h, w) in the volume's units.

    AvgIP is the mean of the interpolated profile over the sampled part of the ray (trapezoid
    rule); ``fill`` where a ray misses the volume. ``block_levels`` (optional, MIP and MinIP)
    holds the three block maxima levels for MIP, or minima for MinIP, of
    :func:`block_pyramid` with ``block_shifts``; they only make the projection faster.
    """
    h, w = size_hw
    out = np.empty((h, w), dtype=np.float32)
    use = block_levels is not None and mode != AVGIP
    g1, g2, g3 = (tuple(np.ascontiguousarray(g, dtype=np.float32) for g in block_levels)
                  if use and block_levels is not None else (_NO_GRID,) * 3)
    _project(_flat(volume), np.asarray(volume.shape, dtype=np.int64), _dims(volume),
             np.ascontiguousarray(rays, dtype=np.float64), tile_order(h, w), out, int(mode),
             np.float32(fill), g1, g2, g3, np.asarray(block_shifts, dtype=np.int64), use,
             COARSE_STRIDE)
    return out


def composite(volume: npt.NDArray[np.generic], rays: npt.NDArray[np.float64],
              size_hw: tuple[int, int], *, lut: npt.NDArray[np.float32], lut_lo: float,
              lut_scale: float, background: tuple[float, float, float] = (0.0, 0.0, 0.0),
              material: tuple[float, float, float, float] | None = None,
              visible_levels: tuple[npt.NDArray[np.uint8], ...] | None = None,
              block_shifts: tuple[int, int, int] = (2, 2, 2),
              alpha_stop: float = 0.99) -> npt.NDArray[np.float32]:
    """Front-to-back emission-absorption compositing: float32 RGB (h, w, 3) over
    ``background``.

    ``lut`` (n, 4) float32 holds RGB *premultiplied* by opacity and the opacity per sample
    (already corrected for the step); a value ``v`` reads entry ``round((v - lut_lo) *
    lut_scale)``, clamped. ``material`` = (ambient, diffuse, specular, specular power) turns on
    Blinn-Phong shading with a headlight (two-sided; central-difference gradients of the
    interpolated volume mapped to patient space); None renders unshaded. ``visible_levels``
    (optional: :func:`visible_blocks` of the three levels of :func:`block_pyramid`) lets rays
    skip blocks whose values are all transparent. A ray stops once its opacity reaches
    ``alpha_stop``.
    """
    h, w = size_hw
    out = np.empty((h, w, 3), dtype=np.float32)
    use = visible_levels is not None
    no_grid = np.zeros((1, 1, 1), dtype=np.uint8)
    g1, g2, g3 = (tuple(np.ascontiguousarray(g, dtype=np.uint8) for g in visible_levels)
                  if visible_levels is not None else (no_grid,) * 3)
    mat = np.asarray(material if material is not None else (1.0, 0.0, 0.0, 1.0),
                     dtype=np.float32)
    _composite(_flat(volume), np.asarray(volume.shape, dtype=np.int64), _dims(volume),
               np.ascontiguousarray(rays, dtype=np.float64), tile_order(h, w), out,
               np.ascontiguousarray(lut, dtype=np.float32), np.float32(lut_lo),
               np.float32(lut_scale), np.asarray(background, dtype=np.float32), mat,
               material is not None, g1, g2, g3, np.asarray(block_shifts, dtype=np.int64),
               use, np.float32(alpha_stop))
    return out
