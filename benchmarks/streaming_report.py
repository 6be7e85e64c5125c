"""The report of the streaming benchmark: its rows, tables, facts and notes."""

from __future__ import annotations

from typing import Any

from benchmarks import common
from benchmarks.common import Report, Row, fmt, median, percentile, table

Result = dict[str, Any]
def _p(samples: list[float], q: float = 50.0) -> str:
    return fmt(percentile(samples, q))


def build_report(report: Report, details: Result, naive_s: list[float]) -> None:
    fi, add, facts = details["first_image"], report.add, report.facts
    ms = {k: [r["first_s"] * 1e3 for r in fi[k]] for k in fi}
    for key, what in (("cold", "volume not in RAM"), ("warm", "volume in RAM")):
        add(Row(name=f"first image, {key} ({what})", unit="ms", samples=ms[key], tool="VoxCast",
                case=f"first_image_{key}", note="POST /api/sessions → decoded"))
        add(Row(name=f"first lossless frame, {key}", unit="ms", tool="VoxCast",
                samples=[r["lossless_s"] * 1e3 for r in fi[key]], case=f"first_lossless_{key}"))
    naive = [s * 1e3 for s in naive_s]
    add(Row(name="naive path: pydicom read + volume + window + PNG", unit="ms", samples=naive,
            case="first_image_naive", tool="naive", note="in-process, page cache warm"))
    ratio = {k: median(naive) / median(v) for k, v in ms.items()}
    for key in ms:
        report.ratios.append(common.Ratio(
            name=f"first image, {key} (POST /api/sessions → decoded frame)",
            baseline="naive pydicom read → volume → window → PNG", voxcast_value=median(ms[key]),
            baseline_value=median(naive), unit="ms", guard_passed=report.guard_passed))
    report.details["ratios"] = {f"naive_over_{k}": v for k, v in ratio.items()}
    for key, runs in fi.items():
        facts[f"naive / VoxCast first image, {key}"] = round(ratio[key], 2)
        facts[f"first image {key}: POST / WS connected / server render ms (median)"] = \
            " / ".join(fmt(median([r[k] for r in runs]))
                       for k in ("post_ms", "ws_connect_ms", "first_render_ms"))
        facts[f"first image {key}: from a coarse level; frames after the settle frame"] = \
            f"{[r['coarse_first'] for r in runs]}; {[r['frames_after_settle'] for r in runs]}"
    rows = []
    for name, r in details["latency"].items():
        lat = r["latency_ms"]
        add(Row(name=f"input → frame, {name}", unit="ms", samples=lat, case="latency",
                tool=name, extra={k: v for k, v in r.items() if k != "latency_ms"}))
        rows.append([name, f"{len(lat)} / {r['inputs']}", _p(lat), _p(lat, 95), _p(lat, 100),
                     fmt(r["fps"]), fmt(median(r["bytes"]) / 1024), _p(r["widths"]),
                     _p(r["render_ms"]), fmt(r["settle_ms"]),
                     f"{fmt(r['p50_first_third_ms'])} → {fmt(r['p50_last_third_ms'])}"])
    report.sections.append(("Input → frame latency (WebSocket, loopback)", table(rows, [
        "input", "answered / sent", "p50 ms", "p95 ms", "max ms", "lossy frames/s",
        "KiB / lossy frame", "lossy width px", "server render ms", "settle ms (last input → "
        "lossless)", "p50 first → last third ms"])))
    rows = []
    for n, r in details["sessions"].items():
        add(Row(name=f"frames/s per session, {n} concurrent paging", unit="frames/s",
                samples=r["fps"], case="sessions", tool=n,
                extra={k: v for k, v in r.items() if k != "fps"}))
        rows.append([n, fmt(min(r["fps"])), _p(r["fps"]), fmt(sum(r["fps"])), _p(r["rtt_ms"]),
                     _p(r["rtt_ms"], 95), sum(r["answered"]), sum(r["lossless_frames"])])
    report.sections.append(("Concurrent sessions, closed-loop paging", table(rows, [
        "sessions", "min frames/s", "median frames/s", "total frames/s", "p50 input → frame ms",
        "p95 ms", "answered inputs", "lossless frames meanwhile"])))
    w = details["webrtc"]
    body = w.get("not_measured", "")
    if not body:
        for key, tool in (("latency_ms", "next"), ("changed_latency_ms", "first changed")):
            add(Row(name=f"WebRTC paging → {tool} decoded video frame", unit="ms",
                    samples=w[key], case="webrtc", tool=tool))
        body = table([[fmt(w["first_frame_s"] * 1e3), _p(w["latency_ms"]),
                       _p(w["latency_ms"], 95), _p(w["changed_latency_ms"]),
                       _p(w["changed_latency_ms"], 95), fmt(w["fps"]), w["inputs"]]],
                     ["offer → first video frame ms", "next frame p50 ms", "p95 ms",
                      "changed frame p50 ms", "p95 ms", "video frames/s", "inputs (30 Hz)"])
    report.sections.append(("WebRTC (aiortc client: data channel → video track)", body))
    page60 = details["latency"]["page @ 60 Hz"]["latency_ms"]
    one, eight = details["sessions"]["1"]["fps"], details["sessions"]["8"]["fps"]
    goals = [
        ("first image ≤ 0.3 s cold", f"{_p(ms['cold'])} ms", median(ms["cold"]) <= 300),
        ("first image ≥ 10x faster than the naive path",
         f"{ratio['cold']:.1f}x (cold), {ratio['warm']:.1f}x (warm)", ratio["cold"] >= 10),
        ("paging ≥ 60 frames/s (1 session, closed loop)", f"{_p(one)} frames/s",
         median(one) >= 60),
        ("paging p95 input → frame ≤ 50 ms (60 Hz input)", f"{_p(page60, 95)} ms",
         percentile(page60, 95) <= 50),
        ("8 sessions ≥ 10 frames/s each (2 cores)", f"min {fmt(min(eight))} frames/s",
         min(eight) >= 10)]
    report.details["goals"] = [{"goal": g, "value": v, "met": bool(m)} for g, v, m in goals]
    report.summary = "## Goals\n\n" + table(
        [[g, v, "met" if m else "**not met**"] for g, v, m in goals], ["goal", "measured", ""])


NOTES = [
    "Client and server share the cores: the client (one Python event loop, decoding every "
    "frame with Pillow) takes CPU the server would otherwise have.",
    "Latency = send of input i → the first decoded frame with input_seq ≥ i (one frame can "
    "answer several inputs). Paging swings 40 slices up and down (an input that does not "
    "change the view gets no frame). Lossy width < 512: adaptive quality downscaled it.",
    "Cold = the first session after a server restart (kernels warm, volume not in RAM, page "
    "cache not dropped).",
    "WebRTC video is paced at ≤ 30 frames/s and repeats the last picture every 0.5 s: 'next "
    "frame' may not show the input yet; 'changed' = first frame whose mean grey differs.",
]

