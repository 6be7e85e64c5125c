"""Rendered and thumbnail resources (PS3.18 §10.4.1.1.8-9, §8.3.5): one consumer-format image.

A series is shown by its middle slice: the middle z of the series' volume (values after the
Modality LUT, PS3.3 C.11.1) when the volume is built, otherwise the middle frame of the
middle instance (by Instance Number), rescaled the same way. An instance is shown by its
middle frame.

VOI (PS3.3 C.11.2.1.2.1, linear function): the ``window=center,width`` query parameter if
given; else the series' own Window Center/Width (the volume's first window preset, or the
instance's first WindowCenter/WindowWidth values); else the 1st–99th percentile of the
image. MONOCHROME1 is inverted after windowing; colour images are shown as RGB as decoded.

Size: ``viewport=width,height`` (PS3.18 §8.3.5.1.3) fits the image into that box keeping its
pixel aspect; thumbnails default to 128x128, rendered images to the native size. Media type
per Accept: ``image/jpeg`` (default, ``quality`` 1-100, default 90), ``image/png``,
``image/gif``; anything else is 406.

Simplification: the rendered *series* resource returns one image (the middle slice), not a
multipart of every instance.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from aiohttp import web
from PIL import Image

from ingest import queries
from ingest.dicomweb_queries import InstanceRef, find_instances
from ingest.pixels import decode_frames
from streaming.app import RUNTIME, ApiError, run_blocking
from streaming.dicomweb.common import MediaRange, negotiate
from streaming.runtime import Runtime
from volume_cache.errors import CacheError

_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
_MAX_VIEWPORT = 4096


def _image_choice(r: MediaRange) -> str | None:
    if r.media_type in ("*/*", "image/*"):
        return "image/jpeg"
    return r.media_type if r.media_type in _FORMATS else None


def _pair(request: web.Request, name: str, kind: type) -> tuple[Any, ...] | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    try:
        values = tuple(kind(p) for p in parts[:2])
    except ValueError:
        raise ApiError(400, f"{name} must be two comma-separated numbers, got {raw!r}") from None
    if len(values) != 2:
        raise ApiError(400, f"{name} must be two comma-separated numbers, got {raw!r}")
    return values


def _viewport(request: web.Request, default: tuple[int, int] | None) -> tuple[int, int] | None:
    pair = _pair(request, "viewport", int)
    if pair is None:
        return default
    width, height = int(pair[0]), int(pair[1])
    if not (1 <= width <= _MAX_VIEWPORT and 1 <= height <= _MAX_VIEWPORT):
        raise ApiError(400, f"viewport must be within 1..{_MAX_VIEWPORT} pixels a side")
    return width, height


def _window(request: web.Request) -> tuple[float, float] | None:
    pair = _pair(request, "window", float)
    if pair is None:
        return None
    center, width = float(pair[0]), float(pair[1])
    if not width > 0:
        raise ApiError(400, "window width must be positive")
    return center, width


def _quality(request: web.Request) -> int:
    raw = request.query.get("quality", "90")
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"quality must be an integer 1-100, got {raw!r}") from None
    if not 1 <= value <= 100:
        raise ApiError(400, f"quality must be within 1-100, got {value}")
    return value


def _first_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def to_display(image: npt.NDArray[Any], window: tuple[float, float] | None,
               monochrome1: bool = False) -> npt.NDArray[np.uint8]:
    """8-bit display values: linear VOI (PS3.3 C.11.2.1.2.1) or 1st–99th percentile."""
    if image.ndim == 3:  # colour, already RGB
        if image.dtype == np.uint8:
            return image
        top = float(image.max()) or 1.0
        return np.clip(image.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    values = image.astype(np.float64)
    if window is not None:
        center, width = window
        lo = center - 0.5 - (width - 1) / 2
        span = max(width - 1, 1e-6)
    else:
        finite = values[np.isfinite(values)]
        lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
        span = max(float(hi) - float(lo), 1e-6)
    out = np.clip((values - lo) / span, 0.0, 1.0) * 255.0
    out = np.nan_to_num(out)
    if monochrome1:
        out = 255.0 - out
    return np.round(out).astype(np.uint8)


def _fit(size: tuple[int, int], box: tuple[int, int] | None) -> tuple[int, int]:
    width, height = size
    if box is None:
        return width, height
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(pixels: npt.NDArray[np.uint8], box: tuple[int, int] | None, media_type: str,
           quality: int) -> bytes:
    """Resize to fit ``box`` (aspect kept) and encode as ``media_type``."""
    image = Image.fromarray(pixels)
    size = _fit(image.size, box)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = BytesIO()
    fmt = _FORMATS[media_type]
    if fmt == "JPEG":
        image.save(buffer, fmt, quality=quality)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def _instance_image(runtime: Runtime, ref: InstanceRef
                    ) -> tuple[npt.NDArray[Any], tuple[float, float] | None, bool]:
    """Middle frame of one instance after the Modality LUT; its window; MONOCHROME1?"""
    ds = pydicom.dcmread(runtime.data_dir / ref.file_path, force=True)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ApiError(404, f"instance {ref.sop_uid} has no pixel data to render")
    frames = decode_frames(ds)
    image = frames[frames.shape[0] // 2]
    if image.ndim == 2:
        slope = _first_number(ds.get("RescaleSlope")) or 1.0
        intercept = _first_number(ds.get("RescaleIntercept")) or 0.0
        image = image.astype(np.float64) * slope + intercept
    center = _first_number(ds.get("WindowCenter"))
    width = _first_number(ds.get("WindowWidth"))
    window = (center, width) if center is not None and width and width > 0 else None
    mono1 = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    return image, window, mono1


def _volume_image(runtime: Runtime, volume_path: str, box: tuple[int, int] | None
                  ) -> tuple[npt.NDArray[Any], tuple[float, float] | None] | None:
    """Middle z slice of the coarsest level still at least ``box``; None if unavailable."""
    try:
        handle = runtime.volumes.open(volume_path)
        level = 0
        if box is not None:
            for i, info in enumerate(handle.levels):
                _z, y, x = info["shape"]
                if y >= box[1] and x >= box[0]:
                    level = i
        middle = int(handle.levels[level]["shape"][0]) // 2
        image = handle.read_region(level, slice(middle, middle + 1), slice(None), slice(None))[0]
    except (OSError, CacheError, KeyError, ValueError, IndexError):
        return None  # replaced or unreadable meanwhile: the caller renders an instance
    presets = handle.metadata.get("window_presets") or []
    window = None
    if presets and float(presets[0].get("width") or 0) > 0:
        window = (float(presets[0]["center"]), float(presets[0]["width"]))
    return image, window


def render_series(runtime: Runtime, study: str, series: str, box: tuple[int, int] | None,
                  window: tuple[float, float] | None, media_type: str, quality: int) -> bytes:
    """The series image (module docstring). Blocking; 404 for unknown UIDs."""
    refs = find_instances(runtime.catalog, study, series)
    if not refs:
        raise ApiError(404, f"no instances stored for series {series}")
    info = queries.get_series(runtime.catalog, series)
    from_volume = (_volume_image(runtime, info["volume_path"], box)
                   if info.get("volume_path") else None)
    if from_volume is not None:
        image, own_window = from_volume
        mono1 = False
    else:
        image, own_window, mono1 = _instance_image(runtime, refs[len(refs) // 2])
    pixels = to_display(image, window or own_window, mono1)
    return encode(pixels, box, media_type, quality)


def render_instance(runtime: Runtime, study: str, series: str, sop: str,
                    box: tuple[int, int] | None, window: tuple[float, float] | None,
                    media_type: str, quality: int) -> bytes:
    ref = find_instances(runtime.catalog, study, series, sop)[0]
    image, own_window, mono1 = _instance_image(runtime, ref)
    return encode(to_display(image, window or own_window, mono1), box, media_type, quality)


async def _render(request: web.Request, default_box: tuple[int, int] | None) -> web.Response:
    media_type = negotiate(request, _image_choice, "image/jpeg, image/png, image/gif")
    box = _viewport(request, default_box)
    window = _window(request)
    quality = _quality(request)
    m = request.match_info
    runtime = request.app[RUNTIME]
    if "sop" in m:
        body = await run_blocking(request, render_instance, runtime, m["study"], m["series"],
                                  m["sop"], box, window, media_type, quality)
    else:
        body = await run_blocking(request, render_series, runtime, m["study"], m["series"],
                                  box, window, media_type, quality)
    return web.Response(body=body, content_type=media_type)


async def thumbnail(request: web.Request) -> web.Response:
    """``…/series/{series}/thumbnail`` and ``…/instances/{sop}/thumbnail`` (default 128x128)."""
    return await _render(request, (128, 128))


async def rendered(request: web.Request) -> web.Response:
    """``…/series/{series}/rendered`` and ``…/instances/{sop}/rendered`` (native size)."""
    return await _render(request, None)


def add_routes(app: web.Application, prefix: str) -> None:
    series = f"{prefix}/studies/{{study}}/series/{{series}}"
    instance = f"{series}/instances/{{sop}}"
    for base in (series, instance):
        app.router.add_get(f"{base}/thumbnail", thumbnail)
        app.router.add_get(f"{base}/rendered", rendered)
