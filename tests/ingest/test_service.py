"""IngestService on its own: statuses, versions, UID consistency, concurrency."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from ingest.catalog import Catalog, Instance, QuarantineEntry
from ingest.service import IngestService, StoreStatus
from tests.conftest import data_path


@pytest.fixture
def service(tmp_path: Path) -> IngestService:
    svc = IngestService(data_dir=tmp_path, catalog=Catalog(f"sqlite:///{tmp_path}/c.sqlite"))
    yield svc  # type: ignore[misc]
    svc.close()


def _ct_bytes(n: int = 2) -> list[bytes]:
    files = sorted(data_path("petct-acrin042", "CT").iterdir())[:n]
    return [p.read_bytes() for p in files]


def _modified(data: bytes, **attrs: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_store_then_duplicate(service: IngestService) -> None:
    data = _ct_bytes(1)[0]
    first = service.store(data, source="import")
    again = service.store(data, source="import")
    assert (first.status, again.status) == (StoreStatus.STORED, StoreStatus.DUPLICATE)
    assert service.counts()["instances"] == 1
    assert not list((service.data_dir / "incoming").iterdir())  # the re-send left nothing


def test_series_claimed_by_another_study_is_quarantined(service: IngestService) -> None:
    a, b = _ct_bytes(2)
    assert service.store(a, source="import").ok
    outcome = service.store(_modified(b, StudyInstanceUID="1.2.826.0.1.3680043.2.1125.1"),
                            source="import")
    assert outcome.status is StoreStatus.QUARANTINED
    assert "belongs to study" in outcome.reason
    with service.catalog.session() as session:
        entry = session.scalars(select(QuarantineEntry)).one()
        assert (service.data_dir / entry.file_path).exists()
        assert entry.findings[-1]["rule"] == "uid-consistency"


def test_study_of_another_patient_is_quarantined(service: IngestService) -> None:
    a, b = _ct_bytes(2)
    assert service.store(a, source="import").ok
    outcome = service.store(_modified(b, PatientID="SOMEONE-ELSE"), source="import")
    assert outcome.status is StoreStatus.QUARANTINED
    assert "another patient" in outcome.reason


def test_invalid_uid_is_quarantined(service: IngestService) -> None:
    data = _modified(_ct_bytes(1)[0], SOPInstanceUID="1.2.03.4")
    outcome = service.store(data, source="import")
    assert outcome.status is StoreStatus.QUARANTINED and "not a valid UID" in outcome.reason


def test_concurrent_twins_store_once(service: IngestService) -> None:
    data = _ct_bytes(1)[0]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(o.status.value for o in pool.map(
            lambda _: service.store(data, source="c-store"), range(4)))
    assert statuses == ["duplicate"] * 3 + ["stored"]
    assert service.counts()["instances"] == 1


def test_concurrent_versions_are_numbered(service: IngestService) -> None:
    data = _ct_bytes(1)[0]
    variants = [_modified(data, SeriesDescription=f"variant {i}") for i in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda d: service.store(d, source="c-store"), variants))
    assert sorted(o.status.value for o in outcomes) == ["new_version", "new_version", "stored"]
    with service.catalog.session() as session:
        rows = session.scalars(select(Instance)).all()
        assert sorted(r.version for r in rows) == [1, 2, 3]
        assert [r.is_current for r in sorted(rows, key=lambda r: r.version)] == [False, False, True]
        assert all(r.version_conflict for r in rows)
        assert all((service.data_dir / r.file_path).read_bytes() in variants for r in rows)
