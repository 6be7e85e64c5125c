"""Render benchmark: VoxCast side by side with VTK and SimpleITK, same run, same grids.

    python -m benchmarks.render [--quick] [--frames N] [--out DIR] [--threads N]

Volumes: the ACRIN chest CT (135 x 512², int16 HU, assembled by ``ingest.assemble`` from the
shared DICOM files) and a synthetic 600 x 512² volume (that CT stretched to 600 slices by linear
interpolation along the slice axis: real anatomy at a thin-slice CT's size, 0.73 mm slices).

Cases, each on every volume: axial MPR, oblique MPR, axial / coronal / oblique slab MIP 20 mm
(512² output), straightened CPR (512 wide), 3D MIP and shaded volume rendering (512², an oblique
view), ROI statistics (an ellipse of 240 x 160 px with a 64-bin histogram). References:
vtkImageReslice, vtkImageSlabReslice, vtkImageReslice through a displacement grid (CPR),
vtkFixedPointVolumeRayCastMapper offscreen through EGL (3D), vtkImageAccumulate with a stencil
(ROI); SimpleITK Resample (planes, slabs as a stack, CPR through a displacement field) and
LabelStatisticsImageFilter (ROI).

Before anything is timed, VoxCast's output of each case is checked against the references on
the same grid (see :mod:`benchmarks.render_cases`); a failed check marks the case failed and
makes the script exit with status 1, after writing its report. Then every tool renders
``--frames`` frames, interleaved (one frame of each tool in turn, so that the load of other
processes falls on all of them alike), after one warm-up frame each (the guard's frame).
Writes ``render.json`` (every figure with its samples) and ``render.md``.

Goals (CPU): oblique MPR at least 2x faster than vtkImageReslice; slab MIP 20 mm at least
25 frames/s; volume rendering at least 5x faster than VTK's CPU ray caster.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pydicom

from benchmarks import render_cases as rc
from benchmarks.common import (
    DEFAULT_OUT,
    Guard,
    Ratio,
    Report,
    Row,
    fmt,
    load_average,
    plan_steps,
    shared_data_dir,
    step,
    table,
)
from benchmarks.render_refs import configure_threads
from ingest.assemble import assemble_series
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Plane, standard_plane

SIZE = (512, 512)
QUICK_SIZE_3D = (256, 256)
SYNTHETIC_SLICES = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class Goal:
    text: str
    met: Callable[[dict[str, float]], bool]  # medians by tool -> met


def _ratio(medians: dict[str, float]) -> float:
    return medians.get(rc.VTK, float("nan")) / medians.get(rc.VOXCAST, float("nan"))


GOAL_2X = Goal(text="≥ 2x faster than VTK", met=lambda m: _ratio(m) >= 2.0)
GOAL_25FPS = Goal(text="≥ 25 frames/s (≤ 40 ms)", met=lambda m: m[rc.VOXCAST] <= 40.0)
GOAL_5X = Goal(text="≥ 5x faster than VTK", met=lambda m: _ratio(m) >= 5.0)


@dataclass(slots=True, kw_only=True)
class CaseResult:
    volume: str
    key: str
    label: str
    goal: Goal | None
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    checks: list[Guard] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def guard_passed(self) -> bool:
        return not self.error and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def medians(self) -> dict[str, float]:
        return {tool: float(np.median(s)) for tool, s in self.samples_ms.items() if s}

    @property
    def goal_met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.guard_passed and rc.VOXCAST in self.medians and self.goal.met(self.medians)


# -- volumes -----------------------------------------------------------------------------------

def load_acrin_ct(data_dir: Path) -> tuple[np.ndarray, VolumeGeometry]:
    folder = data_dir / "petct-acrin042" / "CT"
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".txt")
    volume = assemble_series([pydicom.dcmread(p) for p in files])
    return np.ascontiguousarray(volume.data), volume.geometry


def stretched(data: np.ndarray, geometry: VolumeGeometry,
              slices: int) -> tuple[np.ndarray, VolumeGeometry]:
    """``data`` resampled to ``slices`` slices spanning the same first and last slice (linear
    along the slice axis, rounded to int16)."""
    n = data.shape[0]
    out = np.empty((slices, *data.shape[1:]), dtype=data.dtype)
    for k, z in enumerate(np.linspace(0.0, n - 1.0, slices)):
        z0 = min(int(z), n - 2)
        f = np.float32(z - z0)
        mixed = data[z0].astype(np.float32) * (1 - f) + data[z0 + 1].astype(np.float32) * f
        out[k] = np.rint(mixed).astype(data.dtype)
    affine = geometry.affine.copy()
    affine[:3, 0] *= (n - 1) / (slices - 1)
    return out, VolumeGeometry(shape=out.shape, affine=affine,  # type: ignore[arg-type]
                               frame_of_reference_uid=geometry.frame_of_reference_uid)


# -- timing ------------------------------------------------------------------------------------

def time_interleaved(tools: dict[str, Callable[[], object]], frames: int, *,
                     cold: set[str] | None = None) -> dict[str, list[float]]:
    """Milliseconds per frame of every tool: ``frames`` rounds of one call per tool in turn,
    after one warm-up call of each tool in ``cold`` (default: all)."""
    for name, fn in tools.items():
        if cold is None or name in cold:
            fn()
    samples: dict[str, list[float]] = {k: [] for k in tools}
    for _ in range(frames):
        for k, fn in tools.items():
            t0 = time.perf_counter()
            fn()
            samples[k].append((time.perf_counter() - t0) * 1e3)
    return samples


def oblique(plane: Plane) -> Plane:
    """The oblique plane of the benchmark: tilted 25° about L-R, then -15° about a P/H axis."""
    return plane.rotated_about([1.0, 0.0, 0.0], 25.0).rotated_about([0.0, 1.0, 0.3], -15.0)


def run_volume(vol: rc.BenchVolume, *, frames: int, size_3d: tuple[int, int], trials: int,
               threads: int) -> list[CaseResult]:
    axial = standard_plane(vol.geometry, "axial", size_px=SIZE)
    coronal = standard_plane(vol.geometry, "coronal", size_px=SIZE)
    w3, h3 = size_3d
    cases: list[tuple[str, str, Goal | None, Callable[[], rc.CaseSetup]]] = [
        ("axial_mpr", "axial MPR 512²", None, lambda: rc.mpr_case(vol, axial, trials=trials)),
        ("oblique_mpr", "oblique MPR 512²", GOAL_2X,
         lambda: rc.mpr_case(vol, oblique(axial), trials=trials)),
        ("axial_slab_mip", "axial slab MIP 20 mm 512²", GOAL_25FPS,
         lambda: rc.slab_case(vol, axial, trials=trials)),
        ("coronal_slab_mip", "coronal slab MIP 20 mm 512²", GOAL_25FPS,
         lambda: rc.slab_case(vol, coronal, trials=trials)),
        ("oblique_slab_mip", "oblique slab MIP 20 mm 512²", GOAL_25FPS,
         lambda: rc.slab_case(vol, oblique(axial), trials=trials)),
        ("cpr", "CPR straightened, 512 wide", None, lambda: rc.cpr_case(vol)),
        ("mip_3d", f"3D MIP {w3}x{h3}", None,
         lambda: rc.mip3d_case(vol, size_3d, threads=threads)),
        ("volume_rendering", f"volume rendering {w3}x{h3} (ct-bone, shaded)", GOAL_5X,
         lambda: rc.volume_rendering_case(vol, size_3d, threads=threads)),
        ("roi_stats", "ROI stats (ellipse 240x160 px, 64 bins)", None,
         lambda: rc.roi_case(vol, axial)),
    ]
    results = []
    for key, label, goal, build in cases:
        step(f"{vol.label}: {label}")
        result = CaseResult(volume=vol.label, key=key, label=label, goal=goal)
        t0 = time.perf_counter()
        try:
            setup = build()
            result.checks, result.settings, result.facts = setup.checks, setup.settings, setup.facts
            result.samples_ms = time_interleaved(setup.tools, frames, cold=setup.cold_tools)
        except Exception:  # a case that cannot run is a failed row, not a lost report
            result.error = traceback.format_exc(limit=4)
        status = "guard ok" if result.guard_passed else "GUARD FAILED"
        medians = ", ".join(f"{k} {fmt(v)} ms" for k, v in result.medians.items())
        print(f"  {label}: {status}; {medians} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for c in result.checks:
            if not c.passed:
                print(f"    failed: {c.name} = {c.value:.4g} (limit {c.limit:g})", flush=True)
        if result.error:
            print(result.error, flush=True)
        results.append(result)
    return results


# -- report ------------------------------------------------------------------------------------

def _cell(medians: dict[str, float], tool: str) -> str:
    return fmt(medians[tool]) if tool in medians else "–"


def summary_table(results: list[CaseResult]) -> str:
    rows = []
    for r in results:
        m = r.medians
        ratio = _ratio(m)
        extra = [f"{t} {fmt(v)} ms" for t, v in m.items() if t not in (rc.VOXCAST, rc.VTK, rc.SITK)]
        goal = "–" if r.goal_met is None else ("yes" if r.goal_met else "**no**")
        rows.append([r.label, _cell(m, rc.VOXCAST), _cell(m, rc.VTK), _cell(m, rc.SITK),
                     f"{ratio:.2f}x" if np.isfinite(ratio) else "–",
                     r.goal.text if r.goal else "", goal,
                     "passed" if r.guard_passed else "**FAILED**", "; ".join(extra)])
    return table(rows, ["case", "VoxCast ms", "VTK ms", "SimpleITK ms", "VTK / VoxCast",
                        "goal", "goal met?", "guard", "also timed"])


SETTINGS_TEXT = """\
- Threads: every tool gets the same number of threads (`--threads`, default: all cores):
  numba's thread pool (VoxCast), VTK's multithreader and SMP tools (STDThread back end),
  SimpleITK's global default.
