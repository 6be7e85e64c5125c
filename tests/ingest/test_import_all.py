"""Import every study of the shared test data with ``voxcast ingest`` and check the archive."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from ingest.catalog import Catalog, Instance, Series
from tests.conftest import DATA, REPO, ImportedArchive, voxcast_executable

pytestmark = pytest.mark.integration

# Folders whose every file is a valid, distinct instance: their per-series instance counts must
# match an independent count made here with pydicom.
CLEAN_FOLDERS = ["petct-acrin042", "ct-head-gantrytilt-ge", "ct-phantom-philips-2studies",
                 "ct-history-covid-sbu-A002304", "mr-mprage-siemens-jpegls",
                 "mr-t1-decubitus-siemens", "mr-enhanced-multiframe"]


def _catalog(archive: ImportedArchive) -> Catalog:
    return Catalog(f"sqlite:///{archive.data_dir / 'catalog.sqlite'}")


def _dicom_files(folder: str) -> list[Path]:
    """The DICOM files of a folder (its licence text files are not)."""
    return [p for p in (DATA / folder).rglob("*") if p.is_file() and p.suffix != ".txt"]


def _independent_counts() -> dict[str, set[str]]:
    per_series: dict[str, set[str]] = defaultdict(set)
    for folder in CLEAN_FOLDERS:
        for path in _dicom_files(folder):
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            per_series[str(ds.SeriesInstanceUID)].add(str(ds.SOPInstanceUID))
    return per_series


def test_every_file_is_accounted_for(imported_archive: ImportedArchive) -> None:
    files = [p for p in DATA.rglob("*") if p.is_file() and not p.name.startswith(".")]
    counts = imported_archive.summary["counts"]
    assert isinstance(counts, dict)
    assert sum(counts.values()) == len(files)
    assert counts.get("quarantined", 0) >= 10  # odd-broken holds at least that many bad files
    for origin, reason in imported_archive.summary["quarantined"]:  # type: ignore[union-attr]
        assert reason.strip(), f"{origin} quarantined without a reason"


def test_instance_counts_match_an_independent_count(imported_archive: ImportedArchive) -> None:
    expected = _independent_counts()
    with _catalog(imported_archive).session() as session:
        for series_uid, sops in expected.items():
            stored = set(session.scalars(
                select(Instance.sop_instance_uid).join(Series)
                .where(Series.series_instance_uid == series_uid, Instance.is_current)))
            assert stored == sops, series_uid
    acrin_ct = next(s for s, sops in expected.items() if len(sops) == 135)
    assert acrin_ct


def test_archived_bytes_are_the_source_bytes(imported_archive: ImportedArchive) -> None:
    sources = {hashlib.sha256(p.read_bytes()).hexdigest(): p
               for folder in CLEAN_FOLDERS for p in _dicom_files(folder)}
    with _catalog(imported_archive).session() as session:
        rows = session.execute(select(Instance.sha256, Instance.file_path)).all()
    checked = 0
    for sha, relpath in rows:
        if sha in sources:
            stored = (imported_archive.data_dir / relpath).read_bytes()
            assert stored == sources[sha].read_bytes()
            assert hashlib.sha256(stored).hexdigest() == sha
            checked += 1
    assert checked == len(sources)


def test_quarantine_cli_lists_reasons(imported_archive: ImportedArchive) -> None:
    result = subprocess.run(
        [*voxcast_executable(), "quarantine", "--data-dir", str(imported_archive.data_dir),
         "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert len(entries) == imported_archive.summary["counts"]["quarantined"]  # type: ignore[index]
    by_origin = {Path(e["origin"]).name: e for e in entries}
    assert "truncated" in by_origin["MR_truncated.dcm"]["reason"]
    assert "gzip" in by_origin["zipMR.gz"]["reason"]
    assert "not DICOM" in by_origin["LICENSE.dcm_qa_ct.txt"]["reason"]
    for e in entries:
        assert (imported_archive.data_dir / e["file"]).exists()
        assert e["findings"], e


def test_reimport_is_idempotent(imported_archive: ImportedArchive) -> None:
    folder = DATA / "ct-head-gantrytilt-ge"
    result = subprocess.run(
        [*voxcast_executable(), "ingest", "--data-dir", str(imported_archive.data_dir),
         "--json", str(folder)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    n = len(_dicom_files("ct-head-gantrytilt-ge"))
    # The DICOM files are duplicates; the licence text is quarantined again as not DICOM.
    assert summary["counts"] == {"duplicate": n, "quarantined": 1}
