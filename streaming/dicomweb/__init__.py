"""DICOMweb (PS3.18) under ``/dicomweb``: STOW-RS, QIDO-RS, WADO-RS, rendered and thumbnails.

One module per transaction family: :mod:`.stow` (store), :mod:`.qido` (search), :mod:`.wado`
(instances, metadata, bulk data, frames), :mod:`.rendered` (rendered images and thumbnails);
:mod:`.common` holds media types, multipart framing and URLs. Errors become HTTP statuses in
:func:`streaming.app.error_middleware` only.
"""

from __future__ import annotations

from aiohttp import web

from streaming.dicomweb import qido, rendered, stow, wado

PREFIX = "/dicomweb"


def add_routes(app: web.Application) -> None:
    """Register every DICOMweb route under :data:`PREFIX`."""
    stow.add_routes(app, PREFIX)
    qido.add_routes(app, PREFIX)
    wado.add_routes(app, PREFIX)
    rendered.add_routes(app, PREFIX)
