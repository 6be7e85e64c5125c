"""GPU (CUDA through cupy RawKernel) twins of :mod:`render_engine.kernels.cpu_raycast`.

Same conventions, same arguments, same algorithm (ray clipping, sample numbering, block
skipping, trilinear interpolation, LUT, shading, early termination); volumes are float32 cupy
arrays (z, y, x) and results are cupy arrays. One thread per output pixel; positions in double
precision, values in single.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.kernels.backend import cupy_or_none
from render_engine.kernels.cpu_raycast import (
    AVGIP,
    COARSE_STRIDE,
    EXIT_MARGIN,
    LEVEL_SHIFT,
    MINIP,
    MIP,
    P_SIZE,
    block_count,
    pool_blocks,
)

__all__ = ["AVGIP", "MINIP", "MIP", "block_minmax", "block_pyramid", "composite", "project",
           "visible_blocks"]

_SOURCE = f"""
#define LEVEL_SHIFT {LEVEL_SHIFT}
#define EXIT_MARGIN {EXIT_MARGIN!r}
""" + r"""
/* NVRTC has no math.h: infinities from their bit patterns. */
#define INF_D __longlong_as_double(0x7ff0000000000000LL)
#define INF_F __int_as_float(0x7f800000)

struct Vol {
    const float* __restrict__ v;
    int nz, ny, nx, nm2z, nm2y, nm2x;
    long long stz, sty, oz, oy, ox;
};

__device__ __forceinline__ Vol make_vol(const float* v, int nz, int ny, int nx) {
    Vol d;
    d.v = v; d.nz = nz; d.ny = ny; d.nx = nx;
    d.nm2z = max(nz - 2, 0); d.nm2y = max(ny - 2, 0); d.nm2x = max(nx - 2, 0);
    d.stz = (long long)ny * nx; d.sty = nx;
    d.oz = nz > 1 ? d.stz : 0; d.oy = ny > 1 ? d.sty : 0; d.ox = nx > 1 ? 1 : 0;
    return d;
}

__device__ __forceinline__ int locate(double c, int n, int nm2, float* frac) {
    c = fmin(fmax(c, 0.0), (double)(n - 1));
    int i = min((int)c, nm2);
    *frac = (float)(c - i);
    return i;
}

__device__ __forceinline__ float interp(const Vol& d, long long base, float fz, float fy,
                                        float fx) {
    const float* v = d.v;
    float a = v[base], b = v[base + d.ox], c = v[base + d.oy], e = v[base + d.oy + d.ox];
    float f = v[base + d.oz], g = v[base + d.oz + d.ox], h = v[base + d.oz + d.oy];
    float k = v[base + d.oz + d.oy + d.ox];
    float c00 = a + fx * (b - a), c01 = c + fx * (e - c);
    float c10 = f + fx * (g - f), c11 = h + fx * (k - h);
    float c0 = c00 + fy * (c01 - c00), c1 = c10 + fy * (c11 - c10);
    return c0 + fz * (c1 - c0);
}

__device__ __forceinline__ float sample(const Vol& d, double z, double y, double x) {
    float fz, fy, fx;
    int iz = locate(z, d.nz, d.nm2z, &fz), iy = locate(y, d.ny, d.nm2y, &fy);
    int ix = locate(x, d.nx, d.nm2x, &fx);
    return interp(d, iz * d.stz + iy * d.sty + ix, fz, fy, fx);
}

