"""A real Chromium receives a render session over WebSocket and WebRTC.

Two private network namespaces joined by a veth pair (a /30 that exists only inside them):
``voxcast serve --host 10.213.64.1`` runs in one, Chromium (driven by Playwright) in the other,
so ICE has real host candidates and no traffic leaves the namespaces. The test page is written
into a document the server served (so it has the server's origin); it creates a session, opens the WebSocket and the
WebRTC connection (one video per viewport and the ``control`` data channel) and reports what
arrived: WebSocket frame headers, video frames (``requestVideoFrameCallback``), a canvas
snapshot of the video, data-channel frames, and the receiver's statistics.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.browser.netns import NetNamespace, unavailable_reason, veth_pair
from tests.conftest import REPO, ServerProcess, free_port, voxcast_executable

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
SERVER_IP, BROWSER_IP = "10.213.64.1", "10.213.64.2"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
PAGE_TIMEOUT_MS = 45_000


def skip_without_webrtc_setup() -> None:
    """Skip unless network namespaces, Chromium and Playwright are all here."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

PAGE = """<!doctype html><html><body style="margin:0;background:#000">
<video id="v" autoplay muted playsinline width="512" height="512"></video>
<canvas id="c" width="512" height="512"></canvas>
<script>
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function parseFrame(buf) {
  const n = new DataView(buf).getUint32(0, true);
  return JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
}
function snapshot(video) {
  const c = document.getElementById("c"), g = c.getContext("2d");
  g.drawImage(video, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = 0, s2 = 0, n = d.length / 4;
  const thumb = new Array(32 * 32).fill(0);  // 16x16-pixel block means, to compare pictures
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]; s += y; s2 += y * y;
    const p = i / 4, x = p % c.width, row = Math.floor(p / c.width);
    thumb[Math.floor(row / 16) * 32 + Math.floor(x / 16)] += y / 256;
  }
  const mean = s / n;
  return {mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)), thumb};
}
function until(pred, what, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("timed out waiting for " + what)), ms);
    const poll = () => { const v = pred(); if (v) { clearTimeout(t); resolve(v); }
                         else setTimeout(poll, 20); };
    poll();
  });
}
window.runTest = async (token) => {
  const H = {"Authorization": "Bearer " + token, "Content-Type": "application/json"};
  const out = {wsFrames: [], dcFrames: [], events: []};
  const t0 = performance.now();
  const studies = await (await fetch("/api/studies", {headers: H})).json();
  const r = await fetch("/api/sessions", {method: "POST", headers: H, body: JSON.stringify(
      {study_uid: studies[0].study_uid, layout: "1x1", viewport_size: [512, 512]})});
  const info = await r.json();
  out.session = r.status;
  const ws = new WebSocket(info.ws_url + "?token=" + encodeURIComponent(token));
  ws.binaryType = "arraybuffer";
  ws.onmessage = (m) => { if (typeof m.data !== "string") out.wsFrames.push(parseFrame(m.data)); };
  const pc = new RTCPeerConnection({iceServers: []});
  for (const _ of info.viewports) pc.addTransceiver("video", {direction: "recvonly"});
  const dc = pc.createDataChannel("control");
  dc.binaryType = "arraybuffer";
  dc.onmessage = (m) => {
    if (typeof m.data === "string") { out.events.push(JSON.parse(m.data)); return; }
    const h = parseFrame(m.data);
    if (h.chunk_index === h.chunk_count - 1) out.dcFrames.push(h);
  };
  const video = document.getElementById("v");
  pc.ontrack = (e) => { if (!video.srcObject) video.srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await until(() => pc.iceGatheringState === "complete", "ICE gathering", 10000);
  const a = await fetch(info.webrtc_url, {method: "POST", headers: H, body: JSON.stringify(
      {sdp: pc.localDescription.sdp, type: "offer"})});
  out.answerStatus = a.status;
  await pc.setRemoteDescription(await a.json());
  await new Promise((res) => video.requestVideoFrameCallback(() => res()));
  out.firstVideoFrameMs = performance.now() - t0;
  out.videoWidth = video.videoWidth; out.videoHeight = video.videoHeight;
  await until(() => dc.readyState === "open" && out.dcFrames.length > 0, "a lossless frame", 15000);
  await sleep(1000);  // let the still picture refine
  out.before = snapshot(video);
  const settled = out.dcFrames.length;
  dc.send(JSON.stringify({type: "invert", viewport: info.viewports[0].id, seq: 1}));
  await until(() => out.dcFrames.some((h) => h.input_seq >= 1), "the inverted lossless frame",
              15000);
  await sleep(1000);
  out.after = snapshot(video);
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.inbound = {bytesReceived: s.bytesReceived, framesDecoded: s.framesDecoded,
                     frameWidth: s.frameWidth, frameHeight: s.frameHeight,
                     decoder: s.decoderImplementation, codecId: s.codecId,
                     totalDecodeTime: s.totalDecodeTime};
      const c = stats.get(s.codecId); if (c) out.codec = c.mimeType;
    }
  });
  out.elapsedS = (performance.now() - t0) / 1000;
  out.changedLossless = out.dcFrames.length - settled;
  window.peers = {ws, pc};  // left open for the screenshot; closing the browser ends them
  return out;
};
</script></body></html>"""


