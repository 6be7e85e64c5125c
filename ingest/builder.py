"""Series builder: catalog instances → assembled volume → published Zarr → catalog row.

Life of a series' volume (``Series.volume_state``)::

    pending ──build()──> building ──> ready   (volume_path set: the commit is the publication)
                                   └─> failed  (volume_error says why)
    ingest of a new instance at any time ──> pending (by the ingest service)

A build reads the *current* instances, assembles them (:mod:`ingest.assemble`), writes the
volume atomically (:mod:`volume_cache.zarr_store`), and publishes it with one conditional
UPDATE that only succeeds if ``last_received_at`` is unchanged since the build began. When
new instances arrived meanwhile the fresh volume is discarded and the series stays pending
for the next round, so a published volume never misses an acknowledged instance. The
previous volume's folder is removed after the commit.

The builder also fills ``Instance.header_json`` (DICOM JSON, PS3.18 F.2, bulk data as
markers) for instances that lack it, since it has every data set parsed anyway.

Thread-safe: call :meth:`SeriesBuilder.build_due` from a background thread while ingest goes
on; one series is never built twice at once by the same builder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest import dicom_io
from ingest.assemble import assemble_series
from ingest.catalog import Catalog, Instance, Series, utcnow
from ingest.errors import NotDicomError, NotFoundError, VolumeBuildError
from volume_cache.zarr_store import VOLUMES_DIR, LocalVolumeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    """Outcome of one build.

    ``state``: ``ready`` (published at ``volume_path``), ``failed`` (``error`` says why),
    ``pending`` (new instances arrived during the build; try again later), ``skipped``
    (not volumetric, or already being built by this builder). ``error`` is set only for
    ``failed``; ``note`` explains ``pending`` and ``skipped``.
    """

    series_uid: str
    state: str
    volume_path: str = ""
    error: str = ""
    note: str = ""
    seconds: float = 0.0
    shape: tuple[int, int, int] | None = None

    @property
    def ok(self) -> bool:
        """True when a volume was published."""
        return self.state == "ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryResult:
    """What :meth:`SeriesBuilder.recover` cleaned up at startup."""

    series_reset: int
    temporaries_removed: int
    orphans_removed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Claim:
    series_pk: int
    received_stamp: dt.datetime
    previous_path: str
    files: tuple[tuple[int, str, bool], ...]  # (instance pk, relative path, needs header)


def _rowcount(result: object) -> int:
    """Rows an UPDATE matched (``CursorResult.rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)


