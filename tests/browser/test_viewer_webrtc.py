"""The viewer page's transport in a real Chromium: WebRTC video, and the WebSocket fallback.

As in ``test_webrtc_chromium.py``, ``voxcast serve`` runs in one private network namespace and
Chromium in another, joined by a veth pair, over the imported test archive (the ACRIN PET-CT).
The real viewer page (``/viewer?study=…&token=…``) must switch to WebRTC video (decoded frames,
a picture that follows the wheel) and still show the lossless settle frame — the pixels of
``POST /api/render`` — on its canvas once paging stops. With UDP from the browser's namespace
refused by a policy route (what a hospital firewall does; on a host with a real interface ICE
may well connect, so plain localhost proves nothing) the page must fall back to the WebSocket's
JPEG frames within about 6 s, keep paging, and log no console error.
"""

from __future__ import annotations

import base64
import contextlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.netns import NetNamespace, veth_pair
from tests.browser.test_webrtc_chromium import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NsServer,
    skip_without_webrtc_setup,
)
from tests.conftest import ImportedArchive, free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SERVER_IP = "10.213.66.1"
VIEWPORT = {"width": 1040, "height": 700}
TIMEOUT_MS = 30_000
FALLBACK_S = 6.0  # from the first image to the WebSocket fallback (its timer is 4 s)
DROP_S = 15.0     # from UDP refused to the fallback (ICE notices; then 3 s of grace)

# Every value a viewport's data-picture and data-frame-kind take, from now on.
RECORD = """() => {
  window.seen = {picture: [], kind: []};
  const el = document.querySelector('[data-viewport-id="v0"]');
  new MutationObserver((records) => { for (const r of records) {
    if (r.attributeName === 'data-picture') window.seen.picture.push(el.dataset.picture);
    if (r.attributeName === 'data-frame-kind') window.seen.kind.push(el.dataset.frameKind);
  } }).observe(el, {attributes: true, attributeFilter: ['data-picture', 'data-frame-kind']});
}"""
# The viewport's video, drawn 64x64: luminance per pixel.
VIDEO_THUMB = """() => {
  const v = document.querySelector('[data-viewport-id="v0"] video');
  const c = document.createElement('canvas'); c.width = 64; c.height = 64;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 64);
  const d = g.getImageData(0, 0, 64, 64).data, out = [];
  for (let i = 0; i < d.length; i += 4) out.push(0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]);
  return out;
}"""
# Per viewport: decoded video frames, and how coloured its video is (fusion is, CT is not).
VIDEO_COLOUR = """() => [...document.querySelectorAll('.viewport')].map((el) => {
  const v = el.querySelector('video'), c = document.createElement('canvas');
  c.width = 64; c.height = 64; const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 64);
  const d = g.getImageData(0, 0, 64, 64).data; let colour = 0;
  for (let i = 0; i < d.length; i += 4) colour += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]);
  return {id: el.dataset.viewportId, frames: v.getVideoPlaybackQuality().totalVideoFrames,
          colour: colour / (d.length / 4)};
})"""
CANVAS_RGBA = """() => {
  const c = document.querySelector('[data-viewport-id="v0"] canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = ''; for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
  return {width: c.width, height: c.height, rgba: btoa(s)};
}"""
SETTLED = ("window.voxcast.frames.v0?.kind === 'lossless'"
           " && window.voxcast.frames.v0.input_seq >= window.voxcast.states.v0.seq"
           " && document.querySelector('[data-viewport-id=\"v0\"]').dataset.picture !== 'video'")


