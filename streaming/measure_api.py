"""``POST /api/measure`` (ROI statistics on a view) and ``POST /api/locate`` (lesion sync).

Measure: ``{"view": ViewState, "shapes": [shape, ...]}`` → ``{"results": [...], "plane",
"units"}``; shapes in output pixels (``*_px``, x = column, y = row) or patient coordinates
(``*_lps``), see :mod:`render_engine.measure`. Statistics come from the same sampled values
that ``POST /api/render?format=raw`` returns for the view (HU, SUVbw, or the stored unit),
never from display pixels.

Locate: ``{"point_lps": [x, y, z], "series_uid": source}`` or ``{"view": ViewState,
"at_px": [x, y]}`` → the point's position in every series of the source's study that shares
its frame of reference: slice, distance to it, and the standard planes through the point with
the point's pixel position in each.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ingest import queries
from render_engine.errors import RenderError
from render_engine.locate import locate, locate_in_series
from render_engine.measure import measure, shape_from_json
from render_engine.pipeline import sample_values
from render_engine.view import ViewState
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.render_api import read_json
from streaming.runtime import Runtime
from streaming.view_schema import parse_view
from streaming.volumes import render_volume

MAX_SHAPES = 64


def _object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def _measure(runtime: Runtime, state: ViewState, shapes: list[Any]) -> dict[str, Any]:
    volume = render_volume(runtime, state.series_uid)
    if state.cpr is not None or state.render3d is not None:
        raise ApiError(400, "measurements are made on planar views; this view is a CPR or 3D")
    try:
        plane = state.plane_for(volume.geometry)
        parsed = [shape_from_json(s, plane) for s in shapes]
    except RenderError as exc:
        raise ApiError(400, f"invalid shape: {exc}") from None
    values = sample_values(volume, plane, state)
    return {"units": volume.units, "plane": plane.to_json(),
            "results": [measure(values, plane, s, units=volume.units) for s in parsed]}


async def measure_view(request: web.Request) -> web.Response:
    body = _object(await read_json(request))
    shapes = body.get("shapes")
    if not isinstance(shapes, list) or not 1 <= len(shapes) <= MAX_SHAPES:
        raise ApiError(400, f"shapes must be a list of 1 to {MAX_SHAPES} shapes")
    state = parse_view(body.get("view"))
    result = await run_blocking(request, _measure, request.app[RUNTIME], state, shapes)
    return web.json_response(result)


def _locate(runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    if "view" in body:
        state = parse_view(body["view"])
        at = body.get("at_px")
        if not (isinstance(at, list) and len(at) == 2
                and all(isinstance(v, int | float) for v in at)):
            raise ApiError(400, "at_px must be [x, y] with a view")
        source_uid: Any = state.series_uid
        volume = render_volume(runtime, source_uid)
        point: Any = state.plane_for(volume.geometry).pixel_to_patient(float(at[1]),
                                                                        float(at[0]))
    else:
        source_uid = body.get("series_uid")
        point = body.get("point_lps")
        if not isinstance(source_uid, str) or not source_uid:
            raise ApiError(400, "series_uid (the series the point was picked on) is required")
        if not (isinstance(point, list) and len(point) == 3
                and all(isinstance(v, int | float) for v in point)):
            raise ApiError(400, "point_lps must be [x, y, z] in mm")
    source = queries.get_series(runtime.catalog, source_uid)
    study = queries.get_study(runtime.catalog, source["study_uid"])
    geometries = {}
    for series in study["series"]:
        record = queries.get_series(runtime.catalog, series["series_uid"])
        if record["volume_path"]:
            geometries[series["series_uid"]] = runtime.volumes.open(
                record["volume_path"]).geometry(0)
    if source_uid not in geometries:
        raise ApiError(409, f"volume of series {source_uid} is not available")
    try:
        own = locate(point, geometries[source_uid])
        found = locate_in_series(point, geometries,
                                 frame_of_reference_uid=geometries[source_uid]
                                 .frame_of_reference_uid)
    except RenderError as exc:
        raise ApiError(400, str(exc)) from None
    found.setdefault(source_uid, own)
    return {"point_lps": own["point_lps"], "series_uid": source_uid,
            "frame_of_reference_uid": own["frame_of_reference_uid"],
            "series": [{"series_uid": uid, **where} for uid, where in found.items()]}


async def locate_point(request: web.Request) -> web.Response:
    body = _object(await read_json(request))
    result = await run_blocking(request, _locate, request.app[RUNTIME], body)
    return web.json_response(result)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/measure", measure_view)
    app.router.add_post("/api/locate", locate_point)
