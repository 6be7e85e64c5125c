"""Read-only catalog queries shared by the REST API, DICOMweb and the CLI.

Results are plain dicts (JSON-ready); callers never see ORM objects outside a session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ingest.catalog import Catalog, Instance, Patient, Series, Study
from ingest.errors import NotFoundError


def _study_dict(study: Study, series_rows: list[tuple[Series, int]]) -> dict[str, Any]:
    p = study.patient
    return {
        "study_uid": study.study_instance_uid,
        "patient_id": p.patient_id,
        "patient_name": p.patient_name,
        "patient_birth_date": p.birth_date,
        "patient_sex": p.sex,
        "study_date": study.study_date,
        "study_time": study.study_time,
        "accession_number": study.accession_number,
        "study_description": study.study_description,
        "modalities": sorted({s.modality for s, _ in series_rows if s.modality}),
        "series_count": len(series_rows),
        "instance_count": sum(n for _, n in series_rows),
    }


def _series_dict(series: Series, instance_count: int) -> dict[str, Any]:
    return {
        "series_uid": series.series_instance_uid,
        "modality": series.modality,
        "series_number": series.series_number,
        "series_description": series.series_description,
        "body_part_examined": series.body_part_examined,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "instance_count": instance_count,
        "volume_state": series.volume_state,
        "volume_error": series.volume_error or None,
    }


def _series_with_counts(session: Any, study_pk: int) -> list[tuple[Series, int]]:
    rows = session.execute(
        select(Series, func.count(Instance.id))
        .join(Instance, (Instance.series_pk == Series.id) & Instance.is_current, isouter=True)
        .where(Series.study_pk == study_pk)
        .group_by(Series.id)
        .order_by(Series.series_number, Series.id)).all()
    return [(s, int(n)) for s, n in rows]


def list_studies(catalog: Catalog, *, patient_id: str | None = None, limit: int = 100,
                 offset: int = 0) -> list[dict[str, Any]]:
    """Studies, newest study date first; optionally of one PatientID."""
    with catalog.session() as session:
        q = select(Study).join(Patient)
        if patient_id is not None:
            q = q.where(Patient.patient_id == patient_id)
        q = q.order_by(Study.study_date.desc(), Study.id).limit(limit).offset(offset)
        return [_study_dict(st, _series_with_counts(session, st.id)) for st in session.scalars(q)]


def get_study(catalog: Catalog, study_uid: str) -> dict[str, Any]:
    """One study with its series. Raises :class:`NotFoundError`."""
    with catalog.session() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).first()
        if study is None:
            raise NotFoundError("study", study_uid)
        rows = _series_with_counts(session, study.id)
        out = _study_dict(study, rows)
        out["series"] = [_series_dict(s, n) for s, n in rows]
        return out


def volume_paths(catalog: Catalog, study_uid: str) -> dict[str, str]:
    """Series UID → published volume path of every series of the study that has a volume
    (one query; raises :class:`NotFoundError` for an unknown study)."""
    with catalog.session() as session:
        study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).first()
        if study is None:
            raise NotFoundError("study", study_uid)
        rows = session.execute(select(Series.series_instance_uid, Series.volume_path)
                               .where(Series.study_pk == study.id)).all()
        return {uid: path for uid, path in rows if path}


def get_series(catalog: Catalog, series_uid: str) -> dict[str, Any]:
    """One series' catalog record, with ``volume_path``. Raises :class:`NotFoundError`."""
    with catalog.session() as session:
        series = session.scalars(
            select(Series).where(Series.series_instance_uid == series_uid)).first()
        if series is None:
            raise NotFoundError("series", series_uid)
        n = session.scalar(select(func.count(Instance.id)).where(
            Instance.series_pk == series.id, Instance.is_current)) or 0
        out = _series_dict(series, int(n))
        out["study_uid"] = series.study.study_instance_uid
        out["volume_path"] = series.volume_path or None
        out["volume_built_at"] = (series.volume_built_at.isoformat() + "Z"
                                  if series.volume_built_at else None)
        return out


def study_patient(catalog: Catalog, study_uid: str) -> tuple[str, str]:
    """(PatientID, IssuerOfPatientID) of a study's patient, the pair that identifies a patient
    (PS3.3 C.7.1.1). Raises :class:`NotFoundError` for an unknown study."""
    with catalog.session() as session:
        row = session.execute(
            select(Patient.patient_id, Patient.issuer_of_patient_id).join(Study)
            .where(Study.study_instance_uid == study_uid)).first()
        if row is None:
            raise NotFoundError("study", study_uid)
        return str(row[0] or ""), str(row[1] or "")
