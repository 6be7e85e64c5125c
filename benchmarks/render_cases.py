"""The cases of the render benchmark: each sets up VoxCast and its references on one grid,
checks VoxCast's values against them (the guard) and hands back what to time.

A case builder returns a :class:`CaseSetup`: the callables to time (one frame each, by tool
name), the guard's checks, and the settings used, for the report. The first tool is VoxCast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import Guard
from benchmarks.render_refs import (
    SitkCurved,
    SitkPlane,
    SitkRoiStats,
    VtkCurvedReslice,
    VtkRayCaster,
    VtkReslice,
    VtkRoiStats,
    WorldFrame,
    sitk_image,
    vtk_image,
)
from render_engine.camera import Camera
from render_engine.cpr import sample_cpr
from render_engine.curved import CprView, CurvedPath
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, to_gpu, to_host
from render_engine.measure import Ellipse, HistogramSpec, measure
from render_engine.planes import Plane, Slab
from render_engine.raycast import BlockGrid, default_step_mm, render_projection, render_volume
from render_engine.sampling import index_steps, sample, slab_step_mm
from render_engine.transfer import preset

VOXCAST, VTK, SITK = "VoxCast", "VTK", "SimpleITK"
VOXCAST_GPU = "VoxCast GPU"
VR_GPU_RGB_TOL = 2.0  # GPU against CPU volume rendering: mean abs difference, RGB levels
SLAB_MM = 20.0
VALUE_TOL_HU = 0.5  # planes, slabs, CPR: max |VoxCast - reference| away from the border
MIP_AXIS_TOL_HU = 0.01  # axis-aligned 3D MIP against numpy's max: exact up to rounding
MIP_GREY_MEAN_TOL = 3.0  # rotated 3D MIP against VTK's, grey levels (0-255) of -1024..3071 HU
MIP_GREY_P99_TOL = 24.0
# Rays that graze the volume's outline: VTK clips them against the box a little differently and
# may show air there (grey 1-6) where VoxCast's ray misses; above this grey level (about
# -860 HU) it is content that VoxCast must not miss.
AIR_GREY = 10.0
VR_IOU_MIN = 0.9  # volume rendering: what VoxCast and VTK cover must agree
VR_NONBLANK_MIN = 0.01
ROI_REL_TOL = 1e-4
GREY_RANGE = (-1024.0, 3071.0)


@dataclass(slots=True, kw_only=True)
class CaseSetup:
    """What a case times (``tools``: one frame per call, VoxCast first) and what it found.

    The guard has already called VoxCast and the main references once each (their warm-up
    frame); other tools (``VTK exact``, ``VoxCast incl. surface``) still need one.
    """

    tools: dict[str, Callable[[], object]]
    checks: list[Guard] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def cold_tools(self) -> set[str]:
        return set(self.tools) - {VOXCAST, VTK, SITK}


@dataclass(slots=True)
class BenchVolume:
    """A volume and everything the tools need of it, made once."""

    key: str
    label: str
    data: npt.NDArray[np.int16]
    geometry: VolumeGeometry
    frame: WorldFrame = field(init=False)
    vtk: Any = field(init=False, repr=False)
    sitk: Any = field(init=False, repr=False)
    use_gpu: bool = True
    _blocks: BlockGrid | None = field(init=False, default=None, repr=False)
    blocks_ms: float = field(init=False, default=float("nan"))
    # The volume on the GPU (float32, as a server holds it) when cupy sees one, else None.
    gpu: Any = field(init=False, default=None, repr=False)
    _gpu_blocks: BlockGrid | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.frame = WorldFrame.of(self.geometry)
        self.vtk = vtk_image(self.data, self.frame)
        self.sitk = sitk_image(self.data, self.geometry)
        if self.use_gpu and cupy_or_none() is not None:
            self.gpu = to_gpu(self.data)

    @property
    def gpu_blocks(self) -> BlockGrid:
        if self._gpu_blocks is None:
            self._gpu_blocks = BlockGrid.of(self.gpu, self.geometry)
        return self._gpu_blocks

    @property
    def blocks(self) -> BlockGrid:
        """VoxCast's min/max block grid, built once per volume (as a session would)."""
        if self._blocks is None:
            t0 = time.perf_counter()
            self._blocks = BlockGrid.of(self.data, self.geometry)
            self.blocks_ms = (time.perf_counter() - t0) * 1e3
        return self._blocks