@dataclass
class Site:
    server: NsServer
    browser_ns: NetNamespace
    study_uid: str

    def run(self, fn: Callable[..., Any], *args: object) -> Any:
        """``fn(*args)`` in the browser's namespace (Chromium and requests must start there)."""
        return self.browser_ns.run(fn, *args)


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """One server over the archive in its namespace, a browser namespace next to it."""
    skip_without_webrtc_setup()
    archive: ImportedArchive = request.getfixturevalue("imported_archive")  # after the skips
    server_ns, browser_ns = NetNamespace(), NetNamespace()
    server = NsServer(data_dir=archive.data_dir, http_port=free_port(),
                      dicom_port=free_port(), host=SERVER_IP)
    try:
        veth_pair(server_ns, browser_ns, prefix=SERVER_IP.rsplit(".", 1)[0], name="vcv")
        server_ns.run(server.start)
        studies = browser_ns.run(lambda: server.http.get(
            f"{server.url}/api/studies", params={"PatientID": "ACRIN-NSCLC-FDG-PET-042"},
            timeout=30).json())
        yield Site(server=server, browser_ns=browser_ns, study_uid=studies[0]["study_uid"])
        assert not [line for line in server.log if "Traceback" in line], "".join(server.log)
    finally:
        server.stop()
        browser_ns.close()
        server_ns.close()


@contextlib.contextmanager
def udp_refused(ns: NetNamespace) -> Iterator[None]:
    """Refuse every UDP datagram leaving ``ns`` (loopback aside); TCP still passes."""
    ns.ip("rule", "add", "ipproto", "udp", "priority", "100", "table", "100")
    ns.ip("route", "add", "prohibit", "default", "table", "100")
    try:
        yield
    finally:
        ns.ip("route", "flush", "table", "100")
        ns.ip("rule", "del", "priority", "100")


class Viewer:
    """Chromium on the viewer page, console errors collected. Use inside the browser namespace."""

    def __init__(self, p: Any, site: Site, query: str = "", browser: Any = None) -> None:
        self.owns_browser = browser is None
        self.browser = browser or p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport=VIEWPORT)
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        server = site.server
        start = time.perf_counter()
        self.page.goto(f"{server.url}/viewer?study={site.study_uid}&token={server.token}{query}")
        self.page.wait_for_function("(window.voxcast?.frames?.v0?.seq ?? 0) >= 1")
        self.first_image_s = time.perf_counter() - start

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def js(self, expression: str, arg: object = None) -> Any:
        return self.page.evaluate(expression, arg)

    def page_with_wheel(self, notches: int = 4) -> int:
        """Wheel through ``notches`` slices over v0; returns the slice index before."""
        before = int(self.js("window.voxcast.states.v0.view.slice_index"))
        box = self.page.locator('[data-viewport-id="v0"]').bounding_box()
        assert box is not None
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(notches):
            self.page.mouse.wheel(0, 120)
            self.page.wait_for_timeout(40)
        self.page.wait_for_function(
            f"window.voxcast.states.v0.view.slice_index !== {before}")
        return before

    def close(self) -> None:
        self.page.close()
        if self.owns_browser:
            self.browser.close()


