"""Part 2 of the ingest benchmark: where one C-STORE instance's time goes.

:meth:`IngestService.store` in-process on the ACRIN CT, timed per step and profiled, beside the
floors a durable store cannot go under (write + fsync of one file, rename + fsync of its
folder, an SQLite commit with ``synchronous=FULL``).
"""

from __future__ import annotations

import cProfile
import functools
import io
import os
import pstats
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from benchmarks.common import Report, Row, median, table, timed


class _InlineExecutor:
    """Runs submitted work at once in the caller's thread (``concurrent.futures`` shape)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


class StepTimer:
    """Wraps functions to add up their wall time per step name (thread-safe enough: GIL)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, step: str) -> None:
        original = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr,
                                                                                    None)
        if original is None:
            return
        func = original.__func__ if isinstance(original, staticmethod) else original

        @functools.wraps(func)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[step] += time.perf_counter() - t0
                self.calls[step] += 1

        setattr(owner, attr, staticmethod(timed_call) if isinstance(original, staticmethod)
                else timed_call)
        self._undo.append(lambda: setattr(owner, attr, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def bench_store_steps(report: Report, files: list[Path], work: Path, repeats: int) -> None:
    import ingest.service as service_mod
    from ingest import dicom_io, storage
    from ingest.catalog import Catalog
    from ingest.service import IngestService

    blobs = [f.read_bytes() for f in files]
    n = len(blobs)

    def fresh() -> tuple[IngestService, Catalog]:
        data_dir = work / f"store-{uuid.uuid4().hex}"
        data_dir.mkdir(parents=True)
        catalog = Catalog(f"sqlite:///{data_dir / 'catalog.sqlite'}")
        return IngestService(data_dir=data_dir, catalog=catalog), catalog

    def close(service: IngestService, catalog: Catalog) -> None:
        getattr(service, "close", lambda: None)()
        catalog.dispose()
        shutil.rmtree(service.data_dir, ignore_errors=True)

    # Plain per-instance time, no instrumentation.
    per_instance: list[float] = []
    for _ in range(repeats):
        service, catalog = fresh()
        samples = [timed(functools.partial(service.store, b, source="c-store")) for b in blobs]
        per_instance.append(1000 * median(samples))
        close(service, catalog)
    report.add(Row(name="IngestService.store in-process, median per CT instance",
                   unit="ms", samples=per_instance, note="no network"))

    # The same with the staging write run inline: what the overlap with parsing buys here.
    inline: list[float] = []
    for _ in range(repeats):
        service, catalog = fresh()
        pool = getattr(service, "_io", None)
        if pool is None:
            close(service, catalog)
            break
        pool.shutdown(wait=True)
        service._io = _InlineExecutor()  # type: ignore[assignment]
        samples = [timed(functools.partial(service.store, b, source="c-store")) for b in blobs]
        inline.append(1000 * median(samples))
        close(service, catalog)
    if inline:
        report.add(Row(name="IngestService.store, staging write inline (no overlap)",
                       unit="ms", samples=inline, note="no network"))

    # Step breakdown: wall time of each step as seen by the calling thread.
    timer = StepTimer()
    steps = [
        (service_mod, "sha256_hex", "sha256 of the bytes"),
        (dicom_io, "read_dataset", "parse (pydicom dcmread)"),
        (service_mod, "validate", "validate"),
        (storage.InstanceFiles, "stage", "stage: write + fsync (I/O thread)"),
        (storage.InstanceFiles, "publish", "publish: rename + fsync dir"),
        (IngestService, "_versions", "catalog: versions of the SOP UID"),
        (IngestService, "_consistency", "catalog: UID consistency"),
    ]
    for owner, attr, step in steps:
        timer.wrap(owner, attr, step)
    staging_cls = getattr(service_mod, "_Staging", None)
    if staging_cls is not None:
        timer.wrap(staging_cls, "path", "wait for the staged fsync")
    total = 0.0
    try:
        service, catalog = fresh()
        t0 = time.perf_counter()
        for b in blobs:
            service.store(b, source="c-store")
        total = time.perf_counter() - t0
        close(service, catalog)
    finally:
        timer.restore()
    parallel = {"stage: write + fsync (I/O thread)"}
    accounted = sum(s for k, s in timer.seconds.items() if k not in parallel)
    rows: list[tuple[str, str, str, str]] = [(step, f"{1000 * secs / n:.2f}", str(timer.calls[step]),
             "parallel to parse" if step in parallel else "")
            for step, secs in sorted(timer.seconds.items(), key=lambda kv: -kv[1])]
    rows.append(("rest: catalog insert/update + commit (SQLite FULL fsync), glue",
                 f"{1000 * (total - accounted) / n:.2f}", "", "by difference"))
    rows.append(("total per instance", f"{1000 * total / n:.2f}", str(n), ""))
    report.sections.append(("Where one CT instance's time goes (IngestService.store, "
                            "calling thread, ms per instance)",
                            table(rows, ["step", "ms", "calls", "note"])))
    report.details["store_steps_ms"] = {k: 1000 * v / n for k, v in timer.seconds.items()}
    report.details["store_total_ms"] = 1000 * total / n

    # cProfile of the calling thread, top functions by cumulative time.
    service, catalog = fresh()
    profile = cProfile.Profile()
    profile.enable()
    for b in blobs:
        service.store(b, source="c-store")
    profile.disable()
    close(service, catalog)
    buf = io.StringIO()
    stats = pstats.Stats(profile, stream=buf)
    stats.strip_dirs()  # file names only: no paths of the machine in the results
    stats.sort_stats("cumulative").print_stats(25)
    report.details["cprofile_top_cumulative"] = buf.getvalue()
    top = []
    for (file, line, fn), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        top.append((cumtime, tottime, ncalls, f"{Path(file).name}:{line}({fn})"))
    top.sort(reverse=True)
    report.sections.append(("cProfile, calling thread (ms per instance)", table(
        [(name, f"{1000 * cum / n:.2f}", f"{1000 * tot / n:.2f}", calls)
         for cum, tot, calls, name in top[:20]], ["function", "cumulative", "own", "calls"])))

    # Floors: what durability costs on this disk, the three syncs of one instance in sequence
    # (as IngestService does them), so that they interact the way they do in a real store.
    for name, samples in durability_floor_ms(work / "floors", blobs[0]).items():
        report.add(Row(name=f"floor: {name}", unit="ms", samples=[median(samples)],
                       extra={"all": samples}))


def durability_floor_ms(folder: Path, payload: bytes, count: int = 60) -> dict[str, list[float]]:
    """Per instance: write + fsync a file, rename it + fsync the folder, commit one SQLite row
    (WAL, synchronous=FULL) — the least any acknowledged-after-durable store can cost."""
    import sqlite3

    staging, final = folder / "incoming", folder / "archive"
    staging.mkdir(parents=True, exist_ok=True)
    final.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "floor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    names = [f"write + fsync one {len(payload) // 1024} KiB file", "rename + fsync folder",
             "SQLite commit of one row (WAL, synchronous=FULL)", "all three in sequence"]
    out: dict[str, list[float]] = {n: [] for n in names}
    try:
        for i in range(count):
            t0 = time.perf_counter()
            with open(staging / f"{i}.tmp", "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            t1 = time.perf_counter()
            os.replace(staging / f"{i}.tmp", final / f"{i}.dcm")
            fd = os.open(final, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            t2 = time.perf_counter()
            db.execute("BEGIN")
            db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
            db.execute("COMMIT")
            t3 = time.perf_counter()
            for name, seconds in zip(names, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                out[name].append(1000 * seconds)
    finally:
        db.close()
        shutil.rmtree(folder, ignore_errors=True)
    return out


# -- main ------------------------------------------------------------------------------------
