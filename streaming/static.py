"""The viewer's static files: ``/`` (study list), ``/viewer`` (the viewer; launch URLs
``/viewer?study=UID&token=…`` and ``/viewer?patient=ID&token=…``) and ``/static/…``.

They hold no patient data and need no token; the pages take the token from their URL and
present it on every API call and WebSocket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

WEB_CLIENT = Path(__file__).resolve().parents[1] / "web_client"
# The pages are small and change with each release: let browsers revalidate every time.
NO_CACHE = {"Cache-Control": "no-cache"}


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = WEB_CLIENT / name
        if not path.is_file():
            raise web.HTTPNotFound(text=f"the viewer is not installed ({name} is missing)")
        return web.FileResponse(path, headers=NO_CACHE)
    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/viewer", _page("viewer.html"))
    app.router.add_get("/static/{path:.+}", static_file)


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file of ``web_client/``; 404 for anything outside it or missing."""
    root = WEB_CLIENT.resolve()
    path = (root / request.match_info["path"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise web.HTTPNotFound(text="no such file")
    return web.FileResponse(path, headers=NO_CACHE)