def _webrtc(site: Site, shots: Path) -> dict[str, Any]:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        v = Viewer(p, site)
        try:
            out["first_image_s"] = v.first_image_s
            start = time.perf_counter()
            v.page.wait_for_function("window.voxcast.webrtc?.state === 'live'", timeout=10_000)
            out["live_s"] = time.perf_counter() - start + v.first_image_s
            out["transport"] = v.js("window.voxcast.transport")
            out["label"] = v.js("[document.querySelector('#transport').dataset.transport,"
                                " document.querySelector('#transport').textContent]")
            out["video"] = v.js("""(() => { const e = document.querySelector(
                '[data-viewport-id="v0"] video'); return {frames:
                e.getVideoPlaybackQuality().totalVideoFrames, w: e.videoWidth, h: e.videoHeight,
                attrs: ['playsinline', 'muted', 'autoplay'].filter((a) => e.hasAttribute(a)),
                hidden: e.hidden}; })()""")
            v.page.wait_for_function(SETTLED)
            v.js(RECORD)
            before = np.array(v.js(VIDEO_THUMB))
            out["video_std"] = float(before.std())
            out["slice_before"] = v.page_with_wheel()
            # the video follows the wheel (its frames come over WebRTC, not the WebSocket)
            v.page.wait_for_function(f"""(() => {{ const before = {before.tolist()};
                const now = ({VIDEO_THUMB})(); let d = 0;
                for (let i = 0; i < now.length; i++) d += Math.abs(now[i] - before[i]);
                return d / now.length > 2; }})()""", polling=100)
            v.page.wait_for_function(SETTLED)
            out["slice_after"] = v.js("window.voxcast.states.v0.view.slice_index")
            out["channel_frame_bytes"] = v.js("window.voxcast.webrtcChannelFrameBytes || 0")
            out["seen"] = v.js("window.seen")
            # the canvas on top holds the lossless frame: the pixels of POST /api/render
            view = v.js("window.voxcast.states.v0.view")
            canvas = v.js(CANVAS_RGBA)
            r = site.server.http.post(f"{site.server.url}/api/render", json=view, timeout=60)
            assert r.status_code == 200, r.text
            reference = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), np.int16)
            shown = np.frombuffer(base64.b64decode(canvas["rgba"]), np.uint8).reshape(
                canvas["height"], canvas["width"], 4)[..., :3].astype(np.int16)
            out["reference_shape"], out["canvas_shape"] = reference.shape, shown.shape
            out["max_diff"] = int(np.abs(shown - reference).max()) \
                if shown.shape == reference.shape else None
            out["picture"] = v.js("document.querySelector('[data-viewport-id=\"v0\"]')"
                                  ".dataset.picture")
            v.page.screenshot(path=str(shots / "viewer-webrtc-settled.png"))
            # the same page with the canvas hidden: what the video shows under the overlays
            v.page.add_style_tag(content=".viewport canvas { visibility: hidden !important }")
            v.page.wait_for_timeout(300)
            v.page.screenshot(path=str(shots / "viewer-webrtc-video.png"))
            # a new session (layout change) connects again: one video per viewport, in order
            v.page.select_option("[data-testid=layout]", "petct-1x3")
            v.page.wait_for_function("window.voxcast.layout === 'petct-1x3'"
                                     " && window.voxcast.webrtc?.state === 'live'")
            out["videos"] = v.js(VIDEO_COLOUR)
            out["errors"] = v.errors
        finally:
            v.close()
    return out


