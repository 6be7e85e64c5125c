"""Ingest errors."""

from __future__ import annotations

from render_engine.errors import VoxCastError


class IngestError(VoxCastError):
    """Base of ingest errors."""


class NotDicomError(IngestError, ValueError):
    """The bytes are not a readable DICOM data set."""


class NotFoundError(IngestError, KeyError):
    """A study, series or instance is not in the catalog."""

    def __init__(self, kind: str, uid: str) -> None:
        super().__init__(f"{kind} {uid} not found")
        self.kind = kind
        self.uid = uid

    def __str__(self) -> str:
        return f"{self.kind} {self.uid} not found"


class VolumeBuildError(IngestError):
    """A series cannot be assembled into a volume (not an image stack, inconsistent frames…)."""

    def __init__(self, message: str, *, series_uid: str | None = None) -> None:
        super().__init__(message)
        self.series_uid = series_uid