def add_gpu_tool(setup: CaseSetup, vol: BenchVolume, frame: Callable[[], object],
                 cpu_out: npt.NDArray[Any], check: Callable[[Any, Any], Guard]) -> None:
    """Time VoxCast's GPU path too (``frame`` renders from ``vol.gpu``; each timed call waits for
    the device), guarded by ``check`` of its output against the guarded CPU output."""
    cp = cupy_or_none()
    if vol.gpu is None or cp is None:
        return

    def synced() -> object:
        out = frame()
        cp.cuda.Device().synchronize()
        return out

    setup.checks.append(check(np.asarray(to_host(synced())), cpu_out))
    setup.tools[VOXCAST_GPU] = synced


def _gpu_values_check(interior: npt.NDArray[np.bool_]) -> Callable[[Any, Any], Guard]:
    return lambda got, cpu: Guard(name=f"max abs({VOXCAST_GPU} - {VOXCAST}), HU",
                                  value=_max_diff(got, cpu, interior), limit=VALUE_TOL_HU)


def pick_faster(options: dict[str, Callable[[], object]], trials: int) -> str:
    """The option with the smallest median of ``trials`` interleaved calls (after one call)."""
    times: dict[str, list[float]] = {k: [] for k in options}
    for fn in options.values():
        fn()
    for _ in range(trials):
        for k, fn in options.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return min(times, key=lambda k: float(np.median(times[k])))


def _interior(geometry: VolumeGeometry, grids_lps: list[npt.NDArray[np.float64]]
              ) -> npt.NDArray[np.bool_]:
    """Pixels whose every given position lies at least one voxel inside the volume."""
    hi = np.array(geometry.shape) - 2
    inside: npt.NDArray[np.bool_] | None = None
    for grid in grids_lps:
        idx = geometry.patient_to_index(grid)
        ok = np.all((idx >= 1) & (idx <= hi), axis=-1)
        inside = ok if inside is None else inside & ok
    assert inside is not None
    return inside


def _max_diff(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating],
              where: npt.NDArray[np.bool_]) -> float:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))[where]
    return float(d.max()) if d.size and np.isfinite(d).all() else float("nan")


def value_checks(got: npt.NDArray[np.floating], refs: dict[str, npt.NDArray[np.floating]],
                  interior: npt.NDArray[np.bool_]) -> list[Guard]:
    checks = [Guard(name="pixels checked (share away from the border)",
                    value=float(interior.mean()), limit=0.3, at_least=True)]
    for tool, ref in refs.items():
        checks.append(Guard(name=f"max abs(VoxCast - {tool}), HU",
                            value=_max_diff(got, ref, interior),
                            limit=VALUE_TOL_HU))
    return checks


def _vtk_reslice(vol: BenchVolume, plane: Plane, trials: int, **kwargs: Any) -> VtkReslice:
    """VTK's reslice with the faster of its two threading back ends (multithreader, SMP) in
    ``trials`` frames; the multithreader (VTK's default) for ``trials=0``."""
    if trials < 1:
        return VtkReslice(vol.vtk, vol.frame, plane, **kwargs)
    options = {smp: VtkReslice(vol.vtk, vol.frame, plane, smp=smp, **kwargs)
               for smp in (False, True)}
    best = pick_faster({str(k): v for k, v in options.items()}, trials)
    return options[best == "True"]


# -- planes and slabs --------------------------------------------------------------------------

def mpr_case(vol: BenchVolume, plane: Plane, *, trials: int) -> CaseSetup:
    """A thin plane: VoxCast ``sample`` vs vtkImageReslice vs SimpleITK Resample."""
    voxcast = partial(sample, vol.data, vol.geometry, plane, fill=np.nan)
    vtk_ref = _vtk_reslice(vol, plane, trials)
    sitk_ref = SitkPlane(vol.sitk, plane)
    got = voxcast()
    interior = _interior(vol.geometry, [plane.pixel_grid_lps()])
    checks = value_checks(got, {VTK: vtk_ref(), SITK: sitk_ref()}, interior)
    setup = CaseSetup(tools={VOXCAST: voxcast, VTK: vtk_ref, SITK: sitk_ref}, checks=checks,
                      settings={VTK: vtk_ref.settings, SITK: sitk_ref.settings})
    add_gpu_tool(setup, vol, partial(sample, vol.gpu, vol.geometry, plane, fill=np.nan), got,
                 _gpu_values_check(interior))
    return setup


