"""Transfer functions of volume rendering: data value → colour and opacity.

A :class:`TransferFunction` is piecewise linear in the volume's own units (HU for CT, SUVbw for
PET): colour control points ``(value, r, g, b)`` with components in 0..1 and opacity control
points ``(value, opacity)`` in 0..1, both clamped beyond their end points. Opacity is the
fraction of light absorbed over ``unit_distance_mm`` of path (VTK's scalar opacity unit
distance), so an image does not depend on the sampling step: the renderer corrects it to its
step as ``1 - (1 - a) ** (step_mm / unit_distance_mm)``. ``ambient``, ``diffuse``, ``specular``
and ``specular_power`` are the Blinn-Phong material used when shading is on.

Presets (:func:`preset`) follow the usual clinical ranges: bone from about 150 HU, contrast-filled
vessels from about 150-200 HU, soft tissue around 0-100 HU with fat hidden, lung parenchyma
around -900..-500 HU; PET in SUV, from the blood pool (about 1.5-2.5) up to hot lesions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from render_engine.errors import RenderError


class UnknownPresetError(RenderError, KeyError):
    """No transfer-function preset has this name; ``known`` lists the names there are."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown transfer-function preset {name!r}; known: {', '.join(known)}")
        self.name = name
        self.known = known

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _points(raw: object, width: int, name: str) -> tuple[tuple[float, ...], ...]:
    arr = np.asarray(raw, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] < 1:
        raise RenderError(f"{name} must be a non-empty sequence of {width}-tuples")
    if not np.isfinite(arr).all():
        raise RenderError(f"{name} must be finite")
    if (np.diff(arr[:, 0]) <= 0).any():
        raise RenderError(f"{name} values must be strictly increasing")
    if ((arr[:, 1:] < 0) | (arr[:, 1:] > 1)).any():
        raise RenderError(f"{name} components must lie in 0..1")
    return tuple(tuple(float(v) for v in row) for row in arr)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFunction:
    """Piecewise-linear colour and opacity in data units, plus a shading material.

    Raises :class:`RenderError` for unsorted or out-of-range control points or a non-positive
    unit distance.
    """

    color_points: tuple[tuple[float, float, float, float], ...]
    opacity_points: tuple[tuple[float, float], ...]
    unit_distance_mm: float = 1.0
    ambient: float = 0.15
    diffuse: float = 0.75
    specular: float = 0.25
    specular_power: float = 16.0
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "color_points", _points(self.color_points, 4, "color_points"))
        object.__setattr__(self, "opacity_points",
                           _points(self.opacity_points, 2, "opacity_points"))
        for key in ("unit_distance_mm", "specular_power"):
            v = float(getattr(self, key))
            if not (math.isfinite(v) and v > 0):
                raise RenderError(f"{key} must be > 0, got {v}")
            object.__setattr__(self, key, v)
        for key in ("ambient", "diffuse", "specular"):
            v = float(getattr(self, key))
            if not (math.isfinite(v) and v >= 0):
                raise RenderError(f"{key} must be >= 0, got {v}")
            object.__setattr__(self, key, v)

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest control-point value (data units)."""
        values = [p[0] for p in self.color_points] + [p[0] for p in self.opacity_points]
        return min(values), max(values)

    def color_at(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """RGB in 0..1 at ``values`` (data units), shape ``values.shape + (3,)``."""
        v = np.asarray(values, dtype=np.float64)
        pts = np.asarray(self.color_points)
        return np.stack([np.interp(v, pts[:, 0], pts[:, c]) for c in (1, 2, 3)], axis=-1)

    def opacity_at(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Opacity per ``unit_distance_mm`` in 0..1 at ``values`` (data units)."""
        pts = np.asarray(self.opacity_points)
        return np.interp(np.asarray(values, dtype=np.float64), pts[:, 0], pts[:, 1])

    def lut(self, n: int = 4096, lo: float | None = None,
            hi: float | None = None) -> npt.NDArray[np.float32]:
        """Table of ``n`` entries, float32 (n, 4): RGB and opacity at ``lo + k (hi - lo)/(n-1)``.

        ``lo``/``hi`` default to :attr:`value_range`. Colours are not premultiplied and
        opacities are per ``unit_distance_mm``. Raises :class:`RenderError` for ``n < 2`` or
        ``hi <= lo``.
        """
        range_lo, range_hi = self.value_range
        lo = range_lo if lo is None else float(lo)
        hi = range_hi if hi is None else float(hi)
        if n < 2 or not hi > lo:
            raise RenderError(f"a LUT needs n >= 2 and hi > lo, got n={n}, [{lo}, {hi}]")
        values = np.linspace(lo, hi, n)
        table = np.empty((n, 4), dtype=np.float32)
        table[:, :3] = self.color_at(values)
        table[:, 3] = self.opacity_at(values)
        return table

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "color_points": [list(p) for p in self.color_points],
                "opacity_points": [list(p) for p in self.opacity_points],
                "unit_distance_mm": self.unit_distance_mm, "ambient": self.ambient,
                "diffuse": self.diffuse, "specular": self.specular,
                "specular_power": self.specular_power}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TransferFunction:
        fields = {k: data[k] for k in ("unit_distance_mm", "ambient", "diffuse", "specular",
                                       "specular_power", "name") if k in data}
        return cls(color_points=data["color_points"],  # type: ignore[arg-type]
                   opacity_points=data["opacity_points"],  # type: ignore[arg-type]
                   **fields)  # type: ignore[arg-type]