/* Anchor s, index step dd and admissible t range of the ray of pixel (i, j). */
__device__ __forceinline__ void ray(const double* p, int i, int j, double* s, double* dd,
                                    double* t0, double* t1) {
    double tz = p[0] + j * p[3] + i * p[6], ty = p[1] + j * p[4] + i * p[7],
           tx = p[2] + j * p[5] + i * p[8];
    if (p[15] == 0.0) {
        s[0] = tz; s[1] = ty; s[2] = tx; dd[0] = p[9]; dd[1] = p[10]; dd[2] = p[11];
        *t0 = -INF_D; *t1 = INF_D;
        return;
    }
    double vz = tz - p[12], vy = ty - p[13], vx = tx - p[14];
    double lx = p[17] * vz + p[18] * vy + p[19] * vx, ly = p[20] * vz + p[21] * vy + p[22] * vx,
           lz = p[23] * vz + p[24] * vy + p[25] * vx;
    double k = p[16] / sqrt(lx * lx + ly * ly + lz * lz);
    s[0] = p[12]; s[1] = p[13]; s[2] = p[14]; dd[0] = vz * k; dd[1] = vy * k; dd[2] = vx * k;
    *t0 = 0.0; *t1 = INF_D;
}

__device__ __forceinline__ bool clip_axis(double s, double d, int n, double* t0, double* t1) {
    if (fabs(d) < 1e-12) return s >= -0.5 && s <= n - 0.5;
    double ta = (-0.5 - s) / d, tb = (n - 0.5 - s) / d;
    if (ta > tb) { double t = ta; ta = tb; tb = t; }
    *t0 = fmax(*t0, ta); *t1 = fmin(*t1, tb);
    return true;
}

/* First and last sample number inside the volume box; false when the ray misses. */
__device__ __forceinline__ bool clip(const Vol& d, const double* s, const double* dd,
                                     double t0, double t1, long long* k0, long long* k1) {
    if (!clip_axis(s[0], dd[0], d.nz, &t0, &t1) || !clip_axis(s[1], dd[1], d.ny, &t0, &t1)
        || !clip_axis(s[2], dd[2], d.nx, &t0, &t1) || !(t0 <= t1)) return false;
    *k0 = (long long)ceil(t0 - 1e-9);
    *k1 = (long long)floor(t1 + 1e-9);
    return *k0 <= *k1;
}

/* Smaller of t and the ray parameter where it leaves the cell's block on one axis (inv: the
   inverse index step, 0 for none). */
__device__ __forceinline__ double block_exit(double s, double inv, int cell, int shift,
                                             double t) {
    if (inv > 0.0) return fmin(t, ((double)(((cell >> shift) + 1) << shift) - s) * inv);
    if (inv < 0.0) return fmin(t, ((double)((cell >> shift) << shift) - s) * inv);
    return t;
}

__device__ __forceinline__ double exit_t(const double* s, const double* inv, int iz, int iy,
                                         int ix, int shz, int shy, int shx) {
    double t = block_exit(s[0], inv[0], iz, shz, INF_D);
    t = block_exit(s[1], inv[1], iy, shy, t);
    return block_exit(s[2], inv[2], ix, shx, t);
}

__device__ __forceinline__ double inv_step(double d) {
    return fabs(d) >= 1e-12 ? 1.0 / d : 0.0;
}

struct Grids {
    const float* __restrict__ g1; const float* __restrict__ g2; const float* __restrict__ g3;
    int n1y, n1x, n2y, n2x, n3y, n3x;  /* grid sizes along y and x of each level */
    int s1z, s1y, s1x;
};

__device__ __forceinline__ float level_value(const float* g, int ny, int nx, int bz, int by,
                                             int bx) {
    return g[((long long)bz * ny + by) * nx + bx];
}

/* The next run of samples [*first, *last] from sample k on lying in a level-1 block worth
   sampling (sign * value > bound); *first > k1 when none is left. As _next_run on the CPU. */