class SeriesBuilder:
    """Builds volumes for series of ``catalog`` whose files live under ``data_dir``."""

    def __init__(self, catalog: Catalog, data_dir: Path, store: LocalVolumeStore) -> None:
        self.catalog = catalog
        self.data_dir = Path(data_dir)
        self.store = store
        self._lock = threading.Lock()
        self._active: set[str] = set()

    # -- public --------------------------------------------------------------------------------

    def build(self, series_uid: str) -> BuildResult:
        """Build and publish the volume of one series (see module docstring).

        Raises :class:`NotFoundError` for an unknown series; build problems come back as a
        ``failed`` result and are recorded in the catalog.
        """
        with self._lock:
            if series_uid in self._active:
                return BuildResult(series_uid=series_uid, state="skipped",
                                   note="already being built")
            self._active.add(series_uid)
        try:
            return self._build(series_uid)
        finally:
            with self._lock:
                self._active.discard(series_uid)

    def build_due(self, quiet_seconds: float) -> list[BuildResult]:
        """Build every pending series that received nothing for ``quiet_seconds`` seconds."""
        cutoff = utcnow() - dt.timedelta(seconds=quiet_seconds)
        with self.catalog.session() as session:
            uids = list(session.scalars(
                select(Series.series_instance_uid)
                .where(Series.volume_state == "pending", Series.last_received_at <= cutoff)
                .order_by(Series.last_received_at)))
        return [self.build(uid) for uid in uids]

    def recover(self) -> RecoveryResult:
        """Startup clean-up, before any build runs: ``building`` → ``pending`` (a crash cut
        those builds short), stale temporaries deleted, and volumes the catalog does not
        reference deleted (a crash between the rename and the publishing commit)."""
        with self.catalog.writing() as session:
            reset_result = session.execute(
                update(Series).where(Series.volume_state == "building")
                .values(volume_state="pending"))
            reset = _rowcount(reset_result)
        temporaries = self.store.remove_stale()
        with self.catalog.session() as session:
            referenced = set(session.scalars(
                select(Series.volume_path).where(Series.volume_path != "")))
        orphans = 0
        base = self.data_dir / VOLUMES_DIR
        if base.is_dir():
            for series_dir in base.iterdir():
                if not series_dir.is_dir():
                    continue
                for entry in series_dir.iterdir():
                    rel = f"{VOLUMES_DIR}/{series_dir.name}/{entry.name}"
                    if entry.name.endswith(".zarr") and rel not in referenced:
                        orphans += int(self.store.remove(rel))
        if reset or temporaries or orphans:
            log.info("volume recovery: %d series reset to pending, %d temporaries and %d "
                     "orphaned volumes removed", reset, temporaries, orphans)
        return RecoveryResult(series_reset=reset, temporaries_removed=temporaries,
                              orphans_removed=orphans)

    # -- steps ---------------------------------------------------------------------------------

    def _build(self, series_uid: str) -> BuildResult:
        started = time.monotonic()
        claim = self._claim(series_uid)
        if claim is None:
            return BuildResult(series_uid=series_uid, state="skipped", note="not volumetric")
        datasets, headers, unreadable = self._read(claim)
        try:
            if not datasets:
                raise VolumeBuildError(f"no readable current instances ({unreadable} unreadable)",
                                       series_uid=series_uid)
            volume = assemble_series(datasets, series_uid=series_uid)
            if unreadable:
                volume.metadata["unreadable_instances"] = unreadable
            relpath = self.store.write(series_uid, volume)
        except VolumeBuildError as exc:
            return self._fail(series_uid, claim, str(exc), headers, started)
        except Exception as exc:  # a bug or an I/O error: record it, keep the caller alive
            log.exception("volume build crashed (series pk %d)", claim.series_pk)
            return self._fail(series_uid, claim, f"internal error: {type(exc).__name__}: {exc}",
                              headers, started)
        seconds = time.monotonic() - started
        with self.catalog.writing() as session:
            self._save_headers(session, headers)
            published = _rowcount(session.execute(
                update(Series).where(Series.id == claim.series_pk,
                                     Series.last_received_at == claim.received_stamp)
                .values(volume_path=relpath, volume_state="ready", volume_error="",
                        volume_built_at=utcnow(), volume_build_seconds=seconds))) == 1
            if not published:
                self._back_to_pending(session, claim.series_pk)
        if not published:
            self.store.remove(relpath)
            return BuildResult(series_uid=series_uid, state="pending", seconds=seconds,
                               note="new instances arrived during the build")
        if claim.previous_path and claim.previous_path != relpath:
            try:
                self.store.remove(claim.previous_path)
            except Exception:  # the new volume is published; an old folder is only space
                log.warning("could not remove a superseded volume (series pk %d)",
                            claim.series_pk)
        return BuildResult(series_uid=series_uid, state="ready", volume_path=relpath,
                           seconds=seconds, shape=volume.shape)

    def _claim(self, series_uid: str) -> _Claim | None:
        """Mark the series building; snapshot its current instances and receipt stamp."""
        with self.catalog.writing() as session:
            series = session.scalars(select(Series).where(
                Series.series_instance_uid == series_uid)).first()
            if series is None:
                raise NotFoundError("series", series_uid)
            if series.volume_state == "not_volumetric":
                return None
            rows = session.execute(
                select(Instance.id, Instance.file_path, Instance.header_json)
                .where(Instance.series_pk == series.id, Instance.is_current.is_(True))
                .order_by(Instance.id)).all()
            series.volume_state = "building"
            return _Claim(series_pk=series.id, received_stamp=series.last_received_at,
                          previous_path=series.volume_path or "",
                          files=tuple((pk, path, header is None) for pk, path, header in rows))

    def _read(self, claim: _Claim) -> tuple[list[Dataset], dict[int, str], int]:
        """Parse the claimed files; DICOM JSON for those without; count of unreadable."""
        datasets: list[Dataset] = []
        headers: dict[int, str] = {}
        unreadable = 0
        for pk, relpath, needs_header in claim.files:
            try:
                parsed = dicom_io.read_dataset((self.data_dir / relpath).read_bytes())
            except (OSError, NotDicomError):
                unreadable += 1
                continue
            ds = parsed.dataset
            meta = getattr(ds, "file_meta", None)
            if meta is None or "TransferSyntaxUID" not in meta:
                ds.file_meta = FileMetaDataset(meta or FileMetaDataset())
                ds.file_meta.TransferSyntaxUID = UID(parsed.transfer_syntax_uid)
            if needs_header:
                headers[pk] = json.dumps(dicom_io.header_json(ds)[0])
            datasets.append(ds)
        return datasets, headers, unreadable

    def _fail(self, series_uid: str, claim: _Claim, error: str, headers: dict[int, str],
              started: float) -> BuildResult:
        seconds = time.monotonic() - started
        with self.catalog.writing() as session:
            self._save_headers(session, headers)
            recorded = _rowcount(session.execute(
                update(Series).where(Series.id == claim.series_pk,
                                     Series.last_received_at == claim.received_stamp)
                .values(volume_state="failed", volume_error=error[:4000],
                        volume_built_at=utcnow(), volume_build_seconds=seconds))) == 1
            if not recorded:
                self._back_to_pending(session, claim.series_pk)
        if not recorded:
            return BuildResult(series_uid=series_uid, state="pending", seconds=seconds,
                               note=f"new instances arrived during the build ({error})")
        return BuildResult(series_uid=series_uid, state="failed", error=error, seconds=seconds)

    @staticmethod
    def _back_to_pending(session: Session, series_pk: int) -> None:
        """New instances arrived mid-build: the ingest service set ``pending``; make sure a
        lingering ``building`` does not hide that."""
        session.execute(
            update(Series).where(Series.id == series_pk, Series.volume_state == "building")
            .values(volume_state="pending"))

    @staticmethod
    def _save_headers(session: Session, headers: dict[int, str]) -> None:
        for pk, text in headers.items():
            session.execute(
                update(Instance).where(Instance.id == pk, Instance.header_json.is_(None))
                .values(header_json=text))
