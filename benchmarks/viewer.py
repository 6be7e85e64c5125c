"""Viewer benchmark: the browser viewer in a real Chromium against a real ``voxcast serve``.

    python -m benchmarks.viewer [--quick] [--out DIR] [--data-dir DIR]

The ACRIN PET-CT study is imported once (``benchmarks.streaming.ensure_imported``, reused); a
real server runs on free loopback ports, measured once its kernels are warm; Debian's Chromium
(Playwright, headless, one 1920x1080 page) opens the launch URL over the WebSocket transport
(the WebRTC video has its own tests; on a machine without a display path it is just another
encoder competing for the cores). Browser and server share the machine's cores, as on a
workstation that runs both. Times come from the page itself (``window.voxcast``: the
``performance.now()`` of every input sent and frame drawn).

1. First image: launch URL → first frame drawn, and → first lossless frame, cold (first page
   after a server restart: the volume is not in RAM) and warm (reloads); and the four viewports
   of ``petct-2x2`` drawn.
2. Paging: mouse-wheel input at 60 Hz for some seconds; frames drawn per second and input →
   drawn latency (for input *i*, the first frame drawn with ``input_seq >= i``).
3. Baseline, in the same run and the same page: the naive thin client a render API invites,
   ``fetch(POST /api/render)`` of the next slice as PNG → decode → draw, one after the other.

Writes ``viewer.json`` and ``viewer.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import Report, Row, fmt, median
from benchmarks.streaming import STUDY, Server, ensure_imported

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FULL = {"warm": 8, "page_s": 6.0, "naive_frames": 60}
QUICK = {"warm": 2, "page_s": 1.5, "naive_frames": 12}

# Input → drawn latencies of the page's own log: sent[seq] and drawn[{input_seq, t}].
LATENCIES = """(from) => {
  const v = window.voxcast, out = [];
  const drawn = v.drawn.filter((d) => d.viewport === 'v0');
  for (const [seq, t] of Object.entries(v.sentAt)) {
    if (+seq < from) continue;
    const d = drawn.find((x) => x.input_seq >= +seq && x.t >= t);
    if (d) out.push(d.t - t);
  }
  return out;
}"""
# Closed loop through the viewer's own input path: a wheel event on the viewport, then wait
# until a frame answering it is drawn, n times; returns {frames, ms}.
CLOSED_LOOP = """async (n) => {
  const v = window.voxcast, el = document.querySelector('[data-testid=viewport][data-viewport-id="v0"]');
  const r = el.getBoundingClientRect();
  const last = () => Math.max(0, ...Object.keys(v.sentAt).map(Number));
  const answered = (seq) => new Promise((resolve) => {
    const check = () => { const d = v.drawn[v.drawn.length - 1];
      if (d && d.viewport === 'v0' && d.input_seq >= seq) resolve(); else setTimeout(check, 1); };
    check();
  });
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1) {
    const before = last();
    el.dispatchEvent(new WheelEvent('wheel', {deltaY: (Math.floor(i / 30) % 2 ? -100 : 100),
      clientX: r.x + r.width / 2, clientY: r.y + r.height / 2, bubbles: true, cancelable: true}));
    while (last() === before) await new Promise((ok) => setTimeout(ok, 1));  // flushed on the next animation frame
    await answered(last());
  }
  return {frames: n, ms: performance.now() - t0};
}"""
# The naive client: POST /api/render of slice i, decode, draw (into the viewer's own canvas, so
# the page paints as much as the viewer's does); returns ms per frame.
NAIVE = """async ([view, token, n]) => {
  const c = document.querySelector('[data-testid=viewport][data-viewport-id="v0"] canvas');
  const g = c.getContext('2d'), times = [], bytes = [];
  for (let i = 0; i < n; i += 1) {
    const t0 = performance.now();
    const r = await fetch('/api/render?format=png', {method: 'POST', body: JSON.stringify(
      {...view, slice_index: 40 + (i % 40), position_mm: null}),
      headers: {'Content-Type': 'application/json', Authorization: `Bearer ${token}`}});
    const blob = await r.blob();
    const bmp = await createImageBitmap(blob);
    bytes.push(blob.size);
    if (c.width !== bmp.width || c.height !== bmp.height) { c.width = bmp.width; c.height = bmp.height; }
    g.drawImage(bmp, 0, 0); bmp.close();
    times.push(performance.now() - t0);
  }
  return {times, bytes};
}"""


def _open(page: Any, url: str, wait: str) -> None:
    page.goto(url)
    page.wait_for_function(wait, timeout=120_000)


def measure(server: Server, plan: dict[str, Any]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    token = server.token()
    study = server_study(server, token)
    base = f"{server.url}/viewer?study={study}&transport=websocket&token={token}"
    lossless = "window.voxcast && window.voxcast.firstLosslessMs !== null"
    out: dict[str, Any] = {"first": [], "first_lossless": [], "grid": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        errors: list[str] = []
        def console(message: Any) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", console)
        for i in range(1 + int(plan["warm"])):  # the first is cold
            _open(page, base, lossless)
            out["first"].append(page.evaluate("window.voxcast.firstFrameMs"))
            out["first_lossless"].append(page.evaluate("window.voxcast.firstLosslessMs"))
            print(f"  first image {'cold' if i == 0 else 'warm'}: "
                  f"{fmt(out['first'][-1])} ms", flush=True)
        for _ in range(max(1, int(plan["warm"]) // 2)):
            _open(page, base + "&layout=petct-2x2",
                  "window.voxcast && ['v0','v1','v2','v3'].every((v) => "
                  "window.voxcast.drawn.some((d) => d.viewport === v))")
            out["grid"].append(page.evaluate("Math.max(...['v0','v1','v2','v3'].map((v) => "
                                             "window.voxcast.drawn.find((d) => d.viewport === v)"
                                             ".t))"))
        # Paging with the wheel at 60 Hz, swinging inside the volume.
        _open(page, base, lossless)
        box = page.locator('[data-testid=viewport][data-viewport-id="v0"]').bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        from_seq = int(page.evaluate("Math.max(0, ...Object.keys(window.voxcast.sentAt)"
                                     ".map(Number)) + 1"))
        drawn0 = page.evaluate("window.voxcast.drawn.length")
        n, t0 = int(plan["page_s"] * 60), time.perf_counter()
        for k in range(n):
            page.mouse.wheel(0, 100 if (k // 30) % 2 == 0 else -100)
            time.sleep(max(0.0, t0 + (k + 1) / 60 - time.perf_counter()))
        elapsed = time.perf_counter() - t0
        page.wait_for_timeout(300)
        paged = page.evaluate(f"window.voxcast.drawn.slice({drawn0})")
        out["paging_fps"] = len(paged) / elapsed
        out["paging_bytes"] = [d["bytes"] for d in paged if d["kind"] == "lossy" and d.get("bytes")]
        out["paging_latency"] = page.evaluate(LATENCIES, from_seq)
        out["paging_inputs"] = n
        page.wait_for_function(lossless)
        loop = page.evaluate(CLOSED_LOOP, int(plan["naive_frames"]))
        out["closed_loop_ms"] = loop["ms"] / loop["frames"]
        page.wait_for_function(lossless)
        view = page.evaluate("window.voxcast.states.v0.view")
        naive = page.evaluate(NAIVE, [view, token, int(plan["naive_frames"])])
        out["naive"], out["naive_bytes"] = naive["times"], naive["bytes"]
        out["view_size"] = view["size_px"]
        out["errors"] = errors
        browser.close()
    return out


def server_study(server: Server, token: str) -> str:
    import requests
    r = requests.get(f"{server.url}/api/studies", params={"PatientID": "ACRIN-NSCLC-FDG-PET-042"},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    return str(r.json()[0]["study_uid"])


def build_report(report: Report, m: dict[str, Any]) -> None:
    cold, warm = m["first"][:1], m["first"][1:]
    rows = [
        Row(name="first image, cold (launch URL → first frame drawn)", unit="ms", samples=cold,
            case="first_image_cold"),
        Row(name="first image, warm", unit="ms", samples=warm, case="first_image_warm"),
        Row(name="first lossless frame, cold", unit="ms", samples=m["first_lossless"][:1],
            case="first_lossless_cold"),
        Row(name="first lossless frame, warm", unit="ms", samples=m["first_lossless"][1:],
            case="first_lossless_warm"),
        Row(name="petct-2x2: all four viewports drawn", unit="ms", samples=m["grid"],
            case="grid_first_images"),
        Row(name="paging (wheel at 60 Hz): frames drawn", unit="frames/s",
            samples=[m["paging_fps"]], case="paging_fps",
            note=f"{m['paging_inputs']} inputs"),
        Row(name="paging: input → frame drawn", unit="ms", samples=m["paging_latency"],
            case="paging_latency", note="the frame answering the input or a newer one"),
        Row(name="paging, closed loop (next wheel once the frame is drawn), per frame",
            unit="ms", samples=[m["closed_loop_ms"]], case="closed_loop_frame",
            note="through the viewer's own input path"),
        Row(name="naive client: POST /api/render PNG → decode → draw, per frame", unit="ms",
            samples=m["naive"], case="naive_frame", tool="baseline",
            note=f"{m['view_size'][0]}x{m['view_size'][1]}, one after the other"),
    ]
    for r in rows:
        report.add(r)
    naive_fps, loop_fps = 1e3 / median(m["naive"]), 1e3 / m["closed_loop_ms"]
    report.summary = "\n".join([
        "| figure | viewer | naive client (same run) | |",
        "|---|---:|---:|---|",
        f"| paging, closed loop | {fmt(loop_fps)} frames/s | {fmt(naive_fps)} frames/s | "
        f"{fmt(loop_fps / naive_fps)}x |",
        f"| paging, wheel at 60 Hz | {fmt(m['paging_fps'])} frames/s, input → drawn p50 "
        f"{fmt(median(m['paging_latency']))} ms | | goal ≥ 10 frames/s (R19) |",
        f"| bytes a frame while paging | {fmt(median(m['paging_bytes']) / 1024)} KiB (JPEG) | "
        f"{fmt(median(m['naive_bytes']) / 1024)} KiB (PNG) | "
        f"{fmt(median(m['naive_bytes']) / median(m['paging_bytes']))}x fewer |",
        f"| first image, warm | {fmt(median(warm))} ms | | goal < 3000 ms (R6) |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.viewer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 warm first images, "
                        "1.5 s of paging, 12 naive frames")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="VoxCast data directory (default <out>/voxcast-data)")
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        parser.error(f"{CHROMIUM} is not installed (Debian package chromium; make test installs it)")
    plan, source = QUICK if args.quick else FULL, common.shared_data_dir() / STUDY
    if not source.is_dir():
        parser.error(f"the ACRIN study is not under {source.parent} (set VOXCAST_TEST_DATA)")
    data_dir, t_start = (args.data_dir or args.out / "voxcast-data").resolve(), time.perf_counter()
    report, info = Report(name="viewer", title="VoxCast viewer benchmark: the browser viewer in "
                          "Chromium against a real server", samples_in_markdown=False), \
        common.machine()
    report.facts.update({"mode": "quick" if args.quick else "full", "machine": f"{info.get('cpu')}"
                         f", {info['cpus']} CPUs, Python {info['python']}, {info['platform']}",
                         "load average at start": common.load_average(),
                         "browser": "Debian Chromium, headless, 1920x1080, transport=websocket",
                         "data": ensure_imported(data_dir, source, quick=False)})
    server = Server(data_dir)
    try:
        report.facts["server start → kernels warm s"] = round(server.start(), 2)
        details = measure(server, plan)
    finally:
        server.stop()
    build_report(report, details)
    report.details.update({k: v for k, v in details.items() if k != "paging_latency"})
    report.facts.update({"console errors": len(details["errors"]),
                         "load average at end": common.load_average(),
                         "total run s": round(time.perf_counter() - t_start, 1)})
    report.notes.extend([
        "Browser and server share the cores. Times are the page's own performance.now().",
        "Paging frames are lossy JPEG while the wheel turns (adaptive size and quality), then "
        "one lossless PNG settle; the naive client draws a PNG of the full view every frame.",
    ])
    json_path, md_path = report.write(args.out)
    print(f"{report.summary}\nwrote {json_path} and {md_path} ({report.facts['total run s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