_PRESETS: dict[str, TransferFunction] = {
    # Bone: nothing below 150 HU (soft tissue, contrast-free blood), cancellous bone
    # (200-400 HU) half-transparent, cortical bone (> 700 HU) nearly opaque and ivory.
    "ct-bone": TransferFunction(
        name="ct-bone",
        color_points=((150.0, 0.55, 0.25, 0.15), (300.0, 0.88, 0.70, 0.50),
                      (700.0, 1.00, 0.94, 0.82), (1500.0, 1.00, 1.00, 0.98)),
        opacity_points=((-1024.0, 0.0), (150.0, 0.0), (300.0, 0.25), (700.0, 0.8),
                        (3071.0, 0.9)),
        ambient=0.15, diffuse=0.8, specular=0.3, specular_power=20.0),
    # Soft tissue: air and fat (< -100 HU) hidden, skin/muscle/organs (20-80 HU) in flesh
    # tones and fairly transparent, bone opaque and white.
    "ct-soft-tissue": TransferFunction(
        name="ct-soft-tissue",
        color_points=((-100.0, 0.62, 0.36, 0.18), (40.0, 0.85, 0.45, 0.36),
                      (100.0, 0.92, 0.62, 0.50), (300.0, 1.00, 0.92, 0.84),
                      (1000.0, 1.00, 1.00, 1.00)),
        opacity_points=((-1024.0, 0.0), (-100.0, 0.0), (20.0, 0.12), (80.0, 0.3),
                        (300.0, 0.6), (1000.0, 0.85), (3071.0, 0.9)),
        ambient=0.2, diffuse=0.7, specular=0.15, specular_power=10.0),
    # CT angiography: contrast-filled lumen (about 200-500 HU) red to yellow, opaque from about
    # 180 HU; unenhanced tissue hidden; bone (brighter still) tends to white.
    "ct-vessels": TransferFunction(
        name="ct-vessels",
        color_points=((140.0, 0.60, 0.00, 0.02), (180.0, 0.90, 0.30, 0.05),
                      (300.0, 0.97, 0.75, 0.55), (700.0, 0.95, 0.95, 1.00),
                      (3071.0, 1.00, 1.00, 1.00)),
        opacity_points=((-1024.0, 0.0), (140.0, 0.0), (180.0, 0.6), (300.0, 0.7),
                        (700.0, 0.85), (3071.0, 0.85)),
        ambient=0.2, diffuse=0.75, specular=0.35, specular_power=24.0),
    # Lung: air (airways, outside the body) and soft tissue hidden, the parenchyma band
    # (about -900..-550 HU) semi-opaque, so the lungs show as a cast.
    "ct-lung": TransferFunction(
        name="ct-lung",
        color_points=((-950.0, 0.75, 0.45, 0.45), (-800.0, 0.95, 0.70, 0.65),
                      (-600.0, 1.00, 0.85, 0.80), (-400.0, 1.00, 0.95, 0.90)),
        opacity_points=((-1024.0, 0.0), (-920.0, 0.0), (-850.0, 0.12), (-650.0, 0.25),
                        (-550.0, 0.0), (3071.0, 0.0)),
        ambient=0.25, diffuse=0.7, specular=0.1, specular_power=8.0),
    # FDG PET in SUVbw: background and blood pool (< 1.5) hidden, uptake from about 2.5
    # (the usual threshold of suspicion) red, hotter lesions orange to yellow to white.
    "pet": TransferFunction(
        name="pet",
        color_points=((0.0, 0.0, 0.0, 0.0), (1.5, 0.45, 0.0, 0.0), (2.5, 0.85, 0.10, 0.0),
                      (5.0, 1.0, 0.50, 0.0), (10.0, 1.0, 0.95, 0.30), (20.0, 1.0, 1.0, 1.0)),
        opacity_points=((0.0, 0.0), (1.5, 0.0), (2.5, 0.02), (5.0, 0.15), (10.0, 0.5),
                        (20.0, 0.8)),
        ambient=0.35, diffuse=0.6, specular=0.1, specular_power=8.0),
}

PRESET_NAMES = tuple(_PRESETS)


def preset(name: str) -> TransferFunction:
    """The transfer function called ``name`` (see :data:`PRESET_NAMES`).

    Raises :class:`UnknownPresetError` (a ``KeyError``) naming the presets there are.
    """
    try:
        return _PRESETS[name]
    except KeyError:
        raise UnknownPresetError(name, PRESET_NAMES) from None
