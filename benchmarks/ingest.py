"""Ingest benchmark: C-STORE throughput, per-instance cost, volume build, cold Zarr reads.

    python -m benchmarks.ingest [--out DIR] [--repeats N]

1. C-STORE instances/s of the ACRIN chest CT (135 x 512² CT, Explicit VR Little Endian) sent by
   dcmtk ``storescu`` to a real ``voxcast serve`` and, as the ceiling, to dcmtk's own
   ``storescp`` on the same machine. dcmtk waits on Nagle / delayed ACK after every C-STORE
   unless the environment variable ``TCP_NODELAY=1`` is set (about 47 ms an instance), so the
   ceiling is measured both ways. VoxCast sets TCP_NODELAY on accepted sockets itself; it is
   measured with and without the variable on ``storescu``. A pynetdicom SCP that stores nothing
   shows what the DICOM library alone costs.
2. Where the time of one instance goes: :meth:`IngestService.store` in-process, timed per step,
   plus a cProfile of the calling thread, plus the floors (write + fsync of one file, SQLite
   commit with ``synchronous=FULL``).
3. Volume build time per series (``SeriesBuilder.build``) and reads from the Zarr store: the
   middle axial slice and the full level 0, with the page cache dropped before each read when
   the process may do so (root), otherwise warm (said in the output).

Every measurement is repeated (``--repeats``) on a fresh data directory; tables give medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DEFAULT_OUT,
    REPO,
    Guard,
    Ratio,
    Report,
    Row,
    free_port,
    plan_steps,
    shared_data_dir,
)
from benchmarks.common import step as progress_step
from benchmarks.ingest_steps import bench_store_steps
from benchmarks.ingest_volumes import bench_build_and_read

VOXCAST_AE = "VOXCAST"


def _env(nodelay: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env


def _voxcast_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "voxcast"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "streaming.cli"]


def _wait_echo(port: int, ae_title: str, timeout: float = 30.0) -> None:
    """Poll with C-ECHO until the SCP answers."""
    deadline = time.monotonic() + timeout
    while True:
        run = subprocess.run(["echoscu", "-aec", ae_title, "127.0.0.1", str(port)],
                             capture_output=True, env=_env(True), timeout=30)
        if run.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no C-ECHO answer on port {port}: {run.stderr!r}")
        time.sleep(0.05)


# -- peers -----------------------------------------------------------------------------------

@contextmanager
def storescp(out_dir: Path, *, nodelay: bool, ignore: bool = False) -> Iterator[int]:
    """dcmtk's storescp writing each instance to ``out_dir`` (or, ``ignore``, discarding it)."""
    port = free_port()
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["storescp", "-aet", "STORESCP", "-od", str(out_dir), *(["--ignore"] if ignore else []),
           str(port)]
    proc = subprocess.Popen(cmd, env=_env(nodelay), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _wait_echo(port, "STORESCP")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def voxcast_serve(data_dir: Path) -> Iterator[int]:
    """A real ``voxcast serve`` (quiet period one hour: no volume build while measuring)."""
    http_port, dicom_port = free_port(), free_port()
    env = dict(os.environ, VOXCAST_SERIES_QUIET_SECONDS="3600", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [*_voxcast_cmd(), "serve", "--data-dir", str(data_dir), "--port", str(http_port),
         "--dicom-port", str(dicom_port), "--ae-title", VOXCAST_AE],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    ready = threading.Event()
    log: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            log.append(line)
            seen += "listening on" in line
            if seen == 2:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(120) or proc.poll() is not None:
            raise RuntimeError("voxcast serve did not start:\n" + "".join(log))
        yield dicom_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def pynetdicom_null_scp() -> Iterator[int]:
    """A pynetdicom SCP that answers every C-STORE with success and keeps nothing."""
    import socket

    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="NULLSCP")
    ae.maximum_pdu_size = 0
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(str(cx.abstract_syntax), ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)

    def on_open(event: evt.Event) -> None:
        sock = event.assoc.dul.socket
        if sock is not None and sock.socket is not None:
            sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def on_store(event: evt.Event) -> int:
        event.encoded_dataset(include_meta=True)  # what VoxCast's handler does first
        return 0x0000

    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[
        (evt.EVT_C_STORE, on_store), (evt.EVT_C_ECHO, lambda e: 0x0000),
        (evt.EVT_CONN_OPEN, on_open)])
    assert server is not None
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def echo_ms(port: int, ae_title: str, count: int = 5) -> list[float]:
    """Milliseconds of complete ``echoscu`` runs: association set-up, C-ECHO, release."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        subprocess.run(["echoscu", "-aec", ae_title, "127.0.0.1", str(port)], env=_env(True),
                       check=True, capture_output=True, timeout=30)
        out.append(1000 * (time.perf_counter() - t0))
    return out


def storescu(port: int, ae_title: str, files: list[Path], *, nodelay: bool) -> float:
    """Seconds for one storescu run sending ``files`` on one association."""
    cmd = ["storescu", "-aec", ae_title, "127.0.0.1", str(port), *map(str, files)]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=_env(nodelay), capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if run.returncode != 0 or "Store Failed" in run.stderr:
        raise RuntimeError(f"storescu failed ({run.returncode}): {run.stderr[-2000:]}")
    return elapsed


# -- 1. C-STORE throughput -----------------------------------------------------------------

def bench_cstore(report: Report, files: list[Path], work: Path, repeats: int,
                 quick: bool = False) -> Path:
    """Returns a VoxCast data directory holding the CT (for the build and read benchmarks).
    ``quick``: only storescp (the ceiling) and VoxCast, both with TCP_NODELAY."""
    n = len(files)
    for f in files:  # page cache warm for every peer alike
        f.read_bytes()

    def row(name: str, seconds: list[float], note: str, **extra: Any) -> Row:
        rate = [n / s for s in seconds]
        r = report.add(Row(name=name, unit="instances/s", samples=rate, note=note,
                           extra={"seconds": seconds, "ms_per_instance":
                                  [1000 * s / n for s in seconds], **extra}))
        print(f"  {name}: {r.value:.1f} instances/s ({1000 / r.value:.2f} ms each)", flush=True)
        return r

    echoes: dict[str, list[float]] = {}

    def storescp_runs(nodelay: bool, ignore: bool) -> list[float]:
        out = []
        for _ in range(repeats):
            target = work / f"storescp-{uuid.uuid4().hex}"
            with storescp(target, nodelay=nodelay, ignore=ignore) as port:
                out.append(storescu(port, "STORESCP", files, nodelay=nodelay))
                if nodelay and not ignore and "storescp" not in echoes:
                    echoes["storescp"] = echo_ms(port, "STORESCP")
            if not ignore:
                got = sum(1 for _ in target.iterdir())
                report.guards.append(Guard(name="storescp wrote every instance sent",
                                           value=got, limit=n, at_least=True, unit="files"))
            shutil.rmtree(target, ignore_errors=True)
        return out

    progress_step("C-STORE to dcmtk storescp (the ceiling)")
    ceiling = row("storescp (writes files), TCP_NODELAY=1 both sides",
                  storescp_runs(True, False), "ceiling; no fsync")
    if not quick:
        row("storescp (writes files), no TCP_NODELAY", storescp_runs(False, False),
            "dcmtk default: Nagle / delayed ACK per C-STORE")
        row("storescp --ignore (receive only), TCP_NODELAY=1", storescp_runs(True, True),
            "network + DIMSE only")
        nulls = []
        for _ in range(repeats):
            with pynetdicom_null_scp() as port:
                nulls.append(storescu(port, "NULLSCP", files, nodelay=True))
        row("pynetdicom SCP storing nothing, storescu TCP_NODELAY=1", nulls,
            "the DICOM library alone, in one Python process")

    progress_step("C-STORE to voxcast serve")
    kept: Path | None = None
    results: dict[bool, list[float]] = {}
    for nodelay in (True,) if quick else (True, False):
        runs = []
        for _ in range(repeats):
            data_dir = work / f"voxcast-{uuid.uuid4().hex}"
            with voxcast_serve(data_dir) as port:
                runs.append(storescu(port, VOXCAST_AE, files, nodelay=nodelay))
                if "VoxCast" not in echoes:
                    echoes["VoxCast"] = echo_ms(port, VOXCAST_AE)
            report.guards.append(Guard(name="VoxCast archived every instance sent (catalog rows)",
                                       value=_archived(data_dir), limit=n, at_least=True,
                                       unit="instances"))
            if kept is None:
                kept = data_dir
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
        results[nodelay] = runs
    vox = row("VoxCast serve, storescu TCP_NODELAY=1", results[True],
              "fsync per file + SQLite commit (synchronous=FULL) before each response")
    if not quick:
        row("VoxCast serve, storescu without TCP_NODELAY", results[False],
            "VoxCast sets TCP_NODELAY on its side only")
    report.ratios.append(Ratio(
        name="C-STORE of a 135-instance CT (storescu, one association)",
        baseline="dcmtk storescp (ceiling: no fsync, no catalog)", voxcast_value=vox.value,
        baseline_value=ceiling.value, unit="instances/s", higher_is_better=True,
        guard_passed=report.guard_passed))
    for peer, samples in echoes.items():
        report.add(Row(name=f"echoscu run against {peer} (associate, C-ECHO, release)",
                       unit="ms", samples=samples, note="per-association overhead"))
    report.facts["voxcast / storescp ratio (TCP_NODELAY=1)"] = round(vox.value / ceiling.value, 3)
    report.facts["target ratio"] = 0.5
    assert kept is not None
    return kept


def _archived(data_dir: Path) -> int:
    from sqlalchemy import func, select

    from ingest.catalog import Catalog, Instance

    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.sqlite'}")
    try:
        with catalog.session() as session:
            got = int(session.scalar(select(func.count(Instance.id))) or 0)
    finally:
        catalog.dispose()
    return got


def check_scp_nodelay() -> bool:
    """Whether VoxCast's SCP really sets TCP_NODELAY on an accepted association's socket."""
    import socket

    from pynetdicom import evt

    from ingest.catalog import Catalog
    from ingest.scp import ScpConfig, StoreScp
    from ingest.service import IngestService

    seen: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(f"sqlite:///{tmp}/c.sqlite")
        service = IngestService(data_dir=Path(tmp), catalog=catalog)
        scp = StoreScp(service, ScpConfig(port=0))

        def on_echo(event: evt.Event) -> int:
            sock = event.assoc.dul.socket
            if sock is not None and sock.socket is not None:
                seen.append(sock.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            return 0x0000

        scp._on_echo = on_echo  # type: ignore[method-assign]
        scp.start()
        try:
            _wait_echo(scp.port, VOXCAST_AE)
        finally:
            scp.stop()
            getattr(service, "close", lambda: None)()
            catalog.dispose()
    return bool(seen) and all(seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: one repeat; C-STORE to storescp and VoxCast only; no "
                             "per-step profile; the CT's build and reads only")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder (default: a temporary folder, removed after)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["cstore", "steps", "build"], help="leave a part out")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.quick:
        args.skip = [*args.skip, "steps"]

    for tool in ("storescu", "storescp", "echoscu"):
        if shutil.which(tool) is None:
            parser.error(f"dcmtk's {tool} is not installed (Debian: apt-get install dcmtk)")
    data = shared_data_dir()
    ct = sorted((data / "petct-acrin042" / "CT").glob("*.dcm"))
    pet = [] if args.quick else sorted((data / "petct-acrin042" / "PT_AC").glob("*.dcm"))
    if len(ct) != 135:
        parser.error(f"the ACRIN CT (135 files) is not under {data}")

    report = Report(name="ingest", title="VoxCast ingest benchmark")
    report.facts["series"] = "ACRIN-NSCLC-FDG-PET-042 CT, 135 x 512x512, Explicit VR LE"
    report.facts["instances"] = len(ct)
    report.facts["mean instance size KiB"] = round(sum(f.stat().st_size for f in ct)
                                                   / len(ct) / 1024, 1)
    report.facts["VoxCast SCP sets TCP_NODELAY"] = check_scp_nodelay()
    report.facts["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    work_ctx = tempfile.TemporaryDirectory(prefix="voxcast-bench-") if args.work is None \
        else None
    work = Path(work_ctx.name) if work_ctx is not None else args.work
    work.mkdir(parents=True, exist_ok=True)
    try:
        data_dir: Path | None = None
        plan_steps(sum((2 if p == "cstore" else 1) for p in ("cstore", "steps", "build")
                       if p not in args.skip))
        if "cstore" not in args.skip:
            print("C-STORE throughput", flush=True)
            data_dir = bench_cstore(report, ct, work, args.repeats, quick=args.quick)
        if "steps" not in args.skip:
            progress_step("IngestService.store, step by step")
            print("IngestService.store steps", flush=True)
            bench_store_steps(report, ct, work, args.repeats)
        if "build" not in args.skip:
            progress_step("volume build and reads")
            print("volume build and reads", flush=True)
            if data_dir is None:
                data_dir = work / "build"
                data_dir.mkdir(parents=True, exist_ok=True)
                from ingest.catalog import Catalog
                from ingest.service import IngestService
                catalog = Catalog(f"sqlite:///{data_dir / 'catalog.sqlite'}")
                service = IngestService(data_dir=data_dir, catalog=catalog)
                for f in ct:
                    service.store(f.read_bytes(), source="import", origin=f.name)
                getattr(service, "close", lambda: None)()
                catalog.dispose()
            bench_build_and_read(report, data_dir, pet, args.repeats,
                                 sources={"CT": ct, **({"PT": pet} if pet else {})})
    finally:
        if work_ctx is not None:
            work_ctx.cleanup()
    report.facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return report.finish(args.out, report.to_markdown())


if __name__ == "__main__":
    raise SystemExit(main())
