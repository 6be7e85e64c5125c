"""POST /api/render on a real server: raw values against SimpleITK, windowing per DICOM."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
import SimpleITK as sitk
from PIL import Image

from tests.conftest import ServerProcess, data_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(archive_server: ServerProcess) -> ServerProcess:
    return archive_server


def _series(server: ServerProcess, description: str) -> str:
    study = server.http.get(f"{server.url}/api/studies", params={
        "PatientID": "ACRIN-NSCLC-FDG-PET-042"}, timeout=30).json()[0]
    detail = server.http.get(f"{server.url}/api/studies/{study['study_uid']}", timeout=30).json()
    return next(s["series_uid"] for s in detail["series"]
                if s["series_description"] == description)


def _sitk(folder: str) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(data_path("petct-acrin042", folder))))
    return sitk.Cast(reader.Execute(), sitk.sitkFloat32)


def _oblique_plane(image: sitk.Image, size: int = 256) -> dict:
    center = image.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in image.GetSize()])
    a = np.radians(20)
    row = np.array([np.cos(a), 0.0, np.sin(a)])
    col = np.array([0.0, 1.0, 0.0])
    return {"center_lps": list(center), "row_dir": row.tolist(), "col_dir": col.tolist(),
            "pixel_spacing_mm": 1.3, "size_px": [size, size]}


def _reference(image: sitk.Image, plane: dict) -> np.ndarray:
    w, h = plane["size_px"]
    row, col = np.array(plane["row_dir"]), np.array(plane["col_dir"])
    s = plane["pixel_spacing_mm"]
    origin = np.array(plane["center_lps"]) - (w - 1) / 2 * s * row - (h - 1) / 2 * s * col
    grid = sitk.Image(w, h, 1, sitk.sitkFloat32)
    grid.SetOrigin(tuple(origin))
    grid.SetSpacing((s, s, 1.0))
    grid.SetDirection(tuple(np.column_stack([row, col, np.cross(row, col)]).ravel()))
    out = sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, float("nan"))
    return sitk.GetArrayFromImage(out)[0]


def _raw(server: ServerProcess, body: dict) -> tuple[np.ndarray, requests.Response]:
    r = server.http.post(f"{server.url}/api/render", params={"format": "raw"}, json=body,
                         timeout=60)
    assert r.status_code == 200, r.text
    h, w = (int(v) for v in r.headers["X-Shape"].split(","))
    return np.frombuffer(r.content, dtype="<f4").reshape(h, w), r


def test_raw_ct_plane_matches_simpleitk(server: ServerProcess) -> None:
    image = _sitk("CT")
    plane = _oblique_plane(image)
    values, r = _raw(server, {"series_uid": _series(server, "CT IMAGES"), "plane": plane})
    assert r.headers["X-Units"] == "HU"
    ref = _reference(image, plane)
    both = np.isfinite(values) & np.isfinite(ref)
    assert both.mean() > 0.5
    # Within a voxel of the border the two inside rules may differ; elsewhere <= 1 HU.
    inner = both & np.roll(both, 2, 0) & np.roll(both, -2, 0) & np.roll(both, 2, 1) & np.roll(
        both, -2, 1)
    assert np.max(np.abs(values[inner] - ref[inner])) <= 1.0


def test_pet_is_rendered_in_suv(server: ServerProcess) -> None:
    image = _sitk("PT_AC")
    plane = _oblique_plane(image, 128)
    uid = _series(server, "PET AC")
    values, r = _raw(server, {"series_uid": uid, "plane": plane})
    assert r.headers["X-Units"] == "SUVbw"
    factor = server.http.get(f"{server.url}/api/series/{uid}/volume", timeout=30).json()[
        "suv_bw_factor"]
    ref = _reference(image, plane) * factor  # activity (Bq/ml) × SUVbw factor
    both = np.isfinite(values) & np.isfinite(ref) & (ref > 0.5)
    assert both.sum() > 100
    np.testing.assert_allclose(values[both], ref[both], rtol=1e-3, atol=0.01)


def test_png_is_the_dicom_linear_window_of_the_raw_values(server: ServerProcess) -> None:
    uid = _series(server, "CT IMAGES")
    plane = _oblique_plane(_sitk("CT"), 200)
    values, _ = _raw(server, {"series_uid": uid, "plane": plane})
    for invert in (False, True):
        r = server.http.post(f"{server.url}/api/render", json={
            "series_uid": uid, "plane": plane, "window": {"center": 40, "width": 400},
            "invert": invert}, timeout=60)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
        png = np.asarray(Image.open(io.BytesIO(r.content)))
        c, w = 40.0, 400.0  # PS3.3 C.11.2.1.2.1
        y = np.clip(((values - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255)
        y = np.rint(np.nan_to_num(y, nan=0.0))
        expected = 255 - y if invert else y
        assert np.abs(png.astype(int) - expected.astype(int)).max() <= 1
    jpeg = server.http.post(f"{server.url}/api/render", params={"format": "jpeg"},
                            json={"series_uid": uid, "plane": plane}, timeout=60)
    assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
    assert jpeg.headers["X-Window"]


def test_slab_mip_is_at_least_the_plane(server: ServerProcess) -> None:
    uid = _series(server, "CT IMAGES")
    plane = _oblique_plane(_sitk("CT"), 128)
    thin, _ = _raw(server, {"series_uid": uid, "plane": plane})
    thick, _ = _raw(server, {"series_uid": uid, "plane": plane,
                             "slab": {"mode": "mip", "thickness_mm": 20}})
    both = np.isfinite(thin) & np.isfinite(thick)
    assert (thick[both] >= thin[both] - 1e-3).all() and (thick[both] > thin[both]).mean() > 0.5


def test_a_standard_orientation_shows_the_stored_slice(server: ServerProcess) -> None:
    image = _sitk("CT")  # sorted along the slice normal by GDCM, like VoxCast's volume
    uid = _series(server, "CT IMAGES")
    reference = sitk.GetArrayFromImage(image)
    for k in (0, 40, image.GetSize()[2] - 1):
        values, r = _raw(server, {"series_uid": uid, "orientation": "acquisition",
                                  "slice_index": k, "size_px": [512, 512]})
        plane = json.loads(r.headers["X-Plane"])
        assert plane["pixel_spacing_mm"] == pytest.approx(image.GetSpacing()[0], rel=1e-6)
        np.testing.assert_allclose(values, reference[k], atol=1e-3)


def test_fusion_is_the_ct_window_blended_with_the_coloured_pet(server: ServerProcess) -> None:
    ct, pet = _series(server, "CT IMAGES"), _series(server, "PET AC")
    view = {"series_uid": ct, "orientation": "coronal", "size_px": [160, 200],
            "window": {"center": 40, "width": 400}}
    fused = server.http.post(f"{server.url}/api/render", json=view | {"layers": [
        {"series_uid": pet, "window": {"center": 2.5, "width": 5}, "colormap": "hot-iron",
         "opacity": 0.5}]}, timeout=60)
    assert fused.status_code == 200, fused.text
    rgb = np.asarray(Image.open(io.BytesIO(fused.content)))
    assert rgb.shape == (200, 160, 3)
    # Independent composition from the raw values of both series on the same plane.
    plane = json.loads(fused.headers["X-Plane"])
    ct_values, _ = _raw(server, {"series_uid": ct, "plane": plane})
    suv, r = _raw(server, {"series_uid": pet, "plane": plane})
    assert r.headers["X-Units"] == "SUVbw"

    def window(x: np.ndarray, c: float, w: float) -> np.ndarray:
        y = np.clip(((x - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255)
        return np.rint(np.nan_to_num(y, nan=0.0)).astype(np.uint8)

    from render_engine.colour import colormap_lut

    base = np.repeat(window(ct_values, 40, 400)[..., None], 3, axis=2).astype(np.float32)
    over = colormap_lut("hot-iron")[window(suv, 2.5, 5)].astype(np.float32)
    alpha = np.where(np.isfinite(suv), 0.5, 0.0)[..., None]
    expected = np.rint(base + alpha * (over - base))
    assert np.abs(rgb.astype(int) - expected.astype(int)).max() <= 1
    assert (np.abs(rgb[..., 0].astype(int) - rgb[..., 2]) > 30).mean() > 0.05  # tinted


def test_a_cpr_along_a_straight_line_is_that_line_of_the_volume(server: ServerProcess) -> None:
    uid = _series(server, "CT IMAGES")
    image = _sitk("CT")
    mid = np.array(image.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in image.GetSize()]))
    start, end = mid + [0, -60, 0], mid + [0, 60, 0]  # 120 mm along P
    cpr = {"path": {"points_lps": [start.tolist(), end.tolist()], "kind": "polyline"},
           "mode": "straightened", "pixel_spacing_mm": 1.0, "width_px": 65}
    values, r = _raw(server, {"series_uid": uid, "cpr": cpr})
    info = json.loads(r.headers["X-CPR"])
    assert values.shape == (120, 65) and info["length_mm"] == pytest.approx(119.0)
    line = {"center_lps": mid.tolist(), "row_dir": [1, 0, 0], "col_dir": [0, 1, 0],
            "pixel_spacing_mm": 1.0, "size_px": [1, 120]}
    centre, _ = _raw(server, {"series_uid": uid, "plane": line})
    np.testing.assert_allclose(values[:, 32], centre[:, 0], atol=1e-3)  # the centreline
    turned, _ = _raw(server, {"series_uid": uid, "cpr": cpr | {"rotation_deg": 180}})
    np.testing.assert_allclose(turned, values[:, ::-1], atol=1e-2)


def test_pet_mip_and_volume_rendering(server: ServerProcess) -> None:
    uid = _series(server, "PET AC")
    image = _sitk("PT_AC")
    factor = server.http.get(f"{server.url}/api/series/{uid}/volume", timeout=30).json()[
        "suv_bw_factor"]
    hottest = float(sitk.GetArrayFromImage(image).max()) * factor
    mip = {"series_uid": uid, "orientation": "coronal", "size_px": [256, 256],
           "render3d": {"method": "mip"}}
    values, r = _raw(server, mip)
    assert r.headers["X-Units"] == "SUVbw"
    # Trilinear samples never exceed the hottest voxel; the rays (2.7 mm apart) pass near it.
    assert 0.75 * hottest <= np.nanmax(values) <= hottest * 1.0001
    middle, _ = _raw(server, {k: v for k, v in mip.items() if k != "render3d"})
    both = np.isfinite(values) & np.isfinite(middle)
    assert (values[both] >= middle[both] - 0.05 * hottest).all()
    assert (values[both] > middle[both]).mean() > 0.5
    side, _ = _raw(server, mip | {"orbit_deg": [90, 0]})
    assert not np.allclose(side, values, equal_nan=True)
    vr = mip | {"render3d": {"method": "vr", "preset": "pet"}}
    png = server.http.post(f"{server.url}/api/render", json=vr, timeout=120)
    assert png.status_code == 200, png.text
    rgb = np.asarray(Image.open(io.BytesIO(png.content)))
    assert rgb.shape == (256, 256, 3) and rgb.max() > 100
    raw = server.http.post(f"{server.url}/api/render", params={"format": "raw"}, json=vr,
                           timeout=60)
    assert raw.status_code == 400 and "colours" in raw.json()["error"]


@pytest.mark.parametrize(("patch", "message"), [
    ({"preset": "ct-nothing"}, "unknown window preset"),
    ({"colormap": "viridis"}, "unknown colour map"),
    ({"orientation": "oblique"}, "orientation"),
    ({"zoom": -1}, "zoom"),
    ({"layers": [{"series_uid": "1.2.3", "opacity": 2}]}, "opacity"),
    ({"masks": [{"shape": "star", "center_px": [1, 1], "half_size_px": [1, 1]}]}, "shape"),
    ({"position_mm": 1, "slice_index": 2}, "not both"),
])
def test_bad_view_states_are_400_with_the_reason(server: ServerProcess, patch: dict,
                                                 message: str) -> None:
    body = {"series_uid": _series(server, "CT IMAGES"), "orientation": "axial"} | patch
    r = server.http.post(f"{server.url}/api/render", json=body, timeout=30)
    assert r.status_code == 400 and message in r.json()["error"], r.text


def test_presets_masks_and_colour_maps_over_http(server: ServerProcess) -> None:
    uid = _series(server, "CT IMAGES")
    view = {"series_uid": uid, "orientation": "axial", "size_px": [128, 128],
            "preset": "ct-lung", "colormap": "rainbow",
            "masks": [{"shape": "rectangle", "center_px": [10, 10], "half_size_px": [5, 5]}]}
    r = server.http.post(f"{server.url}/api/render", json=view, timeout=60)
    assert r.status_code == 200 and r.headers["X-Window"] == "-600,1500"
    rgb = np.asarray(Image.open(io.BytesIO(r.content)))
    assert rgb.shape == (128, 128, 3) and (rgb[5:16, 5:16] == 0).all()


@pytest.mark.parametrize(("body", "params", "status"), [
    ({"series_uid": "1.2.3.4"}, {}, 400),
    ({"series_uid": "1.2.3.4", "plane": {"center_lps": [0, 0, 0], "row_dir": [1, 0, 0],
      "col_dir": [0, 1, 0], "pixel_spacing_mm": 1, "size_px": [8, 8]}}, {}, 404),
    ("CT", {}, 400),
    ({"plane": 1}, {"format": "gif"}, 400),
])
def test_bad_render_requests(server: ServerProcess, body: object, params: dict,
                             status: int) -> None:
    r = server.http.post(f"{server.url}/api/render", params=params, json=body, timeout=30)
    assert r.status_code == status and r.json()["error"]


@pytest.mark.parametrize("plane_patch", [
    {"row_dir": [1, 0, 0], "col_dir": [1, 0, 0]},
    {"size_px": [100000, 100000]},
    {"pixel_spacing_mm": 0},
])
def test_degenerate_planes_are_400(server: ServerProcess, plane_patch: dict) -> None:
    plane = {"center_lps": [0, 0, 0], "row_dir": [1, 0, 0], "col_dir": [0, 1, 0],
             "pixel_spacing_mm": 1, "size_px": [8, 8]} | plane_patch
    r = server.http.post(f"{server.url}/api/render", json={
        "series_uid": _series(server, "CT IMAGES"), "plane": plane}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]
    bad_json = server.http.post(f"{server.url}/api/render", data=b"{not json", timeout=30,
                                headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