__device__ __forceinline__ void next_run(long long k, long long k1, const Vol& d,
                                         const double* s, const double* dd, const double* inv,
                                         const Grids& G, float sign, float bound,
                                         long long* first, long long* last) {
    int s2z = G.s1z + LEVEL_SHIFT, s2y = G.s1y + LEVEL_SHIFT, s2x = G.s1x + LEVEL_SHIFT;
    int s3z = s2z + LEVEL_SHIFT, s3y = s2y + LEVEL_SHIFT, s3x = s2x + LEVEL_SHIFT;
    float f;
    while (k <= k1) {
        int iz = locate(s[0] + k * dd[0], d.nz, d.nm2z, &f);
        int iy = locate(s[1] + k * dd[1], d.ny, d.nm2y, &f);
        int ix = locate(s[2] + k * dd[2], d.nx, d.nm2x, &f);
        double t;
        if (sign * level_value(G.g3, G.n3y, G.n3x, iz >> s3z, iy >> s3y, ix >> s3x) <= bound) {
            t = exit_t(s, inv, iz, iy, ix, s3z, s3y, s3x);
        } else if (sign * level_value(G.g2, G.n2y, G.n2x, iz >> s2z, iy >> s2y, ix >> s2x)
                   <= bound) {
            t = exit_t(s, inv, iz, iy, ix, s2z, s2y, s2x);
        } else {
            t = exit_t(s, inv, iz, iy, ix, G.s1z, G.s1y, G.s1x);
            if (sign * level_value(G.g1, G.n1y, G.n1x, iz >> G.s1z, iy >> G.s1y, ix >> G.s1x)
                > bound) {
                long long e = (long long)floor(t);
                *first = k;
                *last = min(k1, max(k, e));
                return;
            }
        }
        long long e = (long long)ceil(t - EXIT_MARGIN);
        k = max(k + 1, e);
    }
    *first = k;
    *last = k1;
}

#define GRID_ARGS const float* __restrict__ g1, const float* __restrict__ g2, \
    const float* __restrict__ g3, int n1y, int n1x, int n2y, int n2x, int n3y, int n3x, \
    int s1z, int s1y, int s1x

__device__ __forceinline__ Grids make_grids(const float* g1, const float* g2, const float* g3,
                                            int n1y, int n1x, int n2y, int n2x, int n3y,
                                            int n3x, int s1z, int s1y, int s1x) {
    Grids G;
    G.g1 = g1; G.g2 = g2; G.g3 = g3; G.n1y = n1y; G.n1x = n1x; G.n2y = n2y; G.n2x = n2x;
    G.n3y = n3y; G.n3x = n3x; G.s1z = s1z; G.s1y = s1y; G.s1x = s1x;
    return G;
}

extern "C" __global__ void project(const float* __restrict__ v, int nz, int ny, int nx,
                                   const double* __restrict__ p, float* __restrict__ out,
                                   int h, int w, int mode, float fill, GRID_ARGS, int use_grid,
                                   int coarse) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= h || j >= w) return;
    Vol d = make_vol(v, nz, ny, nx);
    Grids G = make_grids(g1, g2, g3, n1y, n1x, n2y, n2x, n3y, n3x, s1z, s1y, s1x);
    double s[3], dd[3], t0, t1;
    long long k0, k1;
    ray(p, i, j, s, dd, &t0, &t1);
    long long o = (long long)i * w + j;
    if (!clip(d, s, dd, t0, t1, &k0, &k1)) { out[o] = fill; return; }
    if (mode == 2) {
        double total = 0.0;
        float first = sample(d, s[0] + k0 * dd[0], s[1] + k0 * dd[1], s[2] + k0 * dd[2]);
        float last = first;
        for (long long k = k0; k <= k1; ++k) {
            last = sample(d, s[0] + k * dd[0], s[1] + k * dd[1], s[2] + k * dd[2]);
            total += last;
        }
        out[o] = k1 > k0 ? (float)((total - 0.5 * ((double)first + last)) / (double)(k1 - k0))
                         : first;
        return;
    }
    float sign = mode == 1 ? -1.f : 1.f;
    float acc = sign * sample(d, s[0] + k0 * dd[0], s[1] + k0 * dd[1], s[2] + k0 * dd[2]);
    if (use_grid) {  /* a lower bound of the ray's extreme: a coarse pass */
        for (long long k = k0 + coarse; k <= k1; k += coarse)
            acc = fmaxf(acc, sign * sample(d, s[0] + k * dd[0], s[1] + k * dd[1],
                                           s[2] + k * dd[2]));
    }
    double inv[3] = {inv_step(dd[0]), inv_step(dd[1]), inv_step(dd[2])};
    long long k = k0 + 1;
    while (k <= k1) {
        long long first = k, last = k1;
        if (use_grid) next_run(k, k1, d, s, dd, inv, G, sign, acc, &first, &last);
        for (long long kk = first; kk <= last; ++kk)
            acc = fmaxf(acc, sign * sample(d, s[0] + kk * dd[0], s[1] + kk * dd[1],
                                           s[2] + kk * dd[2]));
        k = last + 1;
    }
    out[o] = sign * acc;
}

