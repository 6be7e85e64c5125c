"""Scaling benchmark: how the cost of a frame grows with the work, VoxCast beside VTK.

    python -m benchmarks.scaling [--quick] [--part depth,size,sessions] [--out DIR]

1. Volume depth: synthetic volumes of 128 → 1024 slices of 512² (the ACRIN chest CT
   resampled along z to that many slices over its own 438 mm: real anatomy, synthetic slices,
   slice spacing 438 / (N - 1) mm), next to the real 512² CTs of the shared data at their own
   depth. Cases: oblique MPR and oblique 20 mm slab MIP at 512², 3D MIP and shaded volume
   rendering at 256²; VoxCast against vtkImageReslice, vtkImageSlabReslice,
   vtkFixedPointVolumeRayCastMapper (and SimpleITK Resample for the planes).
2. Output size: 256² → 1024² on the ACRIN CT: oblique MPR, oblique slab MIP, volume rendering
   (full runs), the same references.
3. Concurrent sessions: 1 → 16 render sessions of a real ``voxcast serve`` paging in a closed
   loop: frames/s per session and in all, input → frame latency.

Every point is first checked against its references (the render benchmark's guards, see
:mod:`benchmarks.render_cases`; sessions: every session's first lossless picture against
pydicom + numpy), then timed. Writes ``scaling.json`` and ``scaling.md``; exit status 1 when a
guard failed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import numba
import numpy as np
import pydicom

from benchmarks import common
from benchmarks import render_cases as rc
from benchmarks import streaming as st
from benchmarks.common import Guard, Ratio, Report, Row, fmt, median, percentile, table
from benchmarks.render import BASELINES, load_acrin_ct, oblique, stretched, time_interleaved
from ingest.assemble import assemble_series
from render_engine.geometry import VolumeGeometry
from render_engine.planes import standard_plane

FULL = {"depths": (128, 256, 512, 768, 1024), "sizes": (256, 512, 768, 1024),
        "sessions": (1, 2, 4, 8, 16), "frames": 5, "sessions_s": 4.0, "size_vr": True}
QUICK = {"depths": (128, 512), "sizes": (256, 1024), "sessions": (1, 4, 16), "frames": 2,
         "sessions_s": 1.0, "size_vr": False}
SIZE_3D = (256, 256)
# Real 512² CT series of the shared data besides the ACRIN CT, beside the synthetic depths
# (folder, series filter). None at present: the Philips phantom's gantry-tilted series cannot go
# through VTK (it needs an orthogonal volume) and its untilted one (28 x 5 mm) fails the rotated
# 3D MIP guard along the top and bottom faces, where VTK's box ends at the outer slice centres
# and VoxCast's half a slice (2.5 mm) further out; add it back once that guard masks the faces.
REAL_CTS: tuple[tuple[str, str], ...] = ()

Case = tuple[str, str, Callable[[rc.BenchVolume], rc.CaseSetup]]


def depth_cases(threads: int) -> list[Case]:
    def plane(vol: rc.BenchVolume, size: int = 512) -> Any:
        return oblique(standard_plane(vol.geometry, "axial", size_px=(size, size)))
    return [
        ("oblique_mpr", "oblique MPR 512²", lambda v: rc.mpr_case(v, plane(v), trials=0)),
        ("oblique_slab_mip", "oblique slab MIP 20 mm 512²",
         lambda v: rc.slab_case(v, plane(v), trials=0)),
        ("mip_3d", "3D MIP 256²", lambda v: rc.mip3d_case(v, SIZE_3D, threads=threads)),
        ("volume_rendering", "volume rendering 256² (ct-bone, shaded)",
         lambda v: rc.volume_rendering_case(v, SIZE_3D, threads=threads)),
    ]


def size_cases(size: int, threads: int, with_vr: bool) -> list[Case]:
    def plane(vol: rc.BenchVolume) -> Any:
        return oblique(standard_plane(vol.geometry, "axial", size_px=(size, size)))
    cases: list[Case] = [
        ("oblique_mpr", "oblique MPR", lambda v: rc.mpr_case(v, plane(v), trials=0)),
        ("oblique_slab_mip", "oblique slab MIP 20 mm",
         lambda v: rc.slab_case(v, plane(v), trials=0))]
    if with_vr:
        cases.append(("volume_rendering", "volume rendering (ct-bone, shaded)",
                      lambda v: rc.volume_rendering_case(v, (size, size), threads=threads)))
    return cases


class Runner:
    """Runs cases at the points of an axis; rows, guards and ratios go to the report."""

    def __init__(self, report: Report, frames: int) -> None:
        self.report, self.frames = report, frames

    def point(self, axis: str, x: int, vol: rc.BenchVolume, cases: list[Case], *,
              real: bool = False) -> None:
        for key, label, build in cases:
            common.step(f"{axis} {x}: {label}{' (real study)' if real else ''}")
            name = f"{vol.label} · {label}"
            try:
                setup = build(vol)
                guards = [replace(c, name=f"{axis} {x} · {name} · {c.name}")
                          for c in setup.checks]
                samples = time_interleaved(setup.tools, self.frames, cold=setup.cold_tools)
            except Exception:  # a point that cannot run is a failed guard, not a lost report
                last = traceback.format_exc(limit=3).strip().splitlines()[-1]
                self.report.guards.append(Guard(name=f"{axis} {x} · {name} · ran ({last})",
                                                value=float("nan"), limit=0.0))
                print(traceback.format_exc(limit=4), flush=True)
                continue
            self.report.guards.extend(guards)
            ok = all(g.passed for g in guards)
            for tool, ms in samples.items():
                self.report.add(Row(name=f"{axis} {x} · {name} · {tool}", unit="ms", samples=ms,
                                    case=f"{axis}:{key}", tool=tool,
                                    note="" if ok else "guard failed",
                                    extra={"axis": axis, "x": x, "real": real,
                                           "volume": vol.label, "case_label": label}))
            medians = {t: median(s) for t, s in samples.items()}
            vtk_name = BASELINES[key][0]
            for ours in (rc.VOXCAST, rc.VOXCAST_GPU):
                if ours in medians and rc.VTK in medians:
                    self.report.ratios.append(Ratio(
                        name=f"{axis} {x} · {name}{' (GPU)' if ours == rc.VOXCAST_GPU else ''}",
                        baseline=vtk_name, voxcast_value=medians[ours],
                        baseline_value=medians[rc.VTK], unit="ms", guard_passed=ok))
            print(f"  {axis} {x} {label}: {'guard ok' if ok else 'GUARD FAILED'}; "
                  + ", ".join(f"{t} {fmt(v)} ms" for t, v in medians.items()), flush=True)


def real_ct(folder: Path, which: str) -> tuple[str, np.ndarray, VolumeGeometry] | None:
    """The ``which`` ("untilted" / "tilted") series of a folder of CTs, assembled as ingest
    does; None when it is not there."""
    by_series: dict[str, list[Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            try:
                ds = pydicom.dcmread(p)
            except Exception:
                continue
            if "PixelData" in ds:
                by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    for datasets in by_series.values():
        tilt = abs(float(getattr(datasets[0], "GantryDetectorTilt", 0) or 0))
        if (tilt > 0.5) != (which == "tilted") or len(datasets) < 8:
            continue
        volume = assemble_series(datasets)
        data = np.ascontiguousarray(volume.data).astype(np.int16)
        return (f"{folder.name} ({which}) {'x'.join(map(str, data.shape))}", data,
                volume.geometry)
    return None


def run_depth(runner: Runner, plan: dict[str, Any], threads: int, data_dir: Path,
              quick: bool) -> None:
    ct, geometry = load_acrin_ct(data_dir)
    cases = depth_cases(threads)
    for depth in plan["depths"]:
        data, geo = stretched(ct, geometry, depth)
        vol = rc.BenchVolume(key=f"depth{depth}", label=f"synthetic {depth}x512x512", data=data,
                             geometry=geo)
        runner.point("depth", depth, vol, cases)
        del vol, data
    runner.point("depth", ct.shape[0], rc.BenchVolume(
        key="acrin", label=f"ACRIN CT {'x'.join(map(str, ct.shape))}", data=ct,
        geometry=geometry), cases, real=True)
    if quick:
        return
    for folder, which in REAL_CTS:
        found = real_ct(data_dir / folder, which)
        if found is None:
            runner.report.notes.append(f"{folder} ({which}) not found: not measured")
            continue
        label, data, geo = found
        runner.point("depth", data.shape[0], rc.BenchVolume(key=label, label=label, data=data,
                                                            geometry=geo), cases, real=True)


def run_size(runner: Runner, plan: dict[str, Any], threads: int, data_dir: Path) -> None:
    ct, geometry = load_acrin_ct(data_dir)
    vol = rc.BenchVolume(key="acrin", label="ACRIN CT 135x512x512", data=ct, geometry=geometry)
    for size in plan["sizes"]:
        runner.point("size", size, vol, size_cases(size, threads, plan["size_vr"]))


async def _sessions(server: st.Server, counts: tuple[int, ...], seconds: float,
                    reference: np.ndarray, report: Report) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Bearer {server.token()}"}
    out = []
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{server.url}/api/studies") as studies:
            study = next(x["study_uid"] for x in await studies.json() if "CT" in x["modalities"])
        for n in counts:
            common.step(f"{n} concurrent sessions")
            r = await st.concurrent(http, server.url, study, n, seconds)
            diffs = [st.picture_diff(p, reference) for p in r["first_pictures"]]
            report.guards.append(Guard(
                name=f"sessions {n}: every session's first lossless picture, max abs(VoxCast - "
                     "pydicom + numpy window)", value=float(np.max(diffs)), limit=1.0,
                unit="grey levels"))
            report.guards.append(Guard(name=f"sessions {n}: inputs without an answer",
                                       value=len(r["problems"]), limit=0.0))
            out.append({"sessions": n, **r})
            print(f"  {n} sessions: min {fmt(min(r['fps']))} frames/s, total "
                  f"{fmt(sum(r['fps']))}", flush=True)
    return out


def run_sessions(report: Report, plan: dict[str, Any], data_dir: Path, work: Path) -> None:
    source = data_dir / st.STUDY
    common.step("import the CT, start voxcast serve")
    report.facts["sessions: data"] = st.ensure_imported(work, source, True)
    _, reference = st.naive_first_image(source / "CT")
    server = st.Server(work)
    try:
        report.facts["sessions: server start → kernels warm s"] = round(server.start(), 2)
        runs = asyncio.run(_sessions(server, plan["sessions"], plan["sessions_s"], reference,
                                     report))
    finally:
        server.stop()
    rows = []
    for r in runs:
        n, fps = r["sessions"], r["fps"]
        report.add(Row(name=f"sessions {n} · frames/s per session", unit="frames/s", samples=fps,
                       case="sessions:fps", tool="VoxCast",
                       extra={"axis": "sessions", "x": n, "total_fps": sum(fps),
                              "rtt_ms": r["rtt_ms"], "lossless_frames": r["lossless_frames"]}))
        report.add(Row(name=f"sessions {n} · input → frame", unit="ms", samples=r["rtt_ms"],
                       case="sessions:latency", tool="VoxCast",
                       extra={"axis": "sessions", "x": n}))
        rows.append([n, fmt(min(fps)), fmt(median(fps)), fmt(sum(fps)), fmt(median(r["rtt_ms"])),
                     fmt(percentile(r["rtt_ms"], 95))])
    report.sections.append(("Concurrent sessions (closed-loop paging, 512² viewport)", table(
        rows, ["sessions", "min frames/s", "median frames/s", "total frames/s",
               "p50 input → frame ms", "p95 ms"])))


def summary(report: Report) -> str:
    """One table per axis: VoxCast and VTK medians at every point, and their ratio."""
    parts = []
    for ratio_axis in ("depth", "size"):
        rows = [[r.name.split(" · ")[0], r.name.split(" · ", 1)[1], fmt(r.voxcast_value),
                 fmt(r.baseline_value), r.baseline, f"{r.speedup:.2f}x",
                 "passed" if r.guard_passed else "**FAILED**"]
                for r in report.ratios if r.name.startswith(ratio_axis)]
        if rows:
            parts += [f"## {'Volume depth' if ratio_axis == 'depth' else 'Output size'}", "",
                      table(rows, ["point", "case", "VoxCast ms", "baseline ms", "baseline",
                                   "baseline / VoxCast", "guard"]), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: depths 128 and 512, "
                        "sizes 256² and 1024² (planes only), 1 / 4 / 16 sessions, 2 frames")
    parser.add_argument("--part", default="depth,size,sessions",
                        help="comma-separated parts (default: all)")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="VoxCast data directory for the sessions (default "
                             "<out>/voxcast-data)")
    parser.add_argument("--threads", type=int, default=None, help="threads for every tool")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per tool and point (default 5, quick 2)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    if unknown := set(parts) - {"depth", "size", "sessions"}:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    plan, shared = dict(QUICK if args.quick else FULL), common.shared_data_dir()
    if args.frames is not None:
        if args.frames < 1:
            parser.error("--frames must be >= 1")
        plan["frames"] = args.frames
    if not (shared / "petct-acrin042" / "CT").is_dir():
        parser.error(f"the ACRIN CT is not under {shared} (set VOXCAST_TEST_DATA)")
    threads = args.threads or int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(threads)
    from benchmarks.render_refs import configure_threads

    report = Report(name="scaling", title="VoxCast scaling: cost against depth, output size and "
                    "concurrent sessions", samples_in_markdown=False)
    report.facts.update({"mode": "quick" if args.quick else "full",
                         "frames per tool and point": plan["frames"],
                         "load average at start": common.load_average(),
                         **configure_threads(threads)})
    steps = {"depth": (len(plan["depths"]) + 1 + (0 if args.quick else len(REAL_CTS))) * 4,
             "size": len(plan["sizes"]) * (3 if plan["size_vr"] else 2),
             "sessions": 1 + len(plan["sessions"])}
    common.plan_steps(sum(steps[p] for p in parts))
    t0, runner = time.perf_counter(), Runner(report, plan["frames"])
    if "depth" in parts:
        run_depth(runner, plan, threads, shared, args.quick)
    if "size" in parts:
        run_size(runner, plan, threads, shared)
    if "sessions" in parts:
        run_sessions(report, plan, shared, (args.data_dir or args.out / "voxcast-data").resolve())
    report.summary = summary(report)
    report.facts.update({"load average at end": common.load_average(),
                         "total run s": round(time.perf_counter() - t0, 1)})
    report.notes += [
        "Synthetic depths: the ACRIN CT resampled along z (linear) to N slices over its own "
        "438 mm, so slices get thinner as N grows (3.4 mm at 128, 0.43 mm at 1024); the ray "
        "step of the 3D views and the slab's sample count follow the smallest spacing, so "
        "their work grows with N while a plane's stays about the same.",
        "An oblique MPR samples the same 512² points at every depth: its cost follows memory "
        "locality (how far apart in memory the voxels of one row of the plane lie, which the "
        "slice spacing changes), not the size of the volume, so it need not grow with depth; "
        "VTK and SimpleITK show the same uneven shape.",
        "The real study at its own depth is marked 'real': the ACRIN CT (135 x 512²). The "
        "shared data's other 512² CT, the Philips phantom, is not measured: its tilted series "
        "cannot go through VTK (non-orthogonal), and its untilted 5 mm series differs from "
        "VTK's rotated 3D MIP along the top and bottom faces (VTK's box ends at the outer slice "
        "centres, VoxCast's half a slice further out).",
        "Sessions share the machine's cores with each other and with the benchmark client.",
    ]
    return report.finish(args.out, f"{report.summary}\n({report.facts['total run s']} s)")


if __name__ == "__main__":
    raise SystemExit(main())
