"""Streaming benchmark: render sessions of a real ``voxcast serve``, measured by a client.

    python -m benchmarks.streaming [--quick] [--out DIR] [--data-dir DIR]

The ACRIN PET-CT study (``--quick``: its CT only) is imported once with ``voxcast ingest``
into ``--data-dir`` (default ``<out>/voxcast-data``, reused). A real ``voxcast serve`` runs on
free loopback ports, measured once its kernels are warm, by an aiohttp WebSocket client in this
process that decodes every frame (Pillow): 1. first image (``POST /api/sessions`` → first
decoded frame, and the first lossless one), cold (first session after a server restart: the
volume is not in RAM; the page cache is left alone) and warm, beside the naive path (pydicom
reads the CT, builds the volume, windows the middle slice, encodes a PNG); 2. input → frame
latency with inputs on a 30 / 60 Hz timer (page, orbit, paging a 20 mm slab MIP): the latency
of input i is the first frame with ``input_seq >= i`` minus the send time of i (frames answer
the newest input); 3. frames/s per session with 1, 4 and 8 sessions paging in a closed loop;
4. WebRTC (aiortc client, ``control`` data channel → video track), or "not measured: <why>".
Writes ``streaming.json`` and ``streaming.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pydicom
from PIL import Image

from benchmarks import common
from benchmarks.common import Report, fmt, median, percentile
from benchmarks.streaming_report import NOTES, build_report

STUDY = "petct-acrin042"
VIEWPORT_PX = [512, 512]
PAGE_SWING = 40  # inputs in one direction before turning back (stays inside the volume)
FRAME_TIMEOUT_S = 10.0
Result = dict[str, Any]
T = TypeVar("T")
# repetitions, and seconds per latency case / concurrency level / WebRTC run
FULL = {"cold": 5, "warm": 10, "naive": 5, "input_s": 5.0, "sessions_s": 6.0, "webrtc_s": 6.0}
QUICK = {"cold": 1, "warm": 2, "naive": 1, "input_s": 1.0, "sessions_s": 1.5, "webrtc_s": 1.5}


def _voxcast() -> list[str]:
    exe = Path(sys.executable).parent / "voxcast"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "streaming.cli"]


class Server:
    """A real ``voxcast serve`` on free ports; :meth:`start` returns once its kernels are warm."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, 0, list[str]()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 400.0) -> float:
        """Seconds from spawn to warm kernels."""
        self.port, t0 = common.free_port(), time.perf_counter()
        env = dict(os.environ, VOXCAST_SERIES_QUIET_SECONDS="3600", PYTHONUNBUFFERED="1")
        proc = self.proc = subprocess.Popen(
            [*_voxcast(), "serve", "--data-dir", str(self.data_dir), "--port", str(self.port),
             "--dicom-port", str(common.free_port())], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, cwd=common.REPO)
        ready = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            listening, warm = 0, False
            for line in proc.stdout:
                self.log.append(line)
                listening += "listening on" in line and "VoxCast" in line
                warm = warm or "render kernels ready" in line or "warm-up failed" in line
                if listening >= 2 and warm:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout_s) or proc.poll() is not None:
            self.stop()
            raise RuntimeError("voxcast serve did not start:\n" + "".join(self.log[-40:]))
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def token(self) -> str:
        from streaming.auth import TokenSigner
        return TokenSigner.for_data_dir(self.data_dir.resolve()).issue(subject="benchmark")


