"""The array backend: numpy on the CPU, cupy on an NVIDIA GPU when one is usable.

The only place that imports cupy, lazily: machines without a GPU (CI) never import it.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import Any


@functools.cache
def cupy_or_none() -> ModuleType | None:
    """The cupy module when it imports and sees a GPU, else None."""
    # Each thread that renders (a server's render workers) gets its own default CUDA stream,
    # so concurrent renders overlap on the device instead of queueing on stream 0.
    os.environ.setdefault("CUPY_CUDA_PER_THREAD_DEFAULT_STREAM", "1")
    try:
        import cupy  # the one import of cupy in VoxCast
    except Exception:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:
        return None
    return cupy


def is_gpu_array(array: Any) -> bool:
    """True for a cupy array (without importing cupy for numpy arrays)."""
    return type(array).__module__.startswith("cupy")


def to_gpu(array: Any) -> Any:
    """Copy a numpy volume to the GPU as float32 (raises RuntimeError without a GPU)."""
    cp = cupy_or_none()
    if cp is None:
        raise RuntimeError("no usable GPU (cupy missing or no device)")
    return cp.asarray(array, dtype=cp.float32)


def to_host(array: Any) -> Any:
    """A numpy array of ``array`` (copied from the GPU when it is a cupy array)."""
    return array.get() if is_gpu_array(array) else array


def cpu_threads_for_this_thread(share: int) -> None:
    """Let the CPU kernels called from this thread use ``1/share`` of the cores (numba's thread
    count is per calling thread): a server rendering for several sessions at once gives each
    render its share instead of oversubscribing the cores."""
    import numba

    numba.set_num_threads(max(1, int(numba.config.NUMBA_NUM_THREADS) // max(1, share)))  # type: ignore[attr-defined]
