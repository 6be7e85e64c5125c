"""The wire form of ViewState: what a session echoes, /api/render reads back unchanged."""

from __future__ import annotations

import pytest

from render_engine.planes import Orientation
from render_engine.view import ViewState
from streaming.app import ApiError
from streaming.view_schema import parse_view, view_to_json

FULL = {
    "series_uid": "1.2.840.1",
    "plane": {"center_lps": [1.0, 2.0, 3.0], "row_dir": [1.0, 0.0, 0.0],
              "col_dir": [0.0, 0.0, -1.0], "pixel_spacing_mm": 0.7, "size_px": [300, 200]},
    "orientation": None, "cpr": None, "position_mm": None, "slice_index": None, "size_px": [256, 256],
    "orbit_deg": [10.0, -5.0], "rotation_deg": 90.0, "flip_horizontal": True,
    "flip_vertical": False, "zoom": 2.5, "pan_px": [3.0, -4.0],
    "slab": {"mode": "minip", "thickness_mm": 12.0}, "interpolation": "nearest",
    "window": {"center": -600.0, "width": 1500.0}, "preset": None, "invert": True,
    "colormap": "jet",
    "layers": [{"series_uid": "1.2.840.2", "window": None, "preset": "pet-suv-0-10",
                "colormap": "pet", "opacity": 0.3}],
    "masks": [{"shape": "ellipse", "center_lps": [0.0, 0.0, 0.0], "half_size_mm": [5.0, 3.0],
               "color": [0, 0, 0]},
              {"shape": "rectangle", "center_px": [4.0, 4.0], "half_size_px": [2.0, 2.0],
               "color": [0, 0, 0]}],
    "render3d": {"method": "vr", "preset": "ct-vessels", "projection": "perspective",
                 "shading": False},
}


def test_the_full_state_round_trips() -> None:
    state = parse_view(FULL)
    assert isinstance(state, ViewState)
    assert view_to_json(state) == FULL
    assert view_to_json(parse_view(view_to_json(state))) == FULL


def test_shorthand_states_are_completed_with_defaults() -> None:
    state = parse_view({"series_uid": "1.2", "orientation": "sagittal", "slice_index": 7})
    assert state.orientation is Orientation.SAGITTAL and state.output_size_px == (512, 512)
    out = view_to_json(state)
    assert out["plane"] is None and out["orientation"] == "sagittal" and out["zoom"] == 1.0


@pytest.mark.parametrize("body", [
    None, [], {"series_uid": ""}, {"series_uid": "1.2"},
    {"series_uid": "1.2", "orientation": "axial", "window": {"center": 0, "width": 0}},
    {"series_uid": "1.2", "orientation": "axial", "slab": {"mode": "sum", "thickness_mm": 1}},
    {"series_uid": "1.2", "orientation": "axial", "zoom": float("nan")},
    {"series_uid": "1.2", "orientation": "axial", "layers": [{}] * 5},
])
def test_invalid_states_are_400(body: object) -> None:
    with pytest.raises(ApiError) as info:
        parse_view(body)
    assert info.value.status == 400 and info.value.message.startswith("invalid view state")