def _fallback(site: Site, shots: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        with udp_refused(site.browser_ns):
            v = Viewer(p, site)
            try:
                out["first_image_s"] = v.first_image_s
                start = time.perf_counter()
                v.page.wait_for_function("window.voxcast.webrtc?.state === 'failed'",
                                         timeout=FALLBACK_S * 1000)
                out["fallback_s"] = time.perf_counter() - start + v.first_image_s
                out["webrtc"] = v.js("window.voxcast.webrtc")
                out["transport"] = v.js("window.voxcast.transport")
                out["label"] = v.js("document.querySelector('#transport').dataset.transport")
                out["videos_hidden"] = v.js("[...document.querySelectorAll('.viewport video')]"
                                            ".every((e) => e.hidden)")
                v.page.wait_for_function(SETTLED)
                v.js(RECORD)
                seq = v.js("window.voxcast.frames.v0.seq")
                v.page_with_wheel()
                v.page.wait_for_function(f"window.voxcast.frames.v0.seq > {seq}")
                v.page.wait_for_function(SETTLED)
                out["seen"] = v.js("window.seen")
                v.page.screenshot(path=str(shots / "viewer-websocket-fallback.png"))
                out["errors"] = v.errors
                # ?transport=websocket never tries WebRTC
                forced = Viewer(p, site, "&transport=websocket", browser=v.browser)
                out["forced"] = forced.js("[window.voxcast.webrtc, window.voxcast.transport]")
                out["forced_errors"] = forced.errors
                forced.close()
            finally:
                v.close()
    return out


def _drop(site: Site) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        v = Viewer(p, site)
        try:
            v.page.wait_for_function("window.voxcast.webrtc?.state === 'live'", timeout=10_000)
            v.page.wait_for_function(SETTLED)
            with udp_refused(site.browser_ns):
                start = time.perf_counter()
                v.page.wait_for_function("window.voxcast.webrtc.state === 'failed'",
                                         timeout=DROP_S * 1000)
                out["fallback_s"] = time.perf_counter() - start
                out["webrtc"] = v.js("[window.voxcast.webrtc, window.voxcast.transport]")
                v.js(RECORD)
                v.page_with_wheel()
                v.page.wait_for_function(SETTLED)
                out["seen"] = v.js("window.seen")
                out["errors"] = v.errors
        finally:
            v.close()
    return out


def test_viewer_shows_webrtc_video_and_the_lossless_settle(site: Site, tmp_path: Path) -> None:
    out = site.run(_webrtc, site, tmp_path)
    print({k: v for k, v in out.items() if k != "seen"}, f"screenshots in {tmp_path}")
    assert out["first_image_s"] < 3.0
    assert out["transport"] == "webrtc" and out["label"][0] == "webrtc" and out["label"][1]
    assert out["video"]["frames"] > 0 and not out["video"]["hidden"], out["video"]
    assert out["video"]["attrs"] == ["playsinline", "muted", "autoplay"]
    assert out["video_std"] > 10, "the video is blank"
    assert out["slice_after"] != out["slice_before"]
    # while paging the video showed; once settled the canvas is on top again
    assert "video" in out["seen"]["picture"] and out["picture"] == "canvas", out["seen"]
    # once video flows the WebSocket brings settle frames only (no JPEG)
    assert out["seen"]["kind"] and set(out["seen"]["kind"]) == {"lossless"}, out["seen"]
    # and the control channel does not repeat those PNGs (it carries events only)
    assert out["channel_frame_bytes"] == 0, out["channel_frame_bytes"]
    assert out["canvas_shape"] == out["reference_shape"]
    assert out["max_diff"] is not None and out["max_diff"] <= 1, out["max_diff"]
    # petct-1x3 is CT, PET, fusion: the third track is the fused (coloured) one
    videos = out["videos"]
    assert [x["id"] for x in videos] == ["v0", "v1", "v2"], videos
    assert all(x["frames"] > 0 for x in videos), videos
    assert videos[0]["colour"] < 2 < videos[2]["colour"], videos
    assert out["errors"] == []


def test_viewer_falls_back_to_websocket_frames_when_webrtc_cannot_connect(
        site: Site, tmp_path: Path) -> None:
    out = site.run(_fallback, site, tmp_path)
    print({k: v for k, v in out.items() if k != "seen"}, f"screenshot in {tmp_path}")
    assert out["first_image_s"] < 3.0  # trying WebRTC never delays the first image
    assert out["transport"] == "websocket" and out["label"] == "websocket"
    assert "ICE" in out["webrtc"]["reason"], out["webrtc"]
    assert out["videos_hidden"]
    # paging goes on over the WebSocket: JPEG while interacting, then the PNG settle
    assert "lossy" in out["seen"]["kind"] and out["seen"]["kind"][-1] == "lossless", out["seen"]
    assert out["errors"] == []
    assert out["forced"] == [{"state": "off", "reason": None}, "websocket"]
    assert out["forced_errors"] == []


def test_viewer_falls_back_to_websocket_frames_when_a_live_connection_drops(
        site: Site) -> None:
    out = site.run(_drop, site)
    print(out)
    assert out["webrtc"][1] == "websocket", out["webrtc"]
    assert out["webrtc"][0]["reason"] in ("connection lost", "connection failed"), out["webrtc"]
    # the WebSocket was told to send JPEG again
    assert "lossy" in out["seen"]["kind"] and out["seen"]["kind"][-1] == "lossless", out["seen"]
    assert out["errors"] == []
