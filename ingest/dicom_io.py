"""Reading DICOM bytes: Part-10 files, bare data sets, deflated syntaxes, the DICOM JSON model.

The bytes handed in are what gets archived; nothing here rewrites them.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian

from ingest.errors import NotDicomError

# Bulk data (pixel data and friends) stays out of the catalog's JSON header; WADO-RS replaces
# this marker by a BulkDataURI.
BULK_MARKER_PREFIX = "bulkdata:"
BULK_THRESHOLD_BYTES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedInstance:
    """A data set read from bytes, with how it was encoded."""

    dataset: Dataset
    transfer_syntax_uid: str
    has_file_meta: bool
    size_bytes: int


def _bulk_handler(elem: DataElement) -> str:
    return f"{BULK_MARKER_PREFIX}{elem.tag:08X}"


def read_dataset(data: bytes) -> ParsedInstance:
    """Parse ``data`` (a Part-10 file or a bare data set).

    Element values are converted lazily (pydicom); those the validator needs are converted
    during validation. Raises :class:`NotDicomError` with a human-readable reason.
    """
    if len(data) < 8:
        raise NotDicomError(f"not DICOM: only {len(data)} bytes")
    if data[:2] == b"\x1f\x8b":
        raise NotDicomError("not DICOM: gzip-compressed file (unpack it first)")
    if data[128:132] != b"DICM":
        # A bare data set (no Part-10 header) starts with a low-numbered group, usually 0008.
        group_le = int.from_bytes(data[:2], "little")
        group_be = int.from_bytes(data[:2], "big")
        if not (0x0002 <= group_le <= 0x0010 or 0x0002 <= group_be <= 0x0010):
            raise NotDicomError("not DICOM: no 'DICM' prefix at offset 128 and no data set "
                                "at the start of the file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # pydicom raises many kinds; each becomes a reason
        raise NotDicomError(f"unreadable DICOM: {type(exc).__name__}: {exc}") from exc
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    has_meta = data[128:132] == b"DICM"
    ts = str(meta.get("TransferSyntaxUID", "") or "")
    if not ts:
        # A bare data set: pydicom guessed the encoding while reading it.
        implicit = getattr(ds, "is_implicit_VR", True)
        little = getattr(ds, "is_little_endian", True)
        ts = {
            (True, True): ImplicitVRLittleEndian,
            (False, True): "1.2.840.10008.1.2.1",
            (False, False): "1.2.840.10008.1.2.2",
        }.get((bool(implicit), bool(little)), ImplicitVRLittleEndian)
    if len(ds) == 0:
        raise NotDicomError("not DICOM: no data elements could be read")
    return ParsedInstance(dataset=ds, transfer_syntax_uid=str(ts), has_file_meta=has_meta,
                          size_bytes=len(data))


def header_json(ds: Dataset) -> tuple[dict[str, Any], list[str]]:
    """DICOM JSON (PS3.18 F.2) of ``ds`` with bulk data replaced by markers.

    Returns the JSON and the keywords/tags of elements that could not be decoded (left out).
    """
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ds.to_json_dict(BULK_THRESHOLD_BYTES, _bulk_handler), problems
        except Exception:
            pass
        out: dict[str, Any] = {}
        for elem in ds:
            try:
                single = Dataset()
                single.add(elem)
                out.update(single.to_json_dict(BULK_THRESHOLD_BYTES, _bulk_handler))
            except Exception as exc:
                problems.append(f"{elem.tag} {elem.keyword or ''}: {type(exc).__name__}".strip())
        return out, problems


def text(ds: Dataset, keyword: str, default: str = "") -> str:
    """An attribute as text ('' when absent or empty); multi-valued joined with '\\'."""
    value = ds.get(keyword, None)
    if value is None:
        return default
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def integer(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword, None)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def to_float(value: Any) -> float | None:
    """A finite float from a DS/IS/number, else None."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def first_item(ds: Dataset, keyword: str) -> Dataset | None:
    """The first item of sequence ``keyword``, or None."""
    seq = ds.get(keyword)
    return seq[0] if seq else None


def functional_group(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """Functional group macro ``keyword`` of ``frame``: per-frame first, then shared."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per and frame < len(per):
        item = first_item(per[frame], keyword)
        if item is not None:
            return item
    shared = ds.get("SharedFunctionalGroupsSequence")
    return first_item(shared[0], keyword) if shared else None
