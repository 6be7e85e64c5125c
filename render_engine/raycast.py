"""3D views by ray casting: projections (MIP / MinIP / AvgIP) and volume rendering.

The geometry glue between a :class:`~render_engine.camera.Camera` in patient space and the
index-space kernels, as :mod:`render_engine.sampling` is for planes: the camera's pixel grid and
ray step are mapped through the inverse of the volume's affine (sheared or not) once per frame.
A cupy volume (float32, see ``backend.to_gpu``) renders on the GPU and returns cupy arrays.

Rays are sampled every ``step_mm`` (default: half the smallest distance between the volume's
voxel planes). Projections return float32 (h, w) in the volume's own units (HU, Bq/ml, …);
volume rendering returns RGB (h, w, 3), float32 in 0..1 or uint8.

A :class:`BlockGrid` (min and max of coarse voxel blocks, three levels) makes both faster
without changing a pixel: MIP skips blocks that cannot raise a ray's maximum, volume rendering
skips blocks whose values are all transparent. It is computed per call unless given; a caller
that renders many frames of one volume (a rotating MIP, an interactive 3D view) computes it once
with :meth:`BlockGrid.of` (about 0.1 s for a 512 x 512 x 135 CT on two cores) and keeps it with
the volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.camera import Camera
from render_engine.errors import RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.kernels import cpu_raycast, gpu_raycast
from render_engine.kernels.backend import cupy_or_none, is_gpu_array
from render_engine.kernels.cpu_blocks import block_count
from render_engine.transfer import TransferFunction

PROJECTION_MODES = {"mip": cpu_raycast.MIP, "minip": cpu_raycast.MINIP,
                    "avgip": cpu_raycast.AVGIP}
LUT_SIZE = 4096
BLOCK_EDGE_VOXELS = 4  # block edge, in voxels of the finest axis


def _array_module(volume: Any) -> tuple[ModuleType, Any]:
    """(xp, kernel module) for a volume: numpy and the CPU kernels, or cupy and the GPU ones."""
    if is_gpu_array(volume):
        cp = cupy_or_none()
        if cp is None:
            raise RenderError("a cupy volume but no usable GPU")
        return cp, gpu_raycast
    return np, cpu_raycast


def plane_spacing_mm(geometry: VolumeGeometry) -> tuple[float, float, float]:
    """Distance in mm between neighbouring voxel planes of each index axis (z, y, x).

    Equals the spacings for an orthogonal grid; a sheared (gantry-tilted) grid packs its planes
    closer than its step lengths.
    """
    inv = np.linalg.inv(geometry.affine[:3, :3])
    d = 1.0 / np.linalg.norm(inv, axis=1)
    return (float(d[0]), float(d[1]), float(d[2]))


def default_step_mm(geometry: VolumeGeometry) -> float:
    """Ray sampling step: half the smallest distance between voxel planes (Nyquist)."""
    return 0.5 * min(plane_spacing_mm(geometry))


def block_shifts(geometry: VolumeGeometry) -> tuple[int, int, int]:
    """log2 of the block edge per axis: about ``BLOCK_EDGE_VOXELS`` of the finest axis in mm,
    so blocks of anisotropic volumes are roughly cubic (a power of two from 1 to 16 voxels)."""
    spacing = plane_spacing_mm(geometry)
    finest = min(spacing)
    return tuple(int(min(max(round(math.log2(BLOCK_EDGE_VOXELS * finest / s)), 0), 4))
                 for s in spacing)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockGrid:
    """Min and max of the voxels each block of trilinear cells reads, at three levels (float32,
    numpy or cupy; finest first).

    Level-1 block ``b`` of an axis with shift ``s`` covers cells ``b·2**s … (b+1)·2**s - 1``;
    each coarser level groups 4 x 4 x 4 blocks of the level below.
    """

    shifts: tuple[int, int, int]
    minimum: tuple[Any, ...] = field(repr=False)
    maximum: tuple[Any, ...] = field(repr=False)

    @classmethod
    def of(cls, volume: Any, geometry: VolumeGeometry) -> BlockGrid:
        """The grid of ``volume`` (z, y, x; numpy or cupy) with :func:`block_shifts`."""
        _, kernels = _array_module(volume)
        shifts = block_shifts(geometry)
        lo, hi = kernels.block_pyramid(volume, shifts)
        return cls(shifts=shifts, minimum=tuple(lo), maximum=tuple(hi))

    def check(self, volume: Any) -> BlockGrid:
        """This grid, after making sure it was made for a volume of ``volume``'s shape (raises
        :class:`RenderError` otherwise)."""
        expected = tuple(block_count(n, s) for n, s in zip(volume.shape, self.shifts,
                                                              strict=True))
        if len(self.maximum) != 3 or tuple(self.maximum[0].shape) != expected:
            raise RenderError(f"block grid of shape {tuple(self.maximum[0].shape)} does not fit "
                              f"a volume of shape {tuple(volume.shape)}")
        return self


def camera_rays(geometry: VolumeGeometry, camera: Camera,
                step_mm: float) -> npt.NDArray[np.float64]:
    """The camera's rays in the volume's index space, packed for the kernels
    (:func:`render_engine.kernels.cpu_raycast.pack_rays`)."""
    m = geometry.affine[:3, :3]
    inv = np.linalg.inv(m)
    s = camera.pixel_spacing_mm
    origin = geometry.patient_to_index(camera.pixel_to_patient(0, 0))
    d_col, d_row = inv @ (s * camera.row_dir), inv @ (s * camera.col_dir)
    if camera.is_perspective:
        return cpu_raycast.pack_rays(origin, d_col, d_row, index_to_lps=m, step_mm=step_mm,
                                     eye=geometry.patient_to_index(camera.eye_lps))
    return cpu_raycast.pack_rays(origin, d_col, d_row, index_to_lps=m, step_mm=step_mm,
                                 d_ray=inv @ (step_mm * camera.normal))


def _checked(volume: Any, geometry: VolumeGeometry, step_mm: float | None) -> float:
    if tuple(volume.shape) != geometry.shape:
        raise RenderError(f"volume shape {volume.shape} != geometry shape {geometry.shape}")
    step = default_step_mm(geometry) if step_mm is None else float(step_mm)
    if not (math.isfinite(step) and step > 0):
        raise RenderError(f"step_mm must be > 0, got {step_mm}")
    return step


def render_projection(volume: Any, geometry: VolumeGeometry, camera: Camera, *,
                      mode: str = "mip", fill: float = 0.0, step_mm: float | None = None,
                      blocks: BlockGrid | None = None) -> Any:
    """Maximum / minimum / average intensity projection through the whole volume.

    ``volume`` is (z, y, x), numpy (any real dtype) or cupy float32; returns float32 (h, w) in
    the volume's units, ``fill`` where a ray misses the volume. AvgIP is the mean of the
    interpolated profile along the part of the ray inside the volume. ``blocks`` (MIP/MinIP
    only) avoids recomputing the block grid. Raises ``KeyError`` for an unknown mode and
    :class:`RenderError` for a shape mismatch or a bad step.
    """
    code = PROJECTION_MODES[mode]
    step = _checked(volume, geometry, step_mm)
    _, kernels = _array_module(volume)
    rays = camera_rays(geometry, camera, step)
    w, h = camera.size_px
    levels = None
    shifts = (0, 0, 0)
    if code != cpu_raycast.AVGIP:
        grid = blocks.check(volume) if blocks is not None else BlockGrid.of(volume, geometry)
        levels = grid.maximum if code == cpu_raycast.MIP else grid.minimum
        shifts = grid.shifts
    return kernels.project(volume, rays, (h, w), mode=code, fill=fill, block_levels=levels,
                           block_shifts=shifts)


@dataclass(frozen=True, slots=True)
class ClassifiedLut:
    """A transfer function as the compositing kernels read it."""

    table: npt.NDArray[np.float32]  # (n, 4): RGB premultiplied by opacity, opacity per step
    lo: float  # data value (volume units) of entry 0
    scale: float  # entries per data unit


def classified_lut(transfer: TransferFunction, step_mm: float, *, value_scale: float = 1.0,
                   size: int = LUT_SIZE) -> ClassifiedLut:
    """``transfer`` sampled into ``size`` entries over its control points, its opacity corrected
    from ``unit_distance_mm`` to ``step_mm``, colours premultiplied, indexed in volume units
    (``value_scale`` converts volume units into the transfer function's)."""
    lo, hi = transfer.value_range
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    table = transfer.lut(size, lo, hi).astype(np.float64)
    alpha = 1.0 - (1.0 - np.clip(table[:, 3], 0.0, 1.0)) ** (step_mm / transfer.unit_distance_mm)
    table[:, :3] *= alpha[:, None]
    table[:, 3] = alpha
    return ClassifiedLut(table=table.astype(np.float32), lo=lo / value_scale,
                         scale=value_scale * (size - 1) / (hi - lo))


def render_volume(volume: Any, geometry: VolumeGeometry, camera: Camera,
                  transfer: TransferFunction, *, shading: bool = True,
                  background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                  value_scale: float = 1.0, step_mm: float | None = None,
                  blocks: BlockGrid | None = None, dtype: str = "float32",
                  alpha_stop: float = 0.99, lut_size: int = LUT_SIZE) -> Any:
    """Volume rendering (front-to-back emission-absorption) of ``volume`` through ``transfer``.

    ``value_scale`` converts the volume's units into the transfer function's (e.g. the SUVbw
    factor for a PET volume in Bq/ml, with the "pet" preset in SUV). ``shading`` applies the
    transfer function's Blinn-Phong material with a headlight; gradients are taken in patient
    space. Opacity is corrected for ``step_mm``; rays stop at ``alpha_stop``. Returns RGB
    (h, w, 3) over ``background`` (RGB 0..1): float32 in 0..1, or uint8 for ``dtype="uint8"``;
    numpy, or cupy for a cupy volume. Raises :class:`RenderError` for bad arguments.
    """
    step = _checked(volume, geometry, step_mm)
    if not (math.isfinite(value_scale) and value_scale > 0):
        raise RenderError(f"value_scale must be > 0, got {value_scale}")
    if dtype not in ("float32", "uint8"):
        raise RenderError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    if not alpha_stop > 0:
        raise RenderError(f"alpha_stop must be > 0, got {alpha_stop}")
    bg = tuple(float(c) for c in background)
    if len(bg) != 3 or not all(0.0 <= c <= 1.0 for c in bg):
        raise RenderError(f"background must be RGB in 0..1, got {background}")
    xp, kernels = _array_module(volume)
    rays = camera_rays(geometry, camera, step)
    lut = classified_lut(transfer, step, value_scale=value_scale, size=lut_size)
    grid = blocks.check(volume) if blocks is not None else BlockGrid.of(volume, geometry)
    material = ((transfer.ambient, transfer.diffuse, transfer.specular, transfer.specular_power)
                if shading else None)
    w, h = camera.size_px
    visible = tuple(kernels.visible_blocks(lo, hi, lut.table[:, 3], lut.lo, lut.scale)
                    for lo, hi in zip(grid.minimum, grid.maximum, strict=True))
    rgb = kernels.composite(volume, rays, (h, w), lut=lut.table, lut_lo=lut.lo,
                            lut_scale=lut.scale, background=bg, material=material,
                            visible_levels=visible, block_shifts=grid.shifts,
                            alpha_stop=alpha_stop)
    if dtype == "uint8":
        return xp.clip(rgb * 255.0 + 0.5, 0, 255).astype(xp.uint8)
    return rgb
