"""In-memory LRU cache of level-0 volumes with a byte budget (thread-safe)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.geometry import VolumeGeometry
from volume_cache.zarr_store import LocalVolumeStore


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
                total = sum(e.nbytes for e in self._entries.values())
                while total > self.budget_bytes and len(self._entries) > 1:
                    _, evicted = self._entries.popitem(last=False)
                    total -= evicted.nbytes
            return entry

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())
