"""Session messages as changes of the view state, in millimetres; adaptive quality steps."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.geometry import VolumeGeometry
from render_engine.view import Render3D, ViewState, Window
from streaming.interaction import apply, page
from streaming.protocol import ProtocolError, pack_frame, parse_message, unpack_frame
from streaming.quality import LEVELS, AdaptiveQuality

GEOMETRY = VolumeGeometry(shape=(50, 100, 120), affine=np.array(
    [[0.0, 0.0, 0.8, -50.0], [0.0, 0.8, 0.0, -40.0], [2.5, 0.0, 0.0, 10.0], [0, 0, 0, 1.0]]))
WINDOW = Window(center=40.0, width=400.0)


def _do(state: ViewState, **message: object) -> ViewState:
    return apply({"seq": 1, **message}, state, GEOMETRY, state, WINDOW)


def test_paging_moves_by_slices_and_clamps_to_the_volume() -> None:
    acq = ViewState(series_uid="s", orientation="acquisition", slice_index=25.0)
    assert _do(acq, type="page", delta=3).slice_index == 28
    assert _do(acq, type="page", delta=100).slice_index == 49
    assert _do(acq, type="page", delta=-100).slice_index == 0
    assert page(acq, GEOMETRY, delta=30, wrap=True).slice_index == 5
    coronal = ViewState(series_uid="s", orientation="coronal", size_px=(128, 128))
    before = coronal.plane_for(GEOMETRY).center_lps
    after = _do(coronal, type="page", delta=2).plane_for(GEOMETRY).center_lps
    assert np.linalg.norm(after - before) == pytest.approx(2 * 0.8)  # the y voxel step
    far = _do(coronal, type="page", position_mm=1e5).plane_for(GEOMETRY).center_lps
    assert far[1] == pytest.approx(-40.0 + 99 * 0.8)  # the last row of voxels


def test_zoom_about_a_point_keeps_that_point_under_the_pointer() -> None:
    state = ViewState(series_uid="s", orientation="axial", size_px=(200, 160))
    at = (150.0, 40.0)
    before = state.plane_for(GEOMETRY).pixel_to_patient(at[1], at[0])
    zoomed = _do(state, type="zoom", factor=2.5, at_px=list(at))
    after = zoomed.plane_for(GEOMETRY).pixel_to_patient(at[1], at[0])
    assert zoomed.zoom == 2.5
    np.testing.assert_allclose(after, before, atol=1e-9)


def test_window_drag_scales_with_the_width() -> None:
    state = ViewState(series_uid="s", orientation="axial", window=WINDOW)
    wider = _do(state, type="window", drag_px=[256, 0]).window
    assert wider is not None and wider.width == pytest.approx(400 * np.e)
    brighter = _do(state, type="window", drag_px=[0, 64]).window
    assert brighter is not None and brighter.center == pytest.approx(40 - 100)


def test_bad_values_are_protocol_errors_naming_the_field() -> None:
    state = ViewState(series_uid="s", orientation="axial")
    for message, field in (({"type": "zoom", "factor": "big"}, "factor"),
                           ({"type": "size", "size_px": [5, 10]}, "size_px"),
                           ({"type": "preset", "name": "nope"}, "preset"),
                           ({"type": "mode", "render": "x-ray"}, "render"),
                           ({"type": "view", "set": {"zoom": -1}}, "zoom")):
        with pytest.raises(ProtocolError, match=field):
            _do(state, **message)
    three_d = ViewState(series_uid="s", orientation="coronal", render3d=Render3D())
    with pytest.raises(ProtocolError, match="3D"):
        _do(three_d, type="page", delta=1)


def test_protocol_frames_and_messages() -> None:
    header = {"viewport": "v0", "frame_seq": 3, "kind": "lossless"}
    assert unpack_frame(pack_frame(header, b"\x89PNG")) == (header, b"\x89PNG")
    assert parse_message('{"type": "page", "delta": 1}')["seq"] == 0
    for raw, code in (("[1]", "bad_message"), ("{", "bad_json"),
                      ('{"type": "x"}', "unknown_type"),
                      ('{"type": "page", "seq": -1}', "bad_message")):
        with pytest.raises(ProtocolError) as err:
            parse_message(raw)
        assert err.value.code == code


def test_adaptive_quality_steps_coarser_when_slow_and_back_when_fast() -> None:
    q = AdaptiveQuality(target_fps=30)
    for _ in range(10):
        q.record(120.0)  # a slab MIP at full size on a small CPU
    assert q.downscale >= 2
    coarse_level = q.level
    for _ in range(40):  # frames got cheap (the user stopped thickening the slab)
        q.record(2.0)
    assert q.level < coarse_level and q.level == 0
    assert LEVELS[0][0] == 1.0


def test_stopping_cine_restores_the_interactive_frame_budget() -> None:
    from streaming.sessions import Session, Viewport

    vp = Viewport(id="v0", state=ViewState(series_uid="s", orientation="axial"),
                  initial=ViewState(series_uid="s", orientation="axial"))
    vp.quality.target_fps = 10.0  # as a 10 fps cine sets it
    Session._cine(None, vp, {"type": "cine", "seq": 1, "action": "stop"})  # type: ignore[arg-type]
    assert vp.quality.target_fps == 30.0 and vp.cine_fps == 0.0

