"""Viewer layouts and the first view of each viewport.

A layout is a grid (columns × rows) of viewports, each with its first ``ViewState``: the
acquisition plane at the middle slice of the study's main series, its own window (or the
modality's preset), fitted to the viewport. PET-CT layouts put the CT, the PET (SUVbw), their
fusion and a rotating-ready PET MIP side by side; they need a CT and a PET in one frame of
reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from render_engine.planes import Orientation
from render_engine.view import Layer, Render3D, ViewState, Window
from streaming.app import ApiError

DEFAULT_VIEWPORT_PX = (512, 512)
FUSION_OPACITY = 0.5


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What the layouts need to know about one volumetric series."""

    series_uid: str
    modality: str
    description: str
    instance_count: int
    shape: tuple[int, int, int]
    frame_of_reference_uid: str
    default_window: Window | None
    is_suv: bool
    study_uid: str = ""


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    columns: int
    rows: int
    description: str
    petct: bool = False


LAYOUTS: dict[str, Layout] = {x.name: x for x in (
    Layout("1x1", 1, 1, "one viewport"),
    Layout("1x2", 2, 1, "two viewports side by side"),
    Layout("2x1", 1, 2, "two viewports one above the other"),
    Layout("2x2", 2, 2, "four viewports"),
    Layout("3x3", 3, 3, "nine viewports"),
    Layout("mpr", 2, 2, "axial, coronal and sagittal planes and a 3D view of one series"),
    Layout("petct-fusion", 1, 1, "PET fused on CT", petct=True),
    Layout("petct-1x3", 3, 1, "CT, PET and fusion, axial", petct=True),
    Layout("petct-2x2", 2, 2, "CT, PET, fusion (axial) and the PET MIP", petct=True),
    Layout("petct-fusion-mip", 2, 1, "fusion (axial) and the PET MIP", petct=True),
    Layout("petct-mpr", 3, 3, "CT, PET and fusion in axial, coronal and sagittal planes",
           petct=True),
    Layout("petct-3x2", 3, 2, "CT, PET and fusion, axial above coronal", petct=True),
)}


def _main(series: list[SeriesInfo], modality: str | None = None) -> SeriesInfo | None:
    """The series a reader looks at first: the largest of the modality (CT before others),
    preferring attenuation-corrected PET with an SUV factor."""
    pool = [s for s in series if modality is None or s.modality == modality]
    if not pool:
        return None
    return max(pool, key=lambda s: (s.modality == "CT", s.is_suv,
                                    "NAC" not in s.description.upper(),
                                    s.shape[0] * s.shape[1] * s.shape[2], s.instance_count))


