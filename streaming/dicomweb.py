"""DICOMweb (PS3.18) under ``/dicomweb``: STOW-RS, QIDO-RS, WADO-RS."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the DICOMweb routes (being written)."""
