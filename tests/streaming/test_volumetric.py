"""PS3.18 Rendered MPR / 3D Volume resources (Sup 228) on a real server over the ACRIN PET-CT
study.

Every image is checked against an independent way to the same numbers: the max of raw slices,
the stateless ``POST /api/render`` of the equivalent view state, the DICOM linear window, the
MPR through a straight curve.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image, ImageSequence

from tests.conftest import ServerProcess

pytestmark = pytest.mark.integration

ACRIN_PID = "ACRIN-NSCLC-FDG-PET-042"


@dataclass(frozen=True)
class Study:
    server: ServerProcess
    study_uid: str
    ct: str
    pet: str
    rwv: str

    def url(self, series: str | None, resource: str = "renderedMPR",
            study: str | None = None) -> str:
        base = f"{self.server.url}/dicomweb/studies/{study or self.study_uid}"
        return f"{base}/series/{series}/{resource}" if series else f"{base}/{resource}"

    def get(self, series: str | None, params: Mapping[str, Any], resource: str = "renderedMPR",
            **kwargs: Any) -> requests.Response:
        return self.server.http.get(self.url(series, resource), params=params, timeout=120,
                                    **kwargs)

    def mpr(self, series: str | None, params: Mapping[str, Any], **kwargs: Any
            ) -> requests.Response:
        return self.get(series, params, "renderedMPR", **kwargs)

    def r3d(self, series: str | None, params: Mapping[str, Any], **kwargs: Any
            ) -> requests.Response:
        return self.get(series, params, "rendered3D", **kwargs)


@pytest.fixture(scope="module")
def acrin(archive_server: ServerProcess) -> Study:
    srv = archive_server
    study = srv.http.get(f"{srv.url}/api/studies", params={"PatientID": ACRIN_PID},
                         timeout=30).json()[0]
    detail = srv.http.get(f"{srv.url}/api/studies/{study['study_uid']}", timeout=30).json()
    by = {(s["modality"], s["series_description"]): s["series_uid"] for s in detail["series"]}
    return Study(server=srv, study_uid=study["study_uid"], ct=by[("CT", "CT IMAGES")],
                 pet=by[("PT", "PET AC")], rwv=by[("RWV", "PET SUV Factors")])


def png(r: requests.Response) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)))


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM linear VOI to 8 bits (PS3.3 C.11.2.1.2.1), NaN (outside) → 0."""
    y = np.clip(((values - (center - 0.5)) / (width - 1) + 0.5) * 255, 0, 255)
    return np.rint(np.nan_to_num(y, nan=0.0)).astype(np.uint8)


def api_render(study: Study, body: dict, fmt: str = "png") -> requests.Response:
    r = study.server.http.post(f"{study.server.url}/api/render", params={"format": fmt},
                               json=body, timeout=120)
    assert r.status_code == 200, r.text
    return r


def raw(study: Study, body: dict) -> np.ndarray:
    r = api_render(study, body, "raw")
    h, w = (int(v) for v in r.headers["X-Shape"].split(","))
    return np.frombuffer(r.content, dtype="<f4").reshape(h, w)