/* x ** p for the specular term: by squaring when p is the integer n >= 0, else powf. */
__device__ __forceinline__ float power_of(float x, float p, int n) {
    if (n < 0) return powf(x, p);
    float r = 1.f;
    while (n > 0) {
        if (n & 1) r *= x;
        x *= x;
        n >>= 1;
    }
    return r;
}

/* Half central differences along z, y, x (out[0:8], [8:16], [16:24]) at the cell's eight
   corners, corner c = (dz, dy, dx) in binary; b is an interior cell. As _corner_differences. */
__device__ __forceinline__ void corner_differences(const float* v, long long b, long long stz,
                                                   long long sty, float* out) {
    for (int c = 0; c < 8; ++c) {
        long long q = b + (c >> 2) * stz + ((c >> 1) & 1) * sty + (c & 1);
        out[c] = 0.5f * (v[q + stz] - v[q - stz]);
        out[8 + c] = 0.5f * (v[q + sty] - v[q - sty]);
        out[16 + c] = 0.5f * (v[q + 1] - v[q - 1]);
    }
}

/* Trilinear interpolation of the corners c[0:8] ordered (dz, dy, dx). */
__device__ __forceinline__ float trilerp(const float* c, float fz, float fy, float fx) {
    float c00 = c[0] + fx * (c[1] - c[0]), c01 = c[2] + fx * (c[3] - c[2]);
    float c10 = c[4] + fx * (c[5] - c[4]), c11 = c[6] + fx * (c[7] - c[6]);
    float c0 = c00 + fy * (c01 - c00), c1 = c10 + fy * (c11 - c10);
    return c0 + fz * (c1 - c0);
}

/* Central differences one voxel either side per index axis (z, y, x), the corners' kept in
   cache for the cell *cached; as _gradient. */
__device__ __forceinline__ void gradient(const Vol& d, double z, double y, double x, float* gz,
                                         float* gy, float* gx, float* cache,
                                         long long* cached) {
    float fz, fy, fx;
    int iz = locate(z, d.nz, d.nm2z, &fz), iy = locate(y, d.ny, d.nm2y, &fy);
    int ix = locate(x, d.nx, d.nm2x, &fx);
    if (!(iz >= 1 && iz < d.nm2z && iy >= 1 && iy < d.nm2y && ix >= 1 && ix < d.nm2x)) {
        *gz = (sample(d, z + 1.0, y, x) - sample(d, z - 1.0, y, x)) * 0.5f;
        *gy = (sample(d, z, y + 1.0, x) - sample(d, z, y - 1.0, x)) * 0.5f;
        *gx = (sample(d, z, y, x + 1.0) - sample(d, z, y, x - 1.0)) * 0.5f;
        return;
    }
    long long b = iz * d.stz + iy * d.sty + ix;
    if (b != *cached) {
        corner_differences(d.v, b, d.stz, d.sty, cache);
        *cached = b;
    }
    *gz = trilerp(cache, fz, fy, fx);
    *gy = trilerp(cache + 8, fz, fy, fx);
    *gx = trilerp(cache + 16, fz, fy, fx);
}

