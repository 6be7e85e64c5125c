"""Window/level to 8-bit display values (DICOM PS3.3 C.11.2.1.2, the LINEAR function)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def window_to_uint8(values: npt.NDArray[np.floating], *, center: float, width: float,
                    invert: bool = False) -> npt.NDArray[np.uint8]:
    """Map values through the linear VOI function of PS3.3 C.11.2.1.2.1 to 0…255.

    ``x <= c - 0.5 - (w - 1) / 2`` → 0; ``x > c - 0.5 + (w - 1) / 2`` → 255; otherwise
    ``((x - (c - 0.5)) / (w - 1) + 0.5) * 255``. NaN (outside the volume) maps to black (white
    when inverted). Raises ``ValueError`` for ``width < 1`` (the standard requires it).
    """
    if not width >= 1:
        raise ValueError(f"window width must be >= 1, got {width}")
    x = np.asarray(values, dtype=np.float32)
    if width == 1:
        out = np.where(x > center - 0.5, 255.0, 0.0)
    else:
        out = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    out = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 255.0)
    display = np.rint(out).astype(np.uint8)
    return 255 - display if invert else display
