"""Standardised uptake value (body weight) scale factor from PET attributes.

SUVbw = activity concentration / (decay-corrected injected dose / body weight), in g/ml. The
factor returned here multiplies the *modality values* of a PET image (stored value x
RescaleSlope + RescaleIntercept, PS3.3 C.11.1.1.2) to give SUVbw::

    SUVbw = value * factor,   factor in (g/ml) per (Bq/ml)

The rules follow the QIBA "SUV vendor-neutral pseudo-code" (QIBA FDG-PET profile, 2014 rev.),
which encodes the GE, Siemens and Philips conventions:

- Units (0054,1001) BQML: ``factor = weight_g / (dose_Bq * 2^(-decay_s / half_life_s))``.
  With DecayCorrection (0054,1102) START the images are decay corrected to the scan start, so
  ``decay_s`` runs from RadiopharmaceuticalStartDateTime (0018,1078) — or SeriesDate +
  RadiopharmaceuticalStartTime (0018,1072) — to the scan start: SeriesDate/SeriesTime when
  not after the earliest AcquisitionDate/Time of the series, else GE's private scan datetime
  (0009,100D, creator ``GEMS_PETD_01``), else the earliest acquisition time (Siemens
  post-processed series rewrite SeriesTime). With ADMIN the images are already corrected to
  the administration time: no decay. NONE is not supported (the factor would differ per
  frame), as in the QIBA code.
- Units CNTS (Philips): the private SUV scale factor (7053,1000) of the ``Philips PET Private
  Group`` is the factor itself; without it, (7053,1009) (activity concentration scale factor)
  converts the modality values to Bq/ml and the BQML rule applies on top.
- Units GML: the values already are SUVbw; factor 1.
- Anything else (PROPCNTS, CM2, …): no factor, with the reason.

RadionuclideTotalDose (0018,1074) is in Bq, RadionuclideHalfLife (0018,1075) in s,
PatientWeight (0010,1030) in kg (PS3.3 C.8.9.2, C.7.2.2).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

_DAY_S = 86400.0
_GE_CREATOR = "GEMS_PETD_01"
_PHILIPS_CREATOR = "Philips PET Private Group"


@dataclass(frozen=True, slots=True, kw_only=True)
class SuvResult:
    """SUVbw factor ((g/ml) per (Bq/ml), or per CNTS unit for Philips) or why there is none.

    ``method`` is a short machine-readable tag of the rule used (``bqml-series-time``,
    ``bqml-ge-private-scan-time``, ``bqml-earliest-acquisition``, ``bqml-admin``,
    ``philips-suv-scale-factor``, ``philips-activity-scale-factor``, ``gml``, ``none``).
    ``reason`` is a human-readable sentence (no patient data).
    """

    factor: float | None
    reason: str
    method: str

    def __post_init__(self) -> None:
        if self.factor is not None and not (math.isfinite(self.factor) and self.factor > 0):
            raise ValueError(f"SUV factor must be finite and positive, got {self.factor}")

    @property
    def ok(self) -> bool:
        return self.factor is not None


def _none(reason: str) -> SuvResult:
    return SuvResult(factor=None, reason=reason, method="none")


def suv_bw_factor(datasets: Sequence[Dataset]) -> SuvResult:
    """SUVbw factor for a PET series, from its first data set and the series' times.

    ``datasets`` are the instances of one series (headers suffice); the first supplies the
    attributes, all of them the earliest acquisition time. Never raises for bad or missing
    attributes: the result says why no factor could be computed.
    """
    if not datasets:
        return _none("no data sets")
    ds = datasets[0]
    modality = str(ds.get("Modality", "") or "").upper()
    if modality != "PT":
        return _none(f"modality {modality or 'unknown'} is not PT")
    units = str(ds.get("Units", "") or "").upper()
    if not units:
        return _none("Units (0054,1001) missing")
    corrected = {str(v).upper() for v in _multi(ds.get("CorrectedImage"))}
    if corrected and "ATTN" not in corrected:
        return _none("image is not attenuation corrected (CorrectedImage lacks ATTN)")

    if units == "GML":
        return SuvResult(factor=1.0, method="gml", reason="Units GML: values already are SUVbw")
    if units == "CNTS":
        suv_scale = _float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x00))
        if suv_scale is not None and suv_scale > 0:
            return SuvResult(factor=suv_scale, method="philips-suv-scale-factor",
                             reason="Units CNTS: Philips private SUV scale factor (7053,1000)")
        activity_scale = _float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x09))
        if activity_scale is None or activity_scale <= 0:
            return _none("Units CNTS without Philips scale factors (7053,1000) / (7053,1009)")
        base = _bqml_factor(ds, datasets, corrected)
        if base.factor is None:
            return base
        return SuvResult(factor=base.factor * activity_scale,
                         method="philips-activity-scale-factor",
                         reason=f"Units CNTS: (7053,1009) to Bq/ml, then {base.reason}")
    if units == "BQML":
        return _bqml_factor(ds, datasets, corrected)
    return _none(f"Units {units} cannot be converted to SUV")


def _bqml_factor(ds: Dataset, datasets: Sequence[Dataset], corrected: set[str]) -> SuvResult:
    weight_kg = _float(ds.get("PatientWeight"))
    if weight_kg is None or weight_kg <= 0:
        return _none("PatientWeight (0010,1030) missing or zero")
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return _none("RadiopharmaceuticalInformationSequence (0054,0016) missing")
    radio = seq[0]
    dose_bq = _float(radio.get("RadionuclideTotalDose"))
    if dose_bq is None or dose_bq <= 0:
        return _none("RadionuclideTotalDose (0018,1074) missing or zero")
    weight_g = weight_kg * 1000.0

    decay_correction = str(ds.get("DecayCorrection", "") or "").upper()
    if corrected and "DECY" not in corrected:
        decay_correction = "NONE"
    if decay_correction == "ADMIN":
        return SuvResult(factor=weight_g / dose_bq, method="bqml-admin",
                         reason="Units BQML, decay corrected to administration (ADMIN)")
    if decay_correction not in ("START", ""):
        return _none(f"DecayCorrection {decay_correction}: values are not decay corrected to "
                     "one time point, SUV would differ per frame")
    half_life_s = _float(radio.get("RadionuclideHalfLife"))
    if half_life_s is None or half_life_s <= 0:
        return _none("RadionuclideHalfLife (0018,1075) missing or zero")

    scan, method = _scan_start(ds, datasets)
    if scan is None:
        return _none("no scan start time (SeriesTime / AcquisitionTime)")
    start = _injection_start(ds, radio)
    if start is None:
        return _none("no RadiopharmaceuticalStartTime (0018,1072) or StartDateTime (0018,1078)")
    decay_s = _elapsed_s(start, scan)
    if decay_s is None:
        return _none("injection time is after the scan start")
    decayed_bq = dose_bq * 2.0 ** (-decay_s / half_life_s)
    note = "" if decay_correction else " (DecayCorrection absent, START assumed)"
    return SuvResult(
        factor=weight_g / decayed_bq, method=method,
        reason=(f"Units BQML, decay corrected to scan start: {decay_s:.0f} s after injection, "
                f"half-life {half_life_s:g} s{note}"))


def _scan_start(ds: Dataset,
                datasets: Sequence[Dataset]) -> tuple[_Moment | None, str]:
    """Scan start time per the QIBA rules (module docstring) and the method tag."""
    series = _moment(ds.get("SeriesDate"), ds.get("SeriesTime"))
    acquisitions = [m for m in (_moment(d.get("AcquisitionDate"), d.get("AcquisitionTime"))
                                for d in datasets) if m is not None]
    earliest = min(acquisitions, key=_Moment.sort_key) if acquisitions else None
    if series is not None and (earliest is None or not _after(series, earliest)):
        return series, "bqml-series-time"
    ge = _private(ds, 0x0009, _GE_CREATOR, 0x0D)
    ge_scan = _moment_from_dt(ge)
    if ge_scan is not None:
        return ge_scan, "bqml-ge-private-scan-time"
    if earliest is not None:
        return earliest, "bqml-earliest-acquisition"
    return series, "bqml-series-time"


def _injection_start(ds: Dataset, radio: Dataset) -> _Moment | None:
    full = _moment_from_dt(radio.get("RadiopharmaceuticalStartDateTime"))
    if full is not None:
        return full
    time_s = _tm_seconds(radio.get("RadiopharmaceuticalStartTime"))
    if time_s is None:
        return None
    # The start date is implicit (QIBA): the series date, or the day before when that would
    # put the injection after the scan — handled by _elapsed_s's time-of-day fallback.
    return _Moment(date=None, seconds=time_s)


# -- time arithmetic -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Moment:
    """A time of day (s since midnight) with its date when known."""

    date: dt.date | None
    seconds: float

    def sort_key(self) -> tuple[dt.date, float]:
        return (self.date or dt.date.min, self.seconds)


def _after(a: _Moment, b: _Moment) -> bool:
    if a.date is not None and b.date is not None and a.date != b.date:
        return a.date > b.date
    return a.seconds > b.seconds + 1e-3


def _elapsed_s(start: _Moment, end: _Moment) -> float | None:
    """Seconds from ``start`` to ``end``.

    With both dates known and a result within [0, 24 h) the full datetimes are used;
    otherwise (a date missing, or dates shifted independently by de-identification) the
    time-of-day difference modulo 24 h, since an FDG-type scan never starts a day or more
    after injection.
    """
    if start.date is not None and end.date is not None:
        days = (end.date - start.date).days
        full = days * _DAY_S + end.seconds - start.seconds
        if 0.0 <= full < _DAY_S:
            return full
    diff = (end.seconds - start.seconds) % _DAY_S
    return diff if math.isfinite(diff) else None


def _da(value: Any) -> dt.date | None:
    text = str(value or "").strip().replace(".", "").replace("-", "")
    if len(text) < 8:
        return None
    try:
        return dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _tm_seconds(value: Any) -> float | None:
    """TM (PS3.5 6.2: HHMMSS.FFFFFF, trailing parts optional; ACR-NEMA colons tolerated)."""
    text = str(value or "").strip().replace(":", "")
    if not text:
        return None
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6):
        return None
    h = int(whole[0:2])
    m = int(whole[2:4]) if len(whole) >= 4 else 0
    s = int(whole[4:6]) if len(whole) >= 6 else 0
    f = float(f"0.{frac}") if frac.isdigit() else 0.0
    if h > 23 or m > 59 or s > 60:
        return None
    return h * 3600.0 + m * 60.0 + s + f


def _moment(date: Any, time: Any) -> _Moment | None:
    seconds = _tm_seconds(time)
    if seconds is None:
        return None
    return _Moment(date=_da(date), seconds=seconds)


def _moment_from_dt(value: Any) -> _Moment | None:
    """DT (PS3.5 6.2: YYYYMMDDHHMMSS.FFFFFF&ZZXX); the UTC offset is ignored (same site)."""
    text = str(value or "").strip()
    for sign in ("+", "-"):
        if sign in text[8:]:
            text = text[: 8 + text[8:].index(sign)]
    if len(text) < 10:
        return None
    date = _da(text[:8])
    seconds = _tm_seconds(text[8:])
    if date is None or seconds is None:
        return None
    return _Moment(date=date, seconds=seconds)


# -- attribute helpers -----------------------------------------------------------------------


def _multi(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _float(value: Any) -> float | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore").strip("\x00 ")
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _private(ds: Dataset, group: int, creator: str, offset: int) -> Any:
    """Value of a private element by creator (PS3.5 7.8.1), or None.

    Falls back to the conventional block 0x10 when the creator element is missing (some
    exports drop private creators but keep the data).
    """
    try:
        return ds.private_block(group, creator)[offset].value
    except (KeyError, ValueError):
        pass
    tag = (group << 16) | 0x1000 | offset
    if tag in ds and (group << 16 | 0x0010) not in ds:
        return ds[tag].value
    return None
