"""QIDO-RS (PS3.18 §10.6): search for studies, series and instances.

Query parameters (PS3.18 §8.3.4): ``{attributeID}={value}`` match keys (keyword or tag as 8
hex digits; matching rules in :mod:`ingest.dicomweb_queries`), ``includefield`` (repeatable,
comma-separated, or ``all``), ``fuzzymatching`` (``true``/``false``; only literal matching is
done, ``true`` earns a Warning), ``limit`` and ``offset`` (non-negative integers).

Responses are ``application/dicom+json`` arrays, ``[]`` when nothing matches (200, also for
a study or series in the path that is not stored: a search has no target to miss). Keys that
name a known DICOM attribute the catalog cannot match at that level are returned (like
includefield) but not matched, with a ``Warning: 299`` header; unknown keys, malformed values
and bad paging parameters are 400.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from ingest.dicomweb_queries import (
    MAX_RESULTS,
    SearchRequest,
    SearchResult,
    resolve_attribute,
    search,
)
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.dicomweb.common import (
    dicom_json_response,
    instance_url,
    require_json,
    series_url,
    service_url,
    study_url,
    warning_header,
)

_RETRIEVE_URL = "00081190"
_UIDS = {"study": "0020000D", "series": "0020000E", "instance": "00080018"}


def _non_negative(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ApiError(400, f"query parameter {name!r} must not be negative, got {value}")
    return value


def parse_search(request: web.Request, level: Literal["study", "series", "instance"]
                 ) -> tuple[SearchRequest, list[str]]:
    """The :class:`SearchRequest` of a QIDO-RS request, and warnings about ignored options."""
    matches: list[tuple[str, str]] = []
    include: set[str] = set()
    include_all = False
    limit: int | None = None
    offset = 0
    warnings: list[str] = []
    for key, value in request.query.items():
        if key == "includefield":
            for item in (v.strip() for v in value.split(",")):
                if item.lower() == "all":
                    include_all = True
                elif item:
                    include.add(resolve_attribute(item))
        elif key == "limit":
            limit = _non_negative(key, value)
        elif key == "offset":
            offset = _non_negative(key, value)
        elif key == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise ApiError(400, f"fuzzymatching must be true or false, got {value!r}")
            if value.lower() == "true":
                warnings.append("The fuzzymatching parameter is not supported. "
                                "Only literal matching has been performed.")
        else:
            matches.append((key, value))
    return SearchRequest(
        level=level, matches=tuple(matches),
        include="all" if include_all else frozenset(include),
        study_uid=request.match_info.get("study"), series_uid=request.match_info.get("series"),
        limit=limit, offset=offset), warnings


def _with_retrieve_urls(base: str, level: str,
                        datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add Retrieve URL (0008,1190) to each result; attributes in tag order (PS3.18 F.2)."""
    def uid(ds: dict[str, Any], which: str) -> str:
        return str(ds.get(_UIDS[which], {}).get("Value", [""])[0])

    for ds in datasets:
        if level == "study":
            url = study_url(base, uid(ds, "study"))
        elif level == "series":
            url = series_url(base, uid(ds, "study"), uid(ds, "series"))
        else:
            url = instance_url(base, uid(ds, "study"), uid(ds, "series"), uid(ds, "instance"))
        ds[_RETRIEVE_URL] = {"vr": "UR", "Value": [url]}
    return [dict(sorted(ds.items())) for ds in datasets]


async def _search(request: web.Request,
                  level: Literal["study", "series", "instance"]) -> web.Response:
    require_json(request)
    runtime = request.app[RUNTIME]
    query, warnings = parse_search(request, level)
    result: SearchResult = await run_blocking(request, search, runtime.catalog,
                                              runtime.data_dir, query)
    if result.unsupported:
        warnings.append("The following attributes are not supported for matching: "
                        + ", ".join(result.unsupported))
    if result.truncated:
        warnings.append(f"There are additional results that can be requested "
                        f"(at most {MAX_RESULTS} per response; use offset)")
    datasets = _with_retrieve_urls(service_url(request), level, result.datasets)
    return dicom_json_response(datasets, headers=warning_header(request, warnings))


async def search_studies(request: web.Request) -> web.Response:
    """``GET {+SERVICE}/studies`` (PS3.18 §10.6.1, Table 10.6.3-3 attributes)."""
    return await _search(request, "study")


async def search_series(request: web.Request) -> web.Response:
    """``GET {+SERVICE}[/studies/{study}]/series`` (Table 10.6.3-4 attributes)."""
    return await _search(request, "series")


async def search_instances(request: web.Request) -> web.Response:
    """``GET {+SERVICE}[/studies/{study}[/series/{series}]]/instances`` (Table 10.6.3-5)."""
    return await _search(request, "instance")


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/studies", search_studies)
    app.router.add_get(f"{prefix}/series", search_series)
    app.router.add_get(f"{prefix}/instances", search_instances)
    app.router.add_get(f"{prefix}/studies/{{study}}/series", search_series)
    app.router.add_get(f"{prefix}/studies/{{study}}/instances", search_instances)
    app.router.add_get(f"{prefix}/studies/{{study}}/series/{{series}}/instances",
                       search_instances)
