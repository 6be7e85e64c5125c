"""The renderer's view of the catalog and the volume cache: series UID → ``RenderVolume``."""

from __future__ import annotations

from typing import Any

from ingest import queries
from render_engine.pipeline import RenderVolume
from render_engine.view import Window
from streaming.app import ApiError
from streaming.runtime import Runtime
from volume_cache.device import DeviceVolumeCache
from volume_cache.memory import CachedVolume


def render_volume(runtime: Runtime, series_uid: str) -> RenderVolume:
    """The published volume of ``series_uid``, from the RAM cache (loaded on a miss).

    Raises ``NotFoundError`` (404) for an unknown series and :class:`ApiError` 409 while its
    volume is not built. PET with a body-weight SUV factor is scaled to SUVbw.
    """
    series = queries.get_series(runtime.catalog, series_uid)
    if not series["volume_path"]:
        raise ApiError(409, f"volume of series {series_uid} is not available "
                            f"(state {series['volume_state']})")
    path = series["volume_path"]
    return as_render_volume(series_uid, runtime.memory.get(path), device=runtime.device,
                            key=path)


def as_render_volume(series_uid: str, cached: CachedVolume, *,
                     device: DeviceVolumeCache | None = None, key: str = "") -> RenderVolume:
    """A cached volume (any pyramid level) as the renderer's ``RenderVolume``: its device copy
    when a GPU renders (``device``, under ``key``), else the host array."""
    data, derived = cached.data, cached.derived
    if device is not None and key:
        on_device = device.get(key, cached.data)
        if on_device is not None:
            data, derived = on_device.data, on_device.derived
    meta: dict[str, Any] = cached.metadata
    units, scale = str(meta.get("units") or ""), 1.0
    factor = meta.get("suv_bw_factor")
    if meta.get("modality") == "PT" and factor:
        units, scale = "SUVbw", float(factor)
    presets = meta.get("window_presets") or []
    default = None
    if presets and units != "SUVbw" and float(presets[0]["width"]) >= 1:
        default = Window(center=float(presets[0]["center"]), width=float(presets[0]["width"]))
    return RenderVolume(series_uid=series_uid, data=data, geometry=cached.geometry,
                        modality=str(meta.get("modality") or ""), units=units, scale=scale,
                        default_window=default, default_invert=bool(meta.get("invert")),
                        frame_of_reference_uid=str(meta.get("frame_of_reference_uid") or ""),
                        derived=derived)
