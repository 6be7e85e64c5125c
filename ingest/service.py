"""The one way an instance enters VoxCast: parse → validate → archive → catalog.

Every receiver (C-STORE SCP, STOW-RS, folder/zip import) calls :meth:`IngestService.store`
with the bytes it received. The call returns only after the file is fsynced and its catalog row
committed, so a receiver may acknowledge success as soon as it returns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy import func, select
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


class IngestService:
    """Archive and catalog instances. Thread-safe: receivers call it from many threads."""

    def __init__(self, *, data_dir: Path, catalog: Catalog,
                 policy: ValidationPolicy | None = None) -> None:
        self.data_dir = data_dir
        self.catalog = catalog
        self.files = InstanceFiles(data_dir)
        self.policy = policy or ValidationPolicy()

    # -- entry point ---------------------------------------------------------------------------

    def store(self, data: bytes, *, source: str, calling_ae_title: str = "",
              origin: str = "") -> StoreOutcome:
        """Archive ``data`` (one DICOM instance, exactly as received).

        ``source`` names the receiver (``c-store``, ``stow-rs``, ``import``); ``origin`` is a
        file name or peer address recorded with quarantine entries. Never raises for bad input:
        a bad instance comes back as ``QUARANTINED`` with its findings.
        """
        sha = sha256_hex(data)
        try:
            parsed = dicom_io.read_dataset(data)
        except NotDicomError as exc:
            finding = Finding(rule=Rule.NOT_DICOM.value, severity=ERROR, message=str(exc))
            return self._quarantine(data, sha, [finding], None, source=source,
                                    calling_ae_title=calling_ae_title, origin=origin)
        ds = parsed.dataset
        findings = validate(ds, self.policy)
        if any(f.severity == ERROR for f in findings):
            return self._quarantine(data, sha, findings, ds, source=source,
                                    calling_ae_title=calling_ae_title, origin=origin)

        sop_uid = str(ds.SOPInstanceUID)
        study_uid = str(ds.StudyInstanceUID)
        series_uid = str(ds.SeriesInstanceUID)
        ids = {"sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": sop_uid,
               "study_instance_uid": study_uid, "series_instance_uid": series_uid}

        with self.catalog.session() as session:
            if self._find_version(session, sop_uid, sha) is not None:
                return StoreOutcome(status=StoreStatus.DUPLICATE, sha256=sha,
                                    findings=tuple(findings), **ids)
            conflicts = self._consistency(session, ds)
        if conflicts:
            return self._quarantine(data, sha, findings + conflicts, ds, source=source,
                                    calling_ae_title=calling_ae_title, origin=origin)

        relpath = self.files.instance_relpath(study_uid, series_uid, sop_uid, sha)
        self.files.write(relpath, data, sha256=sha)  # outside the lock: files write in parallel

        with self.catalog.writing() as session:
            if self._find_version(session, sop_uid, sha) is not None:  # raced with a twin
                return StoreOutcome(status=StoreStatus.DUPLICATE, sha256=sha,
                                    findings=tuple(findings), **ids)
            conflicts = self._consistency(session, ds)
            if conflicts:
                session.rollback()
                return self._quarantine(data, sha, findings + conflicts, ds, source=source,
                                        calling_ae_title=calling_ae_title, origin=origin)
            earlier = session.scalars(select(Instance).where(
                Instance.sop_instance_uid == sop_uid)).all()
            status = StoreStatus.STORED
            version = 1
            if earlier:
                status = StoreStatus.NEW_VERSION
                version = max(i.version for i in earlier) + 1
                for old in earlier:
                    old.is_current = False
                    old.version_conflict = True
                findings = findings + [Finding(
                    rule=Rule.DUPLICATE.value, severity=WARNING,
                    message=f"SOP Instance UID received before with different content; kept as "
                            f"version {version}, earlier versions kept")]
            series = self._upsert_hierarchy(session, ds)
            series.last_received_at = utcnow()
            if series.volume_state != "not_volumetric":
                series.volume_state = "pending"
            session.add(Instance(
                sop_instance_uid=sop_uid, version=version, is_current=True,
                version_conflict=bool(earlier), series=series,
                sop_class_uid=str(ds.SOPClassUID),
                instance_number=dicom_io.integer(ds, "InstanceNumber"),
                rows=dicom_io.integer(ds, "Rows"), columns=dicom_io.integer(ds, "Columns"),
                number_of_frames=dicom_io.integer(ds, "NumberOfFrames") or 1,
                transfer_syntax_uid=parsed.transfer_syntax_uid, file_path=relpath,
                sha256=sha, size_bytes=len(data), source=source,
                calling_ae_title=calling_ae_title[:16],
                institution_name=dicom_io.text(ds, "InstitutionName")[:64],
                has_file_meta=parsed.has_file_meta,
                warnings_json=json.dumps([f.to_json() for f in findings])))
        return StoreOutcome(status=status, sha256=sha, findings=tuple(findings), **ids)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _find_version(session: Session, sop_uid: str, sha: str) -> Instance | None:
        return session.scalars(select(Instance).where(
            Instance.sop_instance_uid == sop_uid, Instance.sha256 == sha)).first()

    @staticmethod
    def _consistency(session: Session, ds: Dataset) -> list[Finding]:
        """UID consistency with what the catalog already holds."""
        out: list[Finding] = []
        study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        pid = dicom_io.text(ds, "PatientID")
        issuer = dicom_io.text(ds, "IssuerOfPatientID")
        series = session.scalars(select(Series).where(
            Series.series_instance_uid == series_uid)).first()
        if series is not None and series.study.study_instance_uid != study_uid:
            out.append(Finding(rule=Rule.UID_CONSISTENCY.value, severity=ERROR, message=(
                f"series {series_uid} belongs to study {series.study.study_instance_uid}, "
                f"this instance says study {study_uid}")))
        study = session.scalars(select(Study).where(
            Study.study_instance_uid == study_uid)).first()
        if study is not None and (study.patient.patient_id, study.patient.issuer_of_patient_id) != (pid, issuer):
            out.append(Finding(rule=Rule.UID_CONSISTENCY.value, severity=ERROR, message=(
                f"study {study_uid} belongs to another patient than this instance's PatientID")))
        other = session.scalars(select(Instance).where(
            Instance.sop_instance_uid == str(ds.SOPInstanceUID))).first()
        if other is not None and other.series.series_instance_uid != series_uid:
            out.append(Finding(rule=Rule.UID_CONSISTENCY.value, severity=ERROR, message=(
                f"SOP Instance UID already stored in series {other.series.series_instance_uid}")))
        if series is not None and series.modality and series.modality != dicom_io.text(ds, "Modality"):
            out.append(Finding(rule=Rule.UID_CONSISTENCY.value, severity=ERROR, message=(
                f"series {series_uid} has modality {series.modality}, this instance says "
                f"{dicom_io.text(ds, 'Modality')}")))
        return out

    @staticmethod
    def _upsert_hierarchy(session: Session, ds: Dataset) -> Series:
        t = dicom_io.text
        pid, issuer = t(ds, "PatientID"), t(ds, "IssuerOfPatientID")
        patient = session.scalars(select(Patient).where(
            Patient.patient_id == pid, Patient.issuer_of_patient_id == issuer)).first()
        if patient is None:
            patient = Patient(patient_id=pid[:64], issuer_of_patient_id=issuer[:64])
            session.add(patient)
        patient.patient_name = t(ds, "PatientName")[:324] or patient.patient_name or ""
        patient.birth_date = t(ds, "PatientBirthDate")[:8] or patient.birth_date or ""
        patient.sex = t(ds, "PatientSex")[:16] or patient.sex or ""

        study_uid = str(ds.StudyInstanceUID)
        study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).first()
        if study is None:
            study = Study(study_instance_uid=study_uid, patient=patient,
                          study_date=t(ds, "StudyDate")[:8], study_time=t(ds, "StudyTime")[:16],
                          accession_number=t(ds, "AccessionNumber")[:16],
                          study_id=t(ds, "StudyID")[:16],
                          study_description=t(ds, "StudyDescription")[:64],
                          referring_physician_name=t(ds, "ReferringPhysicianName")[:324])
            session.add(study)

        series_uid = str(ds.SeriesInstanceUID)
        series = session.scalars(select(Series).where(
            Series.series_instance_uid == series_uid)).first()
        if series is None:
            modality = t(ds, "Modality").upper()
            has_pixels = "PixelData" in ds or "FloatPixelData" in ds
            series = Series(
                series_instance_uid=series_uid, study=study, modality=modality,
                series_number=dicom_io.integer(ds, "SeriesNumber"),
                series_description=t(ds, "SeriesDescription")[:64],
                body_part_examined=t(ds, "BodyPartExamined")[:16],
                frame_of_reference_uid=t(ds, "FrameOfReferenceUID")[:64],
                volume_state=("pending" if has_pixels and modality not in NON_VOLUMETRIC_MODALITIES
                              else "not_volumetric"))
            session.add(series)
        return series

    def _quarantine(self, data: bytes, sha: str, findings: list[Finding], ds: Dataset | None, *,
                    source: str, calling_ae_title: str, origin: str) -> StoreOutcome:
        relpath = self.files.quarantine_relpath(sha)
        self.files.write(relpath, data, sha256=sha)

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
