"""WebRTC output of render sessions: one video track per viewport, one control data channel.

``POST /api/sessions/{id}/webrtc`` takes the client's offer ``{"sdp", "type": "offer"}`` and
answers ``{"sdp", "type": "answer"}`` (400 with the reason for a bad body or an offer that
cannot carry the session, 404 for an unknown session). The offer must hold one video m-line
(e.g. a ``recvonly`` transceiver) per viewport: the answer sends viewport ``i``'s frames on the
``i``-th video m-line, in the session's viewport order. Every connection is a
:class:`RenderPeer`, a ``FrameSink`` attached to the session (``wants_lossy``): each
viewport's :class:`RenderVideoTrack` keeps only the latest frame (no queue grows; the encoder
takes the newest frame whenever it is ready), scales a smaller interactive frame up to the
viewport size, and sends the last picture again every :data:`KEEPALIVE_S` seconds while
nothing changes, so decoders stay alive and the encoder refines a still picture.

Data channel: the client creates it (label ``"control"``, ordered and reliable — the
defaults). Text messages are the session protocol of :mod:`streaming.protocol` (the same JSON
as on the WebSocket) and go to ``session.handle``; events come back as text. Lossless (settle)
frames come as binary messages in the WebSocket frame format (:func:`pack_frame`: PNG payload,
``kind: "lossless"``). **Chunking:** a frame larger than one message is split: every chunk is
itself a complete frame message whose header repeats the frame's fields and adds
``chunk_index`` (0-based), ``chunk_count``, ``chunk_offset`` (byte offset of this chunk's
payload in the whole PNG) and ``payload_bytes`` (the whole PNG's size); the chunks of one frame
are sent consecutively, so a client concatenates the payloads of chunk 0..count-1 of the same
``(viewport, frame_seq)``. A frame that fits has ``chunk_count: 1``. Chunks are at most
:data:`MAX_CHUNK_BYTES` (or the offer's smaller ``a=max-message-size``). Frames wait (newest
per viewport only) while the channel's buffer holds more than :data:`MAX_BUFFERED_BYTES`.

Encoder quality lives in one place, :class:`VideoQuality` (:data:`QUALITY`): aiortc's own
encoders run at 0.5-1.5 Mbps (VP8) / 1-3 Mbps (H.264) and H.264 level 3.1 (too small for
1024x1024); :class:`RenderVp8Encoder` and :class:`RenderH264Encoder` subclass them with our
rates, level and quantisers, one per sender for its negotiated codec. The receiver's estimate
(REMB) still moves the rate, within ``[min_bps, max_bps]``.

No STUN or TURN server is contacted (``iceServers=[]``): the server offers its host
candidates. A connection closes when the client goes away (connection ``failed``/``closed``,
or the data channel closes), when the session ends (it calls :meth:`RenderPeer.close`), and on
app shutdown (:func:`close_all`).
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import multiprocessing
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc import exceptions as rtc_errors
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder, number_of_threads
from aiortc.mediastreams import MediaStreamError

from streaming.app import ApiError
from streaming.protocol import (
    MAX_CONSECUTIVE_ERRORS,
    PROTOCOL_VERSION,
    ProtocolError,
    pack_frame,
    parse_message,
)
from streaming.session_manager import SESSIONS
from streaming.sessions import SentFrame, Session

log = logging.getLogger(__name__)

VIDEO_CLOCK_HZ = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_HZ)
KEEPALIVE_S = 0.5       # resend the last picture this often while nothing changes
MAX_FPS = 30.0          # never hand the encoder frames faster than this
MAX_CHUNK_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 4 * 1024 * 1024
MAX_PENDING_EVENTS = 256  # events kept until the data channel opens
DRAIN_S = 1.0           # how long a closing peer waits for queued messages to leave
CONTROL_LABEL = "control"
# What aiortc raises for broken SDP (its parser asserts, too).
_BAD_SDP = (ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError,
            rtc_errors.InternalError, rtc_errors.InvalidAccessError,
            rtc_errors.InvalidStateError, rtc_errors.OperationError)
_MAX_MESSAGE_RE = re.compile(r"^a=max-message-size:(\d+)", re.MULTILINE)


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoQuality:
    """Settings of every WebRTC video encoder (bit/s; x264 ``-level``; lower quantiser: finer)."""

    start_bps: int = 6_000_000
    min_bps: int = 2_000_000  # floor under REMB: aiortc's receiver estimates ~1 Mbps on a LAN
    max_bps: int = 8_000_000
    h264_profile: str = "Baseline"   # constrained baseline: what every browser decodes
    h264_level: str = "41"           # 4.1: up to 8192 macroblocks, e.g. 2048x1024
    h264_preset: str = "veryfast"    # x264 speed: interactive frames must not queue
    vp8_qmin: int = 2
    vp8_qmax: int = 48

    def __post_init__(self) -> None:
        if not 0 < self.min_bps <= self.start_bps <= self.max_bps:
            raise ValueError("need 0 < min_bps <= start_bps <= max_bps, got "
                             f"{self.min_bps}, {self.start_bps}, {self.max_bps}")

    def clamp(self, bps: int) -> int:
        return max(self.min_bps, min(int(bps), self.max_bps))


QUALITY = VideoQuality()


def _needs_new_codec(codec: Any, frame: av.VideoFrame, target_bps: int) -> bool:
    """aiortc's own rule: a new size, or a rate more than 10 % off, reopens the codec."""
    return codec is None or frame.width != codec.width or frame.height != codec.height \
        or abs(target_bps - codec.bit_rate) / codec.bit_rate > 0.1


