"""Display mapping: window presets, colour maps and fusion blending.

Window/level itself is :func:`render_engine.kernels.window.window_to_uint8` (DICOM PS3.3
C.11.2.1.2). A colour map turns those 8-bit grey levels into RGB through a 256-entry table; the
DICOM well-known palettes (PS3.6 Annex B: Hot Iron, PET, Hot Metal Blue, PET 20 Step) are taken
from pydicom's copy of the standard, the others are piecewise-linear ramps defined here.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from render_engine.errors import RenderError


class UnknownNameError(RenderError, KeyError):
    """A preset or colour map name that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowPreset:
    """A named window in data units (HU for CT, SUVbw for PET); ``invert`` for PET's black
    on white."""

    name: str
    center: float
    width: float
    units: str
    invert: bool = False


# Common reading windows (centre/width in HU; SUV for PET), as shipped by the major viewers.
WINDOW_PRESETS: dict[str, WindowPreset] = {p.name: p for p in (
    WindowPreset(name="ct-lung", center=-600, width=1500, units="HU"),
    WindowPreset(name="ct-mediastinum", center=50, width=350, units="HU"),
    WindowPreset(name="ct-abdomen", center=40, width=400, units="HU"),
    WindowPreset(name="ct-liver", center=60, width=160, units="HU"),
    WindowPreset(name="ct-bone", center=400, width=1800, units="HU"),
    WindowPreset(name="ct-brain", center=40, width=80, units="HU"),
    WindowPreset(name="ct-subdural", center=75, width=215, units="HU"),
    WindowPreset(name="ct-stroke", center=32, width=8, units="HU"),
    WindowPreset(name="pet-suv-0-5", center=2.5, width=5, units="SUVbw", invert=True),
    WindowPreset(name="pet-suv-0-10", center=5, width=10, units="SUVbw", invert=True),
)}


def window_preset(name: str) -> WindowPreset:
    """The preset called ``name``; raises :class:`UnknownNameError` listing the names."""
    try:
        return WINDOW_PRESETS[name]
    except KeyError:
        raise UnknownNameError(f"unknown window preset {name!r}; "
                               f"known: {', '.join(WINDOW_PRESETS)}") from None


# DICOM PS3.6 Annex B well-known palettes, by their SOP Instance UIDs.
_DICOM_PALETTES = {
    "hot-iron": "1.2.840.10008.1.5.1",
    "pet": "1.2.840.10008.1.5.2",
    "hot-metal-blue": "1.2.840.10008.1.5.3",
    "pet-20-step": "1.2.840.10008.1.5.4",
}

# Piecewise-linear maps: (position 0..1, (r, g, b) 0..1).
_RAMPS: dict[str, tuple[tuple[float, tuple[float, float, float]], ...]] = {
    "grey": ((0.0, (0, 0, 0)), (1.0, (1, 1, 1))),
    # The classic PET rainbow: black, violet, blue, cyan, green, yellow, red, white.
    "rainbow": ((0.0, (0, 0, 0)), (0.12, (0.5, 0, 0.6)), (0.25, (0, 0, 1)), (0.4, (0, 1, 1)),
                (0.55, (0, 1, 0)), (0.7, (1, 1, 0)), (0.85, (1, 0, 0)), (1.0, (1, 1, 1))),
    # MATLAB's jet.
    "jet": ((0.0, (0, 0, 0.5)), (0.11, (0, 0, 1)), (0.125, (0, 0, 1)), (0.34, (0, 1, 1)),
            (0.375, (0, 1, 1)), (0.64, (1, 1, 0)), (0.66, (1, 1, 0)), (0.89, (1, 0, 0)),
            (1.0, (0.5, 0, 0))),
}

COLORMAPS = ("grey", "hot-iron", "pet", "rainbow", "jet", "hot-metal-blue", "pet-20-step")


@functools.cache
def colormap_lut(name: str) -> npt.NDArray[np.uint8]:
    """The (256, 3) uint8 RGB table of colour map ``name`` (one of :data:`COLORMAPS`)."""
    if name in _DICOM_PALETTES:
        from pydicom.pixels import apply_color_lut  # the standard's own tables

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lut = apply_color_lut(np.arange(256, dtype=np.uint8), palette=_DICOM_PALETTES[name])
        table = np.ascontiguousarray(lut[:, :3], dtype=np.uint8)
    elif name in _RAMPS:
        pos = np.array([p for p, _ in _RAMPS[name]])
        rgb = np.array([c for _, c in _RAMPS[name]], dtype=np.float64)
        x = np.linspace(0.0, 1.0, 256)
        table = np.stack([np.interp(x, pos, rgb[:, k]) for k in range(3)], axis=1)
        table = np.rint(table * 255).astype(np.uint8)
    else:
        raise UnknownNameError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
    table.flags.writeable = False
    return table


def apply_colormap(grey: npt.NDArray[np.uint8], name: str) -> npt.NDArray[np.uint8]:
    """RGB (h, w, 3) uint8 of 8-bit display values through colour map ``name``."""
    return colormap_lut(name)[grey]


def blend(base_rgb: npt.NDArray[np.uint8], over_rgb: npt.NDArray[np.uint8], opacity: float,
          *, weight: npt.NDArray[np.floating] | None = None) -> npt.NDArray[np.uint8]:
    """``(1 - a) * base + a * over`` per pixel with ``a = opacity`` (× ``weight`` in 0..1 where
    given, e.g. 0 where the overlay has no data), rounded to uint8."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within 0..1, got {opacity}")
    a = np.float32(opacity) if weight is None else (np.float32(opacity) * weight)[..., None]
    out = base_rgb.astype(np.float32) + a * (over_rgb.astype(np.float32)
                                             - base_rgb.astype(np.float32))
    return np.rint(out).astype(np.uint8)