extern "C" __global__ void composite(const float* __restrict__ v, int nz, int ny, int nx,
                                     const double* __restrict__ p, float* __restrict__ out,
                                     int h, int w, const float* __restrict__ lut, int n_lut,
                                     float lut_lo, float lut_scale, float bg0, float bg1,
                                     float bg2, float ka, float kd, float ks, float power,
                                     int shading, GRID_ARGS, int use_grid, float alpha_stop) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= h || j >= w) return;
    Vol d = make_vol(v, nz, ny, nx);
    Grids G = make_grids(g1, g2, g3, n1y, n1x, n2y, n2x, n3y, n3x, s1z, s1y, s1x);
    double s[3], dd[3], t0, t1;
    long long k0 = 1, k1 = 0;
    ray(p, i, j, s, dd, &t0, &t1);
    bool hit = clip(d, s, dd, t0, t1, &k0, &k1);
    const double* g = p + 26;
    double lx = p[17] * dd[0] + p[18] * dd[1] + p[19] * dd[2];
    double ly = p[20] * dd[0] + p[21] * dd[1] + p[22] * dd[2];
    double lz = p[23] * dd[0] + p[24] * dd[1] + p[25] * dd[2];
    double ln = -1.0 / sqrt(lx * lx + ly * ly + lz * lz);
    lx *= ln; ly *= ln; lz *= ln;
    double inv[3] = {inv_step(dd[0]), inv_step(dd[1]), inv_step(dd[2])};
    int int_power = power == floorf(power) && power >= 0.f && power <= 256.f ? (int)power : -1;
    float r = 0.f, gr = 0.f, b = 0.f, a = 0.f;
    float cache[24];  /* corner differences of one cell, for shading */
    long long cached = -1;  /* no cell */
    long long k = k0;
    while (hit && k <= k1) {
        long long first = k, last = k1;
        if (use_grid) next_run(k, k1, d, s, dd, inv, G, 1.f, 0.5f, &first, &last);
        for (long long kk = first; kk <= last; ++kk) {
            double z = s[0] + kk * dd[0], y = s[1] + kk * dd[1], x = s[2] + kk * dd[2];
            float val = sample(d, z, y, x);
            int li = min(max((int)((val - lut_lo) * lut_scale + 0.5f), 0), n_lut - 1);
            float sa = lut[4 * li + 3];
            if (sa <= 0.f) continue;
            float cr = lut[4 * li], cg = lut[4 * li + 1], cb = lut[4 * li + 2];
            if (shading) {
                float gz, gy, gx;
                gradient(d, z, y, x, &gz, &gy, &gx, cache, &cached);
                double px = g[0] * gz + g[1] * gy + g[2] * gx;
                double py = g[3] * gz + g[4] * gy + g[5] * gx;
                double pz = g[6] * gz + g[7] * gy + g[8] * gx;
                double gn = sqrt(px * px + py * py + pz * pz);
                float lit, spec;
                if (gn > 0.0) {
                    float ndl = (float)(fabs(px * lx + py * ly + pz * lz) / gn);
                    lit = ka + kd * ndl;
                    spec = ks * power_of(ndl, power, int_power) * sa;
                } else {
                    lit = ka + kd;
                    spec = 0.f;
                }
                cr = fminf(cr * lit + spec, sa);  /* stays a premultiplied colour */
                cg = fminf(cg * lit + spec, sa);
                cb = fminf(cb * lit + spec, sa);
            }
            float tr = 1.f - a;
            r += tr * cr; gr += tr * cg; b += tr * cb; a += tr * sa;
            if (a >= alpha_stop) break;
        }
        k = a >= alpha_stop ? k1 + 1 : last + 1;
    }
    float tr = 1.f - a;
    long long o = ((long long)i * w + j) * 3;
    out[o] = r + tr * bg0; out[o + 1] = gr + tr * bg1; out[o + 2] = b + tr * bg2;
}

