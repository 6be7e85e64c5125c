"""WebRTC output of render sessions, received by an aiortc client.

aioice never offers 127.0.0.1, so every peer here runs inside a private network namespace
(``tests/browser/netns.py``) whose only non-loopback interfaces are the two ends of a veth pair
with addresses of a /30 that exists nowhere else. First against a fake session (the track, the
encoders, the data channel and its chunking), then against a real ``voxcast serve`` started
inside the namespace: the decoded video must match ``POST /api/render`` of the same state.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from PIL import Image

from streaming.protocol import ProtocolError, unpack_frame
from streaming.webrtc import (
    QUALITY,
    VIDEO_TIME_BASE,
    RenderH264Encoder,
    RenderPeer,
    RenderVideoTrack,
    RenderVp8Encoder,
    VideoQuality,
    chunk_frame,
    parse_offer,
    remote_max_message_bytes,
    to_video_frame,
)
from tests.browser.netns import NetNamespace, unavailable_reason, veth_pair
from tests.conftest import ImportedArchive, ServerProcess, free_port

TIMEOUT_S = 30.0


def _phantom(size: int, shift: int = 0) -> np.ndarray:
    """A smooth grey test picture with edges: a gradient, a disc and bars."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 40 + 120 * x / size + 40 * np.sin((y + 4 * shift) / 9.0)
    img[(x - size / 2 - shift) ** 2 + (y - size / 2) ** 2 < (size / 5) ** 2] = 230
    img[:, (size // 8):(size // 8 + 6)] = 10
    img += np.random.default_rng(size).normal(0, 3, img.shape)  # CT-like noise: PNG > 64 KiB
    return np.clip(img, 0, 255).astype(np.uint8)


def _compare(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(mean absolute difference in grey levels, correlation) of two grey pictures."""
    a, b = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    return float(np.abs(a - b).mean()), float(np.corrcoef(a, b)[0, 1])


# -- units: no network ----------------------------------------------------------------------


def test_to_video_frame_grey_rgb_and_upscale() -> None:
    grey = _phantom(64)
    frame = to_video_frame(grey, 64, 64)
    assert (frame.width, frame.height, frame.format.name) == (64, 64, "yuv420p")
    mad, _ = _compare(frame.to_ndarray(format="gray"), grey)
    assert mad < 1.0  # video range round trip
    small = to_video_frame(grey[::2, ::2].copy(), 64, 64)  # interactive half-size frame
    assert (small.width, small.height) == (64, 64)
    rgb = to_video_frame(np.stack([grey] * 3, axis=-1), 63, 65)  # odd: rounded up to even
    assert (rgb.width, rgb.height) == (64, 66)
    with pytest.raises(ValueError):
        to_video_frame(grey.astype(np.float32), 64, 64)
    with pytest.raises(ValueError):
        to_video_frame(np.zeros((4, 4, 4), np.uint8), 4, 4)


@pytest.mark.parametrize("encoder_cls", [RenderVp8Encoder, RenderH264Encoder])
def test_encoders_use_our_rates_and_take_1024(encoder_cls: type) -> None:
    encoder = encoder_cls()
    assert encoder.target_bitrate == QUALITY.start_bps
    encoder.target_bitrate = 10  # a receiver's low estimate stops at our floor
    assert encoder.target_bitrate == QUALITY.min_bps
    encoder.target_bitrate = 10**9
    assert encoder.target_bitrate == QUALITY.max_bps
    frame = to_video_frame(_phantom(1024), 1024, 1024)
    frame.pts, frame.time_base = 0, VIDEO_TIME_BASE
    t0 = time.perf_counter()
    payloads, _ = encoder.encode(frame, force_keyframe=True)
    encode_ms = (time.perf_counter() - t0) * 1000
    assert payloads and encoder.codec.bit_rate == QUALITY.max_bps
    print(f"{encoder_cls.__name__} 1024x1024 keyframe: {encode_ms:.1f} ms, "
          f"{sum(map(len, payloads))} bytes")


def test_video_quality_is_validated() -> None:
    with pytest.raises(ValueError):
        VideoQuality(min_bps=5, start_bps=4, max_bps=6)


def test_chunking_round_trip() -> None:
    payload = np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    header = {"viewport": "v0", "frame_seq": 7, "kind": "lossless", "encoding": "png"}
    messages = chunk_frame(header, payload, 65536)
    assert len(messages) == 5 and all(len(m) <= 65536 for m in messages)
    parts = [unpack_frame(m) for m in messages]
    assert [h["chunk_index"] for h, _ in parts] == list(range(5))
    assert all(h["chunk_count"] == 5 and h["payload_bytes"] == len(payload) for h, _ in parts)
    assert all(h["chunk_offset"] == sum(len(p) for _, p in parts[:i])
               for i, (h, _) in enumerate(parts))
    assert b"".join(p for _, p in parts) == payload
    small = chunk_frame(header, b"png", 65536)
    assert len(small) == 1 and unpack_frame(small[0])[0]["chunk_count"] == 1
    with pytest.raises(ValueError):
        chunk_frame(header, payload, 100)


def test_max_message_size_from_offer() -> None:
    assert remote_max_message_bytes("v=0\r\na=max-message-size:262144\r\n") == 65536
    assert remote_max_message_bytes("v=0\r\na=max-message-size:16384\r\n") == 16384
    assert remote_max_message_bytes("v=0\r\na=max-message-size:0\r\n") == 65536
    assert remote_max_message_bytes("v=0\r\n") == 65536


@pytest.mark.parametrize("body", [None, [], {"type": "answer", "sdp": "v=0"},
                                  {"type": "offer"}, {"type": "offer", "sdp": 5},
                                  {"type": "offer", "sdp": "hello"},
                                  {"type": "offer", "sdp": "v=0\r\n"},
                                  {"type": "offer", "sdp": "v=0" + "x" * 70_000}])
def test_parse_offer_invalid(body: Any) -> None:
    from streaming.app import ApiError

    with pytest.raises(ApiError) as err:
        parse_offer(body)
    assert err.value.status == 400


def test_track_keeps_only_the_newest_frame_and_resends() -> None:
    async def main() -> None:
        track = RenderVideoTrack("v0", keepalive_s=0.05)
        for shift in range(10):  # ten pushes before the encoder asks: one frame comes out
            track.push(_phantom(32, shift), 32, 32)
        first = await track.recv()
        assert np.array_equal(first.to_ndarray(format="gray"),
                              to_video_frame(_phantom(32, 9), 32, 32).to_ndarray(format="gray"))
        again = await track.recv()  # nothing new: the same picture, a later pts
        assert again.pts > first.pts and again.time_base == VIDEO_TIME_BASE
        assert track.frames_resent == 1 and track.frames_pushed == 10
        track.stop()
        with pytest.raises(MediaStreamError):  # the sender stops
            await track.recv()

    asyncio.run(main())


# -- a fake session over a real WebRTC connection inside a namespace -------------------------


@dataclass
class FakeViewport:
    id: str
    size_px: tuple[int, int]
    shift: int = 0


@dataclass(frozen=True)
class FakeFrame:
    """``streaming.sessions.SentFrame`` with a PNG payload for every kind."""

    viewport: str
    frame_seq: int
    input_seq: int
    kind: str
    pixels: np.ndarray
    width: int
    height: int
    render_ms: float = 1.0
    state: Any = None
    encoding: str = "png"
    payload: bytes = b""
    encode_ms: float = 0.0

    def header(self) -> dict[str, Any]:
        h, w = self.pixels.shape[:2]
        return {"viewport": self.viewport, "frame_seq": self.frame_seq,
                "input_seq": self.input_seq, "kind": self.kind, "encoding": self.encoding,
                "width": w, "height": h, "view_width": self.width, "view_height": self.height,
                "render_ms": self.render_ms, "encode_ms": self.encode_ms}


@dataclass
class FakeSession:
    """Just the ``Session`` interface: frames of a phantom, paging shifts it."""

    id: str = "fake"
    viewports: list[FakeViewport] = field(default_factory=lambda: [
        FakeViewport("v0", (256, 256)), FakeViewport("v1", (1024, 1024))])
    sinks: list[Any] = field(default_factory=list)
    handled: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    touched: int = 0

    def attach(self, sink: Any) -> None:
        self.sinks.append(sink)
        for vp in self.viewports:
            asyncio.ensure_future(self._emit(vp, 0, "lossless"))

    def detach(self, sink: Any) -> None:
        self.sinks.remove(sink)

    def touch(self) -> None:
        self.touched += 1

    def describe(self) -> dict[str, Any]:
        return {"session_id": self.id, "viewports": [{"id": v.id} for v in self.viewports]}

    async def handle(self, message: dict[str, Any], sink: Any = None) -> None:
        self.handled.append(message)
        vp = next((v for v in self.viewports if v.id == message.get("viewport")), None)
        if vp is None:
            raise ProtocolError("unknown viewport", code="unknown_viewport",
                                seq=message["seq"])
        vp.shift += int(message.get("delta", 1))
        await self._emit(vp, message["seq"], "lossy", scale=2)
        await self._emit(vp, message["seq"], "lossless")

    def picture(self, vp: FakeViewport) -> np.ndarray:
        return _phantom(vp.size_px[0], vp.shift)

    async def _emit(self, vp: FakeViewport, input_seq: int, kind: str, scale: int = 1) -> None:
        self.seq += 1
        pixels = np.ascontiguousarray(self.picture(vp)[::scale, ::scale])
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
        frame = FakeFrame(vp.id, self.seq, input_seq, kind, pixels, *vp.size_px,
                          payload=buf.getvalue())
        for sink in list(self.sinks):
            if kind == "lossless" or sink.wants_lossy:
                await sink.send_frame(frame)
            await sink.send_event({"type": "state", "viewport": vp.id, "seq": input_seq})


class Client:
    """An aiortc peer receiving one video track per viewport and the control channel."""

    def __init__(self, viewports: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for _ in range(viewports):
            self.pc.addTransceiver("video", direction="recvonly")
        self.channel: RTCDataChannel = self.pc.createDataChannel("control")
        self.tracks: list[MediaStreamTrack] = []
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: asyncio.Queue[tuple[dict[str, Any], bytes]] = asyncio.Queue()
        self._chunks: list[bytes] = []
        self.opened = asyncio.Event()
        self.pc.on("track", self.tracks.append)
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._message)

    def _message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.events.put_nowait(json.loads(message))
            return
        header, payload = unpack_frame(message)
        self._chunks.append(payload)
        if header["chunk_index"] == header["chunk_count"] - 1:
            whole = b"".join(self._chunks)
            self._chunks = []
            assert len(whole) == header["payload_bytes"]
            self.frames.put_nowait((header, whole))

    async def offer(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription

    async def next_frame(self, index: int, *, after_s: float = 0.0) -> np.ndarray:
        """The next decoded picture of track ``index`` received ``after_s`` from now."""
        deadline = time.monotonic() + after_s
        while True:
            frame = await asyncio.wait_for(self.tracks[index].recv(), TIMEOUT_S)
            if time.monotonic() >= deadline:
                return frame.to_ndarray(format="gray")

    async def lossless(self, viewport: str, min_seq: int = 0) -> tuple[dict, np.ndarray]:
        while True:
            header, png = await asyncio.wait_for(self.frames.get(), TIMEOUT_S)
            if header["viewport"] == viewport and header["input_seq"] >= min_seq:
                return header, np.asarray(Image.open(io.BytesIO(png)))

    async def close(self) -> None:
        await self.pc.close()


@pytest.fixture(scope="module")
def netns() -> Iterator[NetNamespace]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    ns = NetNamespace()
    try:
        veth_pair(ns, ns, prefix="10.213.62", name="vct")
        yield ns
    finally:
        ns.close()


def test_fake_session_video_and_control_channel(netns: NetNamespace) -> None:
    async def main() -> dict[str, float]:
        session = FakeSession()
        peer = RenderPeer(session)
        client = Client(len(session.viewports))
        t0 = time.monotonic()
        answer = await peer.answer(await client.offer())
        await client.pc.setRemoteDescription(answer)
        assert len(client.tracks) == 2
        try:
            first = await client.next_frame(0)
            first_ms = (time.monotonic() - t0) * 1000
            assert first.shape == (256, 256)
            await asyncio.wait_for(client.opened.wait(), TIMEOUT_S)
            # the 1024² viewport, after its keyframe had time to refine
            big = await client.next_frame(1, after_s=1.0)
            mad, corr = _compare(big, session.picture(session.viewports[1]))
            assert big.shape == (1024, 1024) and mad < 3.0 and corr > 0.98, (mad, corr)
            # the lossless settle frame of v1 over the data channel: chunked, exact
            header, png = await client.lossless("v1")
            assert header["chunk_count"] > 1 and header["kind"] == "lossless"
            assert np.array_equal(png, session.picture(session.viewports[1]))
            # paging over the control channel changes the video
            before = await client.next_frame(0)
            client.channel.send(json.dumps({"type": "page", "viewport": "v0", "seq": 5,
                                            "delta": 6}))
            header, png = await client.lossless("v0", min_seq=5)
            assert header["input_seq"] == 5
            assert np.array_equal(png, session.picture(session.viewports[0]))
            after = await client.next_frame(0, after_s=0.3)
            assert _compare(after, before)[0] > 5
            assert _compare(after, session.picture(session.viewports[0]))[0] < 3
            # a bad control message becomes an error event, the channel stays open
            client.channel.send("{not json")
            client.channel.send(json.dumps({"type": "page", "viewport": "v9", "seq": 6}))
            errors = []
            while len(errors) < 2:
                event = await asyncio.wait_for(client.events.get(), TIMEOUT_S)
                if event["type"] == "error":
                    errors.append(event)
            assert [e["code"] for e in errors] == ["bad_json", "unknown_viewport"]
            assert errors[1]["seq"] == 6
            assert session.handled[0]["type"] == "page" and session.touched >= 2
            bps = await _burst_bitrate(peer, client, session, "v1")
            encoder = peer.pc.getTransceivers()[1].sender._RTCRtpSender__encoder
            assert isinstance(encoder, RenderVp8Encoder)  # ours, not aiortc's own
            return {"first_frame_ms": first_ms, "mad": mad, "corr": corr, "bps": bps,
                    "target_bps": encoder.target_bitrate}
        finally:
            await client.close()
            await asyncio.wait_for(peer.close(), TIMEOUT_S)
            assert session.sinks == []

    result = netns.run(asyncio.run, main())
    print(f"fake session: first frame {result['first_frame_ms']:.0f} ms, 1024² VP8 "
          f"MAD {result['mad']:.2f} corr {result['corr']:.4f}, "
          f"{result['bps'] / 1e6:.1f} Mbit/s sent while paging, encoder target "
          f"{result['target_bps'] / 1e6:.1f} Mbit/s")
    assert QUALITY.min_bps <= result["target_bps"] <= QUALITY.max_bps


async def _burst_bitrate(peer: RenderPeer, client: Client, session: FakeSession,
                         viewport: str, pages: int = 30) -> float:
    """Bits per second the server sent while the user paged ``viewport`` at 30 Hz."""
    async def sent() -> int:
        stats = await peer.pc.getStats()
        return sum(x.bytesSent for x in stats.values() if x.type == "outbound-rtp")

    start_bytes, start = await sent(), time.monotonic()
    for i in range(pages):
        client.channel.send(json.dumps({"type": "page", "viewport": viewport,
                                        "seq": 100 + i, "delta": 1}))
        await asyncio.sleep(1 / 30)  # the user's pace, not a wait for a result
    await client.lossless(viewport, min_seq=100 + pages - 1)
    return (await sent() - start_bytes) * 8 / (time.monotonic() - start)


def test_client_going_away_closes_the_peer(netns: NetNamespace) -> None:
    async def main() -> None:
        session = FakeSession(viewports=[FakeViewport("v0", (128, 128))])
        closed = asyncio.Event()
        peer = RenderPeer(session, on_closed=lambda _: closed.set())
        client = Client(1)
        await client.pc.setRemoteDescription(await peer.answer(await client.offer()))
        await client.next_frame(0)
        await client.close()  # the data channel closes: the server side follows
        await asyncio.wait_for(closed.wait(), TIMEOUT_S)
        assert session.sinks == [] and peer.pc.connectionState == "closed"

    netns.run(asyncio.run, main())


def test_offer_without_enough_video_is_refused(netns: NetNamespace) -> None:
    from streaming.app import ApiError

    async def main() -> None:
        session = FakeSession()
        peer = RenderPeer(session)
        client = Client(1)  # two viewports, one video m-line
        try:
            with pytest.raises(ApiError, match="video m-line"):
                await peer.answer(await client.offer())
            assert session.sinks == []
        finally:
            await client.close()
            await peer.close()

    netns.run(asyncio.run, main())


# -- a real server ---------------------------------------------------------------------------

ACRIN_PID = "ACRIN-NSCLC-FDG-PET-042"


@pytest.fixture(scope="module")
def ns_server(netns: NetNamespace, imported_archive: ImportedArchive) -> Iterator[ServerProcess]:
    """``voxcast serve`` over the imported archive, started from the namespace's thread so
    that the process (and its ICE candidates) lives in the namespace. (``archive_server``
    runs in the host's namespace, where the only candidates are the host's addresses.)"""
    srv = ServerProcess(data_dir=imported_archive.data_dir, http_port=free_port(),
                        dicom_port=free_port())
    netns.run(srv.start)
    try:
        yield srv
    finally:
        srv.stop()


async def _grey_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


async def _new_session(http: aiohttp.ClientSession, server: ServerProcess,
                       size: int) -> dict[str, Any]:
    async with http.get(f"{server.url}/api/studies", params={"PatientID": ACRIN_PID}) as r:
        study_uid = (await r.json())[0]["study_uid"]
    async with http.post(f"{server.url}/api/sessions", json={
            "study_uid": study_uid, "layout": "1x1", "viewport_size": [size, size]}) as r:
        assert r.status == 201, await r.text()
        return dict(await r.json())


async def _render(http: aiohttp.ClientSession, server: ServerProcess,
                  view: dict[str, Any]) -> np.ndarray:
    async with http.post(f"{server.url}/api/render", json=view) as r:
        assert r.status == 200, await r.text()
        return await _grey_png(await r.read())


async def _state(client: Client, seq: int) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(client.events.get(), TIMEOUT_S)
        if event["type"] == "state" and event["seq"] >= seq and not event.get("coarse"):
            return event


@pytest.mark.integration
def test_real_session_video_matches_render(netns: NetNamespace,
                                           ns_server: ServerProcess) -> None:
    server = ns_server

    async def main() -> dict[str, float]:
        async with aiohttp.ClientSession(headers=server.headers) as http:
            info = await _new_session(http, server, 1024)
            client = Client(len(info["viewports"]))
            try:
                t0 = time.monotonic()
                offer = await client.offer()
                async with http.post(info["webrtc_url"], json={
                        "sdp": offer.sdp, "type": offer.type}) as r:
                    assert r.status == 200, await r.text()
                    answer = await r.json()
                assert answer["type"] == "answer"
                await client.pc.setRemoteDescription(RTCSessionDescription(**answer))
                first = await client.next_frame(0)
                first_ms = (time.monotonic() - t0) * 1000
                assert first.shape == (1024, 1024)
                await asyncio.wait_for(client.opened.wait(), TIMEOUT_S)
                # The settle frame on the data channel is exactly POST /api/render's PNG.
                want = await _render(http, server, info["viewports"][0]["view"])
                header, png = await client.lossless("v0")
                assert header["kind"] == "lossless" and header["encoding"] == "png"
                assert np.array_equal(np.asarray(Image.fromarray(png).convert("L")), want)
                video = await client.next_frame(0, after_s=1.0)
                mad, corr = _compare(video, want)
                assert mad < 3.0 and corr > 0.98, (mad, corr)
                # Paging over the data channel changes the video to the new state's render.
                client.channel.send(json.dumps({"type": "page", "viewport": "v0", "seq": 1,
                                                "delta": 12}))
                state = await _state(client, 1)
                want2 = await _render(http, server, state["view"])
                header, png = await client.lossless("v0", min_seq=1)
                assert np.array_equal(np.asarray(Image.fromarray(png).convert("L")), want2)
                video2 = await client.next_frame(0, after_s=1.0)
                mad2, corr2 = _compare(video2, want2)
                assert mad2 < 3.0 and corr2 > 0.98, (mad2, corr2)
                assert _compare(video2, video)[0] > 2 * mad2  # it moved
                return {"first_ms": first_ms, "mad": mad, "corr": corr, "mad2": mad2,
                        "corr2": corr2}
            finally:
                await client.close()

    result = netns.run(asyncio.run, main())
    print(f"real session 1024²: first video frame {result['first_ms']:.0f} ms after the "
          f"offer; settled video vs /api/render MAD {result['mad']:.2f} corr "
          f"{result['corr']:.4f}; after paging MAD {result['mad2']:.2f} corr "
          f"{result['corr2']:.4f}")


@pytest.mark.integration
@pytest.mark.parametrize("body", [
    {"type": "offer", "sdp": "v=0\r\nm=video\r\na=fingerprint:x\r\na=ice-ufrag:u\r\n"},
    {"type": "offer", "sdp": "v=0\r\n"}, {"sdp": "v=0"}, "not an object"])
def test_bad_offer_is_400(netns: NetNamespace, ns_server: ServerProcess, body: Any) -> None:
    server = ns_server

    async def main() -> None:
        async with aiohttp.ClientSession(headers=server.headers) as http:
            info = await _new_session(http, server, 256)
            async with http.post(info["webrtc_url"], json=body) as r:
                assert r.status == 400, await r.text()
                assert "error" in await r.json()
            async with http.post(info["webrtc_url"], data=b"{truncated") as r:
                assert r.status == 400
            async with http.post(f"{server.url}/api/sessions/nope/webrtc",
                                 json={"type": "offer", "sdp": "v=0"}) as r:
                assert r.status == 404
            async with http.delete(f"{server.url}/api/sessions/{info['session_id']}"):
                pass

    netns.run(asyncio.run, main())


def test_h264_carries_1024(netns: NetNamespace) -> None:
    """A client that only takes H.264 gets our x264 settings (level 4.1 holds 1024x1024)."""
    async def main() -> tuple[float, float]:
        session = FakeSession(viewports=[FakeViewport("v0", (1024, 1024))])
        peer = RenderPeer(session)
        client = Client(1)
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType in ("video/H264", "video/rtx")]
        client.pc.getTransceivers()[0].setCodecPreferences(h264)
        try:
            await client.pc.setRemoteDescription(await peer.answer(await client.offer()))
            encoder = peer.pc.getTransceivers()[0].sender._RTCRtpSender__encoder
            assert isinstance(encoder, RenderH264Encoder)
            video = await client.next_frame(0, after_s=1.0)
            assert video.shape == (1024, 1024)
            return _compare(video, session.picture(session.viewports[0]))
        finally:
            await client.close()
            await peer.close()

    mad, corr = netns.run(asyncio.run, main())
    print(f"H.264 1024²: MAD {mad:.2f} corr {corr:.4f}")
    assert mad < 3.0 and corr > 0.98