def multipart_parts(r: requests.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related response."""
    assert r.status_code == 200, r.text
    content_type = r.headers["Content-Type"]
    assert content_type.startswith("multipart/related")
    boundary = re.search(r"boundary=\"?([^\";]+)", content_type).group(1)  # type: ignore[union-attr]
    parts = []
    for chunk in r.content.split(f"--{boundary}".encode())[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        part_type = re.search(rb"Content-Type: ([^\r\n]+)", head).group(1).decode()  # type: ignore[union-attr]
        parts.append((part_type, body[:-2]))  # the CRLF before the next boundary
    return parts


def plane_of(r: requests.Response) -> dict:
    return json.loads(r.headers["X-Plane"])


def test_mip_slab_through_the_volume_is_the_max_of_the_raw_slices(acrin: Study) -> None:
    info = acrin.server.http.get(f"{acrin.server.url}/api/series/{acrin.pet}/volume",
                                 timeout=30).json()
    nz, ny, nx = info["shape"]
    dz = info["spacing_mm"][0]
    assert dz <= min(info["spacing_mm"][1:])  # so the slab's samples land on every slice
    image = png(acrin.mpr(acrin.pet, {
        "renderingmethod": "maximum_ip", "mprslab": (nz - 1) * dz * (1 - 1e-9),
        "plane": "acquisition", "viewport": f"{nx},{ny}", "window": "2.5,5",
        "accept": "image/png"}))
    slices = [raw(acrin, {"series_uid": acrin.pet, "orientation": "acquisition",
                          "slice_index": k, "size_px": [nx, ny]}) for k in range(nz)]
    expected = window(np.nanmax(np.stack(slices), axis=0), 2.5, 5)
    assert image.shape == (ny, nx)
    assert np.abs(image.astype(int) - expected).max() <= 1
    assert (expected > 0).mean() > 0.2  # a real image, not an empty one


def test_rendered3d_ip_equals_the_3d_projection_of_api_render(acrin: Study) -> None:
    for method, mode in (("maximum_ip", "mip"), ("MINIMUM_IP", "minip"), ("average_ip", "avgip")):
        r = acrin.r3d(acrin.pet, {"renderingmethod": method, "viewport": "160,128",
                                  "window": "2.5,5"}, headers={"Accept": "image/png"})
        values = raw(acrin, {"series_uid": acrin.pet, "orientation": "coronal",
                             "size_px": [160, 128], "render3d": {"method": mode}})
        assert np.abs(png(r).astype(int) - window(values, 2.5, 5)).max() <= 1, method
    jpeg = acrin.r3d(acrin.pet, {"renderingmethod": "maximum_ip", "viewport": "128,128",
                                 "quality": 95})
    assert jpeg.status_code == 200 and jpeg.headers["Content-Type"] == "image/jpeg"
    assert jpeg.content[:2] == b"\xff\xd8"  # JPEG is the default (PS3.18 §8.7.4)


def test_mpr_with_window_equals_api_render_pixel_for_pixel(acrin: Study) -> None:
    params = {"orientation": "f", "position": -150, "viewport": "256,200",
              "window": "40,400,LINEAR", "rotation": 15, "zoom": 1.5, "pan": "10,-5",
              "accept": "image/png"}
    mine = png(acrin.mpr(acrin.ct, params))
    theirs = png(api_render(acrin, {
        "series_uid": acrin.ct, "orientation": "axial", "position_mm": -150,
        "size_px": [256, 200], "window": {"center": 40, "width": 400}, "rotation_deg": 15,
        "zoom": 1.5, "pan_px": [10, -5]}))
    assert mine.shape == (200, 256) and (mine > 0).mean() > 0.2
    np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize(("letter", "view", "up"), [
    ("a", (0, 1, 0), (0, 0, 1)), ("p", (0, -1, 0), (0, 0, 1)), ("r", (1, 0, 0), (0, 0, 1)),
    ("l", (-1, 0, 0), (0, 0, 1)), ("h", (0, 0, -1), (0, -1, 0)), ("f", (0, 0, 1), (0, -1, 0))])
def test_orientation_is_the_side_the_camera_looks_from(acrin: Study, letter: str, view: tuple,
                                                       up: tuple) -> None:
    """PS3.18 §8.3.5.3.4: ``a`` looks from the patient's anterior towards posterior (+y in
    LPS), up superior; ``h``/``f`` from above/below, up anterior."""
    r = acrin.mpr(acrin.ct, {"orientation": letter, "viewport": "64,64", "accept": "image/png"})
    plane = plane_of(r)
    np.testing.assert_allclose(np.cross(plane["row_dir"], plane["col_dir"]), view, atol=1e-12)
    np.testing.assert_allclose(plane["col_dir"], -np.asarray(up), atol=1e-12)
    standard = {"a": "coronal", "l": "sagittal", "f": "axial"}
    mirrored = {"p": "coronal", "r": "sagittal", "h": "axial"}
    theirs = png(api_render(acrin, {
        "series_uid": acrin.ct, "orientation": standard.get(letter) or mirrored[letter],
        "size_px": [64, 64], "flip_horizontal": letter in mirrored}))
    np.testing.assert_array_equal(png(r), theirs)


def test_a_viewpoint_is_the_plane_through_the_look_at_point(acrin: Study) -> None:
    look_at, eye, up = np.array([0.0, 0.0, -150.0]), np.array([300.0, -400.0, -150.0]), \
        np.array([0.0, 0.0, 1.0])
    r = acrin.mpr(acrin.ct, {"viewpointposition": ",".join(map(str, eye)),
                             "viewpointlookat": ",".join(map(str, look_at)),
                             "viewpointup": "0,0,1", "viewport": "128,128",
                             "window": "40,400", "accept": "image/png"})
    mine = png(r)
    plane = plane_of(r)
    normal = np.cross(plane["row_dir"], plane["col_dir"])
    np.testing.assert_allclose(plane["center_lps"], look_at, atol=1e-9)
    np.testing.assert_allclose(normal, (look_at - eye) / np.linalg.norm(look_at - eye), atol=1e-9)
    assert np.dot(plane["col_dir"], up) == pytest.approx(-1.0)  # up is the top of the screen
    theirs = png(api_render(acrin, {"series_uid": acrin.ct, "plane": plane,
                                    "window": {"center": 40, "width": 400}}))
    np.testing.assert_array_equal(mine, theirs)


def test_mprslab_changes_the_pixels_as_a_slab_does(acrin: Study) -> None:
    base = {"orientation": "a", "viewport": "200,160", "window": "40,400", "accept": "image/png"}
    thin = png(acrin.mpr(acrin.ct, base))
    thick = {m: png(acrin.mpr(acrin.ct, base | {"renderingmethod": m, "mprslab": 20}))
             for m in ("maximum_ip", "minimum_ip", "average_ip")}
    assert (thick["maximum_ip"] >= thin).all() and (thick["maximum_ip"] > thin).mean() > 0.2
    assert (thick["minimum_ip"] <= thin).all() and (thick["minimum_ip"] < thin).mean() > 0.2
    assert (thick["minimum_ip"] <= thick["average_ip"]).all()
    assert (thick["average_ip"] <= thick["maximum_ip"]).all()
    slab = png(api_render(acrin, {"series_uid": acrin.ct, "orientation": "coronal",
                                  "size_px": [200, 160], "window": {"center": 40, "width": 400},
                                  "slab": {"mode": "mip", "thickness_mm": 20}}))
    np.testing.assert_array_equal(thick["maximum_ip"], slab)
    # mprslab alone: the server's default slab method, average_ip (§8.3.5.3.3)
    np.testing.assert_array_equal(png(acrin.mpr(acrin.ct, base | {"mprslab": 20})),
                                  thick["average_ip"])


def test_swivel_of_the_pet_mip(acrin: Study) -> None:
    params = {"renderingmethod": "maximum_ip", "viewport": "128,128", "window": "2.5,5"}
    still = png(acrin.r3d(acrin.pet, params | {"accept": "image/png"}))
    animation = params | {"swivelrange": 360, "animationstepsize": 45}  # 360 / 45 = 8 frames
    r = acrin.r3d(acrin.pet, animation,
                  headers={"Accept": 'multipart/related; type="image/png"'})
    parts = multipart_parts(r)
    assert [t for t, _ in parts] == ["image/png"] * 8
    assert r.headers["X-Swivel-Angles-Deg"] == "0,45,90,135,180,225,270,315"
    frames = [np.asarray(Image.open(io.BytesIO(body))).astype(int) for _, body in parts]
    np.testing.assert_array_equal(frames[0], still)
    # An orthographic MIP seen from behind is the mirror image of the front view.
    mirrored = np.abs(frames[4] - frames[0][:, ::-1])
    assert mirrored.mean() < 0.1 and mirrored.max() <= 2  # exact on the CPU
    assert np.abs(frames[2] - frames[0]).mean() > 5 * mirrored.mean()  # the side differs
    # The same frames as an animated GIF (default) and as an APNG; numberofframes (extension).
    step = {"numberofframes": 8, "animationrate": 20}
    gif = acrin.r3d(acrin.pet, params | step)
    assert gif.status_code == 200 and gif.headers["Content-Type"] == "image/gif"
    decoded = Image.open(io.BytesIO(gif.content))
    assert decoded.info["duration"] == 50  # 20 frames a second
    decoded_frames = [np.asarray(f.convert("L")).astype(int)
                      for f in ImageSequence.Iterator(decoded)]
    assert len(decoded_frames) == 8
    assert all(np.abs(d - f).max() <= 1 for d, f in zip(decoded_frames, frames, strict=True))
    apng = acrin.r3d(acrin.pet, params | step | {"accept": "image/png"})
    image = Image.open(io.BytesIO(apng.content))
    assert apng.headers["Content-Type"] == "image/png" and getattr(image, "n_frames", 1) == 8
    image.seek(4)
    np.testing.assert_array_equal(np.asarray(image.convert("L")), frames[4])


def test_volume_rendering_and_a_partial_swivel(acrin: Study) -> None:
    r = acrin.r3d(acrin.pet, {"vrpreset": "pet", "viewport": "96,96", "accept": "image/png"})
    rgb = png(r)  # volume_rendered is rendered3D's default method
    assert rgb.shape == (96, 96, 3) and rgb.max() > 100
    r = acrin.r3d(acrin.pet, {"renderingmethod": "maximum_ip", "viewport": "64,64",
                              "swivelrange": 90, "animationstepsize": 30,
                              "accept": "multipart/related"})
    assert len(multipart_parts(r)) == 3 and r.headers["X-Swivel-Angles-Deg"] == "0,30,60"


def _ct_centre(acrin: Study) -> np.ndarray:
    r = acrin.mpr(acrin.ct, {"orientation": "a", "viewport": "8,8", "accept": "image/png"})
    return np.asarray(plane_of(r)["center_lps"])


def test_cpr_along_a_straight_line_is_the_mpr_through_it(acrin: Study) -> None:
    centre = _ct_centre(acrin)
    top, bottom = centre + [0, 0, 100], centre - [0, 0, 100]
    fmt = ",".join
    params = {"cpr": "straightened", "orientation": "a", "viewport": "160,200",
              "window": "40,400", "accept": "image/png"}
    r = acrin.server.http.get(acrin.url(acrin.ct), timeout=120, params=list(params.items()) + [
        ("volumetriccurvepoint", fmt(map(str, top))),
        ("volumetriccurvepoint", fmt(map(str, bottom)))])
    cpr = png(r)
    assert "X-CPR" in r.headers and cpr.shape == (200, 160)
    theirs = png(api_render(acrin, {
        "series_uid": acrin.ct, "window": {"center": 40, "width": 400},
        "plane": {"center_lps": centre.tolist(), "row_dir": [1, 0, 0], "col_dir": [0, 0, -1],
                  "pixel_spacing_mm": 1.0, "size_px": [160, 200]}}))
    diff = np.abs(cpr.astype(int) - theirs)
    assert diff.max() <= 1 and diff.mean() < 0.01 and (theirs > 0).mean() > 0.2
    # the points as one list in one parameter are the same curve
    one = acrin.mpr(acrin.ct, params | {"volumetriccurvepoint": fmt(map(str, [*top, *bottom]))})
    np.testing.assert_array_equal(png(one), cpr)


def test_cross_curve_animation_steps_planes_along_the_curve(acrin: Study) -> None:
    """§8.3.5.3.10 / PS3.3 C.11.29 CROSSCURVE: frame k is the plane across the curve at
    k × animationstepsize mm; along the body axis from the head that is orientation h."""
    centre = _ct_centre(acrin)
    top, bottom = centre + [0, 0, 50], centre - [0, 0, 50]
    r = acrin.mpr(acrin.ct, {"volumetriccurvepoint": ",".join(map(str, [*top, *bottom])),
                             "animationstepsize": 50, "viewport": "96,96", "window": "40,400"},
                  headers={"Accept": 'multipart/related; type="image/png"'})
    parts = multipart_parts(r)
    assert len(parts) == 3 and r.headers["X-Curve-Arcs-Mm"] == "0,50,100"
    for (_, body), z in zip(parts, (top[2], centre[2], bottom[2]), strict=True):
        axial = png(acrin.mpr(acrin.ct, {"orientation": "h", "position": z, "viewport": "96,96",
                                         "window": "40,400", "accept": "image/png"}))
        frame = np.asarray(Image.open(io.BytesIO(body))).astype(int)
        assert np.abs(frame - axial).max() <= 1


def test_rendered_volume_response_module(acrin: Study) -> None:
    """renderedvolumetricmetadata=yes (§8.3.5.3.13) answers Table K.1-1 as DICOM JSON with
    the parameters actually applied (as in PS3.18 B.32)."""
    r = acrin.r3d(acrin.pet, {"renderingmethod": "volume_rendered", "orientation": "a",
                              "swivelrange": 180, "animationrate": 20,
                              "renderedvolumetricmetadata": "yes"},
                  headers={"Accept": "application/dicom+json"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/dicom+json")
    m = r.json()
    value = {tag: item["Value"] for tag, item in m.items()}
    assert value["00720510"] == ["3D_RENDERING"] and value["0070120D"] == ["VOLUME_RENDERED"]
    position, look_at = np.asarray(value["00701603"]), np.asarray(value["00701604"])
    view = (look_at - position) / np.linalg.norm(look_at - position)
    np.testing.assert_allclose(view, [0, 1, 0], atol=1e-12)  # from anterior to posterior
    np.testing.assert_allclose(value["00701605"], [0, 0, 1], atol=1e-12)
    assert value["00701A06"] == [180] and value["00701A05"] == [10] and value["00701A03"] == [20]
    assert "00281050" not in m and "00281056" not in m  # no window for VOLUME_RENDERED
    assert all(m[t]["vr"] == "FD" for t in ("00701603", "00701604", "00701605", "00701A06"))
    # an MPR slab: its thickness and the window actually applied (here the server's default)
    params = {"renderingmethod": "maximum_ip", "mprslab": 20, "orientation": "p",
              "viewport": "128,128"}
    m = acrin.mpr(acrin.ct, params | {"renderedvolumetricmetadata": "yes"}).json()
    image = acrin.mpr(acrin.ct, params | {"accept": "image/png"})
    center, width = (float(v) for v in image.headers["X-Window"].split(","))
    assert m["00720510"]["Value"] == ["MPR"] and m["0070120D"]["Value"] == ["MAXIMUM_IP"]
    assert m["00701503"]["Value"] == [20] and m["00281056"]["Value"] == ["LINEAR"]
    assert m["00281050"]["Value"] == [pytest.approx(center)]
    assert m["00281051"]["Value"] == [pytest.approx(width)]
    np.testing.assert_allclose(m["00701604"]["Value"], plane_of(image)["center_lps"])
    # the camera it reports renders the same image (a basis for the next request, Annex K)
    camera = {"viewpointposition": m["00701603"]["Value"], "viewpointlookat":
              m["00701604"]["Value"], "viewpointup": m["00701605"]["Value"]}
    again = acrin.mpr(acrin.ct, {k: v for k, v in params.items() if k != "orientation"} | {
        k: ",".join(map(repr, v)) for k, v in camera.items()} | {"accept": "image/png"})
    np.testing.assert_array_equal(png(again), png(image))


def test_study_level_resources_choose_the_series(acrin: Study) -> None:
    http = acrin.server.http
    r = http.get(acrin.url(None, "rendered3D"), timeout=60)
    assert r.status_code == 400 and "'volumeinputreference'" in r.json()["error"]
    params = {"renderingmethod": "maximum_ip", "viewport": "64,64", "accept": "image/png"}
    series_level = png(acrin.r3d(acrin.pet, params))
    by_series = acrin.r3d(None, params | {"volumeinputreference": acrin.pet})
    np.testing.assert_array_equal(png(by_series), series_level)
    instances = http.get(f"{acrin.server.url}/dicomweb/studies/{acrin.study_uid}/series/"
                         f"{acrin.pet}/instances", timeout=60).json()
    sop = instances[0]["00080018"]["Value"][0]
    by_instance = http.get(acrin.url(None, "rendered3d"), timeout=120,
                           params=params | {"volumeinputreference": sop})
    np.testing.assert_array_equal(png(by_instance), series_level)
    r = acrin.r3d(acrin.ct, params | {"volumeinputreference": sop})
    assert r.status_code == 404  # an instance of another series


@pytest.mark.parametrize(("resource", "params", "name"), [
    ("renderedMPR", {"renderingmethod": "surface"}, "renderingmethod"),
    ("renderedMPR", {"renderingmethod": "volume_rendered"}, "renderingmethod"),
    ("renderedMPR", {"mprslab": -1, "renderingmethod": "maximum_ip"}, "mprslab"),
    ("rendered3D", {"mprslab": 10}, "mprslab"),
    ("renderedMPR", {"vrpreset": "pet"}, "vrpreset"),
    ("renderedMPR", {"viewport": "0,10"}, "viewport"),
    ("renderedMPR", {"viewport": "10,10,0,0,5,5"}, "viewport"),
    ("renderedMPR", {"window": "40"}, "window"),
    ("renderedMPR", {"window": "40,400,SIGMOID"}, "window"),
    ("renderedMPR", {"quality": 101}, "quality"),
    ("renderedMPR", {"orientation": "x"}, "orientation"),
    ("renderedMPR", {"orientation": "a", "viewpointposition": "0,-400,0",
                     "viewpointlookat": "0,0,0"}, "viewpointposition"),
    ("rendered3D", {"numberofframes": 1000}, "numberofframes"),
    ("rendered3D", {"animationstepsize": 0.5}, "animationstepsize"),
    ("rendered3D", {"swivelrange": 400}, "swivelrange"),
    ("rendered3D", {"swivelrange": 90, "viewport": "2000,2000"}, "viewport"),
    ("rendered3D", {"animationrate": 10}, "animationrate"),
    ("rendered3D", {"swivelrange": 90, "animationrate": 2.5}, "animationrate"),
    ("renderedMPR", {"viewpointposition": "1,2"}, "viewpointposition"),
    ("renderedMPR", {"viewpointposition": "0,-400,0"}, "viewpointlookat"),
    ("renderedMPR", {"viewpointposition": "0,0,0", "viewpointlookat": "0,0,0"},
     "viewpointlookat"),
    ("renderedMPR", {"viewpointposition": "0,-1,0", "viewpointlookat": "0,0,0",
                     "viewpointup": "0,1,0"}, "viewpointup"),
    ("renderedMPR", {"volumetriccurvepoint": "0,0,0"}, "volumetriccurvepoint"),
    ("renderedMPR", {"volumetriccurvepoint": "0,0,0,0,0"}, "volumetriccurvepoint"),
    ("renderedMPR", {"volumetriccurvepoint": "0,0,0,0,0,10", "swivelrange": 90},
     "swivelrange"),
    ("renderedMPR", {"volumetriccurvepoint": "0,0,0,0,0,10", "cpr": "straightened",
                     "orientation": "h"}, "cpr"),
    ("renderedMPR", {"cpr": "straightened"}, "cpr"),
    ("rendered3D", {"volumetriccurvepoint": "0,0,0,0,0,10"}, "volumetriccurvepoint"),
    ("rendered3D", {"renderprojection": "PERSPECTIVE", "renderingmethod": "maximum_ip",
                    "renderedvolumetricmetadata": "no"}, "renderedvolumetricmetadata"),
    ("renderedMPR", {"match": "CardiacRRIntervalSpecified=140-260"}, "match"),
    ("renderedMPR", {"colormap": "viridis"}, "colormap"),
    ("renderedMPR", {"windowpreset": "ct-nothing"}, "windowpreset"),
    ("renderedMPR", {"plane": "oblique"}, "plane"),
    ("renderedMPR", {"mprslabthickness": 10}, "mprslabthickness"),  # the old, guessed names
    ("renderedMPR", {"frobnicate": 1}, "frobnicate"),
])
def test_bad_parameters_are_400_naming_the_parameter(acrin: Study, resource: str,
                                                     params: dict, name: str) -> None:
    r = acrin.get(acrin.pet, params, resource)
    assert r.status_code == 400, r.text
    assert repr(name) in r.json()["error"], r.json()


def test_unknown_or_unsuitable_series(acrin: Study) -> None:
    http = acrin.server.http
    r = http.get(acrin.url("1.2.3.4.5.6"), timeout=30)
    assert r.status_code == 404
    r = http.get(acrin.url(acrin.pet, "rendered3D", study="1.2.3.999"), timeout=30)
    assert r.status_code == 404 and "not in study" in r.json()["error"]
    r = http.get(acrin.url(acrin.rwv), timeout=30)
    assert r.status_code == 404 and "not volumetric" in r.json()["error"]
    r = http.get(acrin.url(acrin.pet, "rendered3D"), params={"swivelrange": 90},
                 headers={"Accept": "image/jpeg"}, timeout=30)
    assert r.status_code == 406 and "image/gif" in r.json()["error"]
    r = http.get(acrin.url(acrin.pet), params={"renderedvolumetricmetadata": "yes"},
                 headers={"Accept": "image/png"}, timeout=30)
    assert r.status_code == 406 and "application/dicom+json" in r.json()["error"]
    assert http.get(f"{acrin.server.url}/dicomweb/studies/{acrin.study_uid}/series/{acrin.pet}"
                    "/volumes/rendered", timeout=30).status_code == 404  # the old, guessed path


def test_a_token_is_required(acrin: Study) -> None:
    for resource in ("renderedMPR", "rendered3D"):
        r = requests.get(acrin.url(acrin.pet, resource), timeout=30)
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
