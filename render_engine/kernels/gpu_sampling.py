"""GPU (CUDA through cupy RawKernel) twins of :mod:`render_engine.kernels.cpu_sampling`.

Same conventions and arguments; volumes are float32 cupy arrays (z, y, x). One thread per
output pixel; index arithmetic in double precision, interpolation in single.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.kernels.backend import cupy_or_none
from render_engine.kernels.cpu_sampling import AVGIP, LINEAR, MINIP, MIP

_SOURCE = r"""
__device__ __forceinline__ float sample_at(const float* __restrict__ v, int nz, int ny, int nx,
                                           double z, double y, double x, int order, float fill,
                                           bool* inside) {
    if (!(z >= -0.5 && z <= nz - 0.5 && y >= -0.5 && y <= ny - 0.5 && x >= -0.5
          && x <= nx - 0.5)) { *inside = false; return fill; }
    *inside = true;
    z = fmin(fmax(z, 0.0), nz - 1.0);
    y = fmin(fmax(y, 0.0), ny - 1.0);
    x = fmin(fmax(x, 0.0), nx - 1.0);
    if (order == 0) {
        return v[((long long)(int)(z + 0.5) * ny + (int)(y + 0.5)) * nx + (int)(x + 0.5)];
    }
    int z0 = nz > 1 ? min((int)z, nz - 2) : 0, z1 = nz > 1 ? z0 + 1 : 0;
    int y0 = ny > 1 ? min((int)y, ny - 2) : 0, y1 = ny > 1 ? y0 + 1 : 0;
    int x0 = nx > 1 ? min((int)x, nx - 2) : 0, x1 = nx > 1 ? x0 + 1 : 0;
    float fz = (float)(z - z0), fy = (float)(y - y0), fx = (float)(x - x0);
    long long p00 = ((long long)z0 * ny + y0) * nx, p01 = ((long long)z0 * ny + y1) * nx;
    long long p10 = ((long long)z1 * ny + y0) * nx, p11 = ((long long)z1 * ny + y1) * nx;
    float c00 = v[p00 + x0] * (1.f - fx) + v[p00 + x1] * fx;
    float c01 = v[p01 + x0] * (1.f - fx) + v[p01 + x1] * fx;
    float c10 = v[p10 + x0] * (1.f - fx) + v[p10 + x1] * fx;
    float c11 = v[p11 + x0] * (1.f - fx) + v[p11 + x1] * fx;
    float c0 = c00 * (1.f - fy) + c01 * fy, c1 = c10 * (1.f - fy) + c11 * fy;
    return c0 * (1.f - fz) + c1 * fz;
}

extern "C" __global__ void plane(const float* __restrict__ v, int nz, int ny, int nx,
                                 const double* __restrict__ g, float* __restrict__ out,
                                 int h, int w, int order, float fill) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= h || j >= w) return;
    bool inside;
    out[(long long)i * w + j] = sample_at(v, nz, ny, nx, g[0] + j * g[3] + i * g[6],
        g[1] + j * g[4] + i * g[7], g[2] + j * g[5] + i * g[8], order, fill, &inside);
}

extern "C" __global__ void slab(const float* __restrict__ v, int nz, int ny, int nx,
                                const double* __restrict__ g, const double* __restrict__ t,
                                int n, float* __restrict__ out, int h, int w, int order,
                                int mode, float fill) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= h || j >= w) return;
    double bz = g[0] + j * g[3] + i * g[6], by = g[1] + j * g[4] + i * g[7],
           bx = g[2] + j * g[5] + i * g[8];
    float acc = 0.f; int count = 0; bool inside;
    for (int k = 0; k < n; ++k) {
        float s = sample_at(v, nz, ny, nx, bz + t[k] * g[9], by + t[k] * g[10],
                            bx + t[k] * g[11], order, fill, &inside);
        if (!inside) continue;
        if (count == 0) acc = s;
        else if (mode == 0) acc = fmaxf(acc, s);
        else if (mode == 1) acc = fminf(acc, s);
        else acc += s;
        ++count;
    }
    out[(long long)i * w + j] = count == 0 ? fill : (mode == 2 ? acc / count : acc);
}
"""

_BLOCK = (32, 8, 1)


@functools.cache
def _kernels() -> tuple[Any, Any]:
    cp = cupy_or_none()
    if cp is None:
        raise RuntimeError("no usable GPU (cupy missing or no device)")
    module = cp.RawModule(code=_SOURCE, options=("--std=c++14",))
    return module.get_function("plane"), module.get_function("slab")


def _grid(h: int, w: int) -> tuple[int, int, int]:
    return ((w + _BLOCK[0] - 1) // _BLOCK[0], (h + _BLOCK[1] - 1) // _BLOCK[1], 1)


def sample_plane(volume: Any, origin: npt.NDArray[np.float64], d_col: npt.NDArray[np.float64],
                 d_row: npt.NDArray[np.float64], size_hw: tuple[int, int], *,
                 order: int = LINEAR, fill: float = 0.0) -> Any:
    """Values on a plane as a float32 cupy array (h, w)."""
    cp = cupy_or_none()
    assert cp is not None
    plane_k, _ = _kernels()
    h, w = size_hw
    out = cp.empty((h, w), dtype=cp.float32)
    g = cp.asarray(np.concatenate([origin, d_col, d_row]).astype(np.float64))
    nz, ny, nx = volume.shape
    plane_k(_grid(h, w), _BLOCK, (volume, np.int32(nz), np.int32(ny), np.int32(nx), g, out,
                                  np.int32(h), np.int32(w), np.int32(order), np.float32(fill)))
    return out


def sample_slab(volume: Any, origin: npt.NDArray[np.float64], d_col: npt.NDArray[np.float64],
                d_row: npt.NDArray[np.float64], d_normal: npt.NDArray[np.float64],
                offsets: npt.NDArray[np.float64], size_hw: tuple[int, int], *,
                mode: int = MIP, order: int = LINEAR, fill: float = 0.0) -> Any:
    """MIP / MinIP / AvgIP along ``d_normal`` as a float32 cupy array (h, w)."""
    assert mode in (MIP, MINIP, AVGIP)
    cp = cupy_or_none()
    assert cp is not None
    _, slab_k = _kernels()
    h, w = size_hw
    out = cp.empty((h, w), dtype=cp.float32)
    g = cp.asarray(np.concatenate([origin, d_col, d_row, d_normal]).astype(np.float64))
    t = cp.asarray(np.asarray(offsets, dtype=np.float64))
    nz, ny, nx = volume.shape
    slab_k(_grid(h, w), _BLOCK, (volume, np.int32(nz), np.int32(ny), np.int32(nx), g, t,
                                 np.int32(len(offsets)), out, np.int32(h), np.int32(w),
                                 np.int32(order), np.int32(mode), np.float32(fill)))
    return out
