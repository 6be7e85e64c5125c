"""The metadata catalog: patients, studies, series, instances and quarantine entries.

SQLAlchemy 2 ORM, portable between SQLite (default, inside the data directory) and PostgreSQL
(given a URL). Only portable column types are used; JSON-ish payloads are stored as text.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    birth_date: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")

    studies: Mapped[list[Study]] = relationship(back_populates="patient")

    __table_args__ = (UniqueConstraint("patient_id", "issuer_of_patient_id"),)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="")
    study_id: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(64), default="")
    referring_physician_name: Mapped[str] = mapped_column(String(324), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study")


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_description: Mapped[str] = mapped_column(String(64), default="")
    body_part_examined: Mapped[str] = mapped_column(String(16), default="")
    frame_of_reference_uid: Mapped[str] = mapped_column(String(64), default="")
    last_received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Volume state: pending (new instances, build due) · building · ready · failed ·
    # not_volumetric (no image stack: SR, RWV, …). ``volume_path`` is relative to the data dir
    # and is set only once a volume is completely written (publication is this commit).
    volume_state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    volume_error: Mapped[str] = mapped_column(Text, default="")
    volume_path: Mapped[str] = mapped_column(String(512), default="")
    volume_built_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    volume_build_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series")


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # False once a later version with other bytes arrived (kept, never overwritten).
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    # True when this SOP Instance UID has arrived with different bytes.
    version_conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64), default="")
    instance_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    columns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64), default="")
    file_path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(16), default="")
    calling_ae_title: Mapped[str] = mapped_column(String(16), default="")
    institution_name: Mapped[str] = mapped_column(String(64), default="")
    has_file_meta: Mapped[bool] = mapped_column(Boolean, default=True)
    warnings_json: Mapped[str] = mapped_column(Text, default="[]")
    # DICOM JSON (PS3.18 F.2) of the data set without bulk data, for QIDO/WADO metadata.
    # Filled after acknowledgement (by the series builder, or on first metadata request):
    # decoding every element costs more than the rest of ingest together.
    header_json: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)

    series: Mapped[Series] = relationship(back_populates="instances")

    __table_args__ = (UniqueConstraint("sop_instance_uid", "version"),)

    @property
    def warnings(self) -> list[dict[str, str]]:
        return list(json.loads(self.warnings_json or "[]"))


class QuarantineEntry(Base):
    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    file_path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="")
    origin: Mapped[str] = mapped_column(String(512), default="")
    calling_ae_title: Mapped[str] = mapped_column(String(16), default="")
    sop_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    study_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    series_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    # [{"rule": ..., "severity": "error"|"warning", "message": ...}, ...]
    findings_json: Mapped[str] = mapped_column(Text, default="[]")
    reason: Mapped[str] = mapped_column(Text, default="")

    @property
    def findings(self) -> list[dict[str, str]]:
        return list(json.loads(self.findings_json or "[]"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL + synchronous=FULL: a commit is on disk when it returns (durable acknowledgement),
    # and readers never block the writer.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Catalog:
    """Owns the engine and sessions; one per process (built by the app factory)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        kwargs: dict[str, Any] = {}
        if database_url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(database_url, **kwargs)
        if database_url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Serialises writers inside this process (SQLite allows one writer at a time anyway).
        self.write_lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session for one write transaction, committed on success."""
        with self.write_lock, self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
