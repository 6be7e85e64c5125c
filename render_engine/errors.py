"""The root of VoxCast's exception tree.

Every package has its own base (``RenderError``, ``CacheError``, ``IngestError``,
``SessionError``) deriving from :class:`VoxCastError`; specific errors also subclass the
matching builtin so that callers may catch ``KeyError`` or ``ValueError`` as usual.
"""

from __future__ import annotations


class VoxCastError(Exception):
    """Root of all VoxCast errors."""


class RenderError(VoxCastError):
    """Base of render-engine errors."""


class GeometryError(RenderError, ValueError):
    """A geometry is degenerate or inconsistent (e.g. collinear direction cosines)."""
