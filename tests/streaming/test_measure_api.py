"""POST /api/measure and POST /api/locate on a real server with the ACRIN PET-CT."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.conftest import ServerProcess
from tests.streaming.test_render_api import _raw, _series

pytestmark = pytest.mark.integration

VIEW = {"orientation": "axial", "slice_index": 60, "size_px": [256, 256], "zoom": 1.4}


@pytest.fixture(scope="module")
def server(archive_server: ServerProcess) -> ServerProcess:
    return archive_server


def _measure(server: ServerProcess, view: dict, shapes: list) -> requests.Response:
    return server.http.post(f"{server.url}/api/measure", json={"view": view, "shapes": shapes},
                            timeout=60)


def test_roi_statistics_are_those_of_the_raw_values(server: ServerProcess) -> None:
    view = {"series_uid": _series(server, "CT IMAGES")} | VIEW
    values, r = _raw(server, view)
    shapes = [{"type": "ellipse", "center_px": [128, 120], "radii_px": [40, 25]},
              {"type": "rectangle", "from_px": [60, 70], "to_px": [90, 100]},
              {"type": "circle", "center_px": [100, 140], "radius_px": 12},
              {"type": "point", "at_px": [77, 81]},
              {"type": "line", "from_px": [10, 10], "to_px": [40, 50]}]
    reply = _measure(server, view, shapes)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    spacing = body["plane"]["pixel_spacing_mm"]
    ellipse, rect, circle, point, line = body["results"]
    y, x = np.mgrid[0:256, 0:256]
    masks = [((x - 128) / 40) ** 2 + ((y - 120) / 25) ** 2 <= 1,
             (x >= 60) & (x <= 90) & (y >= 70) & (y <= 100),
             (x - 100) ** 2 + (y - 140) ** 2 <= 12 ** 2]
    for result, mask in zip((ellipse, rect, circle), masks, strict=True):
        inside = values[mask & np.isfinite(values)]
        assert result["units"] == "HU" and result["count"] == inside.size
        assert result["mean"] == pytest.approx(float(inside.mean()), abs=0.1)
        assert result["std"] == pytest.approx(float(inside.std()), abs=0.1)
        assert result["median"] == pytest.approx(float(np.median(inside)), abs=0.1)
        assert (result["min"], result["max"]) == pytest.approx(
            (float(inside.min()), float(inside.max())), abs=1e-3)
        assert result["area_mm2"] == pytest.approx(inside.size * spacing ** 2, rel=1e-6)
        assert sum(result["histogram"]["counts"]) + result["histogram"]["below"] \
            + result["histogram"]["above"] == result["count"]
    assert ellipse["area_mm2"] == pytest.approx(np.pi * 40 * 25 * spacing ** 2, rel=0.01)
    assert point["value"] == pytest.approx(float(values[81, 77]), abs=1e-3)
    assert line["length_mm"] == pytest.approx(np.hypot(30, 40) * spacing, rel=1e-9)


def test_shapes_in_patient_coordinates_equal_their_pixel_twins(server: ServerProcess) -> None:
    view = {"series_uid": _series(server, "CT IMAGES")} | VIEW
    px = _measure(server, view, [{"type": "circle", "center_px": [120, 110],
                                  "radius_px": 20}]).json()
    plane = px["plane"]
    s = plane["pixel_spacing_mm"]
    center = (np.array(plane["center_lps"]) + (120 - 127.5) * s * np.array(plane["row_dir"])
              + (110 - 127.5) * s * np.array(plane["col_dir"]))
    lps = _measure(server, view, [{"type": "circle", "center_lps": center.tolist(),
                                   "radius_mm": 20 * s}]).json()
    for key in ("mean", "count", "area_mm2", "max"):
        assert lps["results"][0][key] == pytest.approx(px["results"][0][key], rel=1e-6)


def test_pet_roi_is_in_suv(server: ServerProcess) -> None:
    view = {"series_uid": _series(server, "PET AC"), "orientation": "coronal",
            "size_px": [128, 128]}
    body = _measure(server, view, [{"type": "rectangle", "from_px": [0, 0],
                                    "to_px": [127, 127]}]).json()
    result = body["results"][0]
    assert result["units"] == "SUVbw" and 0.0 <= result["mean"] < 5.0 and result["max"] > 2.0


@pytest.mark.parametrize(("body", "status"), [
    ({"view": None, "shapes": []}, 400),
    ({"shapes": [{"type": "point", "at_px": [1, 1]}]}, 400),
    ({"view": {"series_uid": "1.2.3", "orientation": "axial"},
      "shapes": [{"type": "point", "at_px": [1, 1]}]}, 404),
    ({"view": "CT", "shapes": [{"type": "point", "at_px": [1, 1]}]}, 400),
    ([1, 2], 400),
])
def test_bad_measure_requests(server: ServerProcess, body: object, status: int) -> None:
    r = server.http.post(f"{server.url}/api/measure", json=body, timeout=30)
    assert r.status_code == status and r.json()["error"], r.text


@pytest.mark.parametrize("shape", [
    {"type": "hexagon"}, {"type": "circle", "center_px": [1, 1], "radius_px": -2},
    {"type": "line", "from_px": [1, 1]}, {"type": "point", "at_px": ["a", 1]}])
def test_bad_shapes_are_400(server: ServerProcess, shape: dict) -> None:
    view = {"series_uid": _series(server, "CT IMAGES")} | VIEW
    r = _measure(server, view, [shape])
    assert r.status_code == 400 and "shape" in r.json()["error"], r.text


def test_lesion_sync_finds_the_point_in_the_pet(server: ServerProcess) -> None:
    ct, pet = _series(server, "CT IMAGES"), _series(server, "PET AC")
    view = {"series_uid": ct} | VIEW
    r = server.http.post(f"{server.url}/api/locate", json={"view": view, "at_px": [100, 90]},
                         timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    found = {s["series_uid"]: s for s in body["series"]}
    assert ct in found and pet in found
    point = np.array(body["point_lps"])
    assert found[ct]["nearest_slice_index"] == 60 and found[ct]["slice_distance_mm"] < 0.01
    for where in found.values():
        assert where["inside"]
        axial = where["views"]["axial"]
        plane = axial["plane"]
        x, y = axial["position_px"]
        w, h = plane["size_px"]
        s = plane["pixel_spacing_mm"]
        back = (np.array(plane["center_lps"]) + (x - (w - 1) / 2) * s * np.array(plane["row_dir"])
                + (y - (h - 1) / 2) * s * np.array(plane["col_dir"]))
        np.testing.assert_allclose(back, point, atol=1e-6)
    # The same point given in patient coordinates answers the same.
    again = server.http.post(f"{server.url}/api/locate", json={
        "series_uid": pet, "point_lps": body["point_lps"]}, timeout=60).json()
    assert {s["series_uid"]: s["nearest_slice_index"] for s in again["series"]}[ct] == 60


@pytest.mark.parametrize("body", [{}, {"series_uid": "1.2"}, {"point_lps": [0, 0, 0]},
                                  {"series_uid": "x", "point_lps": [0, 0]}, [0]])
def test_bad_locate_requests(server: ServerProcess, body: object) -> None:
    r = server.http.post(f"{server.url}/api/locate", json=body, timeout=30)
    assert r.status_code in (400, 404) and r.json()["error"], r.text
