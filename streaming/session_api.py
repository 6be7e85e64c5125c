"""Render-session endpoints: ``POST /api/sessions``, ``GET``/``DELETE /api/sessions/{id}`` and
the WebSocket ``/api/sessions/{id}/ws`` (protocol: :mod:`streaming.protocol`, README).

``POST /api/sessions`` ``{"study_uid", "layout": "1x1", "viewport_size": [w, h],
"viewports": [{"view": ViewState}, ...], "prior_study_uids": [uid, ...]}`` (all but
``study_uid`` optional; given views replace the layout's first ones; priors are up to four
other studies of the same patient, whose series join the session) → 201 ``{"session_id",
"study_uid", "studies", "layout", "viewports": [{"id", "view"}], "series": [...], "ws_url",
"webrtc_url", "protocol", "idle_timeout_s"}`` (:mod:`streaming.session_series`). Creating a
session starts loading its volumes, so the first frame is on its way before the client
connects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from aiohttp import WSMsgType, web

from render_engine.view import ViewState
from streaming.app import EXECUTOR, RUNTIME, ApiError, run_blocking
from streaming.layouts import DEFAULT_VIEWPORT_PX, LAYOUTS, study_views
from streaming.measure_api import MAX_SHAPES, _measure
from streaming.protocol import (
    CLOSE_SESSION_ENDED,
    CLOSE_TOO_MANY_ERRORS,
    MAX_CONSECUTIVE_ERRORS,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    pack_frame,
    parse_message,
)
from streaming.render_api import read_json
from streaming.runtime import Runtime
from streaming.session_manager import SESSIONS, SessionManager
from streaming.session_series import load_session_series, prior_study_uids
from streaming.sessions import SentFrame, Session
from streaming.view_schema import parse_view

log = logging.getLogger(__name__)

MAX_VIEWPORT_SIDE = 2048


class WebSocketSink:
    """Frames as binary messages, events as JSON text, on one WebSocket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.wants_lossy = True
        self.wants_lossless = True

    async def send_frame(self, frame: SentFrame) -> None:
        if frame.kind == "lossless" and not self.wants_lossless:
            return
        if not self.ws.closed:
            await self.ws.send_bytes(pack_frame(frame.header(), frame.payload))

    async def send_event(self, event: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(event, separators=(",", ":")))

    async def close(self, reason: str) -> None:
        await self.ws.close(code=CLOSE_SESSION_ENDED, message=f"session {reason}".encode())


def _coarse_levels(runtime: Runtime, paths: list[str]) -> None:
    """Read the coarse levels; the full volumes load once the first frames are out (reading
    both at once would slow the first frame down)."""
    for path in paths:
        if runtime.memory.peek(path) is None:
            runtime.memory.coarse(path)


def _size(body: dict[str, Any]) -> tuple[int, int]:
    size = body.get("viewport_size", list(DEFAULT_VIEWPORT_PX))
    if not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= MAX_VIEWPORT_SIDE
            for v in size)):
        raise ApiError(400, f"viewport_size must be [width, height], each 16 to "
                            f"{MAX_VIEWPORT_SIDE} pixels, got {size!r}")
    return size[0], size[1]


