"""STOW-RS (PS3.18 §10.5): store instances sent as ``multipart/related; type="application/dicom"``.

The body is read part by part (aiohttp's :class:`MultipartReader`), each part handed to
:meth:`IngestService.store` (which returns after fsync and commit) in the thread pool while
the next part is read. ``settings.max_upload_bytes`` bounds the body whether it comes with a
Content-Length (checked before anything is read) or chunked (checked while reading; parts
stored before the limit was crossed stay stored).

Response: the Store Instances Response Module (PS3.18 Annex I) as DICOM JSON —

- Retrieve URL (0008,1190): the study's URL when the request named a study or every stored
  instance belongs to one study; empty otherwise (Type 2).
- Referenced SOP Sequence (0008,1199): per stored instance its SOP Class/Instance UIDs and
  Retrieve URL, with Warning Reason (0008,1196) = B007 (stored with validation warnings,
  "Data Set does not match SOP Class") or B100 (VoxCast-specific, to be listed in the
  conformance statement: "stored as a new version of an existing SOP Instance UID; earlier
  versions kept").
- Failed SOP Sequence (0008,1198): per refused part its SOP Class/Instance UIDs (empty when
  unreadable), Failure Reason (0008,1197) per Table I.2-2 — C000 cannot understand (not
  DICOM, part not application/dicom), A900 data set does not match SOP class (validation
  errors, catalog conflicts, Study Instance UID other than the request's), A700 out of
  resources, 0110 processing failure — and the reason as text in Error Comment (0000,0902),
  the element PS3.7 Annex C gives DIMSE failure statuses for exactly this (e.g. C.5.21:
  "application-specific text description of the error"; LO: at most 64 characters of the default repertoire, so it is cut there and
  names the quarantine entry, whose full findings ``/api/quarantine`` lists). DICOM JSON has
  no room for non-attribute members, so no top-level ``reason`` is added.

HTTP status (Table 10.5.3-1): 200 all stored without warnings; 202 some stored and warnings
or failures; 409 none stored; 400 no parts or unparseable framing before any part; 413 body
too large; 415 not ``multipart/related`` or a ``type`` other than ``application/dicom``
(a missing ``type`` parameter is taken as ``application/dicom``; a part whose own
Content-Type is something else fails with C000).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
from dataclasses import dataclass, replace
from io import BytesIO
from typing import Any

import pydicom
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ingest.service import StoreOutcome, StoreStatus
from ingest.validation import ERROR, WARNING
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.dicomweb.common import (
    APPLICATION_DICOM,
    dicom_json_response,
    instance_url,
    parse_media_type,
    service_url,
    study_url,
)
from streaming.runtime import Runtime

log = logging.getLogger(__name__)

FAILURE_OUT_OF_RESOURCES = 0xA700
FAILURE_DOES_NOT_MATCH = 0xA900
FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_PROCESSING = 0x0110
WARNING_DOES_NOT_MATCH = 0xB007
WARNING_NEW_VERSION = 0xB100  # VoxCast-specific (PS3.18 I.2.1 allows additional codes)

_READ_CHUNK = 256 * 1024
_IN_FLIGHT = 4  # parts being stored while the next one is read


@dataclass(frozen=True, slots=True, kw_only=True)
class PartResult:
    """What became of one part."""

    stored: bool
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    failure_reason: int | None = None
    warning_reason: int | None = None
    comment: str = ""


def _error_comment(text: str) -> str:
    """Error Comment (0000,0902) is LO: default repertoire, no backslash, <= 64 chars."""
    clean = re.sub(r"[^\x20-\x7e]|\\", " ", text).strip()
    return clean if len(clean) <= 64 else clean[:61].rstrip() + "..."


def _peek_uids(data: bytes) -> tuple[str, str, str] | None:
    """(StudyInstanceUID, SOPClassUID, SOPInstanceUID) read cheaply, or None if unreadable."""
    try:
        ds = pydicom.dcmread(BytesIO(data), force=True, stop_before_pixels=True,
                             specific_tags=["StudyInstanceUID", "SOPClassUID", "SOPInstanceUID"])
        return (str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SOPClassUID", "") or ""),
                str(ds.get("SOPInstanceUID", "") or ""))
    except Exception:
        return None


def _from_outcome(outcome: StoreOutcome) -> PartResult:
    ids = PartResult(stored=False, sop_class_uid=outcome.sop_class_uid,
                     sop_instance_uid=outcome.sop_instance_uid,
                     study_uid=outcome.study_instance_uid,
                     series_uid=outcome.series_instance_uid)
    if outcome.status is StoreStatus.QUARANTINED:
        rules = {f.rule for f in outcome.findings if f.severity == ERROR}
        # Unreadable, or nothing identifies an instance in it: "cannot understand".
        unidentified = not (outcome.sop_class_uid or outcome.sop_instance_uid)
        code = (FAILURE_CANNOT_UNDERSTAND if rules <= {"not-dicom"} or unidentified
                else FAILURE_DOES_NOT_MATCH)
        prefix = f"quarantine {outcome.quarantine_id}: " if outcome.quarantine_id else ""
        return replace(ids, failure_reason=code,
                       comment=_error_comment(prefix + outcome.reason))
    warning: int | None = None
    if outcome.status is StoreStatus.NEW_VERSION:
        warning = WARNING_NEW_VERSION
    elif any(f.severity == WARNING for f in outcome.findings):
        warning = WARNING_DOES_NOT_MATCH
    return replace(ids, stored=True, warning_reason=warning)


def store_part(runtime: Runtime, data: bytes, index: int, study_uid: str | None) -> PartResult:
    """Store one part (blocking). Never raises: every problem becomes a failed part."""
    try:
        if study_uid is not None:
            uids = _peek_uids(data)
            if uids is not None and uids[0] and uids[0] != study_uid:
                # PS3.18 §10.5.1: instances of another study than the target are refused.
                return PartResult(stored=False, study_uid=uids[0], sop_class_uid=uids[1],
                                  sop_instance_uid=uids[2],
                                  failure_reason=FAILURE_DOES_NOT_MATCH,
                                  comment="StudyInstanceUID differs from the request's study")
        # The series builder polls for quiet series; it needs no wake-up per instance.
        outcome = runtime.ingest.store(data, source="stow-rs", origin=f"stow-rs part {index}")
        return _from_outcome(outcome)
    except OSError as exc:
        code = FAILURE_OUT_OF_RESOURCES if exc.errno in (errno.ENOSPC, errno.EDQUOT) \
            else FAILURE_PROCESSING
        log.error("STOW-RS part %d not stored: %s", index, type(exc).__name__)
        return PartResult(stored=False, failure_reason=code,
                          comment=_error_comment(f"storage error: {exc.strerror or exc}"))
    except Exception:
        log.exception("STOW-RS part %d: unexpected error", index)
        return PartResult(stored=False, failure_reason=FAILURE_PROCESSING,
                          comment="processing failure")


def _check_content_type(request: web.Request) -> None:
    raw = request.headers.get("Content-Type", "")
    if not raw:
        raise ApiError(415, 'STOW-RS needs Content-Type: multipart/related; '
                            'type="application/dicom"; boundary=...')
    media = parse_media_type(raw)
    if media.media_type != "multipart/related":
        raise ApiError(415, f"STOW-RS accepts multipart/related; type=\"application/dicom\", "
                            f"not {media.media_type}")
    part_type = media.part_type
    if part_type is not None and part_type != APPLICATION_DICOM:
        raise ApiError(415, f"STOW-RS here accepts type=\"application/dicom\" parts only, "
                            f"not {part_type!r} (PS3.18 §10.5.1.2)")
    if not media.params.get("boundary"):
        raise ApiError(400, "multipart/related Content-Type without a boundary parameter")


async def _read_part(request: web.Request, part: BodyPartReader, limit: int) -> bytes:
    """One part's bytes. Raises 413 past ``limit``; ValueError if no boundary closes it."""
    data = bytearray()
    while True:
        chunk = await part.read_chunk(_READ_CHUNK)
        if not chunk:
            if not part.at_eof():  # the body ended inside this part: never store a fragment
                raise ValueError("the body ends inside a part (no closing boundary)")
            return bytes(data)
        data += chunk
        if request.content.total_bytes > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")