def _plane_view(s: SeriesInfo, orientation: Orientation, size: tuple[int, int], **extra: Any
                ) -> ViewState:
    if s.modality == "PT" and s.is_suv:
        display: dict[str, Any] = {"preset": "pet-suv-0-5"}
    elif s.default_window is not None:
        display = {"window": s.default_window}
    else:
        display = {}
    where: dict[str, Any] = {}
    if orientation is Orientation.ACQUISITION:
        where["slice_index"] = float(s.shape[0] // 2)
    return ViewState(series_uid=s.series_uid, orientation=orientation, size_px=size,
                     **where, **display, **extra)


def first_view(s: SeriesInfo, size: tuple[int, int],
               orientation: Orientation | None = None) -> ViewState:
    """The view a layout first shows of series ``s`` (the ``series`` message too): the
    acquisition plane at the middle slice unless ``orientation`` is given, its own window
    (CT) or SUV 0-5 (PET in SUVbw), fitted to a viewport of ``size`` (w, h) pixels."""
    return _plane_view(s, orientation or Orientation.ACQUISITION, size)


def _fusion(ct: SeriesInfo, pet: SeriesInfo, orientation: Orientation,
            size: tuple[int, int]) -> ViewState:
    layer = Layer(series_uid=pet.series_uid, window=Window(center=2.5, width=5.0)
                  if pet.is_suv else None, colormap="hot-iron", opacity=FUSION_OPACITY)
    return _plane_view(ct, orientation, size, layers=(layer,))


def _pet_mip(pet: SeriesInfo, size: tuple[int, int]) -> ViewState:
    display: dict[str, Any] = {"preset": "pet-suv-0-10"} if pet.is_suv else {"invert": True}
    return ViewState(series_uid=pet.series_uid, orientation=Orientation.CORONAL, size_px=size,
                     render3d=Render3D(method="mip"), **display)


def _three_d(s: SeriesInfo, size: tuple[int, int]) -> ViewState:
    if s.modality == "PT":
        return _pet_mip(s, size)
    return ViewState(series_uid=s.series_uid, orientation=Orientation.CORONAL, size_px=size,
                     render3d=Render3D(method="vr", preset="ct-bone"))


def initial_views(layout_name: str, series: list[SeriesInfo],
                  size: tuple[int, int] = DEFAULT_VIEWPORT_PX) -> list[ViewState]:
    """The first view of every viewport of ``layout_name`` for a study's volumetric
    ``series``; raises :class:`ApiError` 400 for an unknown layout or one the study cannot
    fill (a PET-CT layout without a CT and a PET in one frame of reference)."""
    layout = LAYOUTS.get(layout_name)
    if layout is None:
        raise ApiError(400, f"unknown layout {layout_name!r}; known: {', '.join(LAYOUTS)}")
    main = _main(series)
    if main is None:
        raise ApiError(409, "the study has no series with a volume to show yet")
    acq, ax, co, sa = (Orientation.ACQUISITION, Orientation.AXIAL, Orientation.CORONAL,
                       Orientation.SAGITTAL)
    if layout.petct:
        ct, pet = _main(series, "CT"), _main(series, "PT")
        if ct is None or pet is None:
            raise ApiError(400, f"layout {layout_name} needs a CT and a PET series with volumes")
        if ct.frame_of_reference_uid and pet.frame_of_reference_uid \
                and ct.frame_of_reference_uid != pet.frame_of_reference_uid:
            raise ApiError(400, f"layout {layout_name} needs the CT and the PET in one frame of "
                                "reference; these are not (register them first)")
        views = {
            "petct-fusion": [_fusion(ct, pet, ax, size)],
            "petct-1x3": [_plane_view(ct, ax, size), _plane_view(pet, ax, size),
                          _fusion(ct, pet, ax, size)],
            "petct-2x2": [_plane_view(ct, ax, size), _plane_view(pet, ax, size),
                          _fusion(ct, pet, ax, size), _pet_mip(pet, size)],
            "petct-fusion-mip": [_fusion(ct, pet, ax, size), _pet_mip(pet, size)],
            "petct-mpr": [v for o in (ax, co, sa) for v in (
                _plane_view(ct, o, size), _plane_view(pet, o, size), _fusion(ct, pet, o, size))],
            "petct-3x2": [v for o in (ax, co) for v in (
                _plane_view(ct, o, size), _plane_view(pet, o, size), _fusion(ct, pet, o, size))],
        }[layout_name]
        if layout_name == "petct-mpr":  # rows CT / PET / fusion, columns axial / coronal / sagittal
            views = [views[3 * c + r] for r in range(3) for c in range(3)]
        return views
    if layout_name == "mpr":
        return [_plane_view(main, ax, size), _plane_view(main, co, size),
                _plane_view(main, sa, size), _three_d(main, size)]
    # Grids: one series per viewport, the main one first, then the others by size; a grid with
    # more viewports than series repeats the main series in the other standard planes.
    ordered = [main] + sorted((s for s in series if s is not main),
                              key=lambda s: -s.shape[0] * s.shape[1] * s.shape[2])
    n = layout.columns * layout.rows
    views = [_plane_view(s, acq, size) for s in ordered[:n]]
    extra = [ax, co, sa, acq]
    while len(views) < n:
        views.append(_plane_view(main, extra[(len(views) - len(ordered)) % len(extra)], size))
    return views


# The grid layouts that compare studies when a session has priors.
COMPARISON_GRIDS = frozenset({"1x1", "1x2", "2x1", "2x2", "3x3"})
_COMPARISON_ORIENTATIONS = (Orientation.ACQUISITION, Orientation.CORONAL, Orientation.SAGITTAL,
                            Orientation.AXIAL)


def study_views(layout_name: str, studies: list[list[SeriesInfo]],
                size: tuple[int, int] = DEFAULT_VIEWPORT_PX) -> list[ViewState]:
    """First views for a session over several studies of one patient (``studies``: each
    study's volumetric series, the current study first, then the priors). A grid layout
    (:data:`COMPARISON_GRIDS`) fills viewport ``i`` with the main series of study
    ``i % k`` (``k`` studies) in the orientation ``[acquisition, coronal, sagittal,
    axial][(i // k) % 4]``; every other layout, and a single study, as
    :func:`initial_views` over the current study. Raises :class:`ApiError` (409 for a study
    without a volume yet, 400 as :func:`initial_views`)."""
    if len(studies) == 1 or layout_name not in COMPARISON_GRIDS:
        return initial_views(layout_name, studies[0], size)
    mains = []
    for i, series in enumerate(studies):
        main = _main(series)
        if main is None:
            which = "the study" if i == 0 else f"prior_study_uids[{i - 1}]"
            raise ApiError(409, f"{which} has no series with a volume to show yet")
        mains.append(main)
    layout, k = LAYOUTS[layout_name], len(mains)
    return [_plane_view(mains[i % k], _COMPARISON_ORIENTATIONS[(i // k) % 4], size)
            for i in range(layout.columns * layout.rows)]
