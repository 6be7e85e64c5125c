"""The process's render sessions: the worker pool they render in, at most so many at once, and
the reaper that closes those nobody uses (no client for ``idle_s``, no input for
``max_idle_s``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from render_engine.errors import RenderError
from render_engine.kernels.backend import cpu_threads_for_this_thread
from render_engine.view import ViewState
from streaming.app import ApiError
from streaming.protocol import ProtocolError
from streaming.sessions import Session
from volume_cache.device import DeviceVolumeCache
from volume_cache.memory import VolumeMemoryCache

log = logging.getLogger(__name__)


class SessionManager:
    """All sessions of the process, the render worker pool, and the idle reaper."""

    def __init__(self, memory: VolumeMemoryCache, *, device: DeviceVolumeCache | None = None,
                 workers: int, idle_s: float,
                 max_idle_s: float, max_sessions: int,
                 measure: Callable[[ViewState, Any], dict[str, Any]]) -> None:
        self.memory = memory
        self.device = device
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voxcast-render")
        self.idle_s, self.max_idle_s, self.max_sessions = idle_s, max_idle_s, max_sessions
        self.sessions: dict[str, Session] = {}
        self._measure = measure
        self.busy = 0
        self._reaper: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` in the render pool; while several renders run at once, each one's CPU
        kernels get their share of the cores."""
        self.busy += 1
        share = self.busy

        def call() -> Any:
            cpu_threads_for_this_thread(share)
            return fn(*args)

        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, call)
        finally:
            self.busy -= 1

    async def measure(self, state: ViewState, shapes: Any, seq: int) -> dict[str, Any]:
        try:
            return await self.run(self._measure, state, shapes)  # type: ignore[no-any-return]
        except ApiError as exc:
            raise ProtocolError(f"measure: {exc.message}", seq=seq) from None
        except (RenderError, ValueError) as exc:
            raise ProtocolError(f"measure: {exc}", seq=seq) from None

    def add(self, session: Session) -> None:
        if len(self.sessions) >= self.max_sessions:
            raise ApiError(503, f"the server holds its maximum of {self.max_sessions} sessions;"
                                " close one or try again later")
        self.sessions[session.id] = session
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap(), name="session-reaper")

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.closed:
            raise ApiError(404, f"no session {session_id!r} (closed, timed out or never made)")
        return session

    async def close(self, session_id: str, reason: str = "closed") -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            await session.close(reason)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(0.2, self.idle_s / 4)))
            now = time.monotonic()
            for sid, s in list(self.sessions.items()):
                unattended = s.detached_since is not None and now - s.detached_since > self.idle_s
                if unattended or now - s.last_activity > self.max_idle_s:
                    log.info("closing idle session %s", sid)
                    await self.close(sid, "idle")

    async def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for sid in list(self.sessions):
            await self.close(sid, "server shutting down")
        self.pool.shutdown(wait=False, cancel_futures=True)


SESSIONS: web.AppKey[SessionManager] = web.AppKey("sessions", SessionManager)
