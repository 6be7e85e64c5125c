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


def published_volume_path(series: dict[str, Any]) -> str:
    """The volume path of a series record (``queries.get_series``), or the :class:`ApiError`
    that says why it has none: 404 not an image stack, 422 the build failed, 409 not built
    yet."""
    if series["volume_path"]:
        return str(series["volume_path"])
    uid, state = series["series_uid"], series["volume_state"]
    if state == "not_volumetric":
        raise ApiError(404, f"series {uid} ({series['modality']}) is not volumetric: not an "
                            "image stack, it has no volume")
    if state == "failed":
        raise ApiError(422, f"the volume of series {uid} could not be built: "
                            f"{series.get('volume_error')}")
    raise ApiError(409, f"the volume of series {uid} is not built yet (state {state})")


def render_volume(runtime: Runtime, series_uid: str) -> RenderVolume:
    """The published volume of ``series_uid``, from the RAM cache (loaded on a miss).

    Raises ``NotFoundError`` (404) for an unknown series and :class:`ApiError` (see
    :func:`published_volume_path`) for one without a volume. PET with a body-weight SUV factor
    is scaled to SUVbw.
    """
    path = published_volume_path(queries.get_series(runtime.catalog, series_uid))
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
