"""``kill -9`` in the middle of a C-STORE series: what was acknowledged survives, bit-exact.

1. Server A (series quiet period 30 s, so no volume build can start) receives the ACRIN CT
   (135 instances) from a pynetdicom SCU; after about 40 success responses it is killed with
   SIGKILL while the SCU is still sending — at the moment a temporary file of the next,
   unacknowledged instance exists (polled for), so the crash cuts a store in half.
2. Server B starts on the same data directory. Every instance acknowledged with 0x0000 is in
   the catalog and on disk with the bytes that were sent; no temporary file is left anywhere;
   the incomplete series shows no volume (409, no published volume folder). The whole series
   is sent again: every response is a success, nothing is stored twice.
3. Server C (short quiet period) builds the series: the volume appears with shape
   (135, 512, 512).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import select

from ingest.catalog import Catalog, Instance, Series
from tests.conftest import ServerProcess, data_path

pytestmark = pytest.mark.integration

SUCCESS = 0x0000
KILL_AFTER = 40
ServerFactory = Callable[..., ServerProcess]


def dataset_bytes(path: Path) -> bytes:
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Sender(threading.Thread):
    """Sends files on one association, records those acknowledged with success, in order."""

    def __init__(self, port: int, ae_title: str, files: list[Path],
                 signal_after: int | None = None) -> None:
        super().__init__(name="c-store-sender", daemon=True)
        self.port, self.ae_title, self.files = port, ae_title, files
        self.signal_after = signal_after
        self.acknowledged: list[Path] = []
        self.statuses: list[int] = []
        self.reached = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            ae = AE(ae_title="CRASHTEST")
            ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
            assoc = ae.associate("127.0.0.1", self.port, ae_title=self.ae_title)
            if not assoc.is_established:
                raise RuntimeError("association not established")
            try:
                for path in self.files:
                    rsp = assoc.send_c_store(path)
                    if "Status" not in rsp:  # aborted: the server is gone
                        break
                    self.statuses.append(int(rsp.Status))
                    if int(rsp.Status) == SUCCESS:
                        self.acknowledged.append(path)
                    if self.signal_after is not None and len(self.acknowledged) >= self.signal_after:
                        self.reached.set()
            finally:
                if assoc.is_established:
                    assoc.release()
        except BaseException as exc:  # reported to the test
            self.error = exc
        finally:
            self.reached.set()


def catalog_rows(data_dir: Path, series_uid: str) -> dict[str, list[Instance]]:
    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.sqlite'}")
    try:
        with catalog.session() as session:
            rows = session.scalars(select(Instance).join(Series).where(
                Series.series_instance_uid == series_uid)).all()
    finally:
        catalog.dispose()
    out: dict[str, list[Instance]] = {}
    for row in rows:
        out.setdefault(row.sop_instance_uid, []).append(row)
    return out


def leftovers(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob(".tmp-*"))


def volume_status(server: ServerProcess, series_uid: str) -> requests.Response:
    return server.http.get(f"{server.url}/api/series/{series_uid}/volume", timeout=10)


def test_kill_9_mid_series(server_factory: ServerFactory, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send bytes undecoded
    files = sorted(data_path("petct-acrin042", "CT").glob("*.dcm"))
    assert len(files) == 135
    uids = {p: str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    data_dir = tmp_path / "data"

    # 1. kill -9 while the series is arriving
    server_a = server_factory(data_dir=data_dir, quiet_seconds=30)
    sender = Sender(server_a.dicom_port, server_a.ae_title, files, signal_after=KILL_AFTER)
    sender.start()
    assert sender.reached.wait(120), "no progress"
    # Crash inside a store: wait (briefly) until the next instance's temporary file exists.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: bool(leftovers(data_dir)), 2.0, "a temporary file", interval=0.0005)
    server_a.kill()
    sender.join(60)
    assert not sender.is_alive()
    acknowledged = list(sender.acknowledged)
    assert sender.error is None, sender.error
    assert KILL_AFTER <= len(acknowledged) < len(files), len(acknowledged)
    assert set(sender.statuses) == {SUCCESS}

    # 2. restart: acknowledged instances are there, bit-exact; nothing half-done is visible
    server_b = server_factory(data_dir=data_dir, quiet_seconds=30)
    rows = catalog_rows(data_dir, series_uid)
    for path in acknowledged:
        versions = rows.get(uids[path], [])
        assert len(versions) == 1, f"{path.name}: {len(versions)} catalog rows"
        stored = data_dir / versions[0].file_path
        assert stored.is_file(), f"{path.name} acknowledged but not on disk"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == versions[0].sha256
        assert dataset_bytes(stored) == dataset_bytes(path), f"{path.name} differs"
    assert leftovers(data_dir) == [], "temporary files survived the restart"
    rsp = volume_status(server_b, series_uid)
    assert rsp.status_code == 409, (rsp.status_code, rsp.text)
    volume_dir = data_dir / "volumes" / series_uid
    assert not volume_dir.exists() or not any(volume_dir.glob("*.zarr")), "partial volume"

    resend = Sender(server_b.dicom_port, server_b.ae_title, files)
    resend.start()
    resend.join(120)
    assert resend.error is None, resend.error
    assert resend.statuses == [SUCCESS] * len(files)
    rows = catalog_rows(data_dir, series_uid)
    assert set(rows) == set(uids.values())
    assert all(len(v) == 1 and v[0].version == 1 and not v[0].version_conflict
               for v in rows.values()), "a re-sent identical instance was stored twice"
    series = server_b.http.get(f"{server_b.url}/api/series/{series_uid}", timeout=10).json()
    assert series["instance_count"] == len(files)
    assert volume_status(server_b, series_uid).status_code == 409  # still inside quiet period
    server_b.stop()

    # 3. a server with a short quiet period builds the complete series
    server_c = server_factory(data_dir=data_dir, quiet_seconds=0.2)
    wait_for(lambda: volume_status(server_c, series_uid).status_code != 409, 90,
             "the series volume")
    rsp = volume_status(server_c, series_uid)
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["shape"] == [135, 512, 512]
    assert leftovers(data_dir) == []
