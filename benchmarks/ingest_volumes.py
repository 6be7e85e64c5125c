"""Part 3 of the ingest benchmark: volume builds, their guard against pydicom, Zarr reads."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Guard, Report, Row, drop_page_cache, median, timed

# -- 3. volume build and reads ---------------------------------------------------------------

def volume_guard(handle: Any, files: list[Path], modality: str) -> Guard:
    """The built volume against pydicom: every file's pixels times its rescale slope plus
    intercept equal the volume's slice at the index its ImagePositionPatient maps to."""
    import numpy as np
    import pydicom

    geometry, data = handle.geometry(0), handle.read_level(0)
    worst, placed = 0.0, set()
    for f in files:
        ds = pydicom.dcmread(f)
        hu = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1)) \
            + float(getattr(ds, "RescaleIntercept", 0))
        k = geometry.patient_to_index(np.asarray(ds.ImagePositionPatient, dtype=float))
        z = int(round(float(k[0])))
        # positions are decimal strings and a series' spacing is even only to within what
        # ingest accepts: a file must land within 2 % of a slice spacing of its slice
        if abs(float(k[0]) - z) > 0.02 or abs(float(k[1])) > 0.02 or abs(float(k[2])) > 0.02 \
                or not 0 <= z < data.shape[0]:
            return Guard(name=f"{modality} volume: a file's position maps onto a slice",
                         value=float("nan"), limit=0.0)
        placed.add(z)
        diff = float(np.abs(data[z].astype(np.float64) - hu).max())
        # CT: int16 HU, exact; other modalities: float32 values, exact to float32 rounding
        worst = max(worst, diff if modality == "CT" else diff / max(1.0, float(np.abs(hu).max())))
    if len(placed) != len(files):
        worst = float("nan")
    ct = modality == "CT"
    return Guard(name=f"{modality} volume {'x'.join(map(str, data.shape))}: max abs(Zarr level 0 "
                      f"- pydicom pixels x slope + intercept){'' if ct else ' / max abs value'} "
                      f"over {len(files)} slices", value=worst, limit=0.0 if ct else 1e-6,
                 unit="HU" if ct else "")


def bench_build_and_read(report: Report, data_dir: Path, pet_files: list[Path],
                         repeats: int, sources: dict[str, list[Path]] | None = None) -> None:
    from sqlalchemy import select

    from ingest.catalog import Series
    from streaming.runtime import Runtime
    from streaming.settings import Settings

    sources = sources or {}
    runtime = Runtime(Settings(data_dir=data_dir, series_quiet_seconds=3600))
    try:
        for f in pet_files:
            runtime.ingest.store(f.read_bytes(), source="import", origin=f.name)
        with runtime.catalog.session() as session:
            series = [(s.series_instance_uid, s.modality) for s in session.scalars(
                select(Series).where(Series.volume_state != "not_volumetric"))]
        for uid, modality in series:
            seconds = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                result = runtime.builder.build(uid)
                seconds.append(time.perf_counter() - t0)
                if not getattr(result, "ok", True):
                    raise RuntimeError(f"build of {modality} {uid} failed: {result}")
            with runtime.catalog.session() as session:
                row = session.scalars(select(Series).where(
                    Series.series_instance_uid == uid)).one()
                volume_path = row.volume_path
            handle = runtime.volumes.open(volume_path)
            shape = tuple(handle.levels[0]["shape"])
            if modality in sources:
                report.guards.append(volume_guard(handle, sources[modality], modality))
            report.add(Row(name=f"volume build {modality} {shape[0]}x{shape[1]}x{shape[2]}",
                           unit="s", samples=seconds, note="SeriesBuilder.build",
                           extra={"levels": [lv["shape"] for lv in handle.levels]}))
            print(f"  build {modality} {shape}: {median(seconds):.2f} s", flush=True)
            _bench_reads(report, runtime, volume_path, modality, shape, repeats)
    finally:
        runtime.close()


def _bench_reads(report: Report, runtime: Any, volume_path: str, modality: str,
                 shape: tuple[int, ...], repeats: int) -> None:
    mid = shape[0] // 2
    cold = drop_page_cache()
    kind = "cold (page cache dropped)" if cold else "warm (cannot drop the page cache)"
    cases: dict[str, Callable[[Any], object]] = {
        "middle axial slice": lambda h: h.read_region(0, slice(mid, mid + 1), slice(None),
                                                      slice(None)),
        "full level 0": lambda h: h.read_level(0),
    }
    for label, read in cases.items():
        open_ms, read_ms = [], []
        for _ in range(max(repeats, 5)):
            drop_page_cache()
            t0 = time.perf_counter()
            handle = runtime.volumes.open(volume_path)
            t1 = time.perf_counter()
            read(handle)
            t2 = time.perf_counter()
            open_ms.append(1000 * (t1 - t0))
            read_ms.append(1000 * (t2 - t1))
        report.add(Row(name=f"{modality} {label}, {kind}", unit="ms", samples=read_ms,
                       note=f"open {median(open_ms):.1f} ms extra",
                       extra={"open_ms": open_ms}))
        print(f"  read {modality} {label}: {median(read_ms):.1f} ms ({kind})", flush=True)
        handle = runtime.volumes.open(volume_path)
        read(handle)
        warm = [timed(functools.partial(read, handle)) * 1000 for _ in range(max(repeats, 5))]
        report.add(Row(name=f"{modality} {label}, warm", unit="ms", samples=warm))


