"""The C-ECHO / C-STORE SCP against real peers: dcmtk (``echoscu``, ``storescu``) and pynetdicom.

Most tests run the SCP in-process (``StoreScp`` + ``IngestService`` on a temporary data
directory) so that the catalog can be inspected directly; one test goes through a real
``voxcast serve`` and its REST API.

What "bit-exact" means on the network: a C-STORE carries the data set only, so the receiver
writes a new File Meta Information header (PS3.10 7.1); the data set bytes after it must equal
the data set bytes of the source file. The pynetdicom SCU here sends files without decoding
them (``STORE_SEND_CHUNKED_DATASET``), so whatever it sends is exactly the source's data set.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, _config
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ingest.catalog import Catalog, Instance
from ingest.scp import ScpConfig, StoreScp
from ingest.service import IngestService, StoreOutcome, StoreStatus
from tests.conftest import ServerProcess, data_path

pytestmark = pytest.mark.integration

SUCCESS = 0x0000
DCMTK_ENV = dict(os.environ, TCP_NODELAY="1")  # dcmtk: no Nagle wait on each C-STORE
needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None or shutil.which("echoscu") is None,
                                 reason="dcmtk (storescu, echoscu) not installed")


# -- helpers ---------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dataset_bytes(path: Path) -> bytes:
    """The bytes of a Part-10 file after its File Meta Information (the encoded data set)."""
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def sop_instance_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def send_files(port: int, paths: Sequence[Path], *, called_ae: str = "VOXCAST") -> list[int]:
    """C-STORE ``paths`` on one association, each in its own transfer syntax; the statuses.

    The caller enables ``STORE_SEND_CHUNKED_DATASET`` (see :func:`raw_send`) so that the data
    sets leave undecoded.
    """
    ae = AE(ae_title="PYNETDICOM")
    contexts: set[tuple[str, str]] = set()
    for path in paths:
        meta, _ = split_dataset(path)
        contexts.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    for sop_class, ts in sorted(contexts):
        ae.add_requested_context(sop_class, ts)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    assert assoc.is_established, "association rejected or aborted"
    try:
        return [int(assoc.send_c_store(path).Status) for path in paths]
    finally:
        assoc.release()


@pytest.fixture
def raw_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom sends a file's data set bytes as they are instead of re-encoding them."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)


@dataclass
class LiveScp:
    """An in-process SCP on a free port, the service behind it and every outcome it saw."""

    scp: StoreScp
    service: IngestService
    outcomes: list[StoreOutcome] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.scp.port

    @property
    def data_dir(self) -> Path:
        return self.service.data_dir

    def instances(self, sop_uid: str | None = None) -> list[Instance]:
        with self.service.catalog.session() as session:
            q = select(Instance).options(selectinload(Instance.series)).order_by(Instance.id)
            if sop_uid is not None:
                q = q.where(Instance.sop_instance_uid == sop_uid).order_by(Instance.version)
            return list(session.scalars(q))

    def instance_count(self) -> int:
        with self.service.catalog.session() as session:
            return int(session.scalar(select(func.count(Instance.id))) or 0)

    def stored_file(self, instance: Instance) -> Path:
        return self.data_dir / instance.file_path


@pytest.fixture
def live_scp(tmp_path: Path) -> Iterator[LiveScp]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    service = IngestService(data_dir=tmp_path / "data", catalog=catalog)
    live = LiveScp(scp=StoreScp(service, ScpConfig(port=0)), service=service)
    live.scp.on_stored = live.outcomes.append  # called before the response goes out
    live.scp.start()
    try:
        yield live
    finally:
        live.scp.stop()
        service.close()
        catalog.dispose()


def assert_bit_exact(live: LiveScp, source: Path) -> Instance:
    """The current version of ``source``'s instance is archived with its exact data set."""
    rows = [r for r in live.instances(sop_instance_uid(source)) if r.is_current]
    assert len(rows) == 1, f"{source.name}: {len(rows)} current catalog rows"
    row = rows[0]
    stored = live.stored_file(row)
    assert row.sha256 == sha256_file(stored), f"{source.name}: catalog SHA-256 != file's"
    assert dataset_bytes(stored) == dataset_bytes(source), f"{source.name}: data set differs"
    meta, _ = split_dataset(stored)
    src_meta, _ = split_dataset(source)
    assert meta.TransferSyntaxUID == src_meta.TransferSyntaxUID
    assert meta.MediaStorageSOPInstanceUID == src_meta.MediaStorageSOPInstanceUID
    return row


