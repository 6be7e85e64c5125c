"""A small real WebSocket client of the session protocol, for the tests."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from PIL import Image

from streaming.protocol import unpack_frame


@dataclass
class Received:
    """A frame (``header`` + decoded ``pixels``) or an event (``event``), with arrival time."""

    at: float
    header: dict[str, Any] | None = None
    payload: bytes = b""
    event: dict[str, Any] | None = None

    @property
    def pixels(self) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.payload)))

    @property
    def is_frame(self) -> bool:
        return self.header is not None


@dataclass
class SessionClient:
    http: aiohttp.ClientSession
    base_url: str
    created: dict[str, Any] = field(default_factory=dict)
    ws: aiohttp.ClientWebSocketResponse | None = None
    seq: int = 0
    log: list[Received] = field(default_factory=list)

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base_url: str, study_uid: str,
                   layout: str = "1x1", **body: Any) -> SessionClient:
        r = await http.post(f"{base_url}/api/sessions",
                            json={"study_uid": study_uid, "layout": layout, **body})
        assert r.status == 201, await r.text()
        client = cls(http=http, base_url=base_url, created=await r.json())
        client.ws = await http.ws_connect(client.created["ws_url"], max_msg_size=0)
        return client

    @property
    def session_id(self) -> str:
        return str(self.created["session_id"])

    async def send(self, kind: str, viewport: str | None = "v0", **fields: Any) -> int:
        assert self.ws is not None
        self.seq += 1
        message: dict[str, Any] = {"type": kind, "seq": self.seq, **fields}
        if viewport is not None:
            message["viewport"] = viewport
        await self.ws.send_str(json.dumps(message))
        return self.seq

    async def receive(self, timeout: float = 10.0) -> Received:
        assert self.ws is not None
        # Not ws.receive(timeout=...): aiohttp restarts that timeout on every ping it answers,
        # and the server pings every 30 s, so a longer wait would never end.
        async with asyncio.timeout(timeout):
            msg = await self.ws.receive()
        now = time.perf_counter()
        if msg.type == aiohttp.WSMsgType.BINARY:
            header, payload = unpack_frame(msg.data)
            item = Received(at=now, header=header, payload=payload)
        elif msg.type == aiohttp.WSMsgType.TEXT:
            item = Received(at=now, event=json.loads(msg.data))
        else:
            raise ConnectionError(f"WebSocket {msg.type.name}: {msg.data!r} {msg.extra!r}")
        self.log.append(item)
        return item

    async def until(self, predicate: Callable[[Received], bool],
                    timeout: float = 15.0) -> Received:
        end = time.perf_counter() + timeout
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                raise TimeoutError("the expected frame or event did not come")
            item = await self.receive(timeout=left)
            if predicate(item):
                return item

    async def frame(self, *, viewport: str = "v0", kind: str | None = None,
                    input_seq: int | None = None, timeout: float = 15.0) -> Received:
        def match(r: Received) -> bool:
            h = r.header
            return h is not None and h["viewport"] == viewport and (
                kind is None or h["kind"] == kind) and (
                input_seq is None or h["input_seq"] >= input_seq)
        return await self.until(match, timeout)

    async def event(self, kind: str, *, seq: int | None = None,
                    timeout: float = 15.0) -> dict[str, Any]:
        item = await self.until(lambda r: r.event is not None and r.event["type"] == kind and (
            seq is None or r.event.get("seq") == seq), timeout)
        assert item.event is not None
        return item.event

    def last_state(self, viewport: str = "v0") -> dict[str, Any]:
        for item in reversed(self.log):
            e = item.event
            if e is not None and e["type"] == "state" and e["viewport"] == viewport:
                return e
        raise AssertionError(f"no state event of {viewport} yet")

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