class _OurRates:
    """The target bitrate of :class:`VideoQuality`, clamped to its range whatever the
    receiver's estimate asks (mixed into aiortc's encoders)."""

    def _init_rates(self, quality: VideoQuality) -> None:
        self.quality = quality
        self._target_bps = quality.start_bps

    @property
    def target_bitrate(self) -> int:
        return self._target_bps

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._target_bps = self.quality.clamp(bitrate)


class RenderVp8Encoder(_OurRates, Vp8Encoder):
    """aiortc's VP8 encoder with :class:`VideoQuality` rates: the codec is opened here with
    our settings, so the base class finds it current and only encodes and packetizes."""

    def __init__(self, quality: VideoQuality = QUALITY) -> None:
        super().__init__()
        self._init_rates(quality)

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame)
        if _needs_new_codec(self.codec, frame, self._target_bps):
            codec = av.CodecContext.create("libvpx", "w")
            codec.width, codec.height = frame.width, frame.height
            codec.bit_rate = self._target_bps
            codec.pix_fmt = "yuv420p"
            codec.gop_size = 3000
            codec.qmin, codec.qmax = self.quality.vp8_qmin, self.quality.vp8_qmax
            codec.options = {
                "bufsize": str(self._target_bps),  # a one-second rate-control buffer
                "cpu-used": "-6", "deadline": "realtime", "lag-in-frames": "0",
                "minrate": str(self._target_bps), "maxrate": str(self._target_bps),
                "noise-sensitivity": "0",  # never smooth away diagnostic texture
                "overshoot-pct": "15", "partitions": "0", "static-thresh": "1",
                "undershoot-pct": "100",
            }
            codec.thread_count = number_of_threads(frame.width * frame.height,
                                                   multiprocessing.cpu_count())
            self.codec = codec
        return super().encode(frame, force_keyframe)


