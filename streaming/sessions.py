"""Render sessions: viewports, their latest state, and the loop that turns states into frames.

A :class:`Session` holds one study's viewports. Client messages change a viewport's
``ViewState`` (``streaming.interaction``); each viewport has one render loop that always renders
the *latest* state (intermediate states are coalesced), so a burst of input costs one frame,
not a queue. Frames go to the attached sinks (a WebSocket, WebRTC tracks), awaited in turn: a
slow client slows its own loop and nothing queues. While the user interacts, frames are lossy
JPEG at the resolution :class:`~streaming.quality.AdaptiveQuality` chooses; when input stops
for :data:`SETTLE_DELAY_S` the viewport settles to a lossless PNG of the full state, the same
pixels ``POST /api/render`` gives for it.

Renders run in the manager's worker pool, at most :data:`RENDERS_PER_SESSION` per session at a
time, so sessions share the pool first come, first served. The first frame of a volume that is
not in RAM yet comes from a coarse pyramid level while the full volume loads; a refined frame
follows.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from render_engine.errors import RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.pipeline import Frame, RenderVolume, VolumeSource, surface_for
from render_engine.pipeline import render as render_view
from render_engine.planes import Plane
from render_engine.view import ViewState, Window, explicit
from streaming.app import ApiError
from streaming.interaction import apply, page, slice_position
from streaming.protocol import ProtocolError, number
from streaming.quality import INTERACTIVE_FPS, AdaptiveQuality
from streaming.render_api import encode
from streaming.session_series import SessionSeries, series_message_view
from streaming.view_schema import view_to_json
from streaming.volumes import as_render_volume

if TYPE_CHECKING:
    from streaming.session_manager import SessionManager

log = logging.getLogger(__name__)

SETTLE_DELAY_S = 0.1
RENDERS_PER_SESSION = 2
MAX_CINE_FPS = 60.0


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One rendered frame of a viewport, as the sinks receive it."""

    viewport: str
    frame_seq: int
    input_seq: int
    kind: str  # "lossy" | "lossless"
    pixels: npt.NDArray[np.uint8]  # HxW grey or HxWx3 RGB; smaller than width×height if lossy
    width: int  # the viewport's full output size
    height: int
    render_ms: float
    state: ViewState
    encoding: str  # "jpeg" | "png"
    payload: bytes
    encode_ms: float

    def header(self) -> dict[str, Any]:
        h, w = self.pixels.shape[:2]
        return {"viewport": self.viewport, "frame_seq": self.frame_seq,
                "input_seq": self.input_seq, "kind": self.kind, "encoding": self.encoding,
                "width": int(w), "height": int(h), "view_width": self.width,
                "view_height": self.height, "render_ms": round(self.render_ms, 2),
                "encode_ms": round(self.encode_ms, 2)}


class FrameSink(Protocol):
    wants_lossy: bool  # interactive (lossy) frames too, not only the settled ones
    wants_lossless: bool  # the lossless frames' PNG bytes (a WebRTC peer's video takes the
    # pixels in any case)

    async def send_frame(self, frame: SentFrame) -> None: ...

    async def send_event(self, event: dict[str, Any]) -> None: ...

    async def close(self, reason: str) -> None: ...


@dataclass
class Viewport:
    id: str
    state: ViewState
    initial: ViewState
    version: int = 1
    input_seq: int = 0
    frame_seq: int = 0
    last_change: float = field(default_factory=time.monotonic)
    last_lossy_at: float = 0.0  # when the last interactive frame was delivered
    window: Window | None = None  # the window of the last frame (for window drags)
    good_state: ViewState | None = None  # the last state that rendered
    drawn: tuple[int, bool] = (0, False)  # (version, coarse) of the last lossy frame
    settled: int = 0  # version of the last lossless frame
    echoed: int = 0  # version of the last state event
    cine_fps: float = 0.0
    cine_task: asyncio.Task[None] | None = None
    quality: AdaptiveQuality = field(default_factory=AdaptiveQuality)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Full-size pixels of the last lossy frame when it was already exact (reused to settle).
    exact: tuple[int, npt.NDArray[np.uint8], float] | None = None
    last_event: dict[str, Any] | None = None  # the last state event sent
    # (version, frame, its state event) of the last lossless frame: a client that attaches
    # later gets these, instead of a new render for every client.
    last_settle: tuple[int, SentFrame, dict[str, Any]] | None = None

    @property
    def size_px(self) -> tuple[int, int]:
        return self.state.output_size_px

    def change(self, state: ViewState, seq: int) -> bool:
        """Make ``state`` the latest; False when it is the current one already."""
        if state == self.state:
            return False
        self.state = state
        self.version += 1
        self.input_seq = max(self.input_seq, seq)
        self.last_change = time.monotonic()
        self.wake.set()
        return True