extern "C" __global__ void block_minmax(const float* __restrict__ v, int nz, int ny, int nx,
                                        int shz, int shy, int shx, int nbz, int nby, int nbx,
                                        float* __restrict__ bmin, float* __restrict__ bmax) {
    long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (id >= (long long)nbz * nby * nbx) return;
    int bx = (int)(id % nbx), by = (int)((id / nbx) % nby), bz = (int)(id / ((long long)nbx * nby));
    int z0 = bz << shz, z1 = min((bz + 1) << shz, nz - 1);
    int y0 = by << shy, y1 = min((by + 1) << shy, ny - 1);
    int x0 = bx << shx, x1 = min((bx + 1) << shx, nx - 1);
    float lo = INF_F, hi = -INF_F;
    for (int z = z0; z <= z1; ++z)
        for (int y = y0; y <= y1; ++y) {
            const float* row = v + ((long long)z * ny + y) * nx;
            for (int x = x0; x <= x1; ++x) { lo = fminf(lo, row[x]); hi = fmaxf(hi, row[x]); }
        }
    bmin[id] = lo;
    bmax[id] = hi;
}
"""

_BLOCK = (16, 8, 1)


@functools.cache
def _kernels() -> tuple[Any, Any, Any]:
    cp = _cp()
    module = cp.RawModule(code=_SOURCE, options=("--std=c++14",))
    return (module.get_function("project"), module.get_function("composite"),
            module.get_function("block_minmax"))


def _cp() -> Any:
    cp = cupy_or_none()
    if cp is None:
        raise RuntimeError("no usable GPU (cupy missing or no device)")
    return cp


def _grid(h: int, w: int) -> tuple[int, int, int]:
    return ((w + _BLOCK[0] - 1) // _BLOCK[0], (h + _BLOCK[1] - 1) // _BLOCK[1], 1)


def _volume(volume: Any) -> Any:
    cp = _cp()
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got {volume.ndim}-D")
    return cp.ascontiguousarray(volume, dtype=cp.float32)


def _rays(rays: npt.NDArray[np.float64]) -> Any:
    r = np.ascontiguousarray(rays, dtype=np.float64)
    if r.shape != (P_SIZE,):
        raise ValueError(f"rays must be packed by pack_rays, shape ({P_SIZE},)")
    return _cp().asarray(r)


def _grid_args(levels: tuple[Any, ...] | None, shifts: tuple[int, int, int]) -> tuple[Any, ...]:
    """Kernel arguments of the three block levels (float32) and the level-1 shifts."""
    cp = _cp()
    if levels is None:
        levels = (cp.zeros((1, 1, 1), dtype=cp.float32),) * 3
    grids = [cp.ascontiguousarray(cp.asarray(g), dtype=cp.float32) for g in levels]
    sizes = [np.int32(n) for g in grids for n in g.shape[1:]]
    return (*grids, *sizes, *(np.int32(s) for s in shifts))


def block_minmax(volume: Any, shifts: tuple[int, int, int]) -> tuple[Any, Any]:
    """Block min and max grids (float32 cupy), as ``cpu_raycast.block_minmax``."""
    cp = _cp()
    vol = _volume(volume)
    nz, ny, nx = vol.shape
    nb = tuple(block_count(n, s) for n, s in zip(vol.shape, shifts, strict=True))
    bmin = cp.empty(nb, dtype=cp.float32)
    bmax = cp.empty(nb, dtype=cp.float32)
    total = nb[0] * nb[1] * nb[2]
    _, _, kernel = _kernels()
    kernel(((total + 255) // 256,), (256,),
           (vol, np.int32(nz), np.int32(ny), np.int32(nx), *(np.int32(s) for s in shifts),
            *(np.int32(n) for n in nb), bmin, bmax))
    return bmin, bmax


def block_pyramid(volume: Any, shifts: tuple[int, int, int]
                  ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(minima, maxima) of the three block levels as cupy arrays; as on the CPU."""
    cp = _cp()
    lo, hi = block_minmax(volume, shifts)
    lo2, hi2 = pool_blocks(cp, lo, "min"), pool_blocks(cp, hi, "max")
    return (lo, lo2, pool_blocks(cp, lo2, "min")), (hi, hi2, pool_blocks(cp, hi2, "max"))