class RenderH264Encoder(_OurRates, H264Encoder):
    """aiortc's H.264 encoder with :class:`VideoQuality` rates, profile and level."""

    def __init__(self, quality: VideoQuality = QUALITY) -> None:
        super().__init__()
        self._init_rates(quality)

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Any:
        if _needs_new_codec(self.codec, frame, self._target_bps):
            self.buffer_data, self.buffer_pts = b"", None
            codec = av.CodecContext.create("libx264", "w")
            codec.width, codec.height = frame.width, frame.height
            codec.bit_rate = self._target_bps
            codec.pix_fmt = "yuv420p"
            codec.framerate = fractions.Fraction(int(MAX_FPS), 1)
            codec.time_base = fractions.Fraction(1, int(MAX_FPS))
            codec.options = {"level": self.quality.h264_level, "tune": "zerolatency",
                             "preset": self.quality.h264_preset}
            codec.profile = self.quality.h264_profile
            self.codec = codec
        return super()._encode_frame(frame, force_keyframe)


def encoder_for(mime_type: str, quality: VideoQuality = QUALITY) -> Encoder:
    """Our encoder for a negotiated video codec (``video/VP8`` or ``video/H264``)."""
    kind = mime_type.lower()
    if kind == "video/vp8":
        return RenderVp8Encoder(quality)
    if kind == "video/h264":
        return RenderH264Encoder(quality)
    raise ValueError(f"no video encoder for {mime_type}")


def install_encoder(sender: RTCRtpSender, mime_type: str,
                    quality: VideoQuality = QUALITY) -> Encoder:
    """Give ``sender`` our encoder before its first frame. aiortc creates an encoder lazily
    when none is set (``RTCRtpSender._next_encoded_frame``), so presetting the slot is the one
    way in short of replacing its module function for the whole process."""
    if not hasattr(sender, slot := "_RTCRtpSender__encoder"):  # guards an aiortc upgrade
        raise RuntimeError("aiortc's RTCRtpSender has no encoder slot: update install_encoder")
    setattr(sender, slot, encoder := encoder_for(mime_type, quality))
    return encoder


def to_video_frame(pixels: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame of ``width`` x ``height`` (rounded up to even) from uint8 grey (h, w)
    or RGB (h, w, 3) pixels, scaled bilinearly when the frame is smaller (an interactive
    frame at reduced resolution). Grey becomes video-range luma with neutral chroma."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (
            pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"pixels must be uint8 (h, w) or (h, w, 3), got {pixels.dtype} "
                         f"{pixels.shape}")
    fmt = "gray" if pixels.ndim == 2 else "rgb24"
    source = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=fmt)
    return source.reformat(width=width + width % 2, height=height + height % 2,
                           format="yuv420p", interpolation="BILINEAR")


class RenderVideoTrack(MediaStreamTrack):
    """The video of one viewport: the newest rendered frame, re-sent while nothing changes.

    :meth:`push` replaces the pending frame (never queues); :meth:`recv` hands aiortc's sender
    the newest frame as soon as one is pushed (at most :data:`MAX_FPS` a second), or the last
    picture again after ``keepalive_s``. ``pts`` counts a 90 kHz clock from the first frame.
    """

    kind = "video"

    def __init__(self, viewport_id: str, *, keepalive_s: float = KEEPALIVE_S,
                 max_fps: float = MAX_FPS) -> None:
        super().__init__()
        self.viewport_id = viewport_id
        self.keepalive_s = keepalive_s
        self.min_interval_s = 1.0 / max_fps
        self.frames_pushed = 0
        self.frames_sent = 0
        self.frames_resent = 0
        self.convert_ms = 0.0
        self._pending: tuple[np.ndarray, int, int] | None = None
        self._fresh = asyncio.Event()
        self._last: av.VideoFrame | None = None
        self._start: float | None = None
        self._last_pts = -1
        self._last_sent_at = 0.0

    def push(self, pixels: np.ndarray, width: int, height: int) -> None:
        """The newest picture of this viewport (uint8 grey or RGB) and its full size."""
        self._pending = (pixels, width, height)
        self.frames_pushed += 1
        self._fresh.set()

    def stop(self) -> None:
        super().stop()
        self._fresh.set()  # wake a waiting recv() so the sender sees the end

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._last is None:
            await self._fresh.wait()
        else:
            wait = self._last_sent_at + self.min_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # pacing: a newer push meanwhile replaces this one
            try:
                await asyncio.wait_for(self._fresh.wait(), self.keepalive_s)
            except TimeoutError:
                pass
        if self.readyState != "live":
            raise MediaStreamError
        if self._fresh.is_set() and self._pending is not None:
            self._fresh.clear()
            pixels, width, height = self._pending
            self._pending = None
            t0 = time.perf_counter()
            frame = await asyncio.get_running_loop().run_in_executor(
                None, to_video_frame, pixels, width, height)
            self.convert_ms = (time.perf_counter() - t0) * 1000
            self._last = frame
        else:  # the same picture as a new frame object (the sender may still hold the old)
            assert self._last is not None
            self.frames_resent += 1
            frame = av.VideoFrame.from_ndarray(self._last.to_ndarray(), format="yuv420p")
        now = time.monotonic()
        if self._start is None:
            self._start = now
        frame.pts = self._last_pts = max(self._last_pts + 1,
                                         int((now - self._start) * VIDEO_CLOCK_HZ))
        frame.time_base = VIDEO_TIME_BASE
        self._last_sent_at = now
        self.frames_sent += 1
        return frame


