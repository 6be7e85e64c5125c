"""The render-session wire protocol, version 1 (WebSocket and the WebRTC data channel).

Client → server: one JSON object per text message, ``{"type", "viewport", "seq", ...}``;
``seq`` is the client's own increasing number, echoed in the frames and events that answer it.
Server → client: binary messages are frames — 4 bytes little-endian header length ``N``,
``N`` bytes of UTF-8 JSON header (``viewport``, ``frame_seq``, ``input_seq``, ``kind``
lossy|lossless, ``encoding`` jpeg|png, ``width``, ``height`` (of the encoded image),
``view_width``, ``view_height`` (the viewport's full size), ``render_ms``, ``encode_ms``),
then the encoded image; text messages are JSON events (``hello``, ``state``, ``error``,
``measurement``, ``crosshair``, ``cine``, ``pong``, ``closing``). README documents each.

Close codes: 1009 message too big (over :data:`MAX_MESSAGE_BYTES`), 4000 the session ended
(closed or idle), 4429 too many bad messages in a row.
"""

from __future__ import annotations

import json
import struct
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024
CLOSE_SESSION_ENDED = 4000
CLOSE_TOO_MANY_ERRORS = 4429
MAX_CONSECUTIVE_ERRORS = 50

# Every message type a client may send, with the fields it takes (README, "Session protocol").
MESSAGE_TYPES = frozenset({
    "page", "view", "reset", "window", "preset", "zoom", "pan", "rotate", "flip", "invert",
    "slab", "mode", "orbit", "crosshair", "cine", "size", "measure", "frames", "ping",
    "series",
})
# Messages about the session as a whole: no viewport needed.
SESSION_MESSAGES = frozenset({"frames", "ping", "crosshair"})

_LEN = struct.Struct("<I")


class ProtocolError(ValueError):
    """A client message that cannot be acted on; becomes an ``error`` event, the connection
    stays open."""

    def __init__(self, message: str, *, code: str = "bad_message", seq: int | None = None):
        super().__init__(message)
        self.code = code
        self.seq = seq


def pack_frame(header: dict[str, Any], payload: bytes) -> bytes:
    """A binary frame message: length-prefixed JSON header, then the encoded image."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(len(head)) + head + payload


def unpack_frame(message: bytes) -> tuple[dict[str, Any], bytes]:
    """The inverse of :func:`pack_frame` (for clients and tests)."""
    if len(message) < _LEN.size:
        raise ValueError("frame shorter than its length prefix")
    (n,) = _LEN.unpack_from(message)
    if n > len(message) - _LEN.size:
        raise ValueError(f"frame header length {n} exceeds the message")
    header = json.loads(message[_LEN.size:_LEN.size + n])
    return header, message[_LEN.size + n:]


def parse_message(raw: str | bytes) -> dict[str, Any]:
    """A client message as a dict with a known ``type`` and an integer ``seq`` (0 if absent);
    raises :class:`ProtocolError` for anything else."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}",
                            code="too_big")
    try:
        message = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"message is not JSON: {exc}", code="bad_json") from None
    if not isinstance(message, dict):
        raise ProtocolError("message must be a JSON object", code="bad_message")
    seq = message.get("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ProtocolError(f"seq must be a non-negative integer, got {seq!r}")
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {kind!r}; known: "
                            f"{', '.join(sorted(MESSAGE_TYPES))}", code="unknown_type", seq=seq)
    message["seq"] = seq
    return message


def number(message: dict[str, Any], key: str, *, lo: float | None = None,
           hi: float | None = None, default: float | None = None) -> float:
    """A finite number field within [lo, hi]; :class:`ProtocolError` naming it otherwise."""
    value = message.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or value in (float("inf"), float("-inf")):
        raise ProtocolError(f"{message['type']}: {key} must be a finite number, got {value!r}",
                            seq=message.get("seq"))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ProtocolError(f"{message['type']}: {key} must be in [{lo}, {hi}], got {value}",
                            seq=message.get("seq"))
    return float(value)


def pair(message: dict[str, Any], key: str, *, lo: float = -1e6, hi: float = 1e6,
         default: tuple[float, float] | None = None) -> tuple[float, float]:
    value = message.get(key, default)
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ProtocolError(f"{message['type']}: {key} must be a pair of numbers, got "
                            f"{value!r}", seq=message.get("seq"))
    a, b = (number({"type": message["type"], "seq": message.get("seq"), key: v}, key, lo=lo,
                   hi=hi) for v in value)
    return a, b
