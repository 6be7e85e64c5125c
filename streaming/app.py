"""The aiohttp application factory and the one error-translating middleware.

Every error that reaches the edge becomes a JSON body ``{"error": ..., "status": ...}`` with a
4xx status for bad requests, unknown UIDs and unsupported media, and 5xx only for genuine
server faults (logged, without patient data).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from ingest.errors import NotFoundError
from render_engine.errors import VoxCastError
from streaming.auth import TokenSigner, auth_middleware
from streaming.runtime import Runtime
from volume_cache.errors import VolumeNotFoundError

log = logging.getLogger(__name__)

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
EXECUTOR: web.AppKey[ThreadPoolExecutor] = web.AppKey("executor", ThreadPoolExecutor)
SIGNER: web.AppKey[TokenSigner] = web.AppKey("signer", TokenSigner)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class ApiError(VoxCastError):
    """An error with an HTTP status, raised by handlers for bad requests."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place where exceptions become HTTP statuses."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return json_error(exc.status, exc.reason if not exc.text or exc.text.startswith(
            str(exc.status)) else exc.text)
    except ApiError as exc:
        return json_error(exc.status, exc.message)
    except (NotFoundError, VolumeNotFoundError) as exc:
        return json_error(404, str(exc))
    except (ValueError, json.JSONDecodeError) as exc:
        return json_error(400, f"bad request: {exc}")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal server error")


async def run_blocking(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (catalog, files, decoding) off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR], fn, *args)


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response({"status": "ok", "ae_title": runtime.settings.ae_title})


def create_app(runtime: Runtime, *, workers: int = 4) -> web.Application:
    """Build the HTTP application over an already-built :class:`Runtime`."""
    from streaming import (
        api,
        dicomweb,
        measure_api,
        render_api,
        session_api,
        static,
        volumetric,
        webrtc,
    )

    signer = TokenSigner.for_data_dir(runtime.data_dir)
    app = web.Application(middlewares=[error_middleware, auth_middleware(signer)],  # type: ignore[list-item]
                          client_max_size=runtime.settings.max_upload_bytes)
    app[SIGNER] = signer
    app[RUNTIME] = runtime
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voxcast-http")
    app.router.add_get("/api/health", health)
    api.add_routes(app)
    render_api.add_routes(app)
    measure_api.add_routes(app)
    dicomweb.add_routes(app)
    volumetric.add_routes(app)
    session_api.add_routes(app)
    webrtc.add_routes(app)
    static.add_routes(app)

    async def _shutdown(app: web.Application) -> None:
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(_shutdown)
    return app
