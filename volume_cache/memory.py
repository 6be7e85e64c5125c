"""In-memory LRU cache of level-0 volumes with a byte budget (thread-safe).

For a fast first image the cache also hands out a coarse pyramid level (a few MB, read in
tens of milliseconds) while the full volume loads in the background (:meth:`prefetch`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.geometry import VolumeGeometry
from volume_cache.zarr_store import LocalVolumeStore

log = logging.getLogger(__name__)

# A coarse level for the first image: 4 M voxels read and decode in about 20 ms.
COARSE_MAX_VOXELS = 4 * 1024 * 1024
COARSE_ENTRIES = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedVolume:
    data: npt.NDArray[Any]
    geometry: VolumeGeometry
    metadata: dict[str, Any]
    # Facts the renderer derives from the voxels (e.g. its block grid), kept as long as they.
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


class VolumeMemoryCache:
    """Keeps recently used volumes in RAM, evicting the least recently used over budget.

    Keys are published volume paths: a rebuilt series has a new path, so a stale entry is
    never served for it.
    """

    def __init__(self, store: LocalVolumeStore, budget_bytes: int) -> None:
        self.store = store
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, CachedVolume] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._prefetching: set[str] = set()
        self._coarse: OrderedDict[str, CachedVolume] = OrderedDict()

    def peek(self, relpath: str) -> CachedVolume | None:
        """The full volume if it is in RAM now (no loading)."""
        with self._lock:
            hit = self._entries.get(relpath)
            if hit is not None:
                self._entries.move_to_end(relpath)
            return hit

    def prefetch(self, relpath: str) -> None:
        """Start loading the full volume in the background (no-op when cached or loading)."""
        with self._lock:
            if relpath in self._entries or relpath in self._prefetching:
                return
            self._prefetching.add(relpath)

        def load() -> None:
            try:
                self.get(relpath)
            except Exception:  # the caller's own get() reports the error
                log.warning("background load of a volume failed", exc_info=True)
            finally:
                with self._lock:
                    self._prefetching.discard(relpath)

        threading.Thread(target=load, name="voxcast-volume-prefetch", daemon=True).start()

    def coarse(self, relpath: str) -> CachedVolume:
        """The finest pyramid level below the full one with at most
        :data:`COARSE_MAX_VOXELS` voxels (the full volume when it has no such level), kept in
        a small cache of its own."""
        with self._lock:
            hit = self._coarse.get(relpath)
            if hit is not None:
                return hit
            reading = self._loading.setdefault(f"coarse:{relpath}", threading.Lock())
        with reading:  # one reader; others wait for its result
            with self._lock:
                hit = self._coarse.get(relpath)
                if hit is not None:
                    return hit
            return self._read_coarse(relpath)

    def _read_coarse(self, relpath: str) -> CachedVolume:
        handle = self.store.open(relpath)
        level = len(handle.levels) - 1
        for index in range(1, len(handle.levels)):
            if int(np.prod(handle.levels[index]["shape"])) <= COARSE_MAX_VOXELS:
                level = index
                break
        entry = CachedVolume(data=np.ascontiguousarray(handle.read_level(level)),
                             geometry=handle.geometry(level), metadata=handle.metadata)
        with self._lock:
            self._coarse[relpath] = entry
            self._loading.pop(f"coarse:{relpath}", None)
            while len(self._coarse) > COARSE_ENTRIES:
                self._coarse.popitem(last=False)
        return entry

    def get(self, relpath: str) -> CachedVolume:
        with self._lock:
            hit = self._entries.get(relpath)
            if hit is not None:
                self._entries.move_to_end(relpath)
                return hit
            loader = self._loading.setdefault(relpath, threading.Lock())
        with loader:  # one reader per volume; others wait for its result
            with self._lock:
                hit = self._entries.get(relpath)
                if hit is not None:
                    return hit
            handle = self.store.open(relpath)
            entry = CachedVolume(data=np.ascontiguousarray(handle.read_level(0)),
                                 geometry=handle.geometry(0), metadata=handle.metadata)
            with self._lock:
                self._entries[relpath] = entry
                self._loading.pop(relpath, None)
                evict_over_budget(self._entries, self.budget_bytes)
            return entry

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())


def evict_over_budget(entries: OrderedDict[str, Any], budget_bytes: int) -> None:
    """Drop the least recently used of ``entries`` (each with ``nbytes``) until they fit the
    budget, always keeping the newest one."""
    total = sum(e.nbytes for e in entries.values())
    while total > budget_bytes and len(entries) > 1:
        _, evicted = entries.popitem(last=False)
        total -= evicted.nbytes
