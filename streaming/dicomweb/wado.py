"""WADO-RS (PS3.18 §10.4): instances, metadata, bulk data and frames.

- Instances (study, series or one instance): ``multipart/related; type="application/dicom"``
  with one part per current instance, in series/instance-number order. Without a
  ``transfer-syntax`` parameter, or with ``*`` or the stored syntax, each part is the archived
  bytes exactly. An instance archived as a bare data set (received without File Meta
  Information) gets a generated 128-byte zero preamble, ``DICM`` and a File Meta group built
  with pydicom (PS3.10 §7.1: Media Storage SOP Class/Instance UID, the stored Transfer Syntax
  UID, pydicom's Implementation Class UID, version name ``VOXCAST``) in front of the untouched
  data-set bytes. ``transfer-syntax=1.2.840.10008.1.2.1`` transcodes (decompressing) to
  Explicit VR Little Endian; any other syntax is 406. ``Accept: application/dicom`` alone (a
  single part) is served for one instance.
- Metadata: DICOM JSON (PS3.18 F.2) of every instance; bulk data elements carry a
  BulkDataURI ``…/instances/{sop}/bulkdata/{tag}`` (nested: ``{seq}/{item}/{tag}``, item
  0-based).
- Bulk data: ``multipart/related; type="application/octet-stream"``, one part, little endian;
  Pixel Data of a compressed instance is served decoded (native frames, concatenated).
- Frames (``frames/1,3,5``, 1-based): one ``application/octet-stream`` part per frame, native
  little-endian pixels (PS3.18 §8.7.3.3.2 default for octet-stream). Compressed instances are
  decoded (colour JPEG/YBR comes out as RGB). A malformed list or frame 0 is 400 (the URI
  grammar of PS3.18 §10.4.1.1.5 asks for positive integers); a frame beyond Number of Frames
  is 404 (the frame resource does not exist).

Unknown study, series or instance: 404 with a JSON message; unacceptable Accept: 406.
"""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from aiohttp import web
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from ingest.dicom_io import BULK_MARKER_PREFIX
from ingest.dicomweb_queries import InstanceRef, find_instances, instance_header
from ingest.pixels import decode_frames
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.dicomweb.common import (
    APPLICATION_DICOM,
    EXPLICIT_VR_LITTLE_ENDIAN,
    OCTET_STREAM,
    MediaRange,
    MultipartWriter,
    dicom_json_response,
    instance_url,
    negotiate,
    require_json,
    service_url,
)
from streaming.runtime import Runtime

BIG_ENDIAN = "1.2.840.10008.1.2.2"
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _uids(request: web.Request) -> tuple[str, str | None, str | None]:
    m = request.match_info
    return m["study"], m.get("series"), m.get("sop")


async def _refs(request: web.Request) -> list[InstanceRef]:
    runtime = request.app[RUNTIME]
    study, series, sop = _uids(request)
    refs = await run_blocking(request, find_instances, runtime.catalog, study, series, sop)
    if not refs:
        raise ApiError(404, f"no instances stored for {'series ' + series if series else 'study ' + study}")
    return refs


# -- instances ------------------------------------------------------------------------------------


def _dicom_choice(single_allowed: bool) -> Any:
    def choose(r: MediaRange) -> tuple[str, str | None] | None:
        if r.media_type in ("*/*", "multipart/*") or (
                r.media_type == "multipart/related" and r.part_type in (None, APPLICATION_DICOM,
                                                                        "*/*")):
            return "multipart", r.params.get("transfer-syntax")
        if single_allowed and r.media_type == APPLICATION_DICOM:
            return "single", r.params.get("transfer-syntax")
        return None
    return choose