def slab_case(vol: BenchVolume, plane: Plane, *, trials: int) -> CaseSetup:
    """A 20 mm MIP slab: VoxCast vs vtkImageSlabReslice (same samples) vs a SimpleITK stack.

    VoxCast samples the slab every half smallest voxel spacing (odd count, centred); VTK's slab
    resolution is set so that it takes exactly the same samples. VTK's default path for a
    slab normal along an index axis (its permutation fast path) takes the nearest slice for
    every sample instead of interpolating between slices; that path is timed as "VTK" (its
    best) while the guard compares with VTK's exact path (optimization off), which is also
    timed, as "VTK exact" (unless ``trials`` is 0: quick runs).
    """
    slab = Slab(thickness_mm=SLAB_MM, mode="mip")
    offsets = slab.sample_offsets_mm(slab_step_mm(vol.geometry))
    voxcast = partial(sample, vol.data, vol.geometry, plane, slab=slab, fill=np.nan)
    vtk_kw: dict[str, Any] = {"thickness_mm": SLAB_MM, "slab_samples": len(offsets)}
    vtk_ref = _vtk_reslice(vol, plane, trials, **vtk_kw)
    vtk_exact = VtkReslice(vol.vtk, vol.frame, plane, smp=bool(vtk_ref.settings["SMP"]),
                           optimization=False, **vtk_kw)
    sitk_ref = SitkPlane(vol.sitk, plane, offsets)
    _, _, _, d_normal = index_steps(vol.geometry, plane)
    along_axis = int(np.count_nonzero(np.abs(d_normal) > 1e-12 * np.abs(d_normal).max())) == 1
    got = voxcast()
    grid = plane.pixel_grid_lps()
    interior = _interior(vol.geometry, [grid + offsets[0] * plane.normal,
                                        grid + offsets[-1] * plane.normal])
    refs = {f"{VTK} exact path" if along_axis else VTK: vtk_exact() if along_axis else vtk_ref(),
            f"{SITK} stack max": sitk_ref()}
    checks = value_checks(got, refs, interior)
    setup = CaseSetup(tools={VOXCAST: voxcast, VTK: vtk_ref, SITK: sitk_ref}, checks=checks,
                      settings={VTK: vtk_ref.settings, SITK: sitk_ref.settings,
                                VOXCAST: {"slab_samples": len(offsets),
                                          "sample_step_mm": float(offsets[1] - offsets[0]),
                                          "axis_fast_path": along_axis}})
    if along_axis and trials > 0:
        setup.tools[f"{VTK} exact"] = vtk_exact
        setup.settings[f"{VTK} exact"] = vtk_exact.settings
    if along_axis:
        setup.facts["max abs(VoxCast - VTK default path), HU (not a guard)"] = _max_diff(
            got, vtk_ref(), interior)
    add_gpu_tool(setup, vol, partial(sample, vol.gpu, vol.geometry, plane, slab=slab,
                                     fill=np.nan), got, _gpu_values_check(interior))
    return setup


# -- CPR ---------------------------------------------------------------------------------------

