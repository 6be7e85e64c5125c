"""Malformed and unusual files (``odd-broken``) through ``voxcast ingest`` and through C-STORE.

For every file: nothing crashes, the file is either archived or quarantined with a specific,
non-empty reason, a quarantined file keeps its bytes, and a DICOM association carries on after
a bad instance. Files that a DICOM client cannot even send (no file meta, no SOP Class, gzip)
are refused by pynetdicom client-side; they are then sent anyway, wrapped in a forged file
meta, the way a broken modality would, to prove the server survives whatever arrives.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pynetdicom import AE, _config
from pynetdicom.association import Association
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from ingest.catalog import Catalog, Instance
from tests.conftest import REPO, ServerProcess, data_path, voxcast_executable

pytestmark = pytest.mark.integration

SUCCESS = 0x0000
# Statuses a quarantined instance may get (PS3.4 B.2.3): anything else (0x0110 processing
# failure, 0xA700 out of resources) means the instance was neither archived nor quarantined.
QUARANTINE_STATUSES = {0xA900, 0xC000}
_QUARANTINE_ID = re.compile(r"quarantined #(\d+)")

# Outcomes that do not depend on validation policy details: (status, rule of an error finding).
EXPECTED = {
    "zipMR.gz": ("quarantined", "not-dicom"),
    "MR_truncated.dcm": ("quarantined", "pixel-data"),
    "README.pydicom-test_files.txt": ("quarantined", None),
    "emri_small_jpeg_2k_lossless_too_short.dcm": ("quarantined", None),
    "bad_sequence.dcm": ("quarantined", "uid-syntax"),
    "MR_small_padded.dcm": ("stored", None),
    "SC_rgb_small_odd.dcm": ("stored", None),
}
ServerFactory = Callable[..., ServerProcess]


def odd_files() -> list[Path]:
    root = data_path("odd-broken")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_quarantine_keeps_bytes(data_dir: Path, relpath: str, sha: str) -> bytes:
    stored = (data_dir / relpath).read_bytes()
    assert sha256_bytes(stored) == sha, f"{relpath}: quarantined bytes changed"
    return stored


# -- voxcast ingest ----------------------------------------------------------------------------

def test_cli_ingest_each_file_stored_or_quarantined(tmp_path: Path) -> None:
    files = odd_files()
    data_dir = tmp_path / "data"
    run = subprocess.run([*voxcast_executable(), "ingest", "--data-dir", str(data_dir), "--json",
                          str(data_path("odd-broken"))], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert sum(summary["counts"].values()) == len(files)

    listing = subprocess.run([*voxcast_executable(), "quarantine", "--data-dir", str(data_dir),
                              "--json"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert listing.returncode == 0, listing.stderr
    entries = {Path(e["origin"]).name: e for e in json.loads(listing.stdout)}
    assert len(entries) == summary["counts"].get("quarantined", 0)
    by_name = {p.name: p for p in files}
    for name, entry in entries.items():
        assert entry["reason"].strip(), f"{name} quarantined without a reason"
        assert entry["findings"], name
        source = by_name[name].read_bytes()
        assert_quarantine_keeps_bytes(data_dir, entry["file"], sha256_bytes(source))
        assert (data_dir / entry["file"]).read_bytes() == source  # import keeps the file as is

    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.sqlite'}")
    try:
        with catalog.session() as session:
            archived = set(session.scalars(select(Instance.sha256)))
    finally:
        catalog.dispose()
    for path in files:  # every file is accounted for, one way or the other
        sha = sha256_bytes(path.read_bytes())
        assert (path.name in entries) != (sha in archived), path.name

    for name, (status, rule) in EXPECTED.items():
        if status == "stored":
            assert name not in entries, f"{name}: {entries[name]['reason']}"
            continue
        assert name in entries, f"{name} was not quarantined"
        if rule is not None:
            rules = {f["rule"] for f in entries[name]["findings"] if f["severity"] == "error"}
            assert rule in rules, (name, entries[name]["reason"])


# -- C-STORE with pynetdicom ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Envelope:
    """What a C-STORE carries for one file: the SOP Class/Instance, transfer syntax, data set."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    dataset: bytes


