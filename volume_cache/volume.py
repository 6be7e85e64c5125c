"""A volume: voxels plus the geometry that places them in patient space, and its pyramid.

The array is ``(z, y, x)`` — (slice, row, column) — and ``geometry.affine`` maps those indices
to DICOM patient coordinates (LPS, mm). ``metadata`` holds display and provenance facts
(modality, units, window presets, four-corner text, rescale, SUV factor, resampling notes)
as JSON-compatible values; the Zarr store writes it into the group attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.geometry import VolumeGeometry
from volume_cache.errors import CacheError

# Pyramid levels stop once the largest dimension is at most this many voxels.
PYRAMID_MAX_SIZE = 64
# An axis is halved at a level only while its spacing is within this factor of the finest
# spacing, so that anisotropic volumes (thick slices) become more isotropic, not less.
_ANISOTROPY_LIMIT = 1.5


class VolumeError(CacheError, ValueError):
    """A volume's array and geometry disagree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    """Voxels ``data`` (z, y, x) with their ``geometry`` (index → LPS mm) and ``metadata``.

    Raises :class:`VolumeError` when ``data`` is not 3-D or its shape is not
    ``geometry.shape``.
    """

    geometry: VolumeGeometry
    data: npt.NDArray[Any] = field(repr=False)
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise VolumeError(f"volume data must be 3-D (z, y, x), got {self.data.ndim}-D")
        if tuple(self.data.shape) != tuple(self.geometry.shape):
            raise VolumeError(f"data shape {self.data.shape} != geometry shape "
                              f"{self.geometry.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    def value_range(self) -> tuple[float, float]:
        """Minimum and maximum voxel value (in the stored unit: HU, Bq/ml, …)."""
        return float(np.min(self.data)), float(np.max(self.data))


@dataclass(frozen=True, slots=True, kw_only=True)
class PyramidLevel:
    """One resolution level: its geometry, the block factors from level 0, and the voxels."""

    geometry: VolumeGeometry
    factors_zyx: tuple[int, int, int]
    data: npt.NDArray[Any] = field(repr=False)


def level_factors(shape: tuple[int, int, int],
                  spacing_mm: tuple[float, float, float]) -> tuple[int, int, int]:
    """Block factors (1 or 2 per axis) for the next level of a level of ``shape``/spacing.

    Halve every axis longer than one voxel whose spacing is within ``_ANISOTROPY_LIMIT`` of
    the finest spacing among those axes (see module constants).
    """
    candidates = [s for n, s in zip(shape, spacing_mm, strict=True) if n > 1]
    if not candidates:
        return (1, 1, 1)
    finest = min(candidates)
    f = tuple(2 if n > 1 and s <= finest * _ANISOTROPY_LIMIT else 1
              for n, s in zip(shape, spacing_mm, strict=True))
    return (f[0], f[1], f[2])


def downsample_mean(data: npt.NDArray[Any],
                    factors_zyx: tuple[int, int, int]) -> npt.NDArray[Any]:
    """Average blocks of ``factors_zyx`` voxels; a trailing partial block is dropped.

    Same dtype as the input (integers rounded to nearest), shape ``size // factor`` per axis.
    Dropping the partial block keeps the level's geometry exact (see
    :meth:`VolumeGeometry.downsampled`). Works in slabs to bound the float32 temporaries.
    """
    fz, fy, fx = factors_zyx
    nz, ny, nx = (data.shape[0] // fz, data.shape[1] // fy, data.shape[2] // fx)
    out = np.empty((nz, ny, nx), dtype=data.dtype)
    integer = np.issubdtype(data.dtype, np.integer)
    slab = max(1, 16 // fz)
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        block = data[z0 * fz:z1 * fz, : ny * fy, : nx * fx].astype(np.float32)
        mean = block.reshape(z1 - z0, fz, ny, fy, nx, fx).mean(axis=(1, 3, 5))
        out[z0:z1] = np.rint(mean) if integer else mean
    return out


def build_pyramid(volume: Volume, *, max_size: int = PYRAMID_MAX_SIZE) -> list[PyramidLevel]:
    """Level 0 (the volume itself) and 2x mean-downsampled levels until the largest
    dimension is ``<= max_size`` (or nothing can be halved any more)."""
    levels = [PyramidLevel(geometry=volume.geometry, factors_zyx=(1, 1, 1), data=volume.data)]
    while max(levels[-1].data.shape) > max_size:
        last = levels[-1]
        f = level_factors(last.geometry.shape, last.geometry.spacing_mm)
        if f == (1, 1, 1):
            break
        data = downsample_mean(last.data, f)
        if min(data.shape) < 1:
            break
        shape = (int(data.shape[0]), int(data.shape[1]), int(data.shape[2]))
        geometry = last.geometry.downsampled(f, shape)
        total = (last.factors_zyx[0] * f[0], last.factors_zyx[1] * f[1],
                 last.factors_zyx[2] * f[2])
        levels.append(PyramidLevel(geometry=geometry, factors_zyx=total, data=data))
    return levels
