"""Helpers shared by the benchmark scripts: data location, timing, machine facts, output.

Every benchmark writes ``<name>.json`` (all numbers, raw samples included) and ``<name>.md``
(a markdown table for people) into its output folder, ``benchmarks/out/`` by default.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "out"


def shared_data_dir() -> Path:
    """The shared real DICOM data: ``$VOXCAST_TEST_DATA`` or ``../shared/data`` beside the repo."""
    return Path(os.environ.get("VOXCAST_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples)) if samples else float("nan")


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between order statistics
    (numpy's default rule); NaN for no samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    pos = q / 100.0 * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo]))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def drop_page_cache() -> bool:
    """Flush dirty pages and drop the page cache (needs root); False when not allowed."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    except OSError:
        return False
    return True


# The libraries whose versions a result depends on (distribution names).
LIBRARIES = ("numpy", "numba", "cupy-cuda12x", "vtk", "SimpleITK", "pydicom", "pynetdicom",
             "pylibjpeg", "zarr", "numcodecs", "aiohttp", "aiortc", "av", "simplejpeg",
             "Pillow", "SQLAlchemy", "matplotlib")


def _output(cmd: list[str]) -> list[str]:
    """The non-empty lines ``cmd`` prints; [] when it is missing or fails."""
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in run.stdout.splitlines() if line.strip()] if run.returncode == 0 \
        else []


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs as ``nvidia-smi`` reports them (name, driver, memory); [] for none."""
    rows = _output(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                    "--format=csv,noheader"])
    return [dict(zip(("name", "driver", "memory"), (c.strip() for c in row.split(",")),
                     strict=False)) for row in rows]


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model and cores, memory, GPUs and their driver,
    Python, the operating system and the versions of the libraries that matter."""
    from importlib import metadata

    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(),
                            "cpus usable": len(os.sched_getaffinity(0))}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory GiB"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["gpus"] = gpus()
    info["dcmtk"] = next(iter(_output(["storescu", "--version"])), "").strip("$ ") or None
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    info["libraries"] = libraries
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line for a report: CPU, cores, memory, GPU and driver, Python."""
    info = info or machine()
    gpu = "; ".join(f"{g.get('name')} (driver {g.get('driver')}, {g.get('memory')})"
                    for g in info.get("gpus") or []) or "no GPU"
    return (f"{info.get('cpu', 'unknown CPU')}, {info.get('cpus usable', info.get('cpus'))} "
            f"cores, {info.get('memory GiB', '?')} GiB, {gpu}; Python {info.get('python')}")


# -- progress ----------------------------------------------------------------------------------
# A benchmark prints "» steps N" once and "» label" before each step; ``voxcast bench`` reads
# these lines from the benchmark's output to draw its progress bar.

STEP_MARK = "» "


def plan_steps(n: int) -> None:
    print(f"{STEP_MARK}steps {n}", flush=True)


def step(label: str) -> None:
    print(f"{STEP_MARK}{label}", flush=True)


# -- guards and ratios -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Guard:
    """One correctness check made before timing: ``value`` against ``limit`` (``<=``, or
    ``>=`` for ``at_least``; NaN or infinite fails). A benchmark whose guard fails exits with
    status 1."""

    name: str
    value: float
    limit: float
    at_least: bool = False
    unit: str = ""

    @property
    def passed(self) -> bool:
        if not math.isfinite(self.value):
            return False
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ratio:
    """VoxCast against a baseline tool on the same work, measured in the same run.

    ``speedup`` > 1 means VoxCast is better: baseline / VoxCast for times, VoxCast / baseline
    for rates (``higher_is_better``)."""

    name: str
    baseline: str
    voxcast_value: float
    baseline_value: float
    unit: str
    higher_is_better: bool = False
    guard_passed: bool = True

    @property
    def speedup(self) -> float:
        num, den = ((self.voxcast_value, self.baseline_value) if self.higher_is_better
                    else (self.baseline_value, self.voxcast_value))
        return num / den if den and den == den and num == num else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


@dataclass(slots=True, kw_only=True)
class Row:
    """One line of a results table: a named measurement with its samples.

    ``case`` and ``tool`` (optional) name what was measured and with what, for benchmarks
    that run several tools on the same case side by side.
    """

    name: str
    unit: str
    samples: list[float]
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    case: str = ""
    tool: str = ""

    @property
    def value(self) -> float:
        return median(self.samples)

    def stats(self) -> dict[str, float]:
        """median, p95, min and max of the samples (NaN for none)."""
        return {"median": self.value, "p95": percentile(self.samples, 95.0),
                "min": min(self.samples, default=float("nan")),
                "max": max(self.samples, default=float("nan"))}


@dataclass(slots=True, kw_only=True)
class Report:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Extra markdown sections (title, body) printed after the main table.
    sections: list[tuple[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # Markdown printed between the title and the table of rows (e.g. a side-by-side summary).
    summary: str = ""
    # False: the table of rows shows median, p95, min, max and the count instead of every sample.
    samples_in_markdown: bool = True
    guards: list[Guard] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "machine": machine(),
                "facts": self.facts, "notes": self.notes, "details": self.details,
                "guards": [g.to_json() for g in self.guards],
                "guard_passed": self.guard_passed,
                "ratios": [r.to_json() for r in self.ratios],
                "rows": [{**asdict(r), **r.stats(), "count": len(r.samples)} for r in self.rows]}

    @property
    def guard_passed(self) -> bool:
        return all(g.passed for g in self.guards)

    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        if self.summary:
            lines += [self.summary.rstrip("\n"), ""]
        if self.samples_in_markdown:
            lines += ["| measurement | median | unit | samples | note |", "|---|---:|---|---|---|"]
        else:
            lines += ["| measurement | median | p95 | min | max | unit | samples | note |",
                      "|---|---:|---:|---:|---:|---|---:|---|"]
        for r in self.rows:
            if self.samples_in_markdown:
                samples = ", ".join(_fmt(s) for s in r.samples)
                lines.append(f"| {r.name} | {_fmt(r.value)} | {r.unit} | {samples} | {r.note} |")
            else:
                st = r.stats()
                lines.append(f"| {r.name} | {_fmt(st['median'])} | {_fmt(st['p95'])} | "
                             f"{_fmt(st['min'])} | {_fmt(st['max'])} | {r.unit} | "
                             f"{len(r.samples)} | {r.note} |")
        if self.facts:
            lines += ["", "| fact | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v) if isinstance(v, float) else v} |"
                      for k, v in self.facts.items()]
        if self.ratios:
            lines += ["", "## VoxCast against the baselines (same run)", "", ratio_table(self.ratios)]
        if self.guards:
            lines += ["", "## Correctness guards (before timing)", "", guard_table(self.guards)]
        for title, body in self.sections:
            lines += ["", f"## {title}", "", body]
        if self.notes:
            lines += ["", "## Notes", "", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / f"{self.name}.json", out_dir / f"{self.name}.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        md_path.write_text(self.to_markdown())
        return json_path, md_path

    def finish(self, out_dir: Path, text: str) -> int:
        """Write the report, print ``text`` and where it went; the exit status: 1 (the failed
        guards on stderr) when a guard failed, else 0."""
        json_path, md_path = self.write(out_dir)
        print(f"{text}\nwrote {json_path} and {md_path}", flush=True)
        if not self.guard_passed:
            print("guard failed: " + "; ".join(g.name for g in self.guards if not g.passed),
                  file=sys.stderr)
            return 1
        return 0


def fmt(value: float) -> str:
    """A number for a markdown table: 3 significant digits below 1, 2 decimals below 100."""
    return _fmt(value)


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    """A small markdown table (for breakdowns printed next to the main table)."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def ratio_table(ratios: Iterable[Ratio]) -> str:
    rows = [[r.name, r.baseline, f"{fmt(r.voxcast_value)} {r.unit}",
             f"{fmt(r.baseline_value)} {r.unit}", f"**{r.speedup:.2f}x**" if r.speedup >= 1
             else f"{r.speedup:.2f}x", "passed" if r.guard_passed else "**FAILED**"]
            for r in ratios]
    return table(rows, ["figure", "baseline", "VoxCast", "baseline", "VoxCast advantage",
                        "guard"])


def guard_table(guards: Iterable[Guard]) -> str:
    rows = [[g.name, f"{g.value:.4g} {g.unit}".strip(),
             f"{'≥' if g.at_least else '≤'} {g.limit:g} {g.unit}".strip(),
             "yes" if g.passed else "**NO**"] for g in guards]
    return table(rows, ["check", "value", "limit", "passed"])
