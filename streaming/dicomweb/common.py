"""Shared pieces of the DICOMweb endpoints: media types, multipart framing, URLs, DICOM JSON.

Media types and their parameters follow PS3.18 §8.7 (RFC 7231 §3.1.1.1 syntax: type,
subtype and parameter names case-insensitive, values token or quoted-string). Multipart
bodies are ``multipart/related`` (RFC 2387) with CRLF framing (PS3.18 §8.7.1.2).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from streaming.app import ApiError

DICOM_JSON = "application/dicom+json"
APPLICATION_DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"

_TOKEN_PARAM = re.compile(r'\s*;\s*([^=;,\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,]*)')


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaRange:
    """One media range of an Accept or Content-Type header (lower-case type/subtype)."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        """Whether this range accepts ``media_type`` (``*/*`` and ``type/*`` included)."""
        mine, theirs = self.media_type, media_type.lower()
        if mine == "*/*" or mine == theirs:
            return True
        return mine.endswith("/*") and theirs.split("/")[0] == mine[:-2]

    @property
    def part_type(self) -> str | None:
        """The ``type`` parameter of a multipart range (lower case), if any."""
        value = self.params.get("type")
        return value.lower() if value else None


def _split_top_level(header: str) -> list[str]:
    """Split a header value on commas outside quoted strings."""
    items, current, quoted, escaped = [], [], False, False
    for ch in header:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(ch)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def parse_media_type(value: str) -> MediaRange:
    """Parse one media type with parameters. Raises :class:`ApiError` 400 when malformed."""
    head, _, rest = value.partition(";")
    media_type = head.strip().lower()
    if not re.fullmatch(r"[a-z0-9!#$&^_.+*-]+/[a-z0-9!#$&^_.+*-]+", media_type):
        raise ApiError(400, f"malformed media type {value.strip()[:100]!r}")
    params: dict[str, str] = {}
    q = 1.0
    for match in _TOKEN_PARAM.finditer(";" + rest):
        name, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name == "q":
            try:
                q = float(raw)
            except ValueError:
                raise ApiError(400, f"malformed quality value q={raw!r}") from None
        else:
            params[name] = raw
    return MediaRange(media_type=media_type, params=params, q=q)


def accepted(request: web.Request) -> list[MediaRange]:
    """The Accept header's media ranges, most preferred first; ``*/*`` when absent."""
    header = request.headers.get("Accept", "").strip()
    if not header:
        return [MediaRange(media_type="*/*")]
    ranges = [parse_media_type(item) for item in _split_top_level(header)]
    return sorted((r for r in ranges if r.q > 0), key=lambda r: -r.q)


def negotiate(request: web.Request, choose: Callable[[MediaRange], Any | None],
              offered: str) -> Any:
    """The first acceptable choice over the client's ranges, or 406 naming what is offered."""
    for media_range in accepted(request):
        choice = choose(media_range)
        if choice is not None:
            return choice
    raise ApiError(406, f"none of the acceptable media types can be served here; "
                        f"this resource offers {offered} (PS3.18 §8.7)")


def json_acceptable(media_range: MediaRange) -> bool | None:
    """DICOM JSON (or plain JSON) for QIDO-RS and metadata (PS3.18 §8.7.3.2)."""
    for offer in (DICOM_JSON, "application/json"):
        if media_range.matches(offer):
            return True
    if media_range.media_type == "multipart/related" and media_range.part_type in (
            DICOM_JSON, "application/json"):
        return True
    return None


def require_json(request: web.Request) -> None:
    negotiate(request, json_acceptable, DICOM_JSON)


def dicom_json_response(payload: Any, *, status: int = 200,
                        headers: dict[str, str] | None = None) -> web.Response:
    """A DICOM JSON body; the media type exactly ``application/dicom+json`` (no charset)."""
    return web.Response(status=status, body=json.dumps(payload).encode("utf-8"),
                        content_type=DICOM_JSON, headers=headers)


def service_url(request: web.Request) -> str:
    """The DICOMweb base URL as the client reached it (``{+SERVICE}``, PS3.18 §8.2)."""
    forwarded_proto = request.headers.get("X-Forwarded-Proto")
    scheme = forwarded_proto.split(",")[0].strip() if forwarded_proto else request.scheme
    return f"{scheme}://{request.host}/dicomweb"


def study_url(base: str, study: str) -> str:
    return f"{base}/studies/{study}"


def series_url(base: str, study: str, series: str) -> str:
    return f"{base}/studies/{study}/series/{series}"


def instance_url(base: str, study: str, series: str, sop: str) -> str:
    return f"{base}/studies/{study}/series/{series}/instances/{sop}"


def warning_header(request: web.Request, messages: Iterable[str]) -> dict[str, str]:
    """``Warning: 299 <host>: "<text>"`` entries (PS3.18 §8.4.3, RFC 7234 §5.5)."""
    texts = [m.replace('"', "'") for m in messages]
    if not texts:
        return {}
    return {"Warning": ", ".join(f'299 {request.host}: "{t}"' for t in texts)}


class MultipartWriter:
    """Writes a ``multipart/related`` response part by part (PS3.18 §8.7.1.2).

    Nothing is sent before :meth:`start`; call it once everything that could still fail with
    a 4xx status has been checked, since the status line goes out with the first part.
    """

    def __init__(self, request: web.Request, part_type: str) -> None:
        self.request = request
        self.boundary = uuid.uuid4().hex
        self.response = web.StreamResponse(status=200, headers={
            "Content-Type": f'multipart/related; type="{part_type}"; boundary={self.boundary}'})
        self._started = False

    async def start(self) -> None:
        await self.response.prepare(self.request)
        self._started = True

    async def part(self, body: bytes, content_type: str,
                   location: str | None = None) -> None:
        if not self._started:
            await self.start()
        head = f"--{self.boundary}\r\nContent-Type: {content_type}\r\n"
        if location:
            head += f"Content-Location: {location}\r\n"
        await self.response.write(head.encode("ascii") + b"\r\n" + body + b"\r\n")

    async def finish(self) -> web.StreamResponse:
        if not self._started:
            await self.start()
        await self.response.write(f"--{self.boundary}--\r\n".encode("ascii"))
        await self.response.write_eof()
        return self.response