def file_meta_prefix(ref: InstanceRef) -> bytes:
    """Preamble, ``DICM`` and a File Meta group (PS3.10 §7.1) for a bare data set."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ref.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(ref.sop_uid)
    meta.TransferSyntaxUID = UID(ref.transfer_syntax_uid)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "VOXCAST"
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + buffer.getvalue()


def _transcode_explicit_le(data: bytes) -> bytes:
    """The instance in Explicit VR Little Endian, decompressed (PS3.5 A.2)."""
    ds = pydicom.dcmread(BytesIO(data), force=True)
    ts = UID(str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")))
    if ts.is_compressed:
        ds.decompress()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    out = BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return out.getvalue()


def instance_bytes(data_dir: Path, ref: InstanceRef, transfer_syntax: str | None) -> bytes:
    """The bytes to send for one instance (module docstring). Blocking."""
    data = (data_dir / ref.file_path).read_bytes()
    if not ref.has_file_meta:
        data = file_meta_prefix(ref) + data
    if transfer_syntax in (None, "*", ref.transfer_syntax_uid):
        return data
    return _transcode_explicit_le(data)


def _check_transfer_syntax(refs: list[InstanceRef], ts: str | None) -> None:
    if ts in (None, "*"):
        return
    for ref in refs:
        if ts == ref.transfer_syntax_uid:
            continue
        if ts != EXPLICIT_VR_LITTLE_ENDIAN or ref.transfer_syntax_uid == BIG_ENDIAN:
            raise ApiError(406, f"instance {ref.sop_uid} is stored as {ref.transfer_syntax_uid}"
                                f" and cannot be served as {ts}; ask for transfer-syntax=* or "
                                f"{EXPLICIT_VR_LITTLE_ENDIAN}")


async def retrieve(request: web.Request) -> web.StreamResponse:
    """Study, series or instance retrieve (PS3.18 §10.4.1.1.1-3)."""
    runtime = request.app[RUNTIME]
    single_ok = request.match_info.get("sop") is not None
    kind, ts = negotiate(request, _dicom_choice(single_ok),
                         'multipart/related; type="application/dicom"')
    refs = await _refs(request)
    _check_transfer_syntax(refs, ts)
    base = service_url(request)
    if kind == "single":
        body = await run_blocking(request, instance_bytes, runtime.data_dir, refs[0], ts)
        return web.Response(body=body, content_type=APPLICATION_DICOM)
    writer = MultipartWriter(request, APPLICATION_DICOM)
    await writer.start()
    for ref in refs:
        body = await run_blocking(request, instance_bytes, runtime.data_dir, ref, ts)
        served = ref.transfer_syntax_uid if ts in (None, "*") else ts
        await writer.part(body, f"{APPLICATION_DICOM}; transfer-syntax={served}",
                          instance_url(base, ref.study_uid, ref.series_uid, ref.sop_uid))
    return await writer.finish()


# -- metadata -------------------------------------------------------------------------------------


def rewrite_bulk_uris(obj: dict[str, Any], prefix: str, path: tuple[str, ...] = ()) -> None:
    """Replace ``bulkdata:`` markers by URIs under ``prefix`` (in place), sequences included."""
    for tag, elem in obj.items():
        if not isinstance(elem, dict):
            continue
        uri = elem.get("BulkDataURI")
        if isinstance(uri, str) and uri.startswith(BULK_MARKER_PREFIX):
            elem["BulkDataURI"] = f"{prefix}/" + "/".join((*path, tag))
        if elem.get("vr") == "SQ":
            for i, item in enumerate(elem.get("Value") or []):
                if isinstance(item, dict):
                    rewrite_bulk_uris(item, prefix, (*path, tag, str(i)))


def metadata_of(runtime: Runtime, refs: list[InstanceRef], base: str) -> list[dict[str, Any]]:
    """DICOM JSON of each instance with real BulkDataURIs. Blocking."""
    out = []
    for ref in refs:
        header = instance_header(runtime.catalog, runtime.data_dir, ref.pk, ref.header_json)
        rewrite_bulk_uris(header, instance_url(base, ref.study_uid, ref.series_uid,
                                               ref.sop_uid) + "/bulkdata")
        header.setdefault("00083002", {"vr": "UI", "Value": [ref.transfer_syntax_uid]})
        out.append(header)
    return out


async def metadata(request: web.Request) -> web.Response:
    """Study, series or instance metadata (PS3.18 §10.4.1.1.4-6)."""
    require_json(request)
    refs = await _refs(request)
    body = await run_blocking(request, metadata_of, request.app[RUNTIME], refs,
                              service_url(request))
    return dicom_json_response(body)


# -- bulk data and frames -------------------------------------------------------------------------


def _octet_choice(r: MediaRange) -> bool | None:
    if r.media_type in ("*/*", "multipart/*", OCTET_STREAM):
        return True
    if r.media_type == "multipart/related" and r.part_type in (None, OCTET_STREAM, "*/*"):
        ts = r.params.get("transfer-syntax")
        return True if ts in (None, "*", EXPLICIT_VR_LITTLE_ENDIAN) else None
    return None


def _read(data_dir: Path, ref: InstanceRef) -> Dataset:
    return pydicom.dcmread(data_dir / ref.file_path, force=True)


def _native_frames(ds: Dataset, ref: InstanceRef) -> list[bytes] | None:
    """Frames sliced straight from native little-endian Pixel Data, when that is possible."""
    ts = UID(ref.transfer_syntax_uid)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if ts.is_compressed or ts == BIG_ENDIAN or bits % 8 or "PixelData" not in ds:
        return None
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * bits // 8
    raw = ds.PixelData
    if size == 0 or len(raw) < size * ref.number_of_frames:
        return None
    return [raw[i * size:(i + 1) * size] for i in range(ref.number_of_frames)]


def _little_endian(arr: np.ndarray[Any, Any]) -> bytes:
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def frames_of(data_dir: Path, ref: InstanceRef, numbers: list[int]) -> list[bytes]:
    """The requested frames (1-based) as native little-endian bytes. Blocking."""
    ds = _read(data_dir, ref)
    if not any(t in ds for t in _PIXEL_TAGS):
        raise ApiError(404, f"instance {ref.sop_uid} has no pixel data, hence no frames")
    native = _native_frames(ds, ref)
    if native is not None:
        return [native[n - 1] for n in numbers]
    arr = decode_frames(ds)
    return [_little_endian(arr[n - 1]) for n in numbers]


def parse_frame_list(text: str, count: int) -> list[int]:
    """``1,3,5`` → [1, 3, 5]; 400 when malformed or 0, 404 beyond ``count``."""
    if not re.fullmatch(r"\d+(,\d+)*", text):
        raise ApiError(400, f"frame list {text[:50]!r} is not comma-separated positive integers")
    numbers = [int(n) for n in text.split(",")]
    if any(n < 1 for n in numbers):
        raise ApiError(400, "frame numbers start at 1 (PS3.18 §10.4.1.1.5)")
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise ApiError(404, f"frame {beyond[0]} does not exist: the instance has {count} frame(s)")
    return numbers


async def frames(request: web.Request) -> web.StreamResponse:
    """Frames of one instance (PS3.18 §10.4.1.1.5)."""
    negotiate(request, _octet_choice, 'multipart/related; type="application/octet-stream"')
    ref = (await _refs(request))[0]
    numbers = parse_frame_list(request.match_info["frames"], ref.number_of_frames)
    parts = await run_blocking(request, frames_of, request.app[RUNTIME].data_dir, ref, numbers)
    writer = MultipartWriter(request, OCTET_STREAM)
    for part in parts:
        await writer.part(part, f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}")
    return await writer.finish()


def _bulk_element(ds: Dataset, path: str) -> tuple[int, Any, Dataset]:
    """(tag, element, containing data set) for ``TAG[/ITEM/TAG]...``; 400/404 on bad paths."""
    steps = path.strip("/").split("/")
    if len(steps) % 2 != 1 or not all(
            re.fullmatch(r"[0-9A-Fa-f]{8}" if i % 2 == 0 else r"\d+", s)
            for i, s in enumerate(steps)):
        raise ApiError(400, f"bulk data path {path[:80]!r} is not TAG[/ITEM/TAG]...")
    current = ds
    for i in range(0, len(steps) - 1, 2):
        seq = current.get(int(steps[i], 16))
        item = int(steps[i + 1])
        if seq is None or seq.VR != "SQ" or item >= len(seq.value):
            raise ApiError(404, f"no bulk data at {path[:80]!r}")
        current = seq.value[item]
    tag = int(steps[-1], 16)
    elem = current.get(tag)
    if elem is None or elem.value is None:
        raise ApiError(404, f"no bulk data at {path[:80]!r}")
    return tag, elem, current


def bulk_of(data_dir: Path, ref: InstanceRef, path: str) -> bytes:
    """One bulk data element's value as little-endian bytes (module docstring). Blocking."""
    ds = _read(data_dir, ref)
    tag, elem, container = _bulk_element(ds, path)
    if tag == 0x7FE00010 and container is ds and UID(ref.transfer_syntax_uid).is_compressed:
        return _little_endian(decode_frames(ds))
    value = elem.value
    if not isinstance(value, bytes | bytearray):
        raise ApiError(404, f"element {path[:80]!r} is not bulk data")
    width = _SWAP_WIDTH.get(elem.VR)
    if ref.transfer_syntax_uid == BIG_ENDIAN and width:
        value = np.frombuffer(value, dtype=f">u{width}").astype(f"<u{width}").tobytes()
    return bytes(value)


async def bulkdata(request: web.Request) -> web.StreamResponse:
    """The target of the BulkDataURIs in metadata (PS3.18 §10.4.1.1.7 semantics)."""
    negotiate(request, _octet_choice, 'multipart/related; type="application/octet-stream"')
    ref = (await _refs(request))[0]
    body = await run_blocking(request, bulk_of, request.app[RUNTIME].data_dir, ref,
                              request.match_info["path"])
    writer = MultipartWriter(request, OCTET_STREAM)
    await writer.part(body, OCTET_STREAM)
    return await writer.finish()


def add_routes(app: web.Application, prefix: str) -> None:
    study = f"{prefix}/studies/{{study}}"
    series = f"{study}/series/{{series}}"
    instance = f"{series}/instances/{{sop}}"
    for base in (study, series, instance):
        app.router.add_get(base, retrieve)
        app.router.add_get(f"{base}/metadata", metadata)
    app.router.add_get(f"{instance}/frames/{{frames}}", frames)
    app.router.add_get(f"{instance}/bulkdata/{{path:.+}}", bulkdata)
