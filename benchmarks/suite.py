"""``voxcast bench``: the benchmark suite in one command, VoxCast beside the tools a performance
team would otherwise use, every ratio measured in the same run.

    voxcast bench [--quick] [--suite ingest,render,streaming,scaling] [--out DIR]

Runs each suite's benchmark (``python -m benchmarks.<suite>``) in its own process, with a
progress bar (the benchmark's output goes to ``<out>/logs/<suite>.log``), and writes into
``--out``:

- ``results.json``: the machine (CPU model, cores, memory, GPUs and driver, library
  versions), and per suite its exit status, correctness guards, ratios against the baselines
  and every figure (unit, median, p95, min, max, sample count, the samples);
- ``report.md``: the headline ratios, one table per suite, the PNG plots (``plots/``) and the
  guards that failed;
- ``<suite>/<suite>.json`` and ``.md``: each suite's own full report.

Every benchmarked path is first checked against its reference (the suite's guard). A guard
that fails, or a suite that does not finish, makes the command exit with status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import STEP_MARK, fmt, machine, machine_line, table

SUITES = ("ingest", "render", "streaming", "scaling")
ABOUT = {
    "ingest": "C-STORE of the ACRIN CT by dcmtk storescu to voxcast serve and to dcmtk "
              "storescp (the ceiling); the volume build and its Zarr reads",
    "render": "MPR, slab MIP, CPR, 3D MIP, volume rendering and ROI statistics on the ACRIN CT "
              "(full runs: also a 600-slice synthetic CT), beside VTK and SimpleITK",
    "streaming": "render sessions of a real voxcast serve seen by a WebSocket / WebRTC client: "
                 "first image beside the naive pydicom path, input → frame latency, sessions",
    "scaling": "cost against volume depth (synthetic 128 → 1024 slices and real studies), "
               "output size (256² → 1024²) and concurrent sessions (1 → 16), beside VTK",
}
# The ratios quoted at the top of the report (name prefix, baseline prefix) per suite; the
# scaling suite's largest points are added by :func:`headline`.
HEADLINE = {
    "ingest": [("C-STORE", "dcmtk storescp")],
    "render": [("oblique MPR", "vtkImageReslice"), ("oblique MPR", "SimpleITK"),
               ("oblique slab MIP", "vtkImageSlabReslice"), ("CPR", "vtkImageReslice"),
               ("3D MIP", "vtkFixedPoint"), ("volume rendering", "vtkFixedPoint")],
    "streaming": [("first image", "naive")],
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteRun:
    name: str
    exit_code: int
    seconds: float
    results: dict[str, Any] | None

    @property
    def status(self) -> str:
        if self.results is None:
            return "did not finish"
        if not self.results.get("guard_passed", False):
            return "guard failed"
        return "passed" if self.exit_code == 0 else f"failed (exit {self.exit_code})"


def missing_tools(suites: list[str]) -> list[str]:
    """What a suite needs that this machine lacks, each with how to get it."""
    missing = []
    try:
        import vtk  # noqa: F401
    except ImportError:
        if {"render", "scaling"} & set(suites):
            missing.append("VTK (the render baselines): pip install 'voxcast[bench]'")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        missing.append("matplotlib (the plots): pip install 'voxcast[bench]'")
    if "ingest" in suites:
        missing += [f"dcmtk's {t} (the ingest peer and ceiling): apt-get install dcmtk"
                    for t in ("storescu", "storescp", "echoscu") if shutil.which(t) is None]
    if not (common.shared_data_dir() / "petct-acrin042" / "CT").is_dir():
        missing.append(f"the ACRIN PET-CT study under {common.shared_data_dir()} "
                       "(set VOXCAST_TEST_DATA to the folder of the shared DICOM data)")
    return missing


def run_suite(name: str, args: argparse.Namespace) -> SuiteRun:
    """One suite in its own process; its "» " lines drive a progress bar."""
    from tqdm import tqdm

    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", f"benchmarks.{name}", "--out", str(out)]
    cmd += ["--quick"] if args.quick else []
    if args.frames and name in ("render", "scaling"):
        cmd += ["--frames", str(args.frames)]
    if name in ("streaming", "scaling"):
        cmd += ["--data-dir", str(args.out / "voxcast-data")]
    log_path = args.out / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    with log_path.open("w") as log, tqdm(total=None, desc=f"{name:<9}", unit="step",
                                         leave=True, dynamic_ncols=True,
                                         disable=args.no_progress) as bar:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, cwd=common.REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        started = 0  # steps begun; the bar counts those finished
        for line in proc.stdout:
            log.write(line)
            if not line.startswith(STEP_MARK):
                continue
            label = line[len(STEP_MARK):].strip()
            if label.startswith("steps ") and label[6:].isdigit():
                bar.reset(total=int(label[6:]))
                continue
            if started:
                bar.update(1)
            started += 1
            bar.set_postfix_str(label[:60])
            if args.no_progress:
                print(f"  {name} [{started}/{bar.total or '?'}] {label}", flush=True)
        code = proc.wait()
        if started:
            bar.update(1)
    seconds = time.perf_counter() - t0
    path = out / f"{name}.json"
    results = json.loads(path.read_text()) if path.exists() else None
    if code != 0:
        tail = log_path.read_text().splitlines()[-12:]
        print(f"{name}: exit {code}; the end of {log_path}:\n  " + "\n  ".join(tail),
              file=sys.stderr, flush=True)
    return SuiteRun(name=name, exit_code=code, seconds=seconds, results=results)


def headline(runs: list[SuiteRun]) -> list[dict[str, Any]]:
    """The ratios the report opens with: per suite those of :data:`HEADLINE` (the first
    volume's, for the render suite) and, for scaling, the largest depth and size."""
    out: list[dict[str, Any]] = []
    for run in runs:
        ratios = (run.results or {}).get("ratios", [])
        if run.name == "scaling":
            for axis in ("depth", "size"):
                points = [r for r in ratios if r["name"].startswith(axis + " ")]
                if points:
                    top = max(int(r["name"].split(" ")[1]) for r in points)
                    out += [r for r in points if r["name"].startswith(f"{axis} {top} ")]
            continue
        first_volume = ratios[0]["name"].split(" · ")[0] if ratios else ""
        for name, baseline in HEADLINE.get(run.name, []):
            for r in ratios:
                label = r["name"].split(" · ")[-1] if " · " in r["name"] else r["name"]
                if run.name == "render" and not r["name"].startswith(first_volume):
                    continue
                if label.startswith(name) and r["baseline"].startswith(baseline):
                    out.append({**r, "suite": run.name})
    return out


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("name", "unit", "median", "p95", "min", "max", "count", "samples", "case", "tool",
            "note", "extra")
    return [{k: r.get(k) for k in keep} for r in results.get("rows", [])]


def write_results(runs: list[SuiteRun], args: argparse.Namespace, started: str,
                  info: dict[str, Any]) -> dict[str, Any]:
    suites = {}
    for run in runs:
        res = run.results or {}
        suites[run.name] = {"status": run.status, "exit_code": run.exit_code,
                            "seconds": round(run.seconds, 1), "about": ABOUT[run.name],
                            "report": f"{run.name}/{run.name}.md", "log": f"logs/{run.name}.log",
                            "guard_passed": bool(res.get("guard_passed")) and run.exit_code == 0,
                            "guards": res.get("guards", []), "ratios": res.get("ratios", []),
                            "facts": res.get("facts", {}), "notes": res.get("notes", []),
                            "figures": figures(res)}
    results = {"command": "voxcast bench " + " ".join(args.argv), "mode":
               "quick" if args.quick else "full", "started": started,
               "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "machine": info, "passed": all(s["guard_passed"] for s in suites.values()),
               "headline": headline(runs), "suites": suites}
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def ratio_table(ratios: list[dict[str, Any]]) -> str:
    """The markdown table of ratios as ``results.json`` holds them."""
    fields = ("name", "baseline", "voxcast_value", "baseline_value", "unit", "higher_is_better",
              "guard_passed")
    return common.ratio_table(common.Ratio(**{k: r[k] for k in fields}) for r in ratios)


def _figure_rows(suite: dict[str, Any], limit: int = 60) -> list[list[str]]:
    return [[r["name"], fmt(r["median"]), fmt(r["p95"]), fmt(r["min"]), fmt(r["max"]),
             r["unit"], str(r["count"])] for r in suite["figures"][:limit]]


def report_markdown(results: dict[str, Any], plots: dict[str, Path], out: Path) -> str:
    info, suites = results["machine"], results["suites"]
    libs = ", ".join(f"{k} {v}" for k, v in info.get("libraries", {}).items() if v)
    lines = ["# VoxCast benchmark report", "",
             f"`{results['command']}` ({results['mode']} run), {results['started']} → "
             f"{results['finished']}.", "",
             f"**Machine:** {machine_line(info)}; {info.get('platform')}.  ",
             f"**Libraries:** {libs}; {info.get('dcmtk') or 'dcmtk not installed'}.", "",
             table([[n, s["status"] if s["status"] == "passed" else f"**{s['status']}**",
                     f"{sum(g['passed'] for g in s['guards'])} / {len(s['guards'])}",
                     fmt(s["seconds"]), s["about"]] for n, s in suites.items()],
                   ["suite", "status", "guards passed", "seconds", "what it measures"]), "",
             "## Headline: VoxCast against the baselines", "",
             "Every ratio below comes from this run: each baseline ran on the same data, the "
             "same grid and the same machine, interleaved with VoxCast where it is a library "
             "call. Advantage > 1: VoxCast is faster (for ingest: the share of dcmtk's "
             "ceiling).", "", ratio_table(results["headline"]), ""]
    if "ratios" in plots:
        lines += [f"![ratios]({plots['ratios'].relative_to(out)})", ""]
    suite_plots = {"ingest": ["ingest"], "render": ["render"], "streaming": ["streaming"],
                   "scaling": ["scaling_depth", "scaling_size", "scaling_sessions"]}
    for name, s in suites.items():
        lines += [f"## {name}", "", s["about"] + f". Full report: [{s['report']}]({s['report']})"
                  f", log: `{s['log']}`.", ""]
        if s["ratios"]:
            lines += [f"### {name}: VoxCast against the baselines", "", ratio_table(s["ratios"]), ""]
        lines += [f"![{p}]({plots[p].relative_to(out)})" for p in suite_plots[name]
                  if p in plots]
        lines += ["", f"### {name}: figures", "",
                  table(_figure_rows(s), ["figure", "median", "p95", "min", "max", "unit", "n"]),
                  ""]
        if len(s["figures"]) > 60:
            lines += [f"({len(s['figures']) - 60} more in `results.json` and {s['report']}.)", ""]
        failed = [g for g in s["guards"] if not g["passed"]]
        if failed:
            lines += [f"### {name}: failed guards", "",
                      *[f"- {g['name']}: {g['value']:.4g} (limit {g['limit']:g})" for g in failed],
                      ""]
        lines += [f"- {n}" for n in s["notes"]] + ([""] if s["notes"] else [])
    lines += ["## How to read and reproduce", "",
              "Times are wall clock per frame on this machine. Compare ratios within one run: "
              "between two 2-core virtual machines of the same kind they moved by a median "
              "factor of 1.25. `benchmarks/results/README.md` explains every figure. Reproduce with the command above from a clone "
              "(`make bench` installs VTK, matplotlib and dcmtk first)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="voxcast bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (under 2 minutes): fewer frames and points, every "
                             "baseline still measured, every guard still checked")
    parser.add_argument("--suite", default=",".join(SUITES),
                        help=f"comma-separated suites (default: {','.join(SUITES)})")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="output folder (default ./bench-results)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per tool in the render and scaling suites (default: "
                             "theirs, 30 and 5; quick 3 and 2)")
    parser.add_argument("--no-progress", action="store_true",
                        help="print one line per step instead of progress bars (the default "
                             "when the output is not a terminal)")
    args = parser.parse_args(argv)
    args.argv = argv
    args.no_progress = args.no_progress or not sys.stderr.isatty()  # logs get one line a step
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    if args.frames is not None and args.frames < 1:
        parser.error("--frames must be >= 1")
    if unknown := [s for s in suites if s not in SUITES]:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    if missing := missing_tools(suites):
        parser.error("missing for the benchmarks:\n  " + "\n  ".join(missing))
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    print(f"voxcast bench ({'quick' if args.quick else 'full'}): {', '.join(suites)} on "
          f"{machine_line(info)}", flush=True)
    runs = [run_suite(name, args) for name in suites]
    results = write_results(runs, args, started, info)
    from benchmarks import plots

    suite_data = {r.name: results["suites"][r.name] for r in runs if r.results is not None}
    made = plots.all_plots(suite_data, results["headline"], args.out / "plots")
    (args.out / "report.md").write_text(report_markdown(results, made, args.out))
    print(table([[r.name, r.status, f"{r.seconds:.0f} s"] for r in runs],
                ["suite", "status", "time"]))
    print(ratio_table(results["headline"]))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report.md'}")
    if not results["passed"]:
        print("voxcast bench: FAILED: " + "; ".join(f"{r.name} {r.status}" for r in runs
                                                    if r.status != "passed"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
