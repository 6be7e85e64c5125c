"""``voxcast serve``: the HTTP server and the DICOM SCP in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from aiohttp import web

from ingest.scp import ScpConfig, StoreScp
from render_engine.pipeline import warm_up
from streaming.app import SIGNER, create_app
from streaming.runtime import Runtime
from streaming.settings import Settings

log = logging.getLogger(__name__)


def _warm_up() -> None:
    """Compile the render kernels off the request path (first start after an install: tens of
    seconds; later starts load numba's cache)."""
    try:
        log.info("render kernels ready in %.1f s", warm_up())
    except Exception:
        log.exception("render kernel warm-up failed; kernels compile on first use")


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Prints one line per listener once it listens."""
    runtime = Runtime(settings)
    runtime.recover()

    # The builder polls for series that have been quiet long enough; waking it on every
    # instance would cost a catalog query per C-STORE.
    scp = StoreScp(runtime.ingest, ScpConfig(ae_title=settings.ae_title, host=settings.host,
                                             port=settings.dicom_port))
    app = create_app(runtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        scp.start()
        runtime.start_background_builds()
        threading.Thread(target=_warm_up, name="voxcast-kernel-warm-up", daemon=True).start()
        http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"VoxCast HTTP listening on http://{settings.host}:{http_port}", flush=True)
        print(f"VoxCast DICOM SCP {settings.ae_title} listening on {settings.host}:{scp.port}",
              flush=True)
        viewer_token = app[SIGNER].issue(subject="voxcast-serve-console")
        print(f"VoxCast viewer: http://{settings.host}:{http_port}/?token={viewer_token}",
              flush=True)
        await stop.wait()
    finally:
        log.info("shutting down")
        scp.stop()
        await runner.cleanup()
        runtime.close()