async def store_instances(request: web.Request) -> web.Response:
    """``POST {+SERVICE}/studies[/{study}]`` (PS3.18 §10.5)."""
    runtime = request.app[RUNTIME]
    study_uid = request.match_info.get("study")
    limit = runtime.settings.max_upload_bytes
    _check_content_type(request)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body of {request.content_length} bytes is larger than "
                            f"the limit of {limit} bytes")
    reader = MultipartReader(request.headers, request.content)
    pending: list[asyncio.Future[PartResult]] = []
    framing_error: str | None = None
    index = 0
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            index += 1
            if isinstance(part, MultipartReader):
                raise ApiError(400, f"part {index} is itself multipart; not supported")
            data = await _read_part(request, part, limit)
            part_type = part.headers.get("Content-Type")
            if part_type and parse_media_type(part_type).media_type != APPLICATION_DICOM:
                pending.append(_done(PartResult(
                    stored=False, failure_reason=FAILURE_CANNOT_UNDERSTAND,
                    comment=_error_comment(f"part is {part_type}, not application/dicom"))))
                continue
            pending.append(asyncio.ensure_future(
                run_blocking(request, store_part, runtime, data, index, study_uid)))
            if sum(not f.done() for f in pending) >= _IN_FLIGHT:
                await asyncio.wait([f for f in pending if not f.done()],
                                   return_when=asyncio.FIRST_COMPLETED)
    except ApiError:
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    except (ValueError, AssertionError, HttpProcessingError) as exc:  # bad framing
        framing_error = "malformed multipart body: " + " ".join(str(exc).split())[:200]
    results = list(await asyncio.gather(*pending))
    if not results:
        raise ApiError(400, framing_error or "multipart body without any part")
    if framing_error:
        log.warning("STOW-RS body ended with a framing error after %d parts", len(results))
        results.append(PartResult(stored=False, failure_reason=FAILURE_CANNOT_UNDERSTAND,
                                  comment=_error_comment(framing_error)))
    body, status = response_module(service_url(request), results, study_uid)
    stored = sum(r.stored for r in results)
    log.info("STOW-RS: %d parts, %d stored, %d failed", len(results), stored,
             len(results) - stored)
    return dicom_json_response(body, status=status)