class Session:
    """One client's render session over one study."""

    def __init__(self, manager: SessionManager, *, layout: str, views: list[ViewState],
                 series: SessionSeries) -> None:
        self.id = uuid.uuid4().hex
        self.manager = manager
        self.series = series  # the series of the study and its priors
        self.study_uid = series.study_uid
        self.layout = layout
        self.viewports = [Viewport(id=f"v{i}", state=v, initial=v) for i, v in enumerate(views)]
        self.paths = series.paths  # series UID → published volume path
        self.geometries: dict[str, VolumeGeometry] = series.geometries  # level-0 geometries
        self.frames_of_reference = series.frames_of_reference  # series UID → its UID or ""
        self.sinks: list[FrameSink] = []
        self.closed = False
        self.last_activity = time.monotonic()
        self.detached_since: float | None = time.monotonic()
        self._slots = asyncio.Semaphore(RENDERS_PER_SESSION)
        self._tasks = [asyncio.create_task(self._loop(vp), name=f"session-{vp.id}")
                       for vp in self.viewports]
        self._catch_ups: set[asyncio.Task[None]] = set()

    # -- clients ----------------------------------------------------------------------------

    def viewport(self, viewport_id: object, seq: int | None = None) -> Viewport:
        for vp in self.viewports:
            if vp.id == viewport_id:
                return vp
        raise ProtocolError(f"unknown viewport {viewport_id!r}; this session has "
                            f"{', '.join(v.id for v in self.viewports)}",
                            code="unknown_viewport", seq=seq)

    def attach(self, sink: FrameSink) -> None:
        """A new client needs the state and a frame of every viewport: a settled viewport's last
        lossless frame goes to this client alone; the others render anew for everyone."""
        self.sinks.append(sink)
        self.detached_since = None
        self.touch()
        for vp in self.viewports:
            settle = vp.last_settle
            if settle is not None and settle[0] == vp.version == vp.settled:
                task = asyncio.create_task(self._catch_up(sink, settle[2], settle[1]),
                                           name=f"catch-up-{vp.id}")
                self._catch_ups.add(task)
                task.add_done_callback(self._catch_ups.discard)
                continue
            vp.drawn, vp.settled, vp.exact, vp.echoed = (0, False), 0, None, 0
            vp.wake.set()

    async def _catch_up(self, sink: FrameSink, event: dict[str, Any], frame: SentFrame) -> None:
        try:
            await sink.send_event(event)
            await sink.send_frame(frame)
        except (ConnectionError, RuntimeError):  # the client went away already
            pass

    def detach(self, sink: FrameSink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)
        if not self.sinks:
            self.detached_since = time.monotonic()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def describe(self) -> dict[str, Any]:
        return {"session_id": self.id, "study_uid": self.study_uid, "layout": self.layout,
                "studies": list(self.series.studies),
                "viewports": [{"id": vp.id, "view": view_to_json(vp.state)}
                              for vp in self.viewports], "series": self.series.to_json()}

    async def handle(self, message: dict[str, Any], sink: FrameSink | None = None) -> None:
        """Act on one parsed client message (:func:`streaming.protocol.parse_message`);
        raises :class:`ProtocolError` for one that cannot be acted on."""
        self.touch()
        kind, seq = message["type"], message["seq"]
        if kind == "ping":
            await self._event({"type": "pong", "seq": seq, "time": time.time()}, sink)
            return
        if kind == "frames":
            if sink is not None:
                sink.wants_lossy = bool(message.get("lossy", sink.wants_lossy))
                sink.wants_lossless = bool(message.get("lossless", sink.wants_lossless))
            return
        if kind == "crosshair":
            await self._crosshair(message)
            return
        vp = self.viewport(message.get("viewport"), seq)
        if kind == "cine":
            self._cine(vp, message)
            await self._event({"type": "cine", "seq": seq, "viewport": vp.id,
                               "fps": vp.cine_fps}, None)
            return
        if kind == "measure":
            result = await self.manager.measure(vp.state, message.get("shapes"), seq)
            await self._event({"type": "measurement", "seq": seq, "viewport": vp.id,
                               **result}, sink)
            return
        if kind == "series":  # a series dropped into the viewport: its first view, new reset
            state = vp.initial = series_message_view(message, vp.state, self.series)
            if vp.cine_fps:
                self._cine(vp, {"action": "stop", "seq": seq})
                await self._event({"type": "cine", "seq": seq, "viewport": vp.id, "fps": 0.0},
                                  None)
        else:
            window = vp.state.window or vp.window or Window(center=40.0, width=400.0)
            state = apply(message, vp.state, self.geometries[vp.state.series_uid],
                          vp.initial, window)
        unknown = [u for u in (state.series_uid, *(x.series_uid for x in state.layers))
                   if u not in self.paths]
        if unknown:
            raise ProtocolError(f"series {unknown[0]} is not a volume of this session's studies",
                                code="unknown_series", seq=seq)
        if not vp.change(state, seq):  # e.g. paging past the last slice: say so, no frame
            await self._event({"type": "state", "viewport": vp.id, "seq": seq,
                               "view": view_to_json(vp.state), "unchanged": True}, sink)

    def _cine(self, vp: Viewport, message: dict[str, Any]) -> None:
        action = message.get("action", "start")
        if vp.cine_task is not None:
            vp.cine_task.cancel()
            vp.cine_task = None
        if action == "stop":
            vp.cine_fps = 0.0
            vp.quality.target_fps = INTERACTIVE_FPS  # back to the interactive budget
            vp.wake.set()
            return
        if action != "start":
            raise ProtocolError(f"cine: action must be start or stop, got {action!r}",
                                seq=message["seq"])
        vp.cine_fps = number(message, "fps", lo=0.5, hi=MAX_CINE_FPS, default=15.0)
        vp.quality.target_fps = vp.cine_fps
        vp.cine_task = asyncio.create_task(self._cine_loop(vp), name=f"cine-{vp.id}")

    async def _cine_loop(self, vp: Viewport) -> None:
        period = 1.0 / vp.cine_fps
        next_at = time.monotonic()
        geometry = self.geometries[vp.state.series_uid]
        while not self.closed:
            next_at += period
            try:
                if vp.state.render3d is not None:
                    az, el = vp.state.orbit_deg
                    step = 360.0 / max(12, round(2 * vp.cine_fps * 3))
                    state = replace(vp.state, orbit_deg=((az + step) % 360.0, el))
                else:
                    state = page(vp.state, geometry, delta=1, wrap=True)
            except RenderError as exc:
                await self._event({"type": "error", "code": "cine", "viewport": vp.id,
                                   "message": str(exc)}, None)
                vp.cine_fps = 0.0
                return
            vp.change(state, vp.input_seq)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > 5 * period:  # fell far behind: do not burst
                next_at = time.monotonic()

    async def _crosshair(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if "point_lps" in message:
            point = message["point_lps"]
            if not (isinstance(point, list) and len(point) == 3 and all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in point)):
                raise ProtocolError("crosshair: point_lps must be [x, y, z] in mm", seq=seq)
            source = self.viewport(message.get("viewport"), seq) \
                if "viewport" in message else None
            p = np.asarray(point, dtype=np.float64)
        else:
            source = self.viewport(message.get("viewport"), seq)
            at = message.get("at_px")
            if not (isinstance(at, list) and len(at) == 2):
                raise ProtocolError("crosshair: give point_lps, or viewport and at_px [x, y]",
                                    seq=seq)
            plane = self._plane(source.state)
            if plane is None:
                raise ProtocolError("crosshair: pick the point on a planar view", seq=seq)
            p = plane.pixel_to_patient(float(at[1]), float(at[0]))
        frame_of_reference = self.frames_of_reference.get(
            source.state.series_uid if source else self.viewports[0].state.series_uid, "")
        moved = []
        for vp in self.viewports:
            state = vp.state
            same = self.frames_of_reference.get(state.series_uid, "") == frame_of_reference
            if not same or state.render3d is not None or state.cpr is not None:
                continue
            if vp is not source:
                geometry = self.geometries[state.series_uid]
                normal = state.plane_for(geometry).normal
                state = page(state, geometry, position_mm=float(p @ normal))
                vp.change(state, seq)
            plane = self._plane(state)
            if plane is not None:
                rc = plane.patient_to_pixel(p[None, :])[0]
                moved.append({"viewport": vp.id, "at_px": [float(rc[1]), float(rc[0])]})
        await self._event({"type": "crosshair", "seq": seq, "point_lps": p.tolist(),
                           "viewports": moved}, None)

    def _plane(self, state: ViewState) -> Plane | None:
        if state.cpr is not None:
            return None
        return state.plane_for(self.geometries[state.series_uid])

    # -- rendering --------------------------------------------------------------------------

    async def _loop(self, vp: Viewport) -> None:
        while not self.closed:
            try:
                await self._step(vp)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("render loop of a session viewport failed; going on")
                await asyncio.sleep(0.5)

    async def _step(self, vp: Viewport) -> None:
        """One decision of a viewport's loop: an interactive frame of a new state, the
        lossless settle frame once input has paused, a refined frame once the full volume is
        in RAM, or wait for whichever comes first."""
        if not self.sinks:
            vp.wake.clear()
            await vp.wake.wait()
            return
        drawn_version, drawn_coarse = vp.drawn
        wants_lossy = any(s.wants_lossy for s in self.sinks)
        # Quiet since the last input *and* since its interactive frame went out: a client that
        # pages as fast as frames come must not get a settle render between two pages.
        quiet = time.monotonic() - max(vp.last_change, vp.last_lossy_at)
        loaded = self._loaded(vp, fetch=vp.frame_seq > 0)
        needs_settle = vp.settled != vp.version and not vp.cine_fps
        if wants_lossy and vp.version != drawn_version:
            await self._render(vp, lossless=False)
            return
        if needs_settle and loaded and (quiet >= SETTLE_DELAY_S or not wants_lossy):
            await self._render(vp, lossless=True)
            return
        if wants_lossy and drawn_coarse and loaded:
            await self._render(vp, lossless=False)
            return
        vp.wake.clear()
        timeout = None
        if needs_settle:
            timeout = max(0.005, SETTLE_DELAY_S - quiet) if loaded else 0.05
        elif drawn_coarse:
            timeout = 0.05
        try:
            await asyncio.wait_for(vp.wake.wait(), timeout)
        except TimeoutError:
            pass

    def _loaded(self, vp: Viewport, *, fetch: bool = True) -> bool:
        """Whether every volume the viewport shows is in RAM (``fetch``: start loading those
        that are not)."""
        memory = self.manager.memory
        missing = [self.paths[u] for u in {vp.state.series_uid,
                                            *(x.series_uid for x in vp.state.layers)}
                   if memory.peek(self.paths[u]) is None]
        for path in missing if fetch else ():
            memory.prefetch(path)
        return not missing

    async def _render(self, vp: Viewport, *, lossless: bool) -> None:
        state, version, seq = vp.state, vp.version, vp.input_seq
        width, height = state.output_size_px
        downscale = 1.0 if lossless else vp.quality.downscale
        quality = vp.quality.jpeg_quality
        exact = vp.exact if lossless and vp.exact and vp.exact[0] == version else None
        async with self._slots:
            try:
                result = await self.manager.run(self._draw, state, downscale, lossless,
                                                quality, exact)
            except (RenderError, ApiError, ValueError) as exc:
                vp.drawn = (version, False)
                vp.settled = version
                text = exc.message if isinstance(exc, ApiError) else str(exc)
                await self._event({"type": "error", "code": "render_failed", "seq": seq,
                                   "viewport": vp.id, "message": text}, None)
                if vp.good_state is not None and vp.state == state:
                    vp.change(vp.good_state, seq)
                return
        pixels, frame, coarse, is_exact, payload, render_ms, encode_ms = result
        vp.good_state = state
        if frame is not None:
            vp.window = frame.window
        vp.frame_seq += 1
        sent = SentFrame(viewport=vp.id, frame_seq=vp.frame_seq, input_seq=seq,
                         kind="lossless" if lossless else "lossy", pixels=pixels, width=width,
                         height=height, render_ms=render_ms, state=state,
                         encoding="png" if lossless else "jpeg", payload=payload,
                         encode_ms=encode_ms)
        if lossless:  # the settled frame also supersedes a coarse interactive one
            vp.settled = version
            vp.drawn = (version, False)
        else:
            vp.drawn = (version, coarse)
            vp.exact = (version, pixels, render_ms) if is_exact else None
        sinks = [s for s in self.sinks if lossless or s.wants_lossy]
        if vp.echoed != version:
            vp.echoed = version
            vp.last_event = self._state_event(vp, state, frame, seq, coarse)
            await self._event(vp.last_event, None)
        if lossless and vp.last_event is not None:  # as it stands now, for later clients
            settled = self._state_event(vp, state, frame, seq, False) if frame is not None \
                else {**vp.last_event, "coarse": False}
            vp.last_settle = (version, sent, settled)
        sent_at = time.perf_counter()
        await asyncio.gather(*(self._deliver(s, sent) for s in sinks))
        if not lossless:  # the frame's own cost: rendering, encoding and sending, not queueing
            vp.quality.record(render_ms + encode_ms + (time.perf_counter() - sent_at) * 1e3)
            vp.last_lossy_at = time.monotonic()
            if coarse:  # the first frames are out: now load the full volumes
                self._loaded(vp)

    async def _deliver(self, sink: FrameSink, frame: SentFrame) -> None:
        try:
            await sink.send_frame(frame)
        except (ConnectionError, RuntimeError) as exc:  # the client went away mid-frame
            log.debug("dropping a frame for a closed sink: %s", exc)

    def _draw(self, state: ViewState, downscale: float, lossless: bool, quality: int,
              exact: tuple[int, npt.NDArray[np.uint8], float] | None
              ) -> tuple[npt.NDArray[np.uint8], Frame | None, bool, bool, bytes, float, float]:
        """Render and encode (in a worker thread): (pixels, frame, from a coarse level,
        exactly the state's own pixels, payload, render ms, encode ms). A lossless frame is
        the state itself on the full volume; an interactive one may be downscaled or drawn
        from a coarse level, on the plane the full volume's geometry gives."""
        if exact is not None:
            pixels, frame, coarse, is_exact, render_ms = exact[1], None, False, True, exact[2]
        else:
            coarse_used: list[bool] = []
            source = self._source(allow_coarse=not lossless, used=coarse_used)
            target = state
            if not lossless and (downscale != 1.0 or self.manager.memory.peek(
                    self.paths[state.series_uid]) is None):
                target = explicit(state, self.geometries[state.series_uid], downscale=downscale)
            frame = render_view(target, source)
            pixels, coarse, render_ms = frame.pixels, bool(coarse_used), frame.render_ms
            is_exact = target is state and not coarse
        t = time.perf_counter()
        payload = encode(pixels, "png" if lossless else "jpeg", quality=quality)
        return (pixels, frame, coarse, is_exact, payload, render_ms,
                (time.perf_counter() - t) * 1e3)

    def _source(self, *, allow_coarse: bool, used: list[bool]) -> VolumeSource:
        memory = self.manager.memory

        def volume(series_uid: str) -> RenderVolume:
            path = self.paths.get(series_uid)
            if path is None:
                raise ApiError(400, f"series {series_uid} is not part of this session's study")
            cached = memory.peek(path)
            if cached is None and allow_coarse:
                # A coarse level stays on the host: it is small and soon replaced.
                used.append(True)
                return as_render_volume(series_uid, memory.coarse(path))
            if cached is None:
                cached = memory.get(path)
            return as_render_volume(series_uid, cached, device=self.manager.device, key=path)

        return volume

    def _state_event(self, vp: Viewport, state: ViewState, frame: Frame | None, seq: int,
                     coarse: bool) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "state", "viewport": vp.id, "seq": seq,
                                 "view": view_to_json(state), "coarse": coarse}
        try:
            surface = surface_for(state, self.geometries[state.series_uid])
        except RenderError:
            return event
        if isinstance(surface, Plane):
            event["geometry"] = {"plane": surface.to_json(), "edges": surface.edge_labels()}
            where = slice_position(state, self.geometries[state.series_uid])
            if where is not None:  # a planar view (not 3D): its place in the stack
                event["slice"] = where
        else:
            event["geometry"] = {"cpr": {"size_px": list(surface.size_px),
                                         "pixel_spacing_mm": surface.pixel_spacing_mm}}
        if frame is not None:
            event["window"] = {"center": frame.window.center, "width": frame.window.width}
            event["units"] = frame.units
        return event

    async def _event(self, event: dict[str, Any], sink: FrameSink | None) -> None:
        targets = [sink] if sink is not None else list(self.sinks)
        for s in targets:
            try:
                await s.send_event(event)
            except (ConnectionError, RuntimeError):
                pass

    async def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        for vp in self.viewports:
            if vp.cine_task is not None:
                vp.cine_task.cancel()
        for task in (*self._tasks, *self._catch_ups):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._catch_ups, *(vp.cine_task for vp in self.viewports
                                             if vp.cine_task), return_exceptions=True)
        await self._event({"type": "closing", "reason": reason}, None)
        sinks, self.sinks = list(self.sinks), []
        for sink in sinks:
            try:
                await sink.close(reason)
            except (ConnectionError, RuntimeError, AttributeError):
                pass