def forged_envelope(path: Path) -> Envelope:
    """The file's data set bytes (all of it when it has no file meta) with a made-up envelope."""
    data = path.read_bytes()
    try:
        _, offset = split_dataset(path)
    except Exception:
        offset = 0
    dataset = data[offset:]
    sop_class: str = str(SecondaryCaptureImageStorage)
    sop_instance: str = str(generate_uid())
    ts: str = ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
        sop_class = str(ds.get("SOPClassUID", "") or "") or sop_class
        sop_instance = str(ds.get("SOPInstanceUID", "") or "") or sop_instance
        ts = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
        if not ts and ds.original_encoding[0] is not None:
            encodings = {(True, True): ImplicitVRLittleEndian, (False, True): ExplicitVRLittleEndian,
                         (False, False): ExplicitVRBigEndian}
            ts = str(encodings.get((bool(ds.original_encoding[0]),
                                    bool(ds.original_encoding[1])), ""))
    except Exception:
        pass
    return Envelope(sop_class, sop_instance, str(ts or ImplicitVRLittleEndian), dataset)


def write_part10(envelope: Envelope, path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(envelope.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(envelope.sop_instance_uid)
    meta.TransferSyntaxUID = UID(envelope.transfer_syntax_uid)
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    buf = DicomBytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    path.write_bytes(buf.getvalue() + envelope.dataset)
    return path


def sendable(path: Path) -> bool:
    """Whether pynetdicom can send the file as it is (file meta with the three elements)."""
    try:
        meta, _ = split_dataset(path)
    except Exception:
        return False
    return all(str(meta.get(kw, "") or "") for kw in
               ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"))


def envelope_of(path: Path) -> tuple[str, str]:
    meta, _ = split_dataset(path)
    return str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)


def echo(port: int, ae_title: str) -> int:
    ae = AE(ae_title="ECHOCHECK")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
    assert assoc.is_established, "server no longer accepts associations"
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


@dataclass(frozen=True, slots=True)
class Sent:
    name: str
    dataset: bytes
    status: int
    comment: str


def store(assoc: Association, name: str, path: Path, dataset: bytes) -> Sent:
    rsp = assoc.send_c_store(path)
    assert assoc.is_established, f"association ended after {name}"
    assert "Status" in rsp, f"no response to {name}"
    return Sent(name, dataset, int(rsp.Status), str(rsp.get("ErrorComment", "")))


def test_c_store_each_file_on_one_association(server_factory: ServerFactory, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send bytes undecoded
    server = server_factory(quiet_seconds=0.5)
    files = odd_files()
    good = sorted(data_path("petct-acrin042", "CT").glob("*.dcm"))[:2]
    direct = [p for p in files if sendable(p)]
    forged = {p: write_part10(forged_envelope(p), tmp_path / f"forged-{p.name}")
              for p in files if not sendable(p)}
    assert direct and forged

    ae = AE(ae_title="ODDPYNET")
    for sop_class, ts in sorted({envelope_of(p) for p in [*direct, *forged.values(), *good]}):
        ae.add_requested_context(sop_class, ts)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.ae_title)
    assert assoc.is_established
    sent: list[Sent] = []
    try:
        for path in files:
            if path in forged:
                # A normal client refuses: no file meta, no SOP Class / Instance, or not DICOM.
                with pytest.raises((AttributeError, InvalidDicomError, ValueError)):
                    assoc.send_c_store(path)
                sent.append(store(assoc, path.name, forged[path], forged_envelope(path).dataset))
            else:
                _, offset = split_dataset(path)
                sent.append(store(assoc, path.name, path, path.read_bytes()[offset:]))
        after = [store(assoc, p.name, p, b"") for p in good]  # the association goes on
    finally:
        assoc.release()
    assert [s.status for s in after] == [SUCCESS, SUCCESS]
    assert server.proc is not None and server.proc.poll() is None, "server died"
    assert echo(server.dicom_port, server.ae_title) == SUCCESS

    quarantine = {e["id"]: e for e in server.http.get(f"{server.url}/api/quarantine",
                                                      timeout=10).json()}
    catalog = Catalog(f"sqlite:///{server.data_dir / 'catalog.sqlite'}")
    try:
        with catalog.session() as session:
            archived = {sop: path for sop, path in session.execute(
                select(Instance.sop_instance_uid, Instance.file_path))}
    finally:
        catalog.dispose()

    problems = []
    for s in sent:
        if s.status == SUCCESS:
            continue
        if s.status not in QUARANTINE_STATUSES:
            problems.append(f"{s.name}: status 0x{s.status:04X} ({s.comment})")
            continue
        match = _QUARANTINE_ID.search(s.comment)
        assert match, f"{s.name}: failure without a quarantine id: {s.comment!r}"
        entry = quarantine[int(match.group(1))]
        assert entry["reason"].strip() and entry["findings"], s.name
        assert entry["calling_ae_title"] == "ODDPYNET"
        stored = assert_quarantine_keeps_bytes(server.data_dir, f"quarantine/{entry['sha256']}.dcm",
                                               entry["sha256"])
        assert stored.endswith(s.dataset), f"{s.name}: quarantined data set is not what was sent"
    assert not problems, "neither archived nor quarantined:\n" + "\n".join(problems)
    for s in sent:  # what was acknowledged is archived
        if s.status == SUCCESS:
            assert any((server.data_dir / p).read_bytes().endswith(s.dataset)
                       for p in archived.values()), s.name
    outcome = {s.name: ("stored" if s.status == SUCCESS else "quarantined") for s in sent}
    for name, (status, _) in EXPECTED.items():
        assert outcome[name] == status, (name, next(s.comment for s in sent if s.name == name))


# -- C-STORE with dcmtk storescu -------------------------------------------------------------

@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk storescu not installed")
def test_storescu_raw_files(server_factory: ServerFactory) -> None:
    """storescu reads each file itself, skips what it cannot parse, and goes on (``-nh``)."""
    server = server_factory(quiet_seconds=0.5)
    files = odd_files()
    run = subprocess.run(["storescu", "-v", "-nh", "-aet", "ODDSTORESCU", "-aec", server.ae_title,
                          "127.0.0.1", str(server.dicom_port), *map(str, files)],
                         capture_output=True, text=True, timeout=120,
                         env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    log = run.stdout + run.stderr
    responses = re.findall(r"Received Store Response \(([^)]*)\)", log)
    assert responses, log
    assert "Association Aborted" not in log and "Peer aborted" not in log, log
    assert server.proc is not None and server.proc.poll() is None, "server died"
    assert echo(server.dicom_port, server.ae_title) == SUCCESS

    quarantined = [e for e in server.http.get(f"{server.url}/api/quarantine", timeout=10).json()
                   if e["calling_ae_title"] == "ODDSTORESCU"]
    for entry in quarantined:
        assert entry["reason"].strip(), entry
        assert_quarantine_keeps_bytes(server.data_dir, f"quarantine/{entry['sha256']}.dcm",
                                      entry["sha256"])
    catalog = Catalog(f"sqlite:///{server.data_dir / 'catalog.sqlite'}")
    try:
        with catalog.session() as session:
            archived = list(session.scalars(select(Instance).where(
                Instance.calling_ae_title == "ODDSTORESCU")))
    finally:
        catalog.dispose()
    successes = sum(1 for r in responses if r == "Success")
    # Every response is either an archived instance or a quarantine entry: a processing
    # failure (0x0110) or an out-of-resources status would leave the count short.
    assert len(archived) == successes, responses
    assert len(quarantined) == len(responses) - successes, responses