def _done(result: PartResult) -> asyncio.Future[PartResult]:
    future: asyncio.Future[PartResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def response_module(base: str, results: list[PartResult],
                    study_uid: str | None) -> tuple[dict[str, Any], int]:
    """The Store Instances Response Module (PS3.18 Table I.1-1) and the HTTP status."""
    referenced: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for r in results:
        item: dict[str, Any] = {"00081150": _ui(r.sop_class_uid),
                                "00081155": _ui(r.sop_instance_uid)}
        if r.stored:
            item["00081190"] = {"vr": "UR", "Value": [
                instance_url(base, r.study_uid, r.series_uid, r.sop_instance_uid)]}
            if r.warning_reason is not None:
                item["00081196"] = {"vr": "US", "Value": [r.warning_reason]}
            referenced.append(item)
        else:
            item["00081197"] = {"vr": "US", "Value": [r.failure_reason or FAILURE_PROCESSING]}
            if r.comment:
                item["00000902"] = {"vr": "LO", "Value": [r.comment]}
            failed.append(item)
    studies = {r.study_uid for r in results if r.stored}
    target = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
    body: dict[str, Any] = {"00081190": {"vr": "UR", "Value": [study_url(base, target)]}
                            if target else {"vr": "UR"}}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    if not referenced:
        status = 409
    elif failed or any(r.warning_reason is not None for r in results if r.stored):
        status = 202
    else:
        status = 200
    return body, status


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/studies", store_instances)
    app.router.add_post(f"{prefix}/studies/{{study}}", store_instances)
