"""REST endpoints under ``/api``: studies, series volumes, quarantine.

Volume index order is ``(z, y, x)`` (slice, row, column); ``affine`` maps an index column
vector ``[z, y, x, 1]`` to DICOM patient coordinates (LPS, mm).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ingest import queries
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.volumes import published_volume_path


def _int_param(request: web.Request, name: str, default: int, *, lo: int = 0,
               hi: int = 100_000) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"query parameter {name!r} must be in [{lo}, {hi}], got {value}")
    return value


async def list_studies(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    limit = _int_param(request, "limit", 100, lo=1, hi=10_000)
    offset = _int_param(request, "offset", 0)
    patient_id = request.query.get("PatientID") or request.query.get("patient_id")
    studies = await run_blocking(request, lambda: queries.list_studies(
        runtime.catalog, patient_id=patient_id, limit=limit, offset=offset))
    return web.json_response(studies)


async def get_study(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    uid = request.match_info["study_uid"]
    return web.json_response(await run_blocking(request, queries.get_study, runtime.catalog, uid))


def _volume_info(runtime: Any, series_uid: str) -> dict[str, Any]:
    series = queries.get_series(runtime.catalog, series_uid)
    handle = runtime.volumes.open(published_volume_path(series))  # VolumeNotFoundError → 404
    meta = handle.metadata
    level0 = handle.levels[0]
    return {
        "series_uid": series_uid,
        "study_uid": series["study_uid"],
        "index_order": "zyx",
        "shape": list(level0["shape"]),
        "affine": level0["affine"],
        "spacing_mm": list(level0["spacing_mm"]),
        "dtype": meta.get("dtype"),
        "units": meta.get("units"),
        "modality": meta.get("modality", series["modality"]),
        "frame_of_reference_uid": meta.get("frame_of_reference_uid"),
        "suv_bw_factor": meta.get("suv_bw_factor"),
        "suv_bw_reason": meta.get("suv_reason"),
        "window_presets": meta.get("window_presets", []),
        "levels": handle.levels,
        "built_at": series.get("volume_built_at"),
        "notes": {k: meta[k] for k in ("resampled", "original_slice_spacings_mm",
                                        "missing_slices", "excluded_frames") if k in meta},
    }


async def series_volume(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    uid = request.match_info["series_uid"]
    return web.json_response(await run_blocking(request, _volume_info, runtime, uid))


async def series_info(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    uid = request.match_info["series_uid"]
    info = await run_blocking(request, queries.get_series, runtime.catalog, uid)
    info.pop("volume_path", None)  # internal: where in the data directory
    return web.json_response(info)


async def list_quarantine(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    limit = _int_param(request, "limit", 1000, lo=1, hi=100_000)
    offset = _int_param(request, "offset", 0)

    def load() -> list[dict[str, Any]]:
        return [{
            "id": e.id, "received_at": e.received_at.isoformat() + "Z", "source": e.source,
            "calling_ae_title": e.calling_ae_title, "sha256": e.sha256,
            "size_bytes": e.size_bytes, "sop_instance_uid": e.sop_instance_uid or None,
            "study_uid": e.study_instance_uid or None, "series_uid": e.series_instance_uid or None,
            "reason": e.reason, "findings": e.findings,
        } for e in runtime.ingest.quarantine_entries(limit=limit, offset=offset)]

    return web.json_response(await run_blocking(request, load))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/studies", list_studies)
    app.router.add_get("/api/studies/{study_uid}", get_study)
    app.router.add_get("/api/series/{series_uid}", series_info)
    app.router.add_get("/api/series/{series_uid}/volume", series_volume)
    app.router.add_get("/api/quarantine", list_quarantine)
