"""GPU (CUDA through cupy RawKernel) twins of :mod:`render_engine.kernels.cpu_points`.

Same conventions and arguments; volumes are float32 cupy arrays (z, y, x); points and normals
may be numpy or cupy arrays (copied to the device as float64). The device function that samples
one point is :mod:`render_engine.kernels.gpu_sampling`'s, so points and planes agree. One thread
per output pixel; index arithmetic in double precision, interpolation in single.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.kernels import gpu_sampling
from render_engine.kernels.backend import cupy_or_none
from render_engine.kernels.cpu_sampling import AVGIP, LINEAR, MINIP, MIP
from render_engine.kernels.gpu_sampling import _BLOCK, _grid

_SOURCE = gpu_sampling._SOURCE + r"""
extern "C" __global__ void points(const float* __restrict__ v, int nz, int ny, int nx,
                                  const double* __restrict__ p, float* __restrict__ out,
                                  int h, int w, int order, float fill) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= h || j >= w) return;
    long long q = (long long)i * w + j;
    bool inside;
    out[q] = sample_at(v, nz, ny, nx, p[3 * q], p[3 * q + 1], p[3 * q + 2], order, fill,
                       &inside);
}

extern "C" __global__ void points_slab(const float* __restrict__ v, int nz, int ny, int nx,
                                       const double* __restrict__ p,
                                       const double* __restrict__ nrm,
                                       const double* __restrict__ t, int n,
                                       float* __restrict__ out, int h, int w, int order,
                                       int mode, float fill) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= h || j >= w) return;
    long long q = (long long)i * w + j;
    double bz = p[3 * q], by = p[3 * q + 1], bx = p[3 * q + 2];
    double gz = nrm[3 * q], gy = nrm[3 * q + 1], gx = nrm[3 * q + 2];
    float acc = 0.f; int count = 0; bool inside;
    for (int k = 0; k < n; ++k) {
        float s = sample_at(v, nz, ny, nx, bz + t[k] * gz, by + t[k] * gy, bx + t[k] * gx,
                            order, fill, &inside);
        if (!inside) continue;
        if (count == 0) acc = s;
        else if (mode == 0) acc = fmaxf(acc, s);
        else if (mode == 1) acc = fminf(acc, s);
        else acc += s;
        ++count;
    }
    out[q] = count == 0 ? fill : (mode == 2 ? acc / count : acc);
}
"""

@functools.cache
def _kernels() -> tuple[Any, Any]:
    cp = cupy_or_none()
    if cp is None:
        raise RuntimeError("no usable GPU (cupy missing or no device)")
    module = cp.RawModule(code=_SOURCE, options=("--std=c++14",))
    return module.get_function("points"), module.get_function("points_slab")


def _check_volume(cp: Any, volume: Any) -> None:
    if volume.dtype != cp.float32 or volume.ndim != 3 or not volume.flags.c_contiguous:
        raise ValueError("the GPU kernels take a C-contiguous float32 (z, y, x) volume")


def _device_grid(cp: Any, array: Any, name: str) -> Any:
    a = cp.ascontiguousarray(cp.asarray(array, dtype=cp.float64))
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be (h, w, 3), got shape {a.shape}")
    return a


def sample_points(volume: Any, index_points: Any, *, order: int = LINEAR,
                  fill: float = 0.0) -> Any:
    """Values at continuous indices (h, w, 3) as a float32 cupy array (h, w)."""
    cp = cupy_or_none()
    assert cp is not None
    _check_volume(cp, volume)
    points_k, _ = _kernels()
    pts = _device_grid(cp, index_points, "index_points")
    h, w = int(pts.shape[0]), int(pts.shape[1])
    out = cp.empty((h, w), dtype=cp.float32)
    nz, ny, nx = volume.shape
    points_k(_grid(h, w), _BLOCK, (volume, np.int32(nz), np.int32(ny), np.int32(nx), pts, out,
                                   np.int32(h), np.int32(w), np.int32(order), np.float32(fill)))
    return out


def sample_points_slab(volume: Any, index_points: Any, index_normals: Any,
                       offsets_mm: npt.ArrayLike, *, mode: int = MIP, order: int = LINEAR,
                       fill: float = 0.0) -> Any:
    """MIP / MinIP / AvgIP along per-pixel normals as a float32 cupy array (h, w)."""
    if mode not in (MIP, MINIP, AVGIP):
        raise ValueError(f"unknown slab mode {mode}")
    cp = cupy_or_none()
    assert cp is not None
    _check_volume(cp, volume)
    _, slab_k = _kernels()
    pts = _device_grid(cp, index_points, "index_points")
    h, w = int(pts.shape[0]), int(pts.shape[1])
    normals = _device_grid(cp, cp.broadcast_to(cp.asarray(index_normals, dtype=cp.float64),
                                               pts.shape), "index_normals")
    t = cp.asarray(np.ascontiguousarray(offsets_mm, dtype=np.float64).ravel())
    out = cp.empty((h, w), dtype=cp.float32)
    nz, ny, nx = volume.shape
    slab_k(_grid(h, w), _BLOCK, (volume, np.int32(nz), np.int32(ny), np.int32(nx), pts, normals,
                                 t, np.int32(t.size), out, np.int32(h), np.int32(w),
                                 np.int32(order), np.int32(mode), np.float32(fill)))
    return out
