"""The device (GPU) volume cache's bookkeeping, with a host copy standing in for the upload."""

from __future__ import annotations

import threading

import numpy as np

from volume_cache.device import DeviceVolumeCache


class Uploads:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, host: np.ndarray) -> np.ndarray:
        with self.lock:
            self.count += 1
        return np.asarray(host, dtype=np.float32).copy()


def test_copies_are_float32_kept_and_evicted_least_recently_used_first() -> None:
    uploads = Uploads()
    volume = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)  # 4000 bytes on the device
    cache = DeviceVolumeCache(budget_bytes=9000, to_device=uploads)
    a = cache.get("a", volume)
    assert a is not None and a.data.dtype == np.float32 and a.nbytes == 4000
    np.testing.assert_array_equal(a.data, volume)
    assert cache.get("a", volume) is a and uploads.count == 1
    cache.get("b", volume)
    cache.get("a", volume)  # a is now the most recent
    cache.get("c", volume)  # over budget: b goes
    assert len(cache) == 2 and cache.size_bytes == 8000
    assert cache.get("a", volume) is a and uploads.count == 3
    cache.get("b", volume)
    assert uploads.count == 4  # b had to come back


def test_a_volume_larger_than_the_budget_stays_on_the_host() -> None:
    cache = DeviceVolumeCache(budget_bytes=1000, to_device=Uploads())
    assert cache.get("big", np.zeros((10, 10, 10), dtype=np.int16)) is None
    assert len(cache) == 0


def test_concurrent_first_uses_upload_once() -> None:
    uploads = Uploads()
    cache = DeviceVolumeCache(budget_bytes=10**6, to_device=uploads)
    volume = np.ones((20, 20, 20), dtype=np.int16)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("v", volume)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert uploads.count == 1 and all(r is results[0] for r in results)


def test_each_copy_has_its_own_derived_facts() -> None:
    cache = DeviceVolumeCache(budget_bytes=10**6, to_device=Uploads())
    volume = np.ones((4, 4, 4), dtype=np.int16)
    a, b = cache.get("a", volume), cache.get("b", volume)
    assert a is not None and b is not None
    a.derived["block_grid"] = "grid of a"
    assert "block_grid" not in b.derived
