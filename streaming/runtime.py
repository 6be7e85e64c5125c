"""The process's long-lived parts, built once from the settings and passed down.

``Runtime`` owns the catalog, the ingest service, the volume store and the series builder, and
the background thread that builds a series once it has been quiet for a few seconds.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ingest.builder import SeriesBuilder
from ingest.catalog import Catalog
from ingest.service import IngestService
from ingest.storage import remove_stale_temporaries
from render_engine.kernels.backend import cupy_or_none, to_gpu
from streaming.settings import Settings
from volume_cache.device import DeviceVolumeCache
from volume_cache.memory import VolumeMemoryCache
from volume_cache.zarr_store import LocalVolumeStore

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir: Path = settings.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(settings.resolved_database_url())
        self.ingest = IngestService(data_dir=self.data_dir, catalog=self.catalog)
        self.volumes = LocalVolumeStore(self.data_dir)
        self.builder = SeriesBuilder(self.catalog, self.data_dir, self.volumes)
        self.memory = VolumeMemoryCache(self.volumes, settings.volume_cache_bytes)
        self.device: DeviceVolumeCache | None = None
        if settings.gpu == "auto" and cupy_or_none() is not None:
            self.device = DeviceVolumeCache(settings.gpu_cache_bytes, to_gpu)
            log.info("rendering on the GPU, device volume cache of %.1f GiB",
                     settings.gpu_cache_bytes / 1024**3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def recover(self) -> None:
        """After a crash: drop temporaries (never visible) and requeue interrupted builds."""
        removed = remove_stale_temporaries(self.data_dir / "dicom")
        removed += remove_stale_temporaries(self.data_dir / "quarantine")
        removed += remove_stale_temporaries(self.data_dir / "incoming")
        if removed:
            log.info("removed %d unacknowledged temporary files", removed)
        self.builder.recover()

    def start_background_builds(self, poll_seconds: float = 0.5) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._build_loop, args=(poll_seconds,),
                                        name="voxcast-series-builder", daemon=True)
        self._thread.start()

    def _build_loop(self, poll_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                self.builder.build_due(self.settings.series_quiet_seconds)
            except Exception:
                log.exception("series build loop failed; retrying")
            self._stop.wait(poll_seconds)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.ingest.close()
        self.catalog.dispose()