@dataclass
class NsServer(ServerProcess):
    """``voxcast serve`` bound to ``host`` (``VOXCAST_HOST``, the same as ``--host``)."""

    host: str = SERVER_IP

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        old = os.environ.get("VOXCAST_HOST")
        os.environ["VOXCAST_HOST"] = self.host
        try:
            return super().start(timeout)
        finally:
            if old is None:
                del os.environ["VOXCAST_HOST"]
            else:
                os.environ["VOXCAST_HOST"] = old


@pytest.fixture(scope="module")
def namespaces() -> Iterator[tuple[NetNamespace, NetNamespace]]:
    skip_without_webrtc_setup()
    server_ns, browser_ns = NetNamespace(), NetNamespace()
    try:
        veth_pair(server_ns, browser_ns, prefix=SERVER_IP.rsplit(".", 1)[0], name="vcb")
        yield server_ns, browser_ns
    finally:
        browser_ns.close()
        server_ns.close()


@pytest.fixture(scope="module")
def phantom_server(namespaces: tuple[NetNamespace, NetNamespace],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsServer]:
    """A server over the synthetic phantom study (7 s to make), inside the server namespace."""
    data_dir = tmp_path_factory.mktemp("phantom-data")
    made = subprocess.run([*voxcast_executable(), "phantom", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    server = NsServer(data_dir=data_dir, http_port=free_port(), dicom_port=free_port())
    namespaces[0].run(server.start)
    try:
        yield server
    finally:
        server.stop()


def _drive_chromium(url: str, token: str, screenshot: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            page = browser.new_page(viewport={"width": 1040, "height": 540})
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            # The page must come from the server itself: Chromium's Private Network Access
            # blocks fetches into the private /30 from a page of no (public) address space.
            page.goto(f"{url}/api/health")
            page.set_content(PAGE)
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            try:
                result = page.evaluate("(token) => window.runTest(token)", token)
            finally:
                page.screenshot(path=str(screenshot))
            result["console"] = console[-20:]
            return dict(result)
        finally:
            browser.close()


def test_chromium_receives_websocket_and_webrtc(
        namespaces: tuple[NetNamespace, NetNamespace], phantom_server: NsServer,
        tmp_path: Path) -> None:
    shot = tmp_path / "webrtc-chromium.png"
    result = namespaces[1].run(_drive_chromium, phantom_server.url, phantom_server.token, shot)
    print(json.dumps({k: v for k, v in result.items()
                      if k not in ("events", "wsFrames", "before", "after")}, default=str))
    assert result["session"] == 201 and result["answerStatus"] == 200
    # WebSocket: binary frames with the documented header
    assert result["wsFrames"], "no WebSocket frame arrived"
    header = result["wsFrames"][0]
    assert header["kind"] in ("lossy", "lossless") and header["encoding"] in ("jpeg", "png")
    assert header["width"] > 0 and header["viewport"] == "v0"
    # WebRTC: decoded video of the viewport's size, not blank, and inverting it (over the
    # data channel) changed it
    assert (result["videoWidth"], result["videoHeight"]) == (512, 512)
    assert result["before"]["std"] > 10, result["before"]
    moved = np.abs(np.subtract(result["after"]["thumb"], result["before"]["thumb"])).mean()
    assert moved > 10, f"inverting did not change the video (mean block change {moved:.2f})"
    assert result["inbound"]["framesDecoded"] > 1
    # data channel: lossless frames (chunked when large), and events
    assert result["changedLossless"] >= 1
    assert any(e["type"] == "hello" for e in result["events"])
    assert shot.exists()
    bits = result["inbound"]["bytesReceived"] * 8
    print(f"chromium: first video frame {result['firstVideoFrameMs']:.0f} ms after page start,"
          f" {result['inbound']['framesDecoded']} frames decoded ({result.get('codec')}), "
          f"{bits / result['elapsedS'] / 1e6:.2f} Mbit/s average; screenshot {shot}")