def ensure_imported(data_dir: Path, source: Path, quick: bool) -> str:
    """Import the study (quick: the CT only) unless ``data_dir`` already holds it."""
    marker = data_dir / "benchmark-import.json"
    if marker.exists() and (quick or json.loads(marker.read_text()).get("full")):
        return "reused (imported by an earlier run into the same data directory)"
    t0 = time.perf_counter()
    run = subprocess.run([*_voxcast(), "ingest", "--data-dir", str(data_dir), "--json",
                          str(source / "CT" if quick else source)],
                         capture_output=True, text=True, cwd=common.REPO, timeout=900)
    if run.returncode != 0:
        raise RuntimeError(f"voxcast ingest failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    marker.write_text(json.dumps({"full": not quick, "summary": json.loads(run.stdout)}))
    return f"imported in {time.perf_counter() - t0:.1f} s ({'CT only' if quick else 'study'})"


def naive_first_image(ct_folder: Path) -> tuple[float, np.ndarray]:
    """Seconds to read the CT with pydicom, build the volume, window the middle slice and encode
    a PNG (zlib level 1, as the server); and the decoded picture."""
    t0 = time.perf_counter()
    slices = [ds for ds in (pydicom.dcmread(p) for p in sorted(ct_folder.glob("*.dcm")))
              if "PixelData" in ds]
    iop = np.asarray(slices[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    slices.sort(key=lambda ds: float(normal @ np.asarray(ds.ImagePositionPatient, dtype=float)))
    slope = np.array([float(getattr(ds, "RescaleSlope", 1.0)) for ds in slices], np.float32)
    icpt = np.array([float(getattr(ds, "RescaleIntercept", 0.0)) for ds in slices], np.float32)
    volume = np.stack([ds.pixel_array for ds in slices]) * slope[:, None, None] \
        + icpt[:, None, None]
    mid = slices[len(slices) // 2]
    center = float(np.atleast_1d(mid.get("WindowCenter", 40.0))[0])  # the first window
    width = float(np.atleast_1d(mid.get("WindowWidth", 400.0))[0])
    scaled = np.clip((volume[len(slices) // 2] - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    buf = io.BytesIO()
    Image.fromarray(np.rint(scaled * 255).astype(np.uint8)).save(buf, "PNG", compress_level=1)
    return time.perf_counter() - t0, np.asarray(Image.open(io.BytesIO(buf.getvalue())))


@dataclass(slots=True)
class Received:
    t: float  # perf_counter after decoding
    input_seq: int
    kind: str
    nbytes: int
    header: dict[str, Any]


class Viewer:
    """One render session seen by a WebSocket client, every frame decoded and time-stamped;
    ``async with`` creates the session and connects, leaving closes and deletes it."""

    def __init__(self, http: aiohttp.ClientSession, base: str, study_uid: str) -> None:
        self.http, self.base, self.study_uid, self.seq, self.t_open = http, base, study_uid, 0, 0.0
        self.frames: list[Received] = []
        self.events: list[dict[str, Any]] = []
        self.session: Result = {}
        self.timings: dict[str, float] = {}  # POST and WebSocket connect, from t_open
        self.picture: np.ndarray | None = None  # the last lossless one
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def __aenter__(self) -> Viewer:
        self.t_open = t0 = time.perf_counter()
        self.session = await new_session(self.http, self.base, self.study_uid)
        self.timings["post_ms"] = (time.perf_counter() - t0) * 1e3
        self._ws = await self.http.ws_connect(self.session["ws_url"], max_msg_size=0)
        self.timings["ws_connect_ms"] = (time.perf_counter() - t0) * 1e3
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        from streaming.protocol import unpack_frame

        assert self._ws is not None
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                header, payload = unpack_frame(msg.data)
                picture = Image.open(io.BytesIO(payload))
                picture.load()
                if header["kind"] == "lossless":
                    self.picture = np.asarray(picture)
                self.frames.append(Received(time.perf_counter(), int(header["input_seq"]),
                                            header["kind"], len(payload), header))
            elif msg.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(msg.data))
            self._new.set()

    async def answer(self, seq: int, start: int = 0, lossless: bool = False,
                     timeout_s: float = FRAME_TIMEOUT_S) -> Received:
        """The first frame (from index ``start``) answering input ``seq``."""
        deadline, index = time.perf_counter() + timeout_s, start
        while True:
            for frame in self.frames[index:]:
                if frame.input_seq >= seq and (frame.kind == "lossless" or not lossless):
                    return frame
            index = len(self.frames)
            self._new.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no matching frame within {timeout_s:g} s")
            await asyncio.wait_for(self._new.wait(), left)

    async def send(self, message: dict[str, Any]) -> tuple[int, float]:
        assert self._ws is not None
        self.seq += 1
        t = time.perf_counter()
        await self._ws.send_str(json.dumps({**message, "viewport": "v0", "seq": self.seq}))
        return self.seq, t

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.session:
            sid = self.session["session_id"]
            async with self.http.delete(f"{self.base}/api/sessions/{sid}"):
                pass


async def new_session(http: aiohttp.ClientSession, base: str, study: str) -> Result:
    async with http.post(f"{base}/api/sessions", json={
            "study_uid": study, "layout": "1x1", "viewport_size": VIEWPORT_PX}) as r:
        if r.status != 201:
            raise RuntimeError(f"POST /api/sessions: {r.status} {await r.text()}")
        return dict(await r.json())


async def on_timer(rate_hz: float, n: int, send: Callable[[int], Awaitable[T]]) -> list[T]:
    """``send(k)`` for k < n, every 1 / ``rate_hz`` s (no drift); the results."""
    out, next_at = [], time.perf_counter()
    for k in range(n):
        out.append(await send(k))
        next_at += 1.0 / rate_hz
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return out


def swing(k: int) -> int:
    """+1 for PAGE_SWING inputs, then -1 as many: paging stays inside the volume."""
    return 1 if (k // PAGE_SWING) % 2 == 0 else -1


async def first_image(http: aiohttp.ClientSession, base: str, study: str) -> Result:
    async with Viewer(http, base, study) as v:
        first = await v.answer(0, timeout_s=30)
        lossless = await v.answer(0, lossless=True, timeout_s=30)
        await asyncio.sleep(0.3)  # anything that follows the settle frame?
        coarse = next((e.get("coarse") for e in v.events if e.get("type") == "state"), None)
        return {"first_s": first.t - v.t_open, "lossless_s": lossless.t - v.t_open,
                **v.timings, "first_kind": first.kind, "first_width": first.header["width"],
                "first_render_ms": first.header["render_ms"], "coarse_first": coarse,
                "frames_after_settle": [f.kind for f in v.frames if f.t > lossless.t],
                "picture": v.picture}


MESSAGES: dict[str, Callable[[int], dict[str, Any]]] = {
    "page": lambda k: {"type": "page", "delta": swing(k)},
    "orbit": lambda k: {"type": "orbit", "delta_deg": [1.0 * swing(k), 0.5 * swing(k)]},
    "slab MIP 20 mm, page": lambda k: {"type": "page", "delta": swing(k)},
}


async def input_run(http: aiohttp.ClientSession, base: str, study: str, case: str,
                    rate_hz: float, seconds: float) -> Result:
    async with Viewer(http, base, study) as viewer:
        await viewer.answer(0, lossless=True)
        if case.startswith("slab"):
            seq, _ = await viewer.send({"type": "slab", "thickness_mm": 20, "mode": "mip"})
            await viewer.answer(seq, lossless=True)
        start = len(viewer.frames)
        n = max(2, round(seconds * rate_hz))
        sends = await on_timer(rate_hz, n, lambda k: viewer.send(MESSAGES[case](k)))
        t_end = time.perf_counter()
        (last_seq, last_t), problems, settle_ms = sends[-1], list[str](), math.nan
        try:
            settle_ms = ((await viewer.answer(last_seq, start, lossless=True)).t - last_t) * 1e3
        except TimeoutError as exc:
            problems.append(f"{case} @ {rate_hz} Hz, settle of input {last_seq}: {exc}")
        frames = viewer.frames[start:]
        latencies = answer_latencies(sends, frames)
        lossy = [f for f in frames if f.kind == "lossy" and f.t <= t_end]
        third = max(1, len(latencies) // 3)
        return {"latency_ms": latencies, "inputs": n, "answered": len(latencies),
                "fps": len(lossy) / (t_end - sends[0][1]), "bytes": [f.nbytes for f in lossy],
                "widths": [f.header["width"] for f in lossy],
                "render_ms": [f.header["render_ms"] for f in lossy], "settle_ms": settle_ms,
                "lossless_while_input": sum(f.kind == "lossless" for f in frames if f.t <= t_end),
                "p50_first_third_ms": median(latencies[:third]),
                "p50_last_third_ms": median(latencies[-third:]), "problems": problems}


def answer_latencies(sends: list[tuple[int, float]], frames: list[Received]) -> list[float]:
    """ms from each input's send to the first frame answering it (``input_seq >= seq``)."""
    out, index = [], 0
    ordered = sorted(frames, key=lambda f: f.t)
    for seq, t in sends:
        while index < len(ordered) and (ordered[index].input_seq < seq or ordered[index].t < t):
            index += 1
        if index == len(ordered):
            break
        out.append((ordered[index].t - t) * 1e3)
    return out


async def concurrent(http: aiohttp.ClientSession, base: str, study: str, n: int,
                     seconds: float) -> Result:
    problems: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        viewers = [await stack.enter_async_context(Viewer(http, base, study)) for _ in range(n)]
        await asyncio.gather(*(v.answer(0, lossless=True) for v in viewers))
        first_pictures = [v.picture for v in viewers]
        starts = [len(v.frames) for v in viewers]
        t_stop = time.perf_counter() + seconds

        async def loop(v: Viewer) -> tuple[int, list[float]]:
            done, rtt, k = 0, list[float](), 0
            while time.perf_counter() < t_stop:
                start = len(v.frames)
                seq, t = await v.send({"type": "page", "delta": swing(k)})
                k += 1
                try:
                    frame = await v.answer(seq, start)
                except TimeoutError as exc:
                    problems.append(f"{n} sessions: session {v.session['session_id'][:8]} "
                                    f"input {seq}: {exc}")
                    break
                done += 1
                rtt.append((frame.t - t) * 1e3)
            return done, rtt

        t0 = time.perf_counter()
        results = await asyncio.gather(*(loop(v) for v in viewers))
        span = time.perf_counter() - t0
        lossless = [sum(f.kind == "lossless" for f in v.frames[s:])
                    for v, s in zip(viewers, starts, strict=True)]
        return {"fps": [done / span for done, _ in results], "answered": [d for d, _ in results],
                "rtt_ms": [x for _, r in results for x in r], "lossless_frames": lossless,
                "problems": problems, "first_pictures": first_pictures}


async def webrtc_run(http: aiohttp.ClientSession, base: str, study: str,
                     seconds: float) -> Result:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    session = await new_session(http, base, study)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video: list[tuple[float, float]] = []  # (time, mean grey) of every decoded video frame
    opened, reader = asyncio.Event(), None
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        channel = pc.createDataChannel("control")
        channel.on("open", opened.set)
        t0 = time.perf_counter()
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(session["webrtc_url"], json={
                "sdp": pc.localDescription.sdp, "type": "offer"}) as r:
            if r.status != 200:
                raise RuntimeError(f"offer refused: {r.status} {await r.text()}")
            answer = await r.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

        async def read() -> None:
            track: Any = transceiver.receiver.track
            while True:
                grey = (await track.recv()).to_ndarray(format="gray")
                video.append((time.perf_counter(), float(grey[::8, ::8].mean())))

        reader = asyncio.create_task(read())
        await asyncio.wait_for(opened.wait(), 15)
        while not video and not reader.done():
            await asyncio.sleep(0.01)
        if not video:
            await reader  # raises why the video ended
        first_s = video[0][0] - t0
        await asyncio.sleep(0.5)

        async def page(k: int) -> float:
            t = time.perf_counter()
            channel.send(json.dumps({"type": "page", "viewport": "v0", "seq": k + 1,
                                     "delta": swing(k)}))
            return t

        n = max(2, round(seconds * 30))
        sends = await on_timer(30.0, n, page)
        span = time.perf_counter() - sends[0]
        await asyncio.sleep(0.3)
        latency, changed = [], []
        for t in sends:
            before = [g for tv, g in video if tv <= t][-1:]
            later = [(tv, g) for tv, g in video if tv > t]
            latency += [(tv - t) * 1e3 for tv, _ in later[:1]]
            changed += [(tv - t) * 1e3 for tv, g in later if before and g != before[0]][:1]
        fps = sum(1 for tv, _ in video if sends[0] <= tv <= sends[0] + span) / span
        return {"first_frame_s": first_s, "latency_ms": latency, "changed_latency_ms": changed,
                "fps": fps, "inputs": n}
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await pc.close()
        async with http.delete(f"{base}/api/sessions/{session['session_id']}"):
            pass


async def webrtc_or_reason(http: aiohttp.ClientSession, base: str, study: str,
                           seconds: float) -> Result:
    if not (common.REPO / "streaming" / "webrtc.py").exists():
        return {"not_measured": "not measured: streaming/webrtc.py does not exist"}
    try:
        return await asyncio.wait_for(webrtc_run(http, base, study, seconds), seconds + 40)
    except Exception as exc:  # the optional part failing is a reason, not a crash
        return {"not_measured": f"not measured: {type(exc).__name__}: {exc}".strip()}


async def measure(server: Server, plan: dict[str, Any]) -> Result:
    details: Result = {"first_image": {"cold": [], "warm": []}, "latency": {}, "sessions": {}}
    auth, fi = {"Authorization": f"Bearer {server.token()}"}, details["first_image"]
    async with aiohttp.ClientSession(headers=auth) as http, \
            http.get(f"{server.url}/api/studies") as studies:
        study_uid = next(x["study_uid"] for x in await studies.json() if "CT" in x["modalities"])
    for rep in range(plan["cold"]):
        if rep:
            server.stop()
            server.start()
        async with aiohttp.ClientSession(headers=auth) as http:
            fi["cold"].append(await first_image(http, server.url, study_uid))
            for _ in range(plan["warm"] if rep == 0 else 0):
                fi["warm"].append(await first_image(http, server.url, study_uid))
    common.step("input → frame latency")
    print("  first image ms: " + ", ".join(f"{k} {fmt(median([r['first_s'] * 1e3 for r in v]))}"
                                         for k, v in fi.items()), flush=True)
    async with aiohttp.ClientSession(headers=auth) as http:
        for case in MESSAGES:
            for rate in (30, 60):
                common.step(f"{case} @ {rate} Hz")
                r = await input_run(http, server.url, study_uid, case, rate, plan["input_s"])
                details["latency"][f"{case} @ {rate} Hz"] = r
                print(f"  {case} @ {rate} Hz: p50 {fmt(median(r['latency_ms']))} ms, p95 "
                      f"{fmt(percentile(r['latency_ms'], 95))} ms", flush=True)
        for n in (1, 4, 8):
            common.step(f"{n} concurrent sessions")
            r = await concurrent(http, server.url, study_uid, n, plan["sessions_s"])
            r.pop("first_pictures", None)
            details["sessions"][str(n)] = r
            print(f"  {n} sessions: min {fmt(min(r['fps']))} frames/s", flush=True)
        common.step("WebRTC")
        details["webrtc"] = w = await webrtc_or_reason(http, server.url, study_uid,
                                                       plan["webrtc_s"])
        print(f"  WebRTC: {w.get('not_measured') or fmt(median(w['latency_ms'])) + ' ms'}", flush=True)
    return details


def picture_diff(picture: np.ndarray | None, reference: np.ndarray) -> float:
    """Max abs grey-level difference of a decoded picture from ``reference``; NaN when there
    is no picture or it has another shape."""
    if picture is None or picture.shape != reference.shape:
        return float("nan")
    return float(np.abs(picture.astype(float) - reference).max())


def first_image_guards(details: Result, reference: np.ndarray) -> list[common.Guard]:
    """Every first lossless picture the server sent (cold and warm) against the naive path's
    own rendering of the same slice and window (pydicom pixels, numpy windowing)."""
    guards = []
    for key, runs in details["first_image"].items():
        diffs = [picture_diff(r["picture"], reference) for r in runs]
        guards.append(common.Guard(
            name=f"first lossless picture, {key}: max abs(VoxCast - pydicom + numpy window) "
                 f"over {len(runs)} sessions", value=float(np.max(diffs)) if diffs else float("nan"),
            limit=1.0, unit="grey levels"))
    return guards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streaming", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test (< 60 s): CT only, "
                        "1 cold / 2 warm first images, about 1 s per case")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="VoxCast data directory (default <out>/voxcast-data)")
    args = parser.parse_args(argv)
    plan, source = QUICK if args.quick else FULL, common.shared_data_dir() / STUDY
    if not (source / "CT").is_dir():
        parser.error(f"the ACRIN study is not under {source.parent} (set VOXCAST_TEST_DATA)")
    args.out.mkdir(parents=True, exist_ok=True)
    data_dir, t_start = (args.data_dir or args.out / "voxcast-data").resolve(), time.perf_counter()
    report, info = Report(name="streaming", title="VoxCast streaming benchmark: render sessions "
                          "over WebSocket and WebRTC", samples_in_markdown=False), common.machine()
    report.facts.update({"mode": "quick" if args.quick else "full", "machine": f"{info.get('cpu')}"
                         f", {info['cpus']} CPUs, Python {info['python']}, {info['platform']}",
                         "load average at start": common.load_average(), "viewport": "512x512"})
    common.plan_steps(14)
    common.step("import the study")
    report.facts["data"] = ensure_imported(data_dir, source, args.quick)
    common.step("naive first image (pydicom)")
    naive = [naive_first_image(source / "CT") for _ in range(int(plan["naive"]))]
    print(f"  naive first image: {fmt(median([s for s, _ in naive]) * 1e3)} ms", flush=True)
    server = Server(data_dir)
    common.step("start voxcast serve, first images")
    try:
        report.facts["server start → kernels warm s"] = round(server.start(), 2)
        details = asyncio.run(measure(server, plan))
    finally:
        server.stop()
    report.guards.extend(first_image_guards(details, naive[0][1]))
    build_report(report, details, [s for s, _ in naive])
    for r in (r for runs in details["first_image"].values() for r in runs):
        r.pop("picture", None)
    problems = [line.rstrip() for line in server.log if any(
        k in line for k in ("ERROR", "Traceback", "failed", "Exception"))]
    problems += [p for part in ("latency", "sessions") for r in details[part].values()
                 for p in r["problems"]]
    report.details.update(details, problems=problems)
    if problems:
        report.sections.append(("Problems seen", "\n".join(f"- `{p}`" for p in problems[:30])))
    report.facts.update({"load average at end": common.load_average(),
                         "total run s": round(time.perf_counter() - t_start, 1)})
    report.notes.extend(NOTES)
    return report.finish(args.out, f"{report.summary}\n({report.facts['total run s']} s)")


if __name__ == "__main__":
    raise SystemExit(main())