def visible_blocks(bmin: Any, bmax: Any, alpha: npt.NDArray[np.float32], lut_lo: float,
                   lut_scale: float) -> Any:
    """As ``cpu_raycast.visible_blocks``, on cupy grids (uint8 cupy array)."""
    cp = _cp()
    a = np.asarray(alpha)
    n = a.shape[0]
    prefix = cp.asarray(np.concatenate([[0], np.cumsum(a > 0)]).astype(np.int64))
    lo, scale, half = np.float32(lut_lo), np.float32(lut_scale), np.float32(0.5)
    first = cp.clip(((cp.asarray(bmin) - lo) * scale + half).astype(cp.int64) - 1, 0, n - 1)
    last = cp.clip(((cp.asarray(bmax) - lo) * scale + half).astype(cp.int64) + 1, 0, n - 1)
    return (prefix[last + 1] > prefix[first]).astype(cp.uint8)


def project(volume: Any, rays: npt.NDArray[np.float64], size_hw: tuple[int, int], *,
            mode: int = MIP, fill: float = 0.0, block_levels: tuple[Any, ...] | None = None,
            block_shifts: tuple[int, int, int] = (2, 2, 2)) -> Any:
    """MIP / MinIP / AvgIP as a float32 cupy array (h, w); see ``cpu_raycast.project``."""
    assert mode in (MIP, MINIP, AVGIP)
    cp = _cp()
    vol = _volume(volume)
    nz, ny, nx = vol.shape
    h, w = size_hw
    out = cp.empty((h, w), dtype=cp.float32)
    use = block_levels is not None and mode != AVGIP
    kernel, _, _ = _kernels()
    kernel(_grid(h, w), _BLOCK,
           (vol, np.int32(nz), np.int32(ny), np.int32(nx), _rays(rays), out, np.int32(h),
            np.int32(w), np.int32(mode), np.float32(fill),
            *_grid_args(block_levels if use else None, block_shifts), np.int32(use),
            np.int32(COARSE_STRIDE)))
    return out


def composite(volume: Any, rays: npt.NDArray[np.float64], size_hw: tuple[int, int], *,
              lut: npt.NDArray[np.float32], lut_lo: float, lut_scale: float,
              background: tuple[float, float, float] = (0.0, 0.0, 0.0),
              material: tuple[float, float, float, float] | None = None,
              visible_levels: tuple[Any, ...] | None = None,
              block_shifts: tuple[int, int, int] = (2, 2, 2),
              alpha_stop: float = 0.99) -> Any:
    """Front-to-back compositing as a float32 cupy array (h, w, 3); see
    ``cpu_raycast.composite``."""
    cp = _cp()
    vol = _volume(volume)
    nz, ny, nx = vol.shape
    h, w = size_hw
    out = cp.empty((h, w, 3), dtype=cp.float32)
    table = cp.ascontiguousarray(cp.asarray(lut, dtype=cp.float32))
    ka, kd, ks, power = material if material is not None else (1.0, 0.0, 0.0, 1.0)
    _, kernel, _ = _kernels()
    kernel(_grid(h, w), _BLOCK,
           (vol, np.int32(nz), np.int32(ny), np.int32(nx), _rays(rays), out, np.int32(h),
            np.int32(w), table, np.int32(table.shape[0]), np.float32(lut_lo),
            np.float32(lut_scale), *(np.float32(c) for c in background), np.float32(ka),
            np.float32(kd), np.float32(ks), np.float32(power), np.int32(material is not None),
            *_grid_args(visible_levels, block_shifts), np.int32(visible_levels is not None),
            np.float32(alpha_stop)))
    return out
