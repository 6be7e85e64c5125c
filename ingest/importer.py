"""``voxcast ingest``: import files, folders (recursively) and zip archives.

Every file goes through :meth:`IngestService.store` exactly like a C-STORE; at the end every
touched series is assembled into a volume. Non-DICOM files are quarantined with a reason like
any other bad input — nothing is silently skipped (except hidden files and DICOMDIR).
"""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ingest.builder import SeriesBuilder
from ingest.service import IngestService, StoreOutcome, StoreStatus

MAX_MEMBER_BYTES = 4 * 1024**3


@dataclass(slots=True, kw_only=True)
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)
    series_built: list[str] = field(default_factory=list)
    series_failed: list[tuple[str, str]] = field(default_factory=list)
    series_touched: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class _Item:
    origin: str
    read: Callable[[], bytes]


def _skip(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") or base.upper() == "DICOMDIR" or base == ""


def iter_items(paths: Iterable[Path]) -> Iterator[_Item]:
    """Yield every importable file under ``paths``; zip archives are opened in place."""
    for path in paths:
        if path.is_dir():
            yield from iter_items(sorted(p for p in path.rglob("*") if p.is_file()))
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir() or _skip(info.filename):
                        continue
                    if info.file_size > MAX_MEMBER_BYTES:
                        continue
                    yield _Item(f"{path}!{info.filename}",
                                lambda zf=zf, info=info: zf.read(info))  # type: ignore[misc]
        elif path.is_file() and not _skip(path.name):
            yield _Item(str(path), path.read_bytes)
        elif not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")


def import_paths(service: IngestService, builder: SeriesBuilder | None, paths: list[Path], *,
                 progress: Callable[[int], None] | None = None, workers: int = 4,
                 build: bool = True) -> ImportSummary:
    """Import ``paths``; build volumes of the touched series unless ``build`` is false."""
    summary = ImportSummary()

    def one(item: _Item) -> tuple[_Item, StoreOutcome]:
        return item, service.store(item.read(), source="import", origin=item.origin)

    # Threads overlap fsync and file reads; parsing itself holds the GIL.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for item in iter_items(paths):
            pending.append(pool.submit(one, item))
            if len(pending) >= workers * 4:
                _collect(pending.pop(0).result(), summary, progress)
        for fut in pending:
            _collect(fut.result(), summary, progress)

    if build and builder is not None:
        for series_uid in sorted(summary.series_touched):
            result = builder.build(series_uid)
            if result.state == "ready":
                summary.series_built.append(series_uid)
            elif result.state == "failed":
                summary.series_failed.append((series_uid, result.error))
    return summary


def _collect(done: tuple[_Item, StoreOutcome], summary: ImportSummary,
             progress: Callable[[int], None] | None) -> None:
    item, outcome = done
    summary.counts[outcome.status.value] += 1
    if outcome.status is StoreStatus.QUARANTINED:
        summary.quarantined.append((item.origin, outcome.reason))
    elif outcome.status in (StoreStatus.STORED, StoreStatus.NEW_VERSION):
        summary.series_touched.add(outcome.series_instance_uid)
    if progress is not None:
        progress(1)