async def create_session(request: web.Request) -> web.Response:
    runtime, manager = request.app[RUNTIME], request.app[SESSIONS]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object with study_uid and layout")
    study_uid = body.get("study_uid")
    if not isinstance(study_uid, str) or not study_uid:
        raise ApiError(400, "study_uid is required")
    layout = body.get("layout", "1x1")
    if layout not in LAYOUTS:
        raise ApiError(400, f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    size = _size(body)
    priors = prior_study_uids(body, study_uid)
    series = await run_blocking(request, load_session_series, runtime, study_uid, priors)
    paths = series.paths
    views = study_views(layout, [series.of_study(u) for u in series.studies], size)
    given = body.get("viewports") or []
    if not isinstance(given, list) or len(given) > len(views):
        raise ApiError(400, f"viewports must be a list of at most {len(views)} "
                            f"{{\"view\": ViewState}} for layout {layout}")
    for i, item in enumerate(given):
        if not isinstance(item, dict) or "view" not in item:
            raise ApiError(400, f"viewports[{i}] must be {{\"view\": ViewState}}")
        views[i] = parse_view(item["view"])
    for view in views:
        for uid in (view.series_uid, *(x.series_uid for x in view.layers)):
            if uid not in paths:
                raise ApiError(400, f"series {uid} is not a volume of the session's studies")
    # Start loading now. A coarse level of each series shown comes first (tens of ms), so the
    # first frames need not wait for the full volumes, which then load in the background.
    shown = list(dict.fromkeys(u for v in views for u in (v.series_uid,
                                                          *(x.series_uid for x in v.layers))))
    loop = asyncio.get_running_loop()
    loop.run_in_executor(request.app[EXECUTOR], _coarse_levels, runtime,
                         [paths[u] for u in shown])
    session = Session(manager, layout=layout, views=views, series=series)
    manager.add(session)
    base = f"/api/sessions/{session.id}"
    scheme = "wss" if request.secure else "ws"
    out = {**session.describe(), "layout": {"name": layout, "columns": LAYOUTS[layout].columns,
                                            "rows": LAYOUTS[layout].rows},
           "ws_url": f"{scheme}://{request.host}{base}/ws",
           "webrtc_url": f"{request.scheme}://{request.host}{base}/webrtc",
           "protocol": PROTOCOL_VERSION, "idle_timeout_s": manager.idle_s}
    return web.json_response(out, status=201)


async def get_session(request: web.Request) -> web.Response:
    session = request.app[SESSIONS].get(request.match_info["session_id"])
    return web.json_response(session.describe())


async def delete_session(request: web.Request) -> web.Response:
    manager = request.app[SESSIONS]
    manager.get(request.match_info["session_id"])  # 404 for an unknown one
    await manager.close(request.match_info["session_id"])
    return web.Response(status=204)


async def list_layouts(request: web.Request) -> web.Response:
    return web.json_response([{"name": x.name, "columns": x.columns, "rows": x.rows,
                               "description": x.description, "petct": x.petct}
                              for x in LAYOUTS.values()])


async def session_socket(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSIONS].get(request.match_info["session_id"])
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=30.0,
                               compress=False)
    await ws.prepare(request)
    sink = WebSocketSink(ws)
    await sink.send_event({"type": "hello", "protocol": PROTOCOL_VERSION, **session.describe()})
    session.attach(sink)
    errors = 0
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    await session.handle(parse_message(msg.data), sink)
                    errors = 0
                except ProtocolError as exc:
                    errors += 1
                    await sink.send_event({"type": "error", "code": exc.code, "seq": exc.seq,
                                           "message": str(exc)})
                except Exception:
                    errors += 1
                    log.exception("a session message failed")
                    await sink.send_event({"type": "error", "code": "internal_error",
                                           "seq": None, "message": "internal server error"})
                    if errors >= MAX_CONSECUTIVE_ERRORS:
                        await ws.close(code=CLOSE_TOO_MANY_ERRORS,
                                       message=b"too many bad messages in a row")
                        break
            elif msg.type == WSMsgType.BINARY:
                errors += 1
                await sink.send_event({"type": "error", "code": "bad_message", "seq": None,
                                       "message": "client messages are JSON text"})
            elif msg.type == WSMsgType.ERROR:
                log.info("session WebSocket closed with an error: %s", ws.exception())
                break
            if session.closed:
                break
    finally:
        session.detach(sink)
    if session.closed and not ws.closed:
        await ws.close(code=CLOSE_SESSION_ENDED, message=b"session ended")
    return ws


def session_measure(runtime: Runtime) -> Any:
    def run(state: ViewState, shapes: Any) -> dict[str, Any]:
        if not isinstance(shapes, list) or not 1 <= len(shapes) <= MAX_SHAPES:
            raise ApiError(400, f"shapes must be a list of 1 to {MAX_SHAPES} shapes")
        return _measure(runtime, state, shapes)
    return run


def add_routes(app: web.Application) -> None:
    runtime = app[RUNTIME]
    settings = runtime.settings

    async def start(app: web.Application) -> None:
        app[SESSIONS] = SessionManager(
            runtime.memory, device=runtime.device, workers=settings.render_workers or max(2, os.cpu_count() or 2),
            idle_s=settings.session_idle_seconds, max_idle_s=settings.session_max_idle_seconds,
            max_sessions=settings.max_sessions, measure=session_measure(runtime))

    async def stop(app: web.Application) -> None:
        await app[SESSIONS].shutdown()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.router.add_get("/api/layouts", list_layouts)
    app.router.add_post("/api/sessions", create_session)
    app.router.add_get("/api/sessions/{session_id}", get_session)
    app.router.add_delete("/api/sessions/{session_id}", delete_session)
    app.router.add_get("/api/sessions/{session_id}/ws", session_socket)
