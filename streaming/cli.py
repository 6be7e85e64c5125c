"""The ``voxcast`` command line: serve, ingest, quarantine, phantom, token."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from streaming.settings import Settings

_DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                         help="Data directory (default ./voxcast-data; env VOXCAST_DATA_DIR).")


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """VoxCast: a render server for medical images."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pynetdicom", "numba", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@_DATA_DIR
@click.option("--host", default=None, help="HTTP and DICOM bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="HTTP port (default 8080).")
@click.option("--dicom-port", type=int, default=None, help="DICOM SCP port (default 11112).")
@click.option("--ae-title", default=None, help="DICOM AE title (default VOXCAST).")
@click.option("--database-url", default=None,
              help="SQLAlchemy URL (default SQLite inside the data directory).")
def serve(data_dir: Path | None, host: str | None, port: int | None, dicom_port: int | None,
          ae_title: str | None, database_url: str | None) -> None:
    """Run the HTTP API, DICOMweb and the DICOM SCP in one process."""
    from streaming.server import serve as run

    settings = _settings(data_dir=data_dir, host=host, port=port, dicom_port=dicom_port,
                         ae_title=ae_title, database_url=database_url)
    asyncio.run(run(settings))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_DATA_DIR
@click.option("--database-url", default=None)
@click.option("--no-build", is_flag=True, help="Store instances only; build volumes later.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(paths: tuple[Path, ...], data_dir: Path | None, database_url: str | None,
           no_build: bool, as_json: bool) -> None:
    """Import DICOM files, folders (recursively) and zip archives."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.UsageError(f"no such file or folder: {', '.join(missing)}")
    from tqdm import tqdm

    from ingest.importer import import_paths, iter_items
    from streaming.runtime import Runtime

    runtime = Runtime(_settings(data_dir=data_dir, database_url=database_url))
    try:
        runtime.recover()
        total = sum(1 for _ in iter_items(list(paths)))
        with tqdm(total=total, unit="file", desc="ingest", file=sys.stderr,
                  disable=None) as bar:
            summary = import_paths(runtime.ingest, runtime.builder, list(paths),
                                   progress=bar.update, build=not no_build)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps({
            "counts": dict(summary.counts), "quarantined": summary.quarantined,
            "series_built": summary.series_built, "series_failed": summary.series_failed}))
        return
    c = summary.counts
    click.echo(f"files: {summary.total}  stored: {c['stored']}  duplicates: {c['duplicate']}  "
               f"new versions: {c['new_version']}  quarantined: {c['quarantined']}  "
               f"series built: {len(summary.series_built)}")
    for origin, reason in summary.quarantined:
        click.echo(f"  quarantined {origin}: {reason}")
    for uid, reason in summary.series_failed:
        click.echo(f"  series {uid} not built: {reason}")


@main.command()
@_DATA_DIR
@click.option("--database-url", default=None)
@click.option("--json", "as_json", is_flag=True)
def quarantine(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """List quarantined files with their reasons."""
    from ingest.catalog import Catalog
    from ingest.service import IngestService

    settings = _settings(data_dir=data_dir, database_url=database_url)
    catalog = Catalog(settings.resolved_database_url())
    entries = IngestService(data_dir=settings.data_dir.resolve(), catalog=catalog) \
        .quarantine_entries(limit=1_000_000)
    if as_json:
        click.echo(json.dumps([{"id": e.id, "received_at": e.received_at.isoformat(),
                                "source": e.source, "origin": e.origin, "file": e.file_path,
                                "reason": e.reason, "findings": e.findings} for e in entries]))
        return
    if not entries:
        click.echo("quarantine is empty")
    for e in entries:
        click.echo(f"#{e.id} {e.received_at:%Y-%m-%d %H:%M:%S} {e.source:8} {e.file_path}\n"
                   f"    {e.reason}")


@main.command()
@_DATA_DIR
@click.option("--subject", default="voxcast-user", show_default=True,
              help="Who the token is for (kept in audit records, never patient data).")
@click.option("--role", default="clinician", show_default=True)
@click.option("--ttl-hours", type=float, default=12.0, show_default=True,
              help="Lifetime of the token.")
def token(data_dir: Path | None, subject: str, role: str, ttl_hours: float) -> None:
    """Print one signed bearer token for the server of this data directory."""
    from streaming.auth import TokenSigner

    settings = _settings(data_dir=data_dir)
    if not ttl_hours > 0:
        raise click.BadParameter("must be > 0", param_hint="--ttl-hours")
    signer = TokenSigner.for_data_dir(settings.data_dir.resolve())
    click.echo(signer.issue(subject=subject, role=role, ttl_s=ttl_hours * 3600))


@main.command()
@_DATA_DIR
@click.option("--database-url", default=None)
def phantom(data_dir: Path | None, database_url: str | None) -> None:
    """Generate and import the synthetic CT+PET phantom study (patient 'SYNTHETIC^PHANTOM')."""
    from ingest.importer import import_paths
    from ingest.phantom import write_phantom_study
    from streaming.runtime import Runtime

    runtime = Runtime(_settings(data_dir=data_dir, database_url=database_url))
    try:
        folder = write_phantom_study(runtime.data_dir / "phantom-source")
        summary = import_paths(runtime.ingest, runtime.builder, [folder])
    finally:
        runtime.close()
    click.echo(f"synthetic phantom study imported: {summary.counts['stored']} instances stored, "
               f"{summary.counts['duplicate']} already present, "
               f"{len(summary.series_built)} series built")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Run the benchmark suite beside VTK, SimpleITK, pydicom and dcmtk; writes results.json,
    report.md and plots (voxcast bench --help for its options)."""
    try:
        from benchmarks.suite import main as bench_main
    except ImportError as exc:  # an installation without the benchmark extras
        raise click.ClickException(f"the benchmarks need the bench extras ({exc}): "
                                   "pip install 'voxcast[bench]'") from exc
    ctx.exit(bench_main(list(ctx.args)))


if __name__ == "__main__":
    main()
