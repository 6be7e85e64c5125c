"""DICOM SCP: C-ECHO and C-STORE for every storage SOP class (pynetdicom).

Each received instance goes through :meth:`IngestService.store`, which returns only once the
file is fsynced and the catalog row committed; only then is success (0x0000) answered. A bad
instance is quarantined and answered with a failure status and an ErrorComment; the association
goes on. Exceptions become DIMSE statuses in exactly one place: :func:`_status_for`.
"""

from __future__ import annotations

import copy
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from ingest.service import IngestService, StoreOutcome, StoreStatus
from ingest.validation import Rule

log = logging.getLogger(__name__)

# C-STORE statuses (PS3.4 Annex B.2.3 and GG.4).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110


@dataclass(frozen=True, slots=True, kw_only=True)
class ScpConfig:
    ae_title: str = "VOXCAST"
    host: str = "127.0.0.1"
    port: int = 11112
    max_pdu_bytes: int = 0  # 0: unlimited (fewer, larger PDUs: faster C-STORE)


def _status(code: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        # ErrorComment is LO: at most 64 characters (PS3.7 C.4.2.1.4).
        ds.ErrorComment = comment.replace("\\", "/")[:64]
    return ds


def _status_for(outcome: StoreOutcome | None, exc: BaseException | None) -> Dataset:
    """The one translation of ingest results and exceptions into C-STORE statuses."""
    if exc is not None:
        if isinstance(exc, OSError):
            return _status(OUT_OF_RESOURCES, f"storage failure: {exc.strerror or exc}")
        return _status(PROCESSING_FAILURE, f"processing failure: {type(exc).__name__}")
    assert outcome is not None
    if outcome.status is not StoreStatus.QUARANTINED:
        return _status(SUCCESS)
    rules = {f.rule for f in outcome.findings if f.severity == "error"}
    code = CANNOT_UNDERSTAND if rules & {Rule.NOT_DICOM.value} else DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    return _status(code, f"quarantined #{outcome.quarantine_id}: {outcome.reason}")


class _SupportedContexts(list[PresentationContext]):
    """The server's supported contexts, cheap to copy for each new association.

    pynetdicom deep-copies the acceptor's supported contexts for every association
    (``RequestHandler._create_association``). With every storage SOP class times every
    transfer syntax (171 x 45) that costs about 130 ms an association — most of a C-ECHO, and
    the whole budget of a modality that opens one association per image. A context's only
    mutable part is its transfer syntax list (the rest are UIDs, ints, booleans and None), so a
    shallow copy with its own list is the same copy, in well under a millisecond.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        out = []
        for cx in self:
            dup = copy.copy(cx)
            dup._transfer_syntax = list(cx._transfer_syntax)
            out.append(dup)
        return out


class StoreScp:
    """The SCP; ``start()`` runs it in background threads, ``stop()`` shuts it down."""

    def __init__(self, service: IngestService, config: ScpConfig,
                 on_stored: Callable[[StoreOutcome], None] | None = None) -> None:
        self.service = service
        self.config = config
        self.on_stored = on_stored
        self._server: ThreadedAssociationServer | None = None
        ae = AE(ae_title=config.ae_title)
        ae.maximum_pdu_size = config.max_pdu_bytes
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        ae.maximum_associations = 32
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        self.ae = ae

    @property
    def port(self) -> int:
        if self._server is None:
            return self.config.port
        return int(self._server.server_address[1])

    def start(self) -> None:
        handlers: list[Any] = [
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_CONN_OPEN, self._on_conn_open),
        ]
        server = self.ae.start_server(
            (self.config.host, self.config.port), block=False, evt_handlers=handlers)
        assert server is not None  # block=False returns the running server
        if isinstance(getattr(server, "contexts", None), list):
            server.contexts = _SupportedContexts(server.contexts)
        self._server = server
        log.info("DICOM SCP %s listening on %s:%d", self.config.ae_title, self.config.host,
                 self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    @staticmethod
    def _on_conn_open(event: evt.Event) -> None:
        # Answer each C-STORE at once: without TCP_NODELAY the small response waits on the
        # peer's delayed ACK (about 40 ms a round trip).
        sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    @staticmethod
    def _on_echo(event: evt.Event) -> int:
        return SUCCESS

    def _on_store(self, event: evt.Event) -> Dataset:
        outcome: StoreOutcome | None = None
        error: BaseException | None = None
        try:
            data = event.encoded_dataset(include_meta=True)
            outcome = self.service.store(
                data, source="c-store", calling_ae_title=event.assoc.requestor.ae_title,
                origin=f"{event.assoc.requestor.address}:{event.assoc.requestor.port}")
        except Exception as exc:  # one place turns every failure into a DIMSE status
            log.exception("C-STORE failed")
            error = exc
        if outcome is not None and self.on_stored is not None:
            try:
                self.on_stored(outcome)
            except Exception:
                log.exception("on_stored callback failed")
        return _status_for(outcome, error)