def cpr_view(geometry: VolumeGeometry) -> CprView:
    """A straightened CPR along a gently curving head-foot path through the volume (an aorta's
    course, roughly), 0.8 mm pixels, 512 columns."""
    nz, ny, nx = geometry.shape
    center = geometry.index_to_patient([(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2])
    top = geometry.index_to_patient([0, (ny - 1) / 2, (nx - 1) / 2])
    half = 0.9 * abs(float(top[2] - center[2]))
    z = np.linspace(-half, half, 9)
    points = np.column_stack([center[0] + 25.0 * np.sin(z / 60.0),
                              center[1] - 20.0 + 15.0 * np.cos(z / 45.0), center[2] + z])
    return CprView(path=CurvedPath(points_lps=points, kind="spline"), pixel_spacing_mm=0.8,
                   width_px=512)


def cpr_case(vol: BenchVolume) -> CaseSetup:
    """CPR sampling of a precomputed surface: VoxCast ``sample_cpr`` vs vtkImageReslice through
    a displacement grid vs SimpleITK Resample through a displacement field; also VoxCast with
    the surface computed in the frame ("VoxCast incl. surface")."""
    view = cpr_view(vol.geometry)
    surface = view.surface()
    grid = surface.grid_lps()
    voxcast = partial(sample_cpr, vol.data, vol.geometry, surface, fill=np.nan)
    vtk_ref = VtkCurvedReslice(vol.vtk, vol.frame, grid)
    sitk_ref = SitkCurved(vol.sitk, grid)
    got = voxcast()
    interior = _interior(vol.geometry, [grid])
    checks = value_checks(got, {VTK: vtk_ref(), SITK: sitk_ref()}, interior)
    w, h = surface.size_px
    setup = CaseSetup(
        tools={VOXCAST: voxcast, VTK: vtk_ref, SITK: sitk_ref,
               f"{VOXCAST} incl. surface": partial(sample_cpr, vol.data, vol.geometry, view,
                                                   fill=np.nan)},
        checks=checks, settings={VTK: vtk_ref.settings, SITK: sitk_ref.settings,
                                 VOXCAST: {"size_px": [w, h], "path_mm": view.path.length_mm,
                                           "mode": view.mode}})
    add_gpu_tool(setup, vol, partial(sample_cpr, vol.gpu, vol.geometry, surface, fill=np.nan),
                 got, _gpu_values_check(interior))
    return setup


# -- 3D ----------------------------------------------------------------------------------------

def view_camera(geometry: VolumeGeometry, size_px: tuple[int, int]) -> Camera:
    """The timed 3D view: anterior, turned 30° about the vertical and raised 10° (oblique to
    every index axis, as while rotating a 3D view)."""
    return Camera.fit_volume(geometry, view="anterior", size_px=size_px).orbited(30.0, 10.0)


def _axis_mip_check(vol: BenchVolume) -> Guard:
    """VoxCast's MIP looking along the slice axis, on pixels that sit on voxel columns and with
    a ray step that hits every slice centre, equals numpy's max over the slices."""
    geo = vol.geometry
    nz, ny, nx = geo.shape
    full = Camera.fit_volume(geo, view="inferior", size_px=(nx, ny))
    crop = full.resized((128 if nx % 2 == 0 else 127, 128 if ny % 2 == 0 else 127))
    dz = geo.spacing_mm[0]
    step = dz / (2 * math.ceil(dz / (2 * default_step_mm(geo))))
    got = render_projection(vol.data, geo, crop, mode="mip", fill=np.nan, step_mm=step)
    w, h = crop.size_px
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    idx = geo.patient_to_index(crop.pixel_to_patient(rows, cols))
    if np.abs(idx[..., 1:] - np.round(idx[..., 1:])).max() > 1e-6:
        return Guard(name="axis-aligned MIP: pixels on voxel columns", value=float("nan"),
                     limit=0.0)
    yi, xi = np.round(idx[..., 1]).astype(int), np.round(idx[..., 2]).astype(int)
    ref = vol.data.max(axis=0)[yi, xi].astype(np.float64)
    return Guard(name="axis-aligned MIP: max abs(VoxCast - numpy max), HU",
                 value=float(np.abs(got - ref).max()), limit=MIP_AXIS_TOL_HU)


def _eroded(mask: npt.NDArray[np.bool_], r: int) -> npt.NDArray[np.bool_]:
    """``mask`` less every pixel within ``r`` pixels (chessboard distance) of its outside."""
    out = mask.copy()
    padded = np.pad(mask, r, constant_values=False)
    h, w = mask.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out &= padded[r + dy:r + dy + h, r + dx:r + dx + w]
    return out


def _grey(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    lo, hi = GREY_RANGE
    return np.clip((values.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0) * 255.0


def mip3d_case(vol: BenchVolume, size_px: tuple[int, int], *, threads: int) -> CaseSetup:
    """3D MIP (whole volume, orthographic): VoxCast ``render_projection`` with its block grid
    vs vtkFixedPointVolumeRayCastMapper in MIP mode, same camera and ray step."""
    camera = view_camera(vol.geometry, size_px)
    step = default_step_mm(vol.geometry)
    blocks = vol.blocks
    voxcast = partial(render_projection, vol.data, vol.geometry, camera, mode="mip",
                      fill=np.nan, blocks=blocks)
    vtk_ref = VtkRayCaster(vol.vtk, vol.frame, camera, step_mm=step, grey_range=GREY_RANGE,
                           threads=threads)
    checks = [_axis_mip_check(vol)]
    got = voxcast()
    vtk_ref.render()
    vtk_grey = vtk_ref.image()[..., 0].astype(np.float64)
    hit = np.isfinite(got)
    # VTK's box ends at the outer voxel centres, VoxCast's half a voxel further out (a slice
    # stands for its thickness): the outline differs by up to half the largest spacing, so
    # the grey levels are compared inside the outline, that far (plus a pixel) from it.
    margin = math.ceil(0.5 * max(vol.geometry.spacing_mm) / camera.pixel_spacing_mm) + 1
    inside = _eroded(hit & (vtk_grey > 0), margin)
    diff = np.abs(_grey(np.where(hit, got, GREY_RANGE[0])) - vtk_grey)[inside]
    checks += [Guard(name="rotated MIP: mean abs(VoxCast - VTK), grey levels",
                     value=float(diff.mean()), limit=MIP_GREY_MEAN_TOL),
               Guard(name="rotated MIP: p99 abs(VoxCast - VTK), grey levels",
                     value=float(np.percentile(diff, 99)), limit=MIP_GREY_P99_TOL),
               Guard(name="rotated MIP: VTK brighter than air where VoxCast's rays miss "
                          "(share)",
                     value=float((vtk_grey[~hit] > AIR_GREY).mean()) if (~hit).any() else 0.0,
                     limit=0.01)]
    setup = CaseSetup(tools={VOXCAST: voxcast, VTK: vtk_ref.render}, checks=checks,
                      settings={VTK: vtk_ref.settings,
                                VOXCAST: {"step_mm": step, "block_shifts": list(blocks.shifts)}},
                      facts={"VTK render window": vtk_ref.window_class(),
                             "VTK OpenGL renderer": vtk_ref.opengl_renderer()})

    def gpu_check(gpu_out: Any, cpu_out: Any) -> Guard:
        both = np.isfinite(gpu_out) & np.isfinite(cpu_out)
        same_hits = bool((np.isfinite(gpu_out) == np.isfinite(cpu_out)).mean() > 0.999)
        d = np.abs(_grey(np.where(both, gpu_out, 0)) - _grey(np.where(both, cpu_out, 0)))[both]
        return Guard(name=f"3D MIP: mean abs({VOXCAST_GPU} - {VOXCAST}), grey levels",
                     value=float(d.mean()) if same_hits and d.size else float("nan"),
                     limit=MIP_GREY_MEAN_TOL)

    if vol.gpu is not None:
        add_gpu_tool(setup, vol, partial(render_projection, vol.gpu, vol.geometry, camera,
                                         mode="mip", fill=np.nan, blocks=vol.gpu_blocks),
                     got, gpu_check)
    return setup


def volume_rendering_case(vol: BenchVolume, size_px: tuple[int, int], *,
                          threads: int) -> CaseSetup:
    """Shaded volume rendering with the "ct-bone" transfer function: VoxCast ``render_volume``
    (uint8 RGB) vs vtkFixedPointVolumeRayCastMapper with the same colours, opacities, material,
    camera and ray step. The guard compares what the two images cover."""
    transfer = preset("ct-bone")
    camera = view_camera(vol.geometry, size_px)
    step = default_step_mm(vol.geometry)
    voxcast = partial(render_volume, vol.data, vol.geometry, camera, transfer,
                      blocks=vol.blocks, dtype="uint8")
    vtk_ref = VtkRayCaster(vol.vtk, vol.frame, camera, step_mm=step, transfer=transfer,
                           threads=threads)
    got = np.asarray(voxcast())
    vtk_ref.render()
    ref = vtk_ref.image()
    ours = got.astype(np.int32).sum(axis=-1) > 30
    theirs = ref.astype(np.int32).sum(axis=-1) > 30
    union = int((ours | theirs).sum())
    both = ours & theirs
    setup = CaseSetup(
        tools={VOXCAST: voxcast, VTK: vtk_ref.render},
        checks=[Guard(name="VTK renders through EGL", value=float("EGL" in vtk_ref.window_class()),
                      limit=1.0, at_least=True),
                Guard(name="VTK image non-black (share)", value=float(theirs.mean()),
                      limit=VR_NONBLANK_MIN, at_least=True),
                Guard(name="VoxCast image non-black (share)", value=float(ours.mean()),
                      limit=VR_NONBLANK_MIN, at_least=True),
                Guard(name="covered pixels, intersection / union", limit=VR_IOU_MIN,
                      value=float(both.sum() / union) if union else 0.0, at_least=True)],
        settings={VTK: vtk_ref.settings, VOXCAST: {"step_mm": step, "transfer": transfer.name,
                                                   "shading": True, "alpha_stop": 0.99}})
    if both.any():
        setup.facts["mean abs(VoxCast - VTK) RGB on covered pixels "
                    "(shading models differ; not a guard)"] = float(
            np.abs(got.astype(np.float64) - ref)[both].mean())
    if vol.gpu is not None:
        add_gpu_tool(setup, vol, partial(render_volume, vol.gpu, vol.geometry, camera,
                                         transfer, blocks=vol.gpu_blocks, dtype="uint8"), got,
                     lambda g, c: Guard(name=f"mean abs({VOXCAST_GPU} - {VOXCAST}), RGB levels",
                                        value=float(np.abs(g.astype(np.float64) - c).mean()),
                                        limit=VR_GPU_RGB_TOL))
    return setup


# -- ROI statistics ----------------------------------------------------------------------------

def roi_case(vol: BenchVolume, plane: Plane) -> CaseSetup:
    """ROI statistics of an ellipse (240 x 160 px, 64-bin histogram) on the axial view's values:
    VoxCast ``measure`` (mask, count, mean, std, min, max, median, percentiles, histogram) vs
    vtkImageAccumulate over an ellipse stencil vs SimpleITK LabelStatisticsImageFilter over a
    precomputed label mask; the guard recomputes everything with numpy."""
    values = sample(vol.data, vol.geometry, plane, fill=np.nan)
    w, h = plane.size_px
    center, radii = ((w - 1) / 2.0, (h - 1) / 2.0 + 24.0), (120.0, 80.0)
    shape = Ellipse(center=center, radii=radii, histogram=HistogramSpec(bins=64))
    voxcast = partial(measure, values, plane, shape, units="HU")
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    mask = ((x - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2 <= 1.0
    picked = values[mask]
    picked = picked[np.isfinite(picked)].astype(np.float64)
    ref = {"count": float(picked.size), "mean": float(picked.mean()), "std": float(picked.std()),
           "min": float(picked.min()), "max": float(picked.max()),
           "median": float(np.median(picked))}
    got = voxcast()
    checks = [Guard(name=f"{k}: abs(VoxCast - numpy) / max(1, abs(numpy))",
                    value=abs(float(got[k]) - v) / max(1.0, abs(v)), limit=ROI_REL_TOL)
              for k, v in ref.items()]
    vtk_ref = VtkRoiStats(values, center, radii, (ref["min"], ref["max"]), 64)
    sitk_ref = SitkRoiStats(values, mask)
    facts = {"ROI pixel count (numpy / VTK stencil / SimpleITK mask)":
             f"{int(ref['count'])} / {int(vtk_ref()['count'])} / {int(sitk_ref()['count'])}"}
    return CaseSetup(tools={VOXCAST: voxcast, VTK: vtk_ref, SITK: sitk_ref}, checks=checks,
                     settings={VTK: vtk_ref.settings, SITK: sitk_ref.settings,
                               VOXCAST: {"shape": "ellipse", "center_px": list(center),
                                         "radii_px": list(radii), "bins": 64}},
                     facts=facts)
