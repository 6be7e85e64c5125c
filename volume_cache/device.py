"""GPU copies of the volumes in RAM, least recently used first out, within a byte budget.

A render on the GPU samples a device copy of the volume (float32, see
``render_engine.kernels.backend.to_gpu``); uploading 140 MB per frame would cost more than the
render, so the copies stay on the device while they are used. Keys are published volume paths,
like the RAM cache's. Each copy has its own ``derived`` dict: facts derived from device data
(block grids) stay with it and never mix with the host volume's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from volume_cache.memory import evict_over_budget


@dataclass(slots=True)
class DeviceVolume:
    data: Any
    nbytes: int
    derived: dict[str, Any] = field(default_factory=dict)


class DeviceVolumeCache:
    """Device copies of host volumes; ``to_device`` makes one (injected, so the cache logic
    runs without a GPU too)."""

    def __init__(self, budget_bytes: int, to_device: Callable[[Any], Any]) -> None:
        self.budget_bytes = budget_bytes
        self._to_device = to_device
        self._entries: OrderedDict[str, DeviceVolume] = OrderedDict()
        self._lock = threading.Lock()
        self._uploading: dict[str, threading.Lock] = {}

    def get(self, key: str, host: Any) -> DeviceVolume | None:
        """The device copy of ``host`` under ``key`` (uploaded on a miss); None when it is
        larger than the whole budget (the caller renders on the CPU)."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
            if host.size * 4 > self.budget_bytes:  # float32 on the device
                return None
            upload = self._uploading.setdefault(key, threading.Lock())
        with upload:
            with self._lock:
                hit = self._entries.get(key)
                if hit is not None:
                    return hit
            data = self._to_device(host)
            entry = DeviceVolume(data=data, nbytes=int(data.nbytes))
            with self._lock:
                self._entries[key] = entry
                self._uploading.pop(key, None)
                evict_over_budget(self._entries, self.budget_bytes)
            return entry

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
