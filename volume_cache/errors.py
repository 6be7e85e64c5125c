"""Volume-cache errors."""

from __future__ import annotations

from render_engine.errors import VoxCastError


class CacheError(VoxCastError):
    """Base of volume-cache errors."""


class VolumeNotFoundError(CacheError, KeyError):
    """No published volume exists for a series."""

    def __init__(self, series_uid: str) -> None:
        super().__init__(series_uid)
        self.series_uid = series_uid

    def __str__(self) -> str:
        return f"no volume for series {self.series_uid}"
