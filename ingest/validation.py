"""Validation of one instance (R4): rules with severities.

Errors send the instance to quarantine; warnings are recorded on the stored instance.
Catalog-dependent rules (UID consistency with earlier instances, duplicates) live in
:mod:`ingest.service`, which has the catalog; this module looks at one data set alone.

How strict the rules are is a parameter (:class:`ValidationPolicy`), never a global.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from ingest.pixels import decode_frames

ERROR = "error"
WARNING = "warning"

_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

CROSS_SECTIONAL = {"CT", "MR", "PT", "NM"}
ENHANCED_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128.1",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy converted enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy converted enhanced MR
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy converted enhanced PET
)
# Classic single-frame storage classes that carry the Image Plane module (PS3.3 C.7.6.2).
IMAGE_PLANE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.128": "PT",
}


class Rule(StrEnum):
    REQUIRED = "required-attribute"
    UID_SYNTAX = "uid-syntax"
    UID_CONSISTENCY = "uid-consistency"
    PIXEL_DATA = "pixel-data"
    IMAGE_PLANE = "image-plane"
    DUPLICATE = "duplicate"
    NOT_DICOM = "not-dicom"
    MALFORMED = "malformed-element"
    SUV = "suv"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    rule: str
    severity: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationPolicy:
    """How strict validation is.

    ``require_image_plane``: a CT/MR/PET image without position/orientation/spacing is an
    error (otherwise a warning). ``decode_compressed``: decode encapsulated pixel data to prove
    it decodable (costs time; off only for benchmarks of the transport).
    """

    require_image_plane: bool = True
    decode_compressed: bool = True
    require_patient_id: bool = True
    extra_required: dict[str, tuple[str, ...]] = field(default_factory=dict)


Report = Callable[["Rule", str], None]

# Type 1 attributes of the SOP Common / General Study / General Series modules.
_ALWAYS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality")
_IMAGE_PIXEL = ("Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel",
                "PhotometricInterpretation", "PixelRepresentation")
_PER_MODALITY: dict[str, tuple[str, ...]] = {
    "CT": ("RescaleIntercept", "RescaleSlope"),
    "PT": ("Units",),
}


def is_valid_uid(value: str) -> bool:
    """UID syntax of PS3.5 §9.1: digits and dots, no leading zeros, at most 64 characters."""
    return 0 < len(value) <= 64 and bool(_UID_RE.match(value))


def validate(ds: Dataset, policy: ValidationPolicy | None = None) -> list[Finding]:
    """Check one data set on its own; returns findings (empty when clean). Never raises.

    pydicom converts element values lazily, so a malformed value (``IS`` of ``'1A'``, a broken
    sequence) surfaces while a rule reads it: it becomes a ``malformed-element`` error.
    """
    try:
        return _validate(ds, policy or ValidationPolicy())
    except Exception as exc:
        return [Finding(rule=Rule.MALFORMED.value, severity=ERROR,
                        message=f"malformed data element: {type(exc).__name__}: {exc}")]


def _validate(ds: Dataset, policy: ValidationPolicy) -> list[Finding]:
    out: list[Finding] = []

    def err(rule: Rule, msg: str) -> None:
        out.append(Finding(rule=rule.value, severity=ERROR, message=msg))

    def warn(rule: Rule, msg: str) -> None:
        out.append(Finding(rule=rule.value, severity=WARNING, message=msg))

    for kw in _ALWAYS:
        if not str(ds.get(kw, "") or "").strip():
            err(Rule.REQUIRED, f"required attribute {kw} is missing or empty")
    if "PatientID" not in ds:
        (err if policy.require_patient_id else warn)(Rule.REQUIRED, "PatientID is missing")
    elif not str(ds.PatientID or "").strip():
        warn(Rule.REQUIRED, "PatientID is empty")

    for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
               "FrameOfReferenceUID"):
        value = str(ds.get(kw, "") or "").strip()
        if value and not is_valid_uid(value):
            err(Rule.UID_SYNTAX, f"{kw} {value!r} is not a valid UID (PS3.5 9.1)")

    modality = str(ds.get("Modality", "") or "").upper()
    for kw in _PER_MODALITY.get(modality, ()) + policy.extra_required.get(modality, ()):
        if kw not in ds or ds[kw].value in (None, ""):
            severity_fn = warn if kw in ("RescaleIntercept", "RescaleSlope") else err
            severity_fn(Rule.REQUIRED, f"{modality} attribute {kw} is missing")

    if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        missing = [kw for kw in _IMAGE_PIXEL if kw not in ds]
        if missing:
            err(Rule.REQUIRED, f"image pixel attributes missing: {', '.join(missing)}")
        else:
            _check_pixels(ds, policy, err)
        _check_image_plane(ds, policy, err, warn)
    return out


def _expected_pixel_bytes(ds: Dataset) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.BitsAllocated)
    count = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * frames
    return (count * bits + 7) // 8


def _check_pixels(ds: Dataset, policy: ValidationPolicy, report: Report) -> None:
    ts = UID(str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")))
    if "PixelData" not in ds:
        return
    elem = ds["PixelData"]
    try:
        compressed = ts.is_compressed
    except Exception:
        compressed = False
    if not compressed:
        raw = elem.value
        got = len(raw) if raw is not None else 0
        need = _expected_pixel_bytes(ds)
        if got < need:
            report(Rule.PIXEL_DATA,
                   f"pixel data truncated: {got} bytes, {need} expected for "
                   f"{ds.Rows}x{ds.Columns}x{ds.get('NumberOfFrames', 1)} frames")
        return
    if not policy.decode_compressed:
        return
    try:
        arr = decode_frames(ds)  # pydicom's plugins, SimpleITK for 12-bit JPEG Extended
        if arr.size == 0 or not np.all(np.isfinite(arr.reshape(-1)[:16])):
            raise ValueError("decoded to an empty or non-finite array")
    except Exception as exc:
        report(Rule.PIXEL_DATA,
               f"pixel data not decodable ({ts.name}): {type(exc).__name__}: {exc}")


def _vec(ds: Dataset, kw: str, n: int) -> np.ndarray | None:
    try:
        v = [float(x) for x in ds.get(kw)]  # type: ignore[union-attr]
    except Exception:
        return None
    return np.asarray(v) if len(v) == n else None


def _check_image_plane(ds: Dataset, policy: ValidationPolicy, err: Report, warn: Report) -> None:
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in IMAGE_PLANE_CLASSES:
        return
    strict = err if policy.require_image_plane else warn
    pos = _vec(ds, "ImagePositionPatient", 3)
    ori = _vec(ds, "ImageOrientationPatient", 6)
    spacing = _vec(ds, "PixelSpacing", 2)
    for name, value in (("ImagePositionPatient", pos), ("ImageOrientationPatient", ori),
                        ("PixelSpacing", spacing)):
        if value is None:
            strict(Rule.IMAGE_PLANE, f"{name} missing or malformed")
    if ori is not None:
        r, c = ori[:3], ori[3:]
        if not (np.isfinite(ori).all() and abs(np.linalg.norm(r) - 1) < 1e-2
                and abs(np.linalg.norm(c) - 1) < 1e-2 and abs(float(r @ c)) < 1e-2):
            strict(Rule.IMAGE_PLANE,
                   f"ImageOrientationPatient {ori.tolist()} is not two orthogonal unit vectors")
        elif abs(np.linalg.norm(r) - 1) > 1e-4 or abs(float(r @ c)) > 1e-4:
            warn(Rule.IMAGE_PLANE,
                 "ImageOrientationPatient slightly non-orthonormal; normalised on use")
    if spacing is not None and not (np.isfinite(spacing).all() and (spacing > 0).all()):
        strict(Rule.IMAGE_PLANE, f"PixelSpacing {spacing.tolist()} is not positive")
    if pos is not None and not np.isfinite(pos).all():
        strict(Rule.IMAGE_PLANE, "ImagePositionPatient is not finite")