- Output: float32 values on the same 512² grid for every tool (VTK's reslice output type set
  to float, background NaN), trilinear interpolation everywhere.
- vtkImageReslice / vtkImageSlabReslice: reslice axes = the plane's row, column and normal
  directions, output extent 512², output spacing = the plane's pixel spacing, linear
  interpolation; each case runs the faster of VTK's two threading back ends (vtkMultiThreader
  or SMP; which one is in render.json). Slab: blend mode max, slab thickness 20 mm, slab
  resolution = 20 mm / (n - 1) so that VTK's `2·int(T/2r) + 1` samples are exactly VoxCast's n
  samples (every half smallest voxel spacing, centred on the plane).
- CPR: VTK reslices through a vtkGridTransform holding one displacement per output pixel,
  SimpleITK resamples through a DisplacementFieldTransform; both exact at the pixels. VoxCast's
  CPR surface is computed once per case (as for a window change or slab change); the frame cost
  with the surface computed ("VoxCast incl. surface") is also given.
- vtkFixedPointVolumeRayCastMapper: offscreen render window (`SetOffScreenRendering(1)`,
  EGL, Mesa), window = the camera's size, parallel projection with VoxCast's camera (focal
  point, direction, view up, parallel scale = half the image height), sample distance = VoxCast's
  ray step (half the smallest voxel spacing), automatic sample-distance adjustment off, image
  sample distance 1, linear interpolation, as many threads as the others. Volume rendering:
  the colours, opacities (per 1 mm unit distance) and Blinn-Phong material of VoxCast's
  "ct-bone" preset, shading on. MIP: a grey ramp over -1024..3071 HU. Timed: `Render()` only,
  after a warm-up render; VoxCast: `render_volume` (uint8 RGB) / `render_projection`, with its
  block grid built once per volume (outside the timing, as VTK's own space-leaping tables).
- ROI: VoxCast's `measure` builds the ellipse mask on every call and computes count, mean,
  std, min, max, median, percentiles and a 64-bin histogram; VTK's vtkImageAccumulate reuses
  its rasterised stencil (count, mean, std, min, max, 64-bin histogram); SimpleITK's
  LabelStatisticsImageFilter gets a precomputed label mask.
"""


# What "VTK" and "SimpleITK" are in each case, for the ratios.
BASELINES = {
    "axial_mpr": ("vtkImageReslice", "SimpleITK Resample"),
    "oblique_mpr": ("vtkImageReslice", "SimpleITK Resample"),
    "axial_slab_mip": ("vtkImageSlabReslice", "SimpleITK Resample (slab stack) + max"),
    "coronal_slab_mip": ("vtkImageSlabReslice", "SimpleITK Resample (slab stack) + max"),
    "oblique_slab_mip": ("vtkImageSlabReslice", "SimpleITK Resample (slab stack) + max"),
    "cpr": ("vtkImageReslice (vtkGridTransform)", "SimpleITK Resample (displacement field)"),
    "mip_3d": ("vtkFixedPointVolumeRayCastMapper", ""),
    "volume_rendering": ("vtkFixedPointVolumeRayCastMapper", ""),
    "roi_stats": ("vtkImageAccumulate (stencil)", "SimpleITK LabelStatisticsImageFilter"),
}


def case_ratios(results: list[CaseResult]) -> list[Ratio]:
    """Every case: each baseline's median over VoxCast's (CPU, and GPU when timed)."""
    out = []
    for r in results:
        m = r.medians
        vtk_name, sitk_name = BASELINES.get(r.key, ("VTK", "SimpleITK"))
        for ours in (rc.VOXCAST, rc.VOXCAST_GPU):
            if ours not in m:
                continue
            suffix = " (GPU)" if ours == rc.VOXCAST_GPU else ""
            for tool, name in ((rc.VTK, vtk_name), (rc.SITK, sitk_name)):
                if tool in m and name:
                    out.append(Ratio(name=f"{r.volume} · {r.label}{suffix}", baseline=name,
                                     voxcast_value=m[ours], baseline_value=m[tool], unit="ms",
                                     guard_passed=r.guard_passed))
    return out


def case_guards(results: list[CaseResult]) -> list[Guard]:
    guards = [replace(c, name=f"{r.volume} · {r.label} · {c.name}")
              for r in results for c in r.checks]
    guards += [Guard(name=f"{r.volume} · {r.label} · ran without error "
                     f"({r.error.strip().splitlines()[-1]})", value=float("nan"), limit=0.0)
               for r in results if r.error]
    return guards


def build_report(results: list[CaseResult], args: argparse.Namespace, facts: dict[str, Any],
                 notes: list[str]) -> Report:
    report = Report(name="render", title="VoxCast render benchmark: VoxCast, VTK and SimpleITK "
                    "side by side", samples_in_markdown=False)
    parts = []
    for volume in dict.fromkeys(r.volume for r in results):
        parts += [f"## {volume}", "", summary_table([r for r in results if r.volume == volume]),
                  ""]
    parts.append(f"Median ms over {args.frames} frames per tool (interleaved, after a warm-up "
                 "frame: the guard's); VTK / VoxCast > 1: VoxCast is faster.")
    report.summary = "\n".join(parts)
    for r in results:
        for tool, samples in r.samples_ms.items():
            report.add(Row(name=f"{r.volume} · {r.label} · {tool}", unit="ms", samples=samples,
                           case=r.key, tool=tool,
                           note="" if r.guard_passed else "guard failed",
                           extra={"volume": r.volume, "case_label": r.label}))
    report.facts.update(facts)
    report.guards.extend(case_guards(results))
    report.ratios.extend(case_ratios(results))
    report.sections.append(("Settings", SETTINGS_TEXT))
    report.notes.extend(notes)
    report.details["cases"] = [
        {"volume": r.volume, "case": r.key, "label": r.label, "medians_ms": r.medians,
         "goal": r.goal.text if r.goal else None, "goal_met": r.goal_met,
         "guard_passed": r.guard_passed, "error": r.error or None,
         "checks": [{"name": c.name, "value": c.value, "limit": c.limit,
                     "at_least": c.at_least, "passed": c.passed} for c in r.checks],
         "settings": r.settings, "facts": r.facts} for r in results]
    return report


NOTES = [
    "Timing: wall clock per frame; the tools take turns frame by frame, so load from other "
    "processes spreads over all of them, but absolute numbers on a shared 2-core machine are "
    "noisy: compare ratios within one run, not numbers across runs.",
    "Slab MIP with the normal along an index axis (axial, coronal here): VTK's default path "
    "(its permutation fast path) takes the nearest slice for every sample along the normal "
    "instead of interpolating between slices, i.e. the max over whole slices in the slab; its "
    "values differ from the trilinear ones (VoxCast, VTK's own exact path, SimpleITK). 'VTK' is "
    "that fast default; 'VTK exact' (Optimization off) computes what VoxCast computes.",
    "SimpleITK has no slab reslice and no renderer: its slab figure is a Resample onto the "
    "stack of the slab's n planes plus a numpy max; no 3D figures.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 3 frames, the ACRIN CT only, 3D views at 256², "
                             "VTK's default threading, no 'VTK exact' timing")
    parser.add_argument("--frames", type=int, default=None, help="frames per tool (default 30)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--threads", type=int, default=None, help="threads for every tool")
    args = parser.parse_args(argv)
    args.frames = args.frames or (3 if args.quick else 30)
    if args.frames < 1:
        parser.error("--frames must be >= 1")
    threads = args.threads or int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(threads)
    data_dir = shared_data_dir()
    if not (data_dir / "petct-acrin042" / "CT").is_dir():
        parser.error(f"the ACRIN CT is not under {data_dir} (set VOXCAST_TEST_DATA)")

    facts: dict[str, Any] = {"load average at start": load_average(),
                             "numba threads": numba.get_num_threads(),
                             **configure_threads(threads), "frames per tool": args.frames,
                             "mode": "quick" if args.quick else "full"}
    print(f"load average {facts['load average at start']}; {threads} threads", flush=True)
    data, geometry = load_acrin_ct(data_dir)
    volumes = [("acrin_ct", f"ACRIN CT {'x'.join(map(str, data.shape))} int16", data, geometry)]
    if not args.quick:
        big, big_geometry = stretched(data, geometry, SYNTHETIC_SLICES)
        volumes.append(("synthetic", f"synthetic {'x'.join(map(str, big.shape))} int16 "
                        "(ACRIN CT stretched along z)", big, big_geometry))
    results: list[CaseResult] = []
    plan_steps(len(volumes) * 9)
    for key, label, vol_data, vol_geometry in volumes:
        print(label, flush=True)
        vol = rc.BenchVolume(key=key, label=label, data=vol_data, geometry=vol_geometry)
        results += run_volume(vol, frames=args.frames,
                              size_3d=QUICK_SIZE_3D if args.quick else SIZE,
                              trials=0 if args.quick else 3, threads=threads)
        facts[f"{label}: spacing mm (z, y, x)"] = ", ".join(
            f"{s:.4g}" for s in vol_geometry.spacing_mm)
        facts[f"{label}: VoxCast block grid build ms"] = round(vol.blocks_ms, 1)
        for r in results:
            if r.volume == label:
                facts.update({f"{label} · {r.label}: {k}": v for k, v in r.facts.items()})
        del vol
    facts["numba threading layer"] = numba.threading_layer()
    facts["load average at end"] = load_average()
    report = build_report(results, args, facts, NOTES)
    return report.finish(args.out, report.summary)


if __name__ == "__main__":
    raise SystemExit(main())
