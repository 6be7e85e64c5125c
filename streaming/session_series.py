"""The series a render session can show: its study's volumetric series and those of the
patient's prior studies named in ``POST /api/sessions`` (``prior_study_uids``), read from the
catalog and the volumes' attributes (no voxels), and the ``series`` message that puts one of
them in a viewport.

The facts sent to the viewer (``series`` of the session description) include the volume
metadata's ``four_corner`` text, patient data among it: it goes to the client that asked for
the session, never to a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest import queries
from render_engine.geometry import VolumeGeometry
from render_engine.planes import Orientation
from render_engine.view import ViewState, Window
from streaming.app import ApiError
from streaming.layouts import SeriesInfo, first_view
from streaming.protocol import ProtocolError
from streaming.runtime import Runtime

MAX_PRIOR_STUDIES = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSeries:
    """Every volumetric series of a session, over its studies (the current one first).

    ``infos`` in catalog order, study by study; ``paths`` series UID → published volume path;
    ``geometries`` series UID → level-0 geometry (patient LPS mm, ``(z, y, x)``); ``facts``
    series UID → the JSON entry of the session's ``series`` list.
    """

    studies: tuple[str, ...]
    infos: tuple[SeriesInfo, ...]
    paths: dict[str, str]
    geometries: dict[str, VolumeGeometry]
    facts: dict[str, dict[str, Any]]

    def __post_init__(self) -> None:
        if not self.studies:
            raise ValueError("a session needs at least one study")
        if {s.series_uid for s in self.infos} != set(self.paths):
            raise ValueError("every series needs exactly one volume path")

    @property
    def study_uid(self) -> str:
        return self.studies[0]

    @property
    def frames_of_reference(self) -> dict[str, str]:
        """Series UID → FrameOfReferenceUID ("" unknown)."""
        return {s.series_uid: s.frame_of_reference_uid for s in self.infos}

    def of_study(self, study_uid: str) -> list[SeriesInfo]:
        return [s for s in self.infos if s.study_uid == study_uid]

    def info(self, series_uid: str) -> SeriesInfo | None:
        return next((s for s in self.infos if s.series_uid == series_uid), None)

    def to_json(self) -> list[dict[str, Any]]:
        return [self.facts[s.series_uid] for s in self.infos]


def prior_study_uids(body: dict[str, Any], study_uid: str) -> list[str]:
    """The ``prior_study_uids`` of a ``POST /api/sessions`` body: distinct UIDs other than
    ``study_uid``, in the given order; :class:`ApiError` 400 for anything but a list of at
    most :data:`MAX_PRIOR_STUDIES` non-empty strings."""
    raw = body.get("prior_study_uids")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(u, str) and u for u in raw):
        raise ApiError(400, "prior_study_uids must be a list of study instance UIDs")
    priors = list(dict.fromkeys(u for u in raw if u != study_uid))
    if len(priors) > MAX_PRIOR_STUDIES:
        raise ApiError(400, f"prior_study_uids: at most {MAX_PRIOR_STUDIES} prior studies, "
                            f"got {len(priors)}")
    return priors


def load_session_series(runtime: Runtime, study_uid: str,
                        priors: list[str] | tuple[str, ...] = ()) -> SessionSeries:
    """The volumetric series of ``study_uid`` and of each prior study (blocking: catalog and
    volume attributes). Raises :class:`~ingest.errors.NotFoundError` (404) for an unknown
    study and :class:`ApiError` 400 for a prior of another patient (another PatientID or
    IssuerOfPatientID, PS3.3 C.7.1.1)."""
    patient = queries.study_patient(runtime.catalog, study_uid)
    for i, prior in enumerate(priors):
        if queries.study_patient(runtime.catalog, prior) != patient:
            raise ApiError(400, f"prior_study_uids[{i}]: study {prior} belongs to another "
                                f"patient than study {study_uid} (PatientID and issuer must "
                                "be the same)")
    infos: list[SeriesInfo] = []
    paths: dict[str, str] = {}
    geometries: dict[str, VolumeGeometry] = {}
    facts: dict[str, dict[str, Any]] = {}
    for uid in (study_uid, *priors):
        _study_series(runtime, uid, infos, paths, geometries, facts)
    return SessionSeries(studies=(study_uid, *priors), infos=tuple(infos), paths=paths,
                         geometries=geometries, facts=facts)


def _study_series(runtime: Runtime, study_uid: str, infos: list[SeriesInfo],
                  paths: dict[str, str], geometries: dict[str, VolumeGeometry],
                  facts: dict[str, dict[str, Any]]) -> None:
    """Add the series of one study that have volumes (a single-slice series only for CT)."""
    study = queries.get_study(runtime.catalog, study_uid)
    published = queries.volume_paths(runtime.catalog, study_uid)
    for s in study["series"]:
        uid = s["series_uid"]
        if uid not in published or uid in paths:
            continue
        handle = runtime.volumes.open(published[uid])
        meta = handle.metadata
        geometry = handle.geometry(0)
        if geometry.shape[0] < 2 and s["modality"] != "CT":
            continue
        modality = str(meta.get("modality") or s["modality"] or "")
        is_suv = modality == "PT" and bool(meta.get("suv_bw_factor"))
        presets = meta.get("window_presets") or []
        window = None
        if presets and float(presets[0]["width"]) >= 1:
            window = Window(center=float(presets[0]["center"]), width=float(presets[0]["width"]))
        info = SeriesInfo(
            series_uid=uid, modality=modality,
            description=str(s.get("series_description") or ""),
            instance_count=int(s["instance_count"]), shape=geometry.shape,
            frame_of_reference_uid=str(meta.get("frame_of_reference_uid") or ""),
            default_window=None if is_suv else window, is_suv=is_suv, study_uid=study_uid)
        infos.append(info)
        paths[uid] = published[uid]
        geometries[uid] = geometry
        facts[uid] = {
            "series_uid": uid, "study_uid": study_uid, "modality": modality,
            "series_number": s.get("series_number"),
            "series_description": info.description,
            "frame_of_reference_uid": info.frame_of_reference_uid,
            "shape": list(geometry.shape),
            # The units the renderer shows (streaming.volumes.as_render_volume).
            "units": "SUVbw" if is_suv else str(meta.get("units") or ""),
            "is_suv": is_suv, "four_corner": dict(meta.get("four_corner") or {}),
        }


def series_message_view(message: dict[str, Any], state: ViewState,
                        series: SessionSeries) -> ViewState:
    """The view a ``series`` message asks for (``series_uid``, optional ``orientation``):
    that series' first view (:func:`streaming.layouts.first_view`) at the viewport's current
    size. Raises :class:`ProtocolError` (``unknown_series`` for a series the session does not
    have)."""
    seq = message.get("seq")
    uid = message.get("series_uid")
    if not isinstance(uid, str) or not uid:
        raise ProtocolError("series: series_uid must be a series instance UID", seq=seq)
    info = series.info(uid)
    if info is None:
        raise ProtocolError(f"series: {uid} is not a volume of this session's studies",
                            code="unknown_series", seq=seq)
    orientation = message.get("orientation")
    if orientation is not None and orientation not in tuple(Orientation):
        raise ProtocolError(f"series: orientation must be one of "
                            f"{', '.join(o.value for o in Orientation)}, got {orientation!r}",
                            seq=seq)
    return first_view(info, state.output_size_px,
                      Orientation(orientation) if orientation is not None else None)