def acrin_ct(count: int) -> list[Path]:
    return sorted(data_path("petct-acrin042", "CT").glob("*.dcm"))[:count]


# -- C-ECHO ----------------------------------------------------------------------------------

@needs_dcmtk
def test_echo_dcmtk(live_scp: LiveScp) -> None:
    run = subprocess.run(["echoscu", "-aec", "VOXCAST", "127.0.0.1", str(live_scp.port)],
                         env=DCMTK_ENV, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr


def test_echo_pynetdicom(live_scp: LiveScp) -> None:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", live_scp.port, ae_title="VOXCAST")
    assert assoc.is_established
    try:
        assert int(assoc.send_c_echo().Status) == SUCCESS
    finally:
        assoc.release()


def test_each_association_gets_its_own_contexts(live_scp: LiveScp) -> None:
    """The SCP copies its supported contexts cheaply per association; the copy is complete
    (every storage class with every transfer syntax) and independent of the original."""
    server = live_scp.scp._server
    assert server is not None
    original = server.contexts
    copied = copy.deepcopy(original)
    assert [(c.abstract_syntax, c.transfer_syntax) for c in copied] == \
        [(c.abstract_syntax, c.transfer_syntax) for c in original]
    assert all(len(c.transfer_syntax) == len(ALL_TRANSFER_SYNTAXES) for c in copied)
    copied[0].transfer_syntax.clear()
    copied[0].result = 0
    assert original[0].transfer_syntax and original[0].result is None
    for _ in range(3):  # several associations in a row negotiate from the same contexts
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", live_scp.port, ae_title="VOXCAST")
        assert assoc.is_established
        assoc.release()


# -- C-STORE ---------------------------------------------------------------------------------

def test_store_ct_pynetdicom_bit_exact(live_scp: LiveScp, raw_send: None) -> None:
    files = acrin_ct(20)
    assert send_files(live_scp.port, files) == [SUCCESS] * len(files)
    assert [o.status for o in live_scp.outcomes] == [StoreStatus.STORED] * len(files)
    for path in files:
        row = assert_bit_exact(live_scp, path)
        assert row.version == 1 and not row.version_conflict
        assert row.calling_ae_title == "PYNETDICOM" and row.source == "c-store"


@needs_dcmtk
def test_store_series_storescu(live_scp: LiveScp) -> None:
    files = sorted(data_path("ct-head-gantrytilt-ge").glob("*.dcm"))
    run = subprocess.run(["storescu", "-aec", "VOXCAST", "127.0.0.1", str(live_scp.port),
                          *map(str, files)], env=DCMTK_ENV, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    rows = live_scp.instances()
    assert len(rows) == len(files) == 28
    assert {r.series.series_instance_uid for r in rows} == {series_uid}
    for path in files:  # storescu keeps an uncompressed data set as it is
        assert_bit_exact(live_scp, path)


def test_store_compressed_pynetdicom_as_stored(live_scp: LiveScp, raw_send: None) -> None:
    wg04 = data_path("compressed-wg04")
    files = [wg04 / "CT2_JLSL.dcm", wg04 / "CT2_JLSN.dcm", wg04 / "CT2_J2KR.dcm",
             wg04 / "CT2_J2KI.dcm"]
    assert send_files(live_scp.port, files) == [SUCCESS] * len(files)
    for path in files:
        row = assert_bit_exact(live_scp, path)
        assert row.transfer_syntax_uid == str(split_dataset(path)[0].TransferSyntaxUID)


@needs_dcmtk
@pytest.mark.parametrize(("name", "option", "ts_uid"), [
    ("CT1_JLSL.dcm", "-xt", "1.2.840.10008.1.2.4.80"),  # JPEG-LS lossless
    ("CT1_J2KR.dcm", "-xv", "1.2.840.10008.1.2.4.90"),  # JPEG 2000 lossless only
])
def test_store_compressed_storescu_as_stored(live_scp: LiveScp, name: str, option: str,
                                             ts_uid: str) -> None:
    source = data_path("compressed-wg04", name)
    run = subprocess.run(["storescu", option, "-aec", "VOXCAST", "127.0.0.1",
                          str(live_scp.port), str(source)], env=DCMTK_ENV, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and "Store Failed" not in run.stderr, run.stderr
    (row,) = live_scp.instances(sop_instance_uid(source))
    stored = live_scp.stored_file(row)
    assert row.transfer_syntax_uid == ts_uid
    assert row.sha256 == sha256_file(stored)
    # dcmtk re-encodes the data set around the pixels (same elements and values), but the
    # compressed stream itself must arrive untouched: no transcoding on either side.
    assert pydicom.dcmread(stored).PixelData == pydicom.dcmread(source).PixelData


def test_resend_is_reported_duplicate(live_scp: LiveScp, raw_send: None) -> None:
    files = acrin_ct(3)
    assert send_files(live_scp.port, files) == [SUCCESS] * 3
    before = {r.id: (r.file_path, r.sha256) for r in live_scp.instances()}
    archived = sorted((live_scp.data_dir / "dicom").rglob("*.dcm"))

    assert send_files(live_scp.port, files) == [SUCCESS] * 3
    assert [o.status for o in live_scp.outcomes[3:]] == [StoreStatus.DUPLICATE] * 3
    assert {r.id: (r.file_path, r.sha256) for r in live_scp.instances()} == before
    assert sorted((live_scp.data_dir / "dicom").rglob("*.dcm")) == archived


def test_same_uid_other_bytes_kept_as_version_2(live_scp: LiveScp, raw_send: None,
                                                 tmp_path: Path) -> None:
    original = acrin_ct(1)[0]
    edited = tmp_path / "edited.dcm"
    ds = pydicom.dcmread(original)
    ds.ImageComments = "edited copy: same SOP Instance UID, other bytes"
    ds.save_as(edited, enforce_file_format=True)
    sop_uid = sop_instance_uid(original)

    assert send_files(live_scp.port, [original]) == [SUCCESS]
    (first,) = live_scp.instances(sop_uid)
    first_file = live_scp.stored_file(first)
    first_bytes = first_file.read_bytes()

    assert send_files(live_scp.port, [edited]) == [SUCCESS]
    assert live_scp.outcomes[-1].status is StoreStatus.NEW_VERSION
    v1, v2 = live_scp.instances(sop_uid)
    assert (v1.version, v1.is_current, v1.version_conflict) == (1, False, True)
    assert (v2.version, v2.is_current, v2.version_conflict) == (2, True, True)
    assert v1.file_path == first.file_path != v2.file_path
    assert first_file.read_bytes() == first_bytes and v1.sha256 == sha256_file(first_file)
    assert dataset_bytes(first_file) == dataset_bytes(original)
    assert assert_bit_exact(live_scp, edited).id == v2.id
    assert any(w["rule"] == "duplicate" for w in v2.warnings)


# -- through a real ``voxcast serve`` ---------------------------------------------------------

@needs_dcmtk
def test_storescu_series_to_real_server(voxcast_server: ServerProcess) -> None:
    files = sorted(data_path("ct-head-gantrytilt-ge").glob("*.dcm"))
    echo = subprocess.run(["echoscu", "-aec", voxcast_server.ae_title, "127.0.0.1",
                           str(voxcast_server.dicom_port)], env=DCMTK_ENV, timeout=30)
    assert echo.returncode == 0
    run = subprocess.run(["storescu", "-aec", voxcast_server.ae_title, "127.0.0.1",
                          str(voxcast_server.dicom_port), *map(str, files)], env=DCMTK_ENV,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    study = voxcast_server.http.get(f"{voxcast_server.url}/api/studies/{first.StudyInstanceUID}",
                                    timeout=10)
    assert study.status_code == 200, study.text
    body = study.json()
    assert body["instance_count"] == 28
    (series,) = [s for s in body["series"] if s["series_uid"] == first.SeriesInstanceUID]
    assert series["instance_count"] == 28
