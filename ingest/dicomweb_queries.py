"""Catalog queries behind DICOMweb: QIDO-RS search (PS3.18 §10.6) and WADO-RS look-ups.

Matching follows PS3.4 C.2.2.2 and is done in SQL on the catalog's columns (portable
SQLAlchemy: SQLite and PostgreSQL):

- Single Value Matching (C.2.2.2.1): exact and case-sensitive, except PN values, which match
  case-insensitively (the latitude C.2.2.2.1 allows for PN).
- Wild Card Matching (C.2.2.2.4): ``*`` (any run, also empty) and ``?`` (one character), for
  text and PN attributes; a value of ``*`` alone is Universal Matching.
- Range Matching (C.2.2.2.5): ``D1-D2``, ``-D2``, ``D1-`` for DA and TM; empty values never
  match a range.
- List of UID Matching (C.2.2.2.2): UIDs separated by ``,`` or ``\\``, or the key repeated.
- Universal Matching (C.2.2.2.3): an empty value; the attribute is then only returned.
- Empty Value Matching (C.2.2.2.5.1): the value ``""`` matches entities whose value is empty.

Only current versions of instances take part. Results are DICOM JSON (PS3.18 F.2) data sets
without Retrieve URL (0008,1190), which only the web layer knows how to build.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from ingest import dicom_io
from ingest.catalog import Catalog, Instance, Patient, Series, Study
from ingest.dicom_json import HEX_TAG, instance_json, json_tag, put, series_json, study_json
from ingest.errors import IngestError, NotFoundError

Level = Literal["study", "series", "instance"]
_LEVELS: dict[Level, int] = {"study": 0, "series": 1, "instance": 2}

# The most results one search returns; more are reported through a warning (PS3.18 §10.6.3).
MAX_RESULTS = 1000


class QueryError(IngestError, ValueError):
    """A search key or matching value is malformed (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class _Attr:
    """A catalog-backed attribute: its level, VR, matching kind and column."""

    level: Level
    vr: str
    kind: str  # text | pn | uid | date | time | int | modalities | count
    column: Any = None


CATALOG_ATTRIBUTES: dict[str, _Attr] = {
    "PatientName": _Attr("study", "PN", "pn", Patient.patient_name),
    "PatientID": _Attr("study", "LO", "text", Patient.patient_id),
    "IssuerOfPatientID": _Attr("study", "LO", "text", Patient.issuer_of_patient_id),
    "PatientBirthDate": _Attr("study", "DA", "date", Patient.birth_date),
    "PatientSex": _Attr("study", "CS", "text", Patient.sex),
    "StudyInstanceUID": _Attr("study", "UI", "uid", Study.study_instance_uid),
    "StudyDate": _Attr("study", "DA", "date", Study.study_date),
    "StudyTime": _Attr("study", "TM", "time", Study.study_time),
    "AccessionNumber": _Attr("study", "SH", "text", Study.accession_number),
    "StudyID": _Attr("study", "SH", "text", Study.study_id),
    "StudyDescription": _Attr("study", "LO", "text", Study.study_description),
    "ReferringPhysicianName": _Attr("study", "PN", "pn", Study.referring_physician_name),
    "ModalitiesInStudy": _Attr("study", "CS", "modalities"),
    "NumberOfStudyRelatedSeries": _Attr("study", "IS", "count"),
    "NumberOfStudyRelatedInstances": _Attr("study", "IS", "count"),
    "Modality": _Attr("series", "CS", "text", Series.modality),
    "SeriesInstanceUID": _Attr("series", "UI", "uid", Series.series_instance_uid),
    "SeriesNumber": _Attr("series", "IS", "int", Series.series_number),
    "SeriesDescription": _Attr("series", "LO", "text", Series.series_description),
    "BodyPartExamined": _Attr("series", "CS", "text", Series.body_part_examined),
    "FrameOfReferenceUID": _Attr("series", "UI", "uid", Series.frame_of_reference_uid),
    "NumberOfSeriesRelatedInstances": _Attr("series", "IS", "count"),
    "SOPInstanceUID": _Attr("instance", "UI", "uid", Instance.sop_instance_uid),
    "SOPClassUID": _Attr("instance", "UI", "uid", Instance.sop_class_uid),
    "InstanceNumber": _Attr("instance", "IS", "int", Instance.instance_number),
    "Rows": _Attr("instance", "US", "int", Instance.rows),
    "Columns": _Attr("instance", "US", "int", Instance.columns),
    "NumberOfFrames": _Attr("instance", "IS", "int", Instance.number_of_frames),
}

# Return keys per level (PS3.18 Tables 10.6.3-3/-4/-5), beyond those the catalog fills.
DEFAULT_RETURN: dict[Level, tuple[str, ...]] = {
    "study": ("StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability",
              "ModalitiesInStudy", "ReferringPhysicianName", "PatientName", "PatientID",
              "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
              "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "series": ("Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber",
               "InstanceAvailability", "NumberOfSeriesRelatedInstances",
               "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
               "RequestAttributesSequence"),
    "instance": ("SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "InstanceNumber",
                 "Rows", "Columns", "BitsAllocated", "NumberOfFrames"),
}
# Optional keys returned for ``includefield=all`` (PS3.4 C.6.1.1.2-3, C.6.2.1.2; series:
# General Series, Frame of Reference and General Equipment modules of PS3.3).
_STUDY_OPTIONAL = (
    "IssuerOfPatientID", "OtherPatientIDsSequence", "PatientBirthTime", "EthnicGroup",
    "PatientComments", "PatientAge", "PatientSize", "PatientWeight", "Occupation",
    "AdditionalPatientHistory", "StudyDescription", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "AdmittingDiagnosesDescription", "ProcedureCodeSequence",
    "IssuerOfAccessionNumberSequence", "TimezoneOffsetFromUTC", "OtherStudyNumbers",
    "InstitutionalDepartmentName")
_SERIES_OPTIONAL = (
    "SeriesDate", "SeriesTime", "BodyPartExamined", "Laterality", "PerformingPhysicianName",
    "ProtocolName", "OperatorsName", "PatientPosition", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "Manufacturer", "InstitutionName", "StationName",
    "ManufacturerModelName", "SoftwareVersions", "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries", "PerformedProcedureStepID", "PerformedProcedureStepDescription")
_OPTIONAL: dict[Level, tuple[str, ...]] = {
    "study": _STUDY_OPTIONAL, "series": _SERIES_OPTIONAL, "instance": ()}
STUDY_KEYS = (frozenset(k for k, a in CATALOG_ATTRIBUTES.items() if a.level == "study")
              | frozenset(DEFAULT_RETURN["study"]) | frozenset(_STUDY_OPTIONAL))
SERIES_KEYS = (frozenset(k for k, a in CATALOG_ATTRIBUTES.items() if a.level == "series")
               | frozenset(DEFAULT_RETURN["series"]) | frozenset(_SERIES_OPTIONAL)) - STUDY_KEYS

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE_RE = re.compile(r"^\d{8}$")
_TIME_RE = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")

# Any series of the study, not the series row of a series/instance search (no correlation).
_OtherSeries = aliased(Series)

# Newest studies first; series and instances by number (unnumbered last), then arrival.
_STUDY_ORDER = (Study.study_date.desc(), Study.study_time.desc(), Study.id)
_SERIES_ORDER = (Series.series_number.is_(None), Series.series_number, Series.id)
_INSTANCE_ORDER = (Instance.instance_number.is_(None), Instance.instance_number, Instance.id)


def _attribute_level(keyword: str) -> Level:
    if keyword in STUDY_KEYS:
        return "study"
    if keyword in SERIES_KEYS:
        return "series"
    return "instance"


def resolve_attribute(key: str) -> str:
    """A query key (keyword or 8 hex digits, PS3.18 §8.3.4.1) → its keyword.

    Tags without a keyword (private) keep their upper-case hex form. Raises
    :class:`QueryError` for keys that are neither (sequence paths ``a.b`` included).
    """
    if HEX_TAG.fullmatch(key):
        return keyword_for_tag(int(key, 16)) or key.upper()
    if tag_for_keyword(key) is None:
        raise QueryError(f"unknown query key {key!r}: not a DICOM keyword or tag "
                         "(PS3.18 §8.3.4.1)")
    return key


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchRequest:
    """One QIDO-RS search, already split from the HTTP request.

    ``matches`` holds the raw (key, value) pairs; ``include`` the includefield keys or
    ``"all"``; ``study_uid``/``series_uid`` the scope from the resource path.
    """

    level: Level
    matches: tuple[tuple[str, str], ...] = ()
    include: frozenset[str] | Literal["all"] = frozenset()
    study_uid: str | None = None
    series_uid: str | None = None
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """DICOM JSON data sets; keys ignored for matching; whether the server cut the list."""

    datasets: list[dict[str, Any]]
    unsupported: tuple[str, ...] = ()
    truncated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRef:
    """Where one current instance is, and what WADO-RS needs to serve it."""

    pk: int
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    file_path: str
    has_file_meta: bool
    transfer_syntax_uid: str
    number_of_frames: int
    instance_number: int | None = None
    header_json: str | None = field(default=None, repr=False)


# -- matching -----------------------------------------------------------------------------------


def _like(value: str) -> str:
    table = {"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}
    return "".join(table.get(ch, ch) for ch in value)


def _text_match(column: Any, value: str, *, case_insensitive: bool,
                dialect: str) -> ColumnElement[bool]:
    wildcard = "*" in value or "?" in value
    if case_insensitive:
        col, val = func.lower(column), value.lower()
        return col.like(_like(val), escape="\\") if wildcard else col == val
    if not wildcard:
        return column == value  # type: ignore[no-any-return]
    if dialect == "sqlite":  # SQLite's LIKE ignores ASCII case; its GLOB does not
        return column.op("GLOB")(value.replace("[", "[[]"))  # type: ignore[no-any-return]
    return column.like(_like(value), escape="\\")  # type: ignore[no-any-return]


def _valid(bound: str, what: str) -> bool:
    """Calendar and clock check of a DA (YYYYMMDD) or TM (HH[MM[SS[.F]]]) value."""
    try:
        if what == "date":
            dt.date(int(bound[:4]), int(bound[4:6]), int(bound[6:8]))
            return True
        hh, mm, ss = int(bound[:2]), int(bound[2:4] or 0), int(bound[4:6] or 0)
        return hh < 24 and mm < 60 and ss < 61
    except ValueError:
        return False


def _range(value: str, pattern: re.Pattern[str], what: str) -> tuple[str, str]:
    lo, sep, hi = value.partition("-")
    if not sep:
        lo = hi = value
    if not lo and not hi:
        raise QueryError(f"{what} range {value!r} has no bounds")
    for bound in (lo, hi):
        if bound and not (pattern.match(bound) and _valid(bound, what)):
            raise QueryError(f"malformed {what} {bound!r} in {value!r} (PS3.5 Table 6.2-1)")
    if lo and hi and lo > hi:
        raise QueryError(f"{what} range {value!r} ends before it starts")
    return lo, hi


def _condition(keyword: str, attr: _Attr, values: list[str],
               dialect: str) -> ColumnElement[bool] | None:
    """SQL for one key; ``None`` for Universal Matching. Raises :class:`QueryError`."""
    if attr.kind == "uid":
        uids = [u.strip() for v in values for u in re.split(r"[,\\]", v) if u.strip()]
        if not uids:
            return None
        bad = [u for u in uids if len(u) > 64 or not _UID_RE.match(u)]
        if bad:
            raise QueryError(f"{keyword}: malformed UID {bad[0]!r} (PS3.5 §9.1)")
        return attr.column.in_(uids)  # type: ignore[no-any-return]
    if len(values) > 1:
        raise QueryError(f"query key {keyword} given {len(values)} times")
    value = values[0]
    if value in ("", "*"):
        return None
    if value == '""':
        if attr.kind == "int":
            return attr.column.is_(None)  # type: ignore[no-any-return]
        if attr.kind == "modalities":
            return ~exists().where(_OtherSeries.study_pk == Study.id,
                                   _OtherSeries.modality != "")
        return or_(attr.column == "", attr.column.is_(None))
    if attr.kind in ("text", "pn"):
        return _text_match(attr.column, value, case_insensitive=attr.kind == "pn",
                           dialect=dialect)
    if attr.kind in ("date", "time"):
        is_date = attr.kind == "date"
        lo, hi = _range(value, _DATE_RE if is_date else _TIME_RE, attr.kind)
        if "-" not in value:
            return attr.column == lo  # type: ignore[no-any-return]
        conds = [attr.column != ""]  # an empty value never matches a range (C.2.2.2.5)
        if lo:
            conds.append(attr.column >= lo)
        if hi:  # a partial time bound covers its whole hour or minute: pad with nines
            conds.append(attr.column <= (hi if is_date else hi + "999999.999999"[len(hi):]))
        return and_(*conds)
    if attr.kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise QueryError(f"{keyword} must be an integer, got {value!r}") from None
        return attr.column == number  # type: ignore[no-any-return]
    if attr.kind == "modalities":
        wanted = [m.strip() for m in re.split(r"[,\\]", value) if m.strip()]
        return exists().where(_OtherSeries.study_pk == Study.id,
                              _OtherSeries.modality.in_(wanted))
    raise QueryError(f"{keyword} is a return key only; it cannot be matched")


# -- headers --------------------------------------------------------------------------------------


def _without_bulk(header: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in header.items()
            if not (isinstance(v, dict) and ("BulkDataURI" in v or "InlineBinary" in v))}


def instance_header(catalog: Catalog, data_dir: Path, pk: int,
                    cached: str | None = None) -> dict[str, Any]:
    """The DICOM JSON header of instance ``pk`` (bulk data as ``bulkdata:`` markers).

    Computed from the archived file, and saved to the catalog, when the catalog has none yet.
    Raises :class:`NotFoundError` if the instance row is gone.
    """
    if cached is not None:
        return dict(json.loads(cached))
    with catalog.session() as session:
        row = session.get(Instance, pk)
        if row is None:
            raise NotFoundError("instance", str(pk))
        if row.header_json is not None:
            return dict(json.loads(row.header_json))
        path = data_dir / row.file_path
    parsed = dicom_io.read_dataset(path.read_bytes())
    header, _problems = dicom_io.header_json(parsed.dataset)
    with catalog.writing() as session:
        session.execute(update(Instance).where(Instance.id == pk, Instance.header_json.is_(None))
                        .values(header_json=json.dumps(header)))
    return header


def _bits_allocated(data_dir: Path, file_path: str) -> int | None:
    """BitsAllocated read alone (fast) when the catalog holds no header yet."""
    try:
        ds = pydicom.dcmread(data_dir / file_path, force=True, stop_before_pixels=True,
                             specific_tags=["BitsAllocated"])
        return int(ds.BitsAllocated) if "BitsAllocated" in ds else None
    except Exception:
        return None


# -- search ---------------------------------------------------------------------------------------


def _parse_matches(request: SearchRequest) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Split the match keys: catalog keys → values; other keys to return; unsupported ones."""
    grouped: dict[str, list[str]] = {}
    extra: list[str] = []
    unsupported: list[str] = []
    for key, value in request.matches:
        keyword = resolve_attribute(key)
        attr = CATALOG_ATTRIBUTES.get(keyword)
        if attr is None or _LEVELS[attr.level] > _LEVELS[request.level] or attr.kind == "count":
            extra.append(keyword)
            if value not in ("", "*"):
                unsupported.append(keyword)
            continue
        grouped.setdefault(keyword, []).append(value)
    return grouped, extra, unsupported


def _base_query(level: Level) -> Select[Any]:
    if level == "study":
        n_series = (select(func.count(Series.id)).where(Series.study_pk == Study.id)
                    .correlate(Study).scalar_subquery())
        n_instances = (select(func.count(Instance.id))
                       .join(Series, Instance.series_pk == Series.id)
                       .where(Series.study_pk == Study.id, Instance.is_current)
                       .correlate(Study).scalar_subquery())
        return (select(Study, Patient, n_series, n_instances)
                .join(Patient, Study.patient_pk == Patient.id).order_by(*_STUDY_ORDER))
    if level == "series":
        n_series_instances = (select(func.count(Instance.id))
                              .where(Instance.series_pk == Series.id, Instance.is_current)
                              .correlate(Series).scalar_subquery())
        return (select(Series, Study, Patient, n_series_instances)
                .join(Study, Series.study_pk == Study.id)
                .join(Patient, Study.patient_pk == Patient.id)
                .order_by(*_STUDY_ORDER, *_SERIES_ORDER))
    query = (select(Instance, Series, Study, Patient)
             .join(Series, Instance.series_pk == Series.id)
             .join(Study, Series.study_pk == Study.id)
             .join(Patient, Study.patient_pk == Patient.id)
             .where(Instance.is_current)
             .order_by(*_STUDY_ORDER, *_SERIES_ORDER, *_INSTANCE_ORDER))
    return cast(Select[Any], query)


def search(catalog: Catalog, data_dir: Path, request: SearchRequest) -> SearchResult:
    """Run one QIDO-RS search. Raises :class:`QueryError` for malformed keys or values."""
    grouped, extra, unsupported = _parse_matches(request)
    dialect = catalog.engine.dialect.name
    conditions = [c for kw, values in grouped.items()
                  if (c := _condition(kw, CATALOG_ATTRIBUTES[kw], values, dialect)) is not None]
    if request.study_uid is not None:
        conditions.append(Study.study_instance_uid == request.study_uid)
    if request.series_uid is not None:
        conditions.append(Series.series_instance_uid == request.series_uid)
    cap = MAX_RESULTS if request.limit is None else min(request.limit, MAX_RESULTS)
    server_capped = request.limit is None or request.limit > MAX_RESULTS
    query = _base_query(request.level).where(*conditions).limit(cap + 1).offset(request.offset)

    include = request.include
    wanted = list(dict.fromkeys(extra + (sorted(include) if include != "all" else [])))
    with catalog.session() as session:
        rows = session.execute(query).all()
        truncated = len(rows) > cap and server_capped
        rows = rows[:cap]
        modalities: dict[int, list[str]] = {}
        if request.level == "study" and rows:
            ids = [r[0].id for r in rows]
            for pk, modality in session.execute(
                    select(Series.study_pk, Series.modality).where(
                        Series.study_pk.in_(ids), Series.modality != "").distinct()):
                modalities.setdefault(pk, []).append(modality)
        datasets: list[dict[str, Any]] = []
        for row in rows:
            out, first = _row_json(request, row, modalities)
            _add_header_fields(session, catalog, data_dir, request.level, out, first, wanted,
                               include == "all")
            datasets.append(out)
    return SearchResult(datasets=datasets, unsupported=tuple(dict.fromkeys(unsupported)),
                        truncated=truncated)


def _row_json(request: SearchRequest, row: Any,
              modalities: dict[int, list[str]]) -> tuple[dict[str, Any], Select[Any]]:
    """Catalog attributes of one row, and a query for the instance to read headers from.

    Searches of all series (all instances) also return the Study (and Series) attributes,
    PS3.18 §10.6.3.3; UIDs of the levels above are always returned, for Retrieve URLs.
    """
    first = select(Instance).where(Instance.is_current).order_by(*_INSTANCE_ORDER).limit(1)
    if request.level == "study":
        study, patient, n_series, n_inst = row
        out = study_json(study, patient, (int(n_series or 0), int(n_inst or 0)),
                          modalities.get(study.id, []))
        return out, first.join(Series, Instance.series_pk == Series.id).where(
            Series.study_pk == study.id)
    if request.level == "series":
        series, study, patient, n_inst = row
        out = series_json(series, int(n_inst or 0))
        if request.study_uid is None:
            out = {**study_json(study, patient), **out}
        put(out, "StudyInstanceUID", study.study_instance_uid)
        return out, first.where(Instance.series_pk == series.id)
    inst, series, study, patient = row
    out = instance_json(inst)
    if request.series_uid is None:
        out = {**series_json(series), **out}
        if request.study_uid is None:
            out = {**study_json(study, patient), **out}
    put(out, "StudyInstanceUID", study.study_instance_uid)
    put(out, "SeriesInstanceUID", series.series_instance_uid)
    return out, select(Instance).where(Instance.id == inst.id)


def _add_header_fields(session: Session, catalog: Catalog, data_dir: Path, level: Level,
                       out: dict[str, Any], first_query: Select[Any], wanted: list[str],
                       include_all: bool) -> None:
    """Fill the attributes the catalog lacks from the first current instance's header.

    Attributes of lower levels than the search's are never returned (PS3.18 §10.6.3.3).
    """
    keys = [k for k in wanted if _LEVELS[_attribute_level(k)] <= _LEVELS[level]]
    keys += list(DEFAULT_RETURN[level]) + (list(_OPTIONAL[level]) if include_all else [])
    needed = [k for k in dict.fromkeys(keys) if json_tag(k) not in out]
    if not needed and not (include_all and level == "instance"):
        return
    inst = session.scalars(first_query).first()
    if inst is None:
        return
    if inst.header_json is None and needed == ["BitsAllocated"] and not include_all:
        bits = _bits_allocated(data_dir, inst.file_path)  # avoid a full header per instance
        if bits is not None:
            put(out, "BitsAllocated", bits)
        return
    header = _without_bulk(instance_header(catalog, data_dir, inst.id, inst.header_json))
    if include_all and level == "instance":
        for tag, elem in header.items():
            out.setdefault(tag, elem)
        return
    for key in needed:
        tag = json_tag(key)
        if tag in header:
            out[tag] = header[tag]
        elif key in wanted and not HEX_TAG.fullmatch(key):
            vr = dictionary_VR(key)
            if " or " not in vr:  # asked for and known, but empty here (Type 2 semantics)
                out[tag] = {"vr": vr}


# -- WADO-RS look-ups -----------------------------------------------------------------------------


def find_instances(catalog: Catalog, study_uid: str, series_uid: str | None = None,
                   sop_uid: str | None = None) -> list[InstanceRef]:
    """Current instances of a study, of one of its series, or one instance, in order.

    Raises :class:`NotFoundError` naming the first level that does not exist (or does not
    belong to the level above it).
    """
    with catalog.session() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).first()
        if study is None:
            raise NotFoundError("study", study_uid)
        query = (select(Instance, Series.series_instance_uid)
                 .join(Series, Instance.series_pk == Series.id)
                 .where(Series.study_pk == study.id, Instance.is_current))
        if series_uid is not None:
            series = session.scalars(select(Series).where(
                Series.series_instance_uid == series_uid, Series.study_pk == study.id)).first()
            if series is None:
                raise NotFoundError("series", series_uid)
            query = query.where(Instance.series_pk == series.id)
        if sop_uid is not None:
            query = query.where(Instance.sop_instance_uid == sop_uid)
        rows = session.execute(query.order_by(*_SERIES_ORDER, *_INSTANCE_ORDER)).all()
        if not rows and sop_uid is not None:
            raise NotFoundError("instance", sop_uid)
        return [InstanceRef(
            pk=i.id, study_uid=study_uid, series_uid=se, sop_uid=i.sop_instance_uid,
            sop_class_uid=i.sop_class_uid, file_path=i.file_path, has_file_meta=i.has_file_meta,
            transfer_syntax_uid=i.transfer_syntax_uid, number_of_frames=i.number_of_frames or 1,
            instance_number=i.instance_number, header_json=i.header_json) for i, se in rows]
