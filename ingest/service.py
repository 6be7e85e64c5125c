"""The one way an instance enters VoxCast: parse → validate → archive → catalog.

Every receiver (C-STORE SCP, STOW-RS, folder/zip import) calls :meth:`IngestService.store`
with the bytes it received. The call returns only after the file is fsynced and its catalog row
committed, so a receiver may acknowledge success as soon as it returns.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest import dicom_io
from ingest.catalog import Catalog, Instance, Patient, QuarantineEntry, Series, Study, utcnow
from ingest.errors import NotDicomError
from ingest.storage import InstanceFiles, sha256_hex
from ingest.validation import ERROR, WARNING, Finding, Rule, ValidationPolicy, validate

log = logging.getLogger(__name__)

# Modalities whose series never become volumes (no image stack to render).
NON_VOLUMETRIC_MODALITIES = {"SR", "RWV", "KO", "PR", "REG", "RTSTRUCT", "RTPLAN", "RTRECORD",
                             "DOC", "FID", "SEG", "RTDOSE", "ECG", "AU"}


class StoreStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    NEW_VERSION = "new_version"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreOutcome:
    status: StoreStatus
    sha256: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    quarantine_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not StoreStatus.QUARANTINED

    @property
    def reason(self) -> str:
        """The error findings as one line (why it was quarantined), else the warnings."""
        errors = [f.message for f in self.findings if f.severity == ERROR]
        chosen = errors or [f.message for f in self.findings]
        return "; ".join(chosen)


# Hot-path statements, built once: SQLAlchemy then reuses their compiled form.
_INSERT_INSTANCE = insert(Instance)
_SELECT_VERSIONS = (select(Instance.version, Instance.sha256, Series.series_instance_uid)
                    .join(Series, Series.id == Instance.series_pk)
                    .where(Instance.sop_instance_uid == bindparam("sop")))
_TOUCH_SERIES = (update(Series).where(Series.id == bindparam("pk"))
                 .values(last_received_at=bindparam("ts")))
_TOUCH_VOLUMETRIC_SERIES = _TOUCH_SERIES.values(volume_state="pending")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Version:
    version: int
    sha256: str
    series_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _SeriesKey:
    pk: int
    study_uid: str
    modality: str
    volumetric: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class _StudyKey:
    pk: int
    patient: tuple[str, str]  # (PatientID, IssuerOfPatientID)


@dataclass(slots=True)
class _Created:
    studies: dict[str, _StudyKey] = field(default_factory=dict)
    series: dict[str, _SeriesKey] = field(default_factory=dict)


class _Staging:
    """The staged copy of one received instance (see :meth:`InstanceFiles.stage`)."""

    def __init__(self, service: IngestService, data: bytes) -> None:
        self._service = service
        self._future = service._io.submit(service.files.stage, data)

    def path(self) -> Path:
        return self._future.result()

    def discard(self) -> None:
        self._service.files.discard(self._future.result())


class IngestService:
    """Archive and catalog instances. Thread-safe: receivers call it from many threads.

    Which study a series belongs to, and which patient a study, never changes once recorded
    (nothing is deleted within the retention period, R9), so these keys are cached: a stored
    instance then costs one query, one insert and one update.
    """

    def __init__(self, *, data_dir: Path, catalog: Catalog,
                 policy: ValidationPolicy | None = None) -> None:
        self.data_dir = data_dir
        self.catalog = catalog
        self.files = InstanceFiles(data_dir)
        self.policy = policy or ValidationPolicy()
        self._series: dict[str, _SeriesKey] = {}
        self._studies: dict[str, _StudyKey] = {}
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="voxcast-stage")

    def close(self) -> None:
        self._io.shutdown(wait=True)

    # -- entry point ---------------------------------------------------------------------------

    def store(self, data: bytes, *, source: str, calling_ae_title: str = "",
              origin: str = "") -> StoreOutcome:
        """Archive ``data`` (one DICOM instance, exactly as received).

        ``source`` names the receiver (``c-store``, ``stow-rs``, ``import``); ``origin`` is a
        file name or peer address recorded with quarantine entries. Never raises for bad input:
        a bad instance comes back as ``QUARANTINED`` with its findings.
        """
        # The file's flush to disk (the slowest step) runs while the data set is hashed,
        # parsed and validated; the staged file is then renamed into the archive or the
        # quarantine.
        staging = _Staging(self, data)
        sha = sha256_hex(data)
        kw = {"source": source, "calling_ae_title": calling_ae_title, "origin": origin}
        try:
            parsed = dicom_io.read_dataset(data)
        except NotDicomError as exc:
            finding = Finding(rule=Rule.NOT_DICOM.value, severity=ERROR, message=str(exc))
            return self._quarantine(data, sha, [finding], None, staging.path(), **kw)
        ds = parsed.dataset
        findings = validate(ds, self.policy)
        if any(f.severity == ERROR for f in findings):
            return self._quarantine(data, sha, findings, ds, staging.path(), **kw)

        sop_uid = str(ds.SOPInstanceUID)
        study_uid = str(ds.StudyInstanceUID)
        series_uid = str(ds.SeriesInstanceUID)
        ids: dict[str, Any] = {"sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": sop_uid,
               "study_instance_uid": study_uid, "series_instance_uid": series_uid}

        versions = self._versions(sop_uid)
        if any(v.sha256 == sha for v in versions):
            staging.discard()
            return StoreOutcome(status=StoreStatus.DUPLICATE, sha256=sha,
                                findings=tuple(findings), **ids)
        conflicts = self._consistency(ds, versions)
        if conflicts:
            return self._quarantine(data, sha, findings + conflicts, ds, staging.path(), **kw)

        relpath = self.files.instance_relpath(study_uid, series_uid, sop_uid, sha)
        self.files.publish(staging.path(), relpath)  # outside the lock: in parallel

        with self.catalog.write_lock:
            for attempt in (1, 2):
                try:
                    return self._record(ds, parsed, sha, relpath, versions, findings, ids,
                                        source=source, calling_ae_title=calling_ae_title)
                except IntegrityError:
                    # Another node stored this SOP Instance UID meanwhile (the unique
                    # (sop_instance_uid, version) key caught it): look again.
                    versions = self._versions(sop_uid)
                    if any(v.sha256 == sha for v in versions):
                        return StoreOutcome(status=StoreStatus.DUPLICATE, sha256=sha,
                                            findings=tuple(findings), **ids)
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _record(self, ds: Dataset, parsed: dicom_io.ParsedInstance, sha: str, relpath: str,
                versions: list[_Version], findings: list[Finding], ids: dict[str, Any], *,
                source: str, calling_ae_title: str) -> StoreOutcome:
        """Commit the catalog rows of an archived file (caller holds the write lock)."""
        sop_uid = ids["sop_instance_uid"]
        status, version = StoreStatus.STORED, 1
        if versions:
            status, version = StoreStatus.NEW_VERSION, max(v.version for v in versions) + 1
            findings = findings + [Finding(
                rule=Rule.DUPLICATE.value, severity=WARNING,
                message=f"SOP Instance UID received before with different content; kept as "
                        f"version {version}, earlier versions kept")]
        created = _Created()
        with self.catalog.engine.begin() as conn:
            series_key = self._series.get(ids["series_instance_uid"])
            if series_key is None:
                with Session(bind=conn) as session:  # joins conn's transaction
                    series_key, created = self._ensure_hierarchy(session, ds)
            if versions:
                conn.execute(update(Instance).where(
                    Instance.sop_instance_uid == sop_uid).values(
                    is_current=False, version_conflict=True))
            conn.execute(_INSERT_INSTANCE, dict(
                sop_instance_uid=sop_uid, version=version, is_current=True,
                version_conflict=bool(versions), series_pk=series_key.pk,
                sop_class_uid=ids["sop_class_uid"],
                instance_number=dicom_io.integer(ds, "InstanceNumber"),
                rows=dicom_io.integer(ds, "Rows"), columns=dicom_io.integer(ds, "Columns"),
                number_of_frames=dicom_io.integer(ds, "NumberOfFrames") or 1,
                transfer_syntax_uid=parsed.transfer_syntax_uid, file_path=relpath,
                sha256=sha, size_bytes=parsed.size_bytes, received_at=utcnow(), source=source,
                calling_ae_title=calling_ae_title[:16],
                institution_name=dicom_io.text(ds, "InstitutionName")[:64],
                has_file_meta=parsed.has_file_meta,
                warnings_json=json.dumps([f.to_json() for f in findings])))
            conn.execute(_TOUCH_VOLUMETRIC_SERIES if series_key.volumetric else _TOUCH_SERIES,
                         {"pk": series_key.pk, "ts": utcnow()})
        # Committed: only now may the cache learn of rows this transaction created.
        self._remember(created)
        return StoreOutcome(status=status, sha256=sha, findings=tuple(findings), **ids)

    # -- helpers -------------------------------------------------------------------------------

    def _versions(self, sop_uid: str) -> list[_Version]:
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(_SELECT_VERSIONS, {"sop": sop_uid}).all()
        return [_Version(version=v, sha256=h, series_uid=s) for v, h, s in rows]

    def _series_key(self, session: Session, series_uid: str) -> _SeriesKey | None:
        key = self._series.get(series_uid)
        if key is None:
            row = session.execute(
                select(Series.id, Study.study_instance_uid, Series.modality, Series.volume_state)
                .join(Study, Study.id == Series.study_pk)
                .where(Series.series_instance_uid == series_uid)).first()
            if row is not None:
                key = _SeriesKey(pk=row[0], study_uid=row[1], modality=row[2],
                                 volumetric=row[3] != "not_volumetric")
                self._series[series_uid] = key
        return key

    def _study_key(self, session: Session, study_uid: str) -> _StudyKey | None:
        key = self._studies.get(study_uid)
        if key is None:
            row = session.execute(
                select(Study.id, Patient.patient_id, Patient.issuer_of_patient_id)
                .join(Patient, Patient.id == Study.patient_pk)
                .where(Study.study_instance_uid == study_uid)).first()
            if row is not None:
                key = _StudyKey(pk=row[0], patient=(row[1], row[2]))
                self._studies[study_uid] = key
        return key

    def _consistency(self, ds: Dataset, versions: list[_Version]) -> list[Finding]:
        """UID consistency with what the catalog already holds (R4)."""
        out: list[Finding] = []
        study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        patient = (dicom_io.text(ds, "PatientID"), dicom_io.text(ds, "IssuerOfPatientID"))
        modality = dicom_io.text(ds, "Modality").upper()

        def error(message: str) -> None:
            out.append(Finding(rule=Rule.UID_CONSISTENCY.value, severity=ERROR, message=message))

        with self.catalog.session() as session:
            series = self._series_key(session, series_uid)
            study = self._study_key(session, study_uid)
        if series is not None and series.study_uid != study_uid:
            error(f"series {series_uid} belongs to study {series.study_uid}, this instance "
                  f"says study {study_uid}")
        if series is not None and series.modality and series.modality != modality:
            error(f"series {series_uid} has modality {series.modality}, this instance says "
                  f"{modality}")
        if study is not None and study.patient != patient:
            error(f"study {study_uid} belongs to another patient than this instance's PatientID")
        for v in versions:
            if v.series_uid != series_uid:
                error(f"SOP Instance UID already stored in series {v.series_uid}")
                break
        return out

    def _ensure_hierarchy(self, session: Session, ds: Dataset) -> tuple[_SeriesKey, _Created]:
        """The series row of ``ds``, creating patient, study and series rows as needed."""
        t = dicom_io.text
        series_uid, study_uid = str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)
        created = _Created()
        series = self._series_key(session, series_uid)
        if series is not None:
            return series, created
        study = self._study_key(session, study_uid)
        if study is None:
            pid, issuer = t(ds, "PatientID")[:64], t(ds, "IssuerOfPatientID")[:64]
            patient = session.scalars(select(Patient).where(
                Patient.patient_id == pid, Patient.issuer_of_patient_id == issuer)).first()
            if patient is None:
                patient = Patient(patient_id=pid, issuer_of_patient_id=issuer)
                session.add(patient)
            patient.patient_name = t(ds, "PatientName")[:324] or patient.patient_name or ""
            patient.birth_date = t(ds, "PatientBirthDate")[:8] or patient.birth_date or ""
            patient.sex = t(ds, "PatientSex")[:16] or patient.sex or ""
            row = Study(study_instance_uid=study_uid, patient=patient,
                        study_date=t(ds, "StudyDate")[:8], study_time=t(ds, "StudyTime")[:16],
                        accession_number=t(ds, "AccessionNumber")[:16],
                        study_id=t(ds, "StudyID")[:16],
                        study_description=t(ds, "StudyDescription")[:64],
                        referring_physician_name=t(ds, "ReferringPhysicianName")[:324])
            session.add(row)
            session.flush()
            study = _StudyKey(pk=row.id, patient=(pid, issuer))
            created.studies[study_uid] = study
        modality = t(ds, "Modality").upper()
        has_pixels = "PixelData" in ds or "FloatPixelData" in ds
        volumetric = has_pixels and modality not in NON_VOLUMETRIC_MODALITIES
        row_s = Series(
            series_instance_uid=series_uid, study_pk=study.pk, modality=modality,
            series_number=dicom_io.integer(ds, "SeriesNumber"),
            series_description=t(ds, "SeriesDescription")[:64],
            body_part_examined=t(ds, "BodyPartExamined")[:16],
            frame_of_reference_uid=t(ds, "FrameOfReferenceUID")[:64],
            volume_state="pending" if volumetric else "not_volumetric")
        session.add(row_s)
        session.flush()
        series = _SeriesKey(pk=row_s.id, study_uid=study_uid, modality=modality,
                            volumetric=volumetric)
        created.series[series_uid] = series
        return series, created

    def _remember(self, created: _Created) -> None:
        self._studies.update(created.studies)
        self._series.update(created.series)

    def _quarantine(self, data: bytes, sha: str, findings: list[Finding], ds: Dataset | None,
                    staged: Path, *, source: str, calling_ae_title: str,
                    origin: str) -> StoreOutcome:
        relpath = self.files.quarantine_relpath(sha)
        self.files.publish(staged, relpath)

        def uid(kw: str) -> str:
            return dicom_io.text(ds, kw)[:64] if ds is not None else ""

        errors = [f for f in findings if f.severity == ERROR]
        reason = "; ".join(f.message for f in errors)
        with self.catalog.writing() as session:
            entry = QuarantineEntry(
                file_path=relpath, sha256=sha, size_bytes=len(data), source=source,
                origin=origin[:512], calling_ae_title=calling_ae_title[:16],
                sop_instance_uid=uid("SOPInstanceUID"), study_instance_uid=uid("StudyInstanceUID"),
                series_instance_uid=uid("SeriesInstanceUID"),
                findings_json=json.dumps([f.to_json() for f in findings]), reason=reason)
            session.add(entry)
            session.flush()
            entry_id = entry.id
        # No patient data in logs: rule names and the quarantine id only.
        log.warning("quarantined instance (entry %d): %s", entry_id,
                    ", ".join(sorted({f.rule for f in errors})))
        return StoreOutcome(
            status=StoreStatus.QUARANTINED, sha256=sha, findings=tuple(findings),
            quarantine_id=entry_id, sop_class_uid=uid("SOPClassUID"),
            sop_instance_uid=uid("SOPInstanceUID"), study_instance_uid=uid("StudyInstanceUID"),
            series_instance_uid=uid("SeriesInstanceUID"))

    # -- queries used by the CLI and the API -----------------------------------------------------

    def quarantine_entries(self, limit: int = 1000, offset: int = 0) -> list[QuarantineEntry]:
        with self.catalog.session() as session:
            return list(session.scalars(select(QuarantineEntry).order_by(QuarantineEntry.id)
                                        .limit(limit).offset(offset)))

    def counts(self) -> dict[str, int]:
        with self.catalog.session() as session:
            return {
                "patients": session.scalar(select(func.count(Patient.id))) or 0,
                "studies": session.scalar(select(func.count(Study.id))) or 0,
                "series": session.scalar(select(func.count(Series.id))) or 0,
                "instances": session.scalar(select(func.count(Instance.id))) or 0,
                "quarantined": session.scalar(select(func.count(QuarantineEntry.id))) or 0,
            }
