"""``voxcast serve``: the HTTP server and the DICOM SCP in one process."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ingest.scp import ScpConfig, StoreScp
from streaming.app import create_app
from streaming.runtime import Runtime
from streaming.settings import Settings

log = logging.getLogger(__name__)


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
        http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"VoxCast HTTP listening on http://{settings.host}:{http_port}", flush=True)
        print(f"VoxCast DICOM SCP {settings.ae_title} listening on {settings.host}:{scp.port}",
              flush=True)
        await stop.wait()
    finally:
        log.info("shutting down")
        scp.stop()
        await runner.cleanup()
        runtime.close()
