"""The RAM volume cache: a coarse level for the first frame, background loads, LRU budget."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tests.volume_cache.test_zarr_store import _volume
from volume_cache.memory import COARSE_MAX_VOXELS, VolumeMemoryCache
from volume_cache.zarr_store import LocalVolumeStore


def _store(tmp_path: Path, n: int = 1) -> tuple[LocalVolumeStore, list[str], list[np.ndarray]]:
    store = LocalVolumeStore(tmp_path)
    volumes = [_volume((40 + i, 180, 170)) for i in range(n)]
    return store, [store.write(f"1.2.{i}", v) for i, v in enumerate(volumes)], \
        [v.data for v in volumes]


def test_coarse_is_a_smaller_pyramid_level_with_its_own_geometry(tmp_path: Path) -> None:
    store, (path,), (data,) = _store(tmp_path)
    cache = VolumeMemoryCache(store, budget_bytes=10**9)
    coarse = cache.coarse(path)
    handle = store.open(path)
    level = next(i for i in range(1, len(handle.levels))
                 if np.prod(handle.levels[i]["shape"]) <= COARSE_MAX_VOXELS)
    np.testing.assert_array_equal(coarse.data, handle.read_level(level))
    assert coarse.data.size < data.size
    # Same patient-space extent (within a coarse voxel), so a view fitted to it is the same.
    lo0 = handle.geometry(0).index_to_patient([0, 0, 0])
    assert np.linalg.norm(coarse.geometry.index_to_patient([0, 0, 0]) - lo0) < 2.0
    assert cache.coarse(path) is coarse  # kept
    assert cache.peek(path) is None  # the full volume was not loaded by it


def test_prefetch_loads_in_the_background_once(tmp_path: Path) -> None:
    store, (path,), (data,) = _store(tmp_path)
    cache = VolumeMemoryCache(store, budget_bytes=10**9)
    cache.prefetch(path)
    cache.prefetch(path)  # no second load
    end = time.monotonic() + 30
    while cache.peek(path) is None and time.monotonic() < end:
        time.sleep(0.01)
    full = cache.peek(path)
    assert full is not None
    np.testing.assert_array_equal(full.data, data)
    assert cache.get(path) is full


def test_budget_evicts_the_least_recently_used(tmp_path: Path) -> None:
    store, paths, volumes = _store(tmp_path, 3)
    one = volumes[0].nbytes
    cache = VolumeMemoryCache(store, budget_bytes=int(2.5 * one))
    cache.get(paths[0])
    cache.get(paths[1])
    cache.peek(paths[0])  # touch: 1 is now the least recently used
    cache.get(paths[2])
    assert cache.peek(paths[1]) is None
    assert cache.peek(paths[0]) is not None and cache.peek(paths[2]) is not None
    assert cache.size_bytes <= 2.5 * one