def chunk_frame(header: dict[str, Any], payload: bytes, max_message_bytes: int) -> list[bytes]:
    """The data-channel messages of one frame (see the module docstring, *Chunking*): each a
    complete :func:`pack_frame` message of at most ``max_message_bytes``."""
    probe = pack_frame({**header, "chunk_index": 0, "chunk_count": 1, "chunk_offset": 0,
                        "payload_bytes": len(payload)}, b"")
    room = max_message_bytes - len(probe) - 32  # 32: the digits chunk fields may grow by
    if room <= 0:
        raise ValueError(f"max message size {max_message_bytes} cannot hold a frame header")
    count = max(1, -(-len(payload) // room))
    return [pack_frame({**header, "chunk_index": i, "chunk_count": count,
                        "chunk_offset": i * room, "payload_bytes": len(payload)},
                       payload[i * room:(i + 1) * room]) for i in range(count)]


def remote_max_message_bytes(offer_sdp: str) -> int:
    """The largest data-channel message the offerer accepts (RFC 8841 ``max-message-size``;
    65536 when absent; 0 means no limit), capped at :data:`MAX_CHUNK_BYTES`."""
    match = _MAX_MESSAGE_RE.search(offer_sdp)
    size = int(match.group(1)) if match else 65536
    return MAX_CHUNK_BYTES if size == 0 else min(size, MAX_CHUNK_BYTES)


class RenderPeer:
    """One WebRTC connection to one session: a ``FrameSink`` (lossy and lossless frames) that
    feeds one :class:`RenderVideoTrack` per viewport and a ``control`` data channel."""

    wants_lossy = True
    wants_lossless = True  # over the data channel; a client with the WebSocket says false

    def __init__(self, session: Session, *, quality: VideoQuality = QUALITY,
                 on_closed: Any = None) -> None:
        self.session = session
        self.quality = quality
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks = {vp.id: RenderVideoTrack(vp.id) for vp in session.viewports}
        self.channel: RTCDataChannel | None = None
        self.max_message_bytes = MAX_CHUNK_BYTES
        self.lossless_sent = 0
        self._events: deque[str] = deque(maxlen=MAX_PENDING_EVENTS)
        self._lossless: dict[str, SentFrame] = {}  # viewport -> newest one not yet sent
        self._errors = 0  # bad control messages in a row
        self._inbox: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._lossless_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_closed = on_closed
        self._closed = False
        self._attached = False
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    # -- negotiation ------------------------------------------------------------------------

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Apply the client's offer, add the viewports' tracks with our encoders, attach to
        the session and return the answer; :class:`ApiError` 400 for an unusable offer."""
        try:
            await self.pc.setRemoteDescription(offer)
        except _BAD_SDP as exc:  # aiortc's parser fails in many ways on broken SDP
            raise ApiError(400, f"offer is not a usable SDP offer: {exc}") from None
        videos = [t for t in self.pc.getTransceivers() if t.kind == "video"]
        if len(videos) < len(self.tracks):
            raise ApiError(400, f"offer has {len(videos)} video m-line(s) but the session has "
                                f"{len(self.tracks)} viewport(s): add one recvonly video "
                                "transceiver per viewport")
        for transceiver, track in zip(videos, self.tracks.values(), strict=False):
            if not transceiver._codecs:
                raise ApiError(400, "offer has no video codec the server can send "
                                    "(VP8 or H264)")
            self.pc.addTrack(track)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        for transceiver in videos[:len(self.tracks)]:
            install_encoder(transceiver.sender, transceiver._codecs[0].mimeType, self.quality)
        self.max_message_bytes = remote_max_message_bytes(offer.sdp)
        self.session.attach(self)
        self._attached = True
        local = self.pc.localDescription
        return RTCSessionDescription(sdp=local.sdp, type=local.type)

    # -- FrameSink --------------------------------------------------------------------------

    async def send_frame(self, frame: SentFrame) -> None:
        """Never blocks: the video keeps the newest frame, the channel the newest lossless
        frame per viewport."""
        if self._closed:
            return
        track = self.tracks.get(frame.viewport)
        if track is not None:
            track.push(frame.pixels, frame.width, frame.height)
        if frame.kind == "lossless" and self.wants_lossless:
            self._lossless.pop(frame.viewport, None)
            self._lossless[frame.viewport] = frame
            self._flush_lossless()

    async def send_event(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        self._events.append(json.dumps(event, separators=(",", ":")))
        self._flush_events()

    # -- data channel -----------------------------------------------------------------------

    def _channel_open(self) -> bool:
        return self.channel is not None and self.channel.readyState == "open"

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_LABEL or self.channel is not None:
            channel.close()
            return
        self.channel = channel
        channel.bufferedAmountLowThreshold = MAX_BUFFERED_BYTES // 2

        @channel.on("open")
        def _open() -> None:
            self._events.appendleft(json.dumps({"type": "hello", "protocol": PROTOCOL_VERSION,
                                                **self.session.describe()}))
            self._flush_events()
            self._flush_lossless()

        channel.on("message", self._inbox.put_nowait)  # handled in order, one at a time
        channel.on("bufferedamountlow", self._flush_lossless)
        self._spawn(self._serve())

        @channel.on("close")
        def _close() -> None:
            self._spawn(self.close("data channel closed"))

        if channel.readyState == "open":
            _open()

    async def _serve(self) -> None:
        while True:
            await self._handle(await self._inbox.get())

    async def _handle(self, raw: str | bytes) -> None:
        """One control message, exactly as the WebSocket takes it: errors come back as
        ``error`` events; :data:`MAX_CONSECUTIVE_ERRORS` in a row close the connection."""
        self.session.touch()
        try:
            if isinstance(raw, bytes):
                raise ProtocolError("control messages are JSON text, not binary")
            await self.session.handle(parse_message(raw), self)
            self._errors = 0
        except ProtocolError as exc:
            self._errors += 1
            await self.send_event({"type": "error", "code": exc.code, "seq": exc.seq,
                                   "message": str(exc)})
            if self._errors >= MAX_CONSECUTIVE_ERRORS:
                await self.close("too many bad messages in a row")

    def _flush_events(self) -> None:
        while self._events and self._channel_open():
            assert self.channel is not None
            self.channel.send(self._events.popleft())

    def _flush_lossless(self) -> None:
        if self._lossless and (self._lossless_task is None or self._lossless_task.done()):
            self._lossless_task = self._spawn(self._send_lossless())

    async def _send_lossless(self) -> None:
        loop = asyncio.get_running_loop()
        while self._lossless and self._channel_open() and not self._closed:
            assert self.channel is not None
            if self.channel.bufferedAmount > MAX_BUFFERED_BYTES:
                return  # "bufferedamountlow" starts us again
            frame = self._lossless.pop(next(iter(self._lossless)))
            messages = await loop.run_in_executor(None, chunk_frame, frame.header(),
                                                  frame.payload, self.max_message_bytes)
            if not self._channel_open():
                return
            for message in messages:
                self.channel.send(message)
            self.lossless_sent += 1

    # -- lifetime ---------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webrtc task failed", exc_info=task.exception())

    async def _drain(self) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open" or not channel.bufferedAmount:
            return
        drained = asyncio.Event()
        channel.bufferedAmountLowThreshold = 0
        channel.on("bufferedamountlow", drained.set)
        try:
            await asyncio.wait_for(drained.wait(), DRAIN_S)
        except TimeoutError:
            pass

    async def _on_connection_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            await self.close(f"connection {self.pc.connectionState}")

    async def close(self, reason: str = "closed") -> None:
        """Detach from the session, stop the tracks and close the connection (idempotent).
        The session calls this when it ends, after its ``closing`` event, which gets up to
        :data:`DRAIN_S` to leave the data channel first."""
        if self._closed:
            return
        self._closed = True
        log.debug("closing WebRTC peer of session %s: %s", self.session.id, reason)
        if self._attached:
            self.session.detach(self)
        await self._drain()
        for track in self.tracks.values():
            track.stop()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await self.pc.close()
        if self._on_closed is not None:
            self._on_closed(self)


class PeerRegistry:
    """The app's open connections, to close them all on shutdown."""

    def __init__(self) -> None:
        self.peers: set[RenderPeer] = set()


PEERS: web.AppKey[PeerRegistry] = web.AppKey("webrtc_peers", PeerRegistry)


def parse_offer(body: Any) -> RTCSessionDescription:
    """The offer of a request body ``{"sdp": str, "type": "offer"}``; ApiError 400 otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object {\"sdp\": ..., \"type\": \"offer\"}")
    if body.get("type") != "offer":
        raise ApiError(400, f"type must be \"offer\", got {body.get('type')!r}")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise ApiError(400, "sdp must be an SDP string starting with \"v=0\"")
    if len(sdp) > 64 * 1024:
        raise ApiError(400, f"sdp of {len(sdp)} characters is too long")
    for needed, what in (("\nm=", "no media section"), ("\na=fingerprint:", "no DTLS fingerprint"),
                         ("\na=ice-ufrag:", "no ICE credentials")):
        if needed not in sdp:
            raise ApiError(400, f"sdp has {what}: not a WebRTC offer")
    return RTCSessionDescription(sdp=sdp, type="offer")


async def connect(app: web.Application, session: Session,
                  offer: RTCSessionDescription) -> tuple[RenderPeer, RTCSessionDescription]:
    """Open a :class:`RenderPeer` for ``session`` and answer ``offer``."""
    registry = app[PEERS]
    peer = RenderPeer(session, on_closed=registry.peers.discard)
    registry.peers.add(peer)
    try:
        answer = await peer.answer(offer)
    except BaseException:
        await peer.close()
        raise
    return peer, answer


async def offer_handler(request: web.Request) -> web.Response:
    session = request.app[SESSIONS].get(request.match_info["session_id"])
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    offer = parse_offer(body)
    session.touch()
    _, answer = await connect(request.app, session, offer)
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


async def close_all(app: web.Application) -> None:
    """Close every WebRTC connection of ``app`` (on shutdown)."""
    peers = list(app[PEERS].peers)
    await asyncio.gather(*(p.close("server shutting down") for p in peers),
                         return_exceptions=True)


def add_routes(app: web.Application) -> None:
    app[PEERS] = PeerRegistry()
    app.router.add_post("/api/sessions/{session_id}/webrtc", offer_handler)
    app.on_shutdown.append(close_all)
