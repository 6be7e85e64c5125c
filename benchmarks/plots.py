"""The PNG plots of ``voxcast bench`` (matplotlib, no display), drawn from ``results.json`` alone.

Each function takes the results of one suite (its ``<suite>.json``) and writes one PNG,
returning its path, or None when the suite has nothing to plot.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the back end is chosen first)
from matplotlib.ticker import LogFormatter  # noqa: E402

VOXCAST_COLOUR, GPU_COLOUR = "#1f77b4", "#17becf"
TOOL_COLOURS = {"VoxCast": VOXCAST_COLOUR, "VoxCast GPU": GPU_COLOUR, "VTK": "#d62728",
                "SimpleITK": "#2ca02c", "VTK exact": "#ff9896"}


def _log(axis: Any) -> None:
    """A log axis labelled with plain numbers (10, 100; minor ticks only on short spans)."""
    axis.set_major_formatter(LogFormatter())
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def ratios(headline: list[dict[str, Any]], path: Path) -> Path | None:
    """Horizontal bars: how many times faster (or, for ingest, what share of the ceiling)
    VoxCast is than each baseline, on a log axis with 1x marked."""
    rows = [r for r in headline if r.get("speedup") == r.get("speedup") and r.get("speedup")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.4))
    labels = [f"{r['name']}\nvs {r['baseline']}" for r in rows]
    values = [r["speedup"] for r in rows]
    colours = [VOXCAST_COLOUR if v >= 1 else "#999999" for v in values]
    ax.barh(range(len(rows)), values, color=colours)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlim(min(0.5, min(values) / 1.5), max(values) * 2.0)  # room for the value labels
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("VoxCast advantage: baseline time / VoxCast time (ingest: share of the ceiling)")
    ax.set_title("VoxCast against the baselines, measured in the same run")
    return _save(fig, path)


def render_cases(suite: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars of the render suite's medians per case and tool (log ms), first volume."""
    rows = [r for r in suite.get("figures", []) if r.get("unit") == "ms" and r.get("tool")]
    if not rows:
        return None
    volumes = list(dict.fromkeys(r["extra"].get("volume", "") for r in rows))
    fig, axes = plt.subplots(len(volumes), 1, figsize=(10, 3.6 * len(volumes)), squeeze=False)
    for ax, volume in zip(axes[:, 0], volumes, strict=True):
        mine = [r for r in rows if r["extra"].get("volume", "") == volume]
        cases = list(dict.fromkeys(r["extra"].get("case_label", r["case"]) for r in mine))
        tools = [t for t in TOOL_COLOURS if any(r["tool"] == t for r in mine)]
        width = 0.8 / max(1, len(tools))
        for k, tool in enumerate(tools):
            xs, ys = [], []
            for i, case in enumerate(cases):
                hit = [r for r in mine if r["tool"] == tool
                       and r["extra"].get("case_label", r["case"]) == case]
                if hit:
                    xs.append(i + (k - (len(tools) - 1) / 2) * width)
                    ys.append(hit[0]["median"])
            ax.bar(xs, ys, width=width, label=tool, color=TOOL_COLOURS[tool])
        ax.set_xticks(range(len(cases)), [textwrap.fill(c, 16) for c in cases], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("ms per frame (median)")
        ax.set_title(volume, fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, path)


def ingest(suite: dict[str, Any], path: Path) -> Path | None:
    rows = [r for r in suite.get("figures", []) if r.get("unit") == "instances/s"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    ax.barh(range(len(rows)), [r["median"] for r in rows],
            color=[VOXCAST_COLOUR if r["name"].startswith("VoxCast") else "#999999"
                   for r in rows])
    ax.set_yticks(range(len(rows)), [r["name"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        ax.text(r["median"], i, f" {r['median']:.0f}", va="center", fontsize=7)
    ax.set_xlabel("instances/s (C-STORE of the 135-instance CT, one association)")
    ax.set_title("Ingest: VoxCast (fsync + catalog commit an instance) beside dcmtk storescp",
                 fontsize=9)
    return _save(fig, path)


def streaming(suite: dict[str, Any], path: Path) -> Path | None:
    rows = {r["name"]: r for r in suite.get("figures", [])}
    first = [(n, r) for n, r in rows.items() if n.startswith(("first image", "naive path"))]
    latency = [(n.removeprefix("input → frame, "), r) for n, r in rows.items()
               if n.startswith("input → frame")]
    if not first:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.0))
    a.barh(range(len(first)), [r["median"] for _, r in first],
           color=["#999999" if n.startswith("naive") else VOXCAST_COLOUR for n, _ in first])
    a.set_yticks(range(len(first)), [textwrap.fill(n, 26) for n, _ in first], fontsize=7)
    a.invert_yaxis()
    a.set_xscale("log")
    _log(a.xaxis)
    for i, (_, r) in enumerate(first):
        a.text(r["median"], i, f" {r['median']:.0f} ms", va="center", fontsize=7)
    a.set_xlabel("ms to the first decoded image (median)")
    a.set_title("First image: VoxCast session vs naive pydicom", fontsize=9)
    if latency:
        xs = range(len(latency))
        b.bar([x - 0.2 for x in xs], [r["median"] for _, r in latency], 0.4, label="p50",
              color=VOXCAST_COLOUR)
        b.bar([x + 0.2 for x in xs], [r["p95"] for _, r in latency], 0.4, label="p95",
              color="#aec7e8")
        b.set_xticks(list(xs), [textwrap.fill(n, 12) for n, _ in latency], fontsize=6)
        b.set_ylabel("input → decoded frame, ms")
        b.set_title("Input → frame latency (WebSocket, loopback)", fontsize=9)
        b.legend(fontsize=7)
    return _save(fig, path)


def _by_axis(suite: dict[str, Any], axis: str) -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in suite.get("figures", []):
        if r.get("extra", {}).get("axis") == axis and r.get("unit") == "ms":
            cases[r["extra"]["case_label"]].append(r)
    return cases


def scaling_axis(suite: dict[str, Any], axis: str, path: Path) -> Path | None:
    """One panel per case: median ms against depth (slices) or output size (px a side);
    VoxCast solid, baselines dashed; real studies as open markers (depth)."""
    cases = _by_axis(suite, axis)
    if not cases:
        return None
    fig, axes = plt.subplots(1, len(cases), figsize=(3.6 * len(cases), 3.6), squeeze=False)
    for ax, (case, rows) in zip(axes[0], cases.items(), strict=True):
        for tool in (t for t in TOOL_COLOURS if any(r["tool"] == t for r in rows)):
            synthetic = sorted((r["extra"]["x"], r["median"]) for r in rows
                               if r["tool"] == tool and not r["extra"].get("real"))
            real = [(r["extra"]["x"], r["median"]) for r in rows
                    if r["tool"] == tool and r["extra"].get("real")]
            style = "-" if tool.startswith("VoxCast") else "--"
            if synthetic:
                ax.plot(*zip(*synthetic, strict=True), style, marker="o", markersize=3,
                        color=TOOL_COLOURS[tool], label=f"{tool}")
            if real:
                ax.plot(*zip(*real, strict=True), linestyle="none", marker="D", markersize=6,
                        markerfacecolor="none", color=TOOL_COLOURS[tool],
                        label=f"{tool}, real study")
        ax.set_title(case, fontsize=8)
        ax.set_xlabel("slices (512² each)" if axis == "depth" else "output px a side")
        ax.set_ylabel("ms per frame (median)")
        ax.set_yscale("log")
        _log(ax.yaxis)
    legend: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=len(legend),
               fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.06))
    title = ("Cost against volume depth (synthetic: the ACRIN CT resampled to N slices; "
             "diamonds: real studies)" if axis == "depth" else "Cost against output size")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def scaling_sessions(suite: dict[str, Any], path: Path) -> Path | None:
    rows = sorted((r for r in suite.get("figures", []) if r.get("case") == "sessions:fps"),
                  key=lambda r: r["extra"]["x"])
    lat = {r["extra"]["x"]: r for r in suite.get("figures", [])
           if r.get("case") == "sessions:latency"}
    if not rows:
        return None
    n = [r["extra"]["x"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(n, [r["min"] for r in rows], "-o", color=VOXCAST_COLOUR, label="slowest session")
    a.plot(n, [r["median"] for r in rows], "-o", color="#aec7e8", label="median session")
    a.plot(n, [r["extra"]["total_fps"] for r in rows], "-s", color="black", label="all sessions")
    a.axhline(10, color="#d62728", linewidth=0.8, linestyle=":", label="10 frames/s a session (goal)")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    _log(a.yaxis)
    a.set_xticks(n, [str(x) for x in n])
    a.set_xlabel("concurrent sessions")
    a.set_ylabel("frames/s")
    a.legend(fontsize=7)
    a.set_title("Closed-loop paging, 512² viewport", fontsize=9)
    b.plot(n, [lat[x]["median"] for x in n if x in lat], "-o", color=VOXCAST_COLOUR, label="p50")
    b.plot(n, [lat[x]["p95"] for x in n if x in lat], "-o", color="#aec7e8", label="p95")
    b.set_xscale("log", base=2)
    b.set_xticks(n, [str(x) for x in n])
    b.set_xlabel("concurrent sessions")
    b.set_ylabel("input → frame ms")
    b.legend(fontsize=7)
    b.set_title("Latency per input", fontsize=9)
    return _save(fig, path)


def all_plots(suites: dict[str, dict[str, Any]], headline: list[dict[str, Any]],
              folder: Path) -> dict[str, Path]:
    """Every plot the results allow, by name, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path | None] = {"ratios": ratios(headline, folder / "ratios.png")}
    if "render" in suites:
        made["render"] = render_cases(suites["render"], folder / "render.png")
    if "ingest" in suites:
        made["ingest"] = ingest(suites["ingest"], folder / "ingest.png")
    if "streaming" in suites:
        made["streaming"] = streaming(suites["streaming"], folder / "streaming.png")
    if "scaling" in suites:
        made["scaling_depth"] = scaling_axis(suites["scaling"], "depth",
                                             folder / "scaling-depth.png")
        made["scaling_size"] = scaling_axis(suites["scaling"], "size",
                                            folder / "scaling-size.png")
        made["scaling_sessions"] = scaling_sessions(suites["scaling"],
                                                    folder / "scaling-sessions.png")
    return {k: v for k, v in made.items() if v is not None}
