"""DICOMweb volumetric rendering (Sup 228) on a real server over the ACRIN PET-CT study.

Every image is checked against an independent way to the same numbers: the max of raw slices,
the stateless ``POST /api/render`` of the equivalent view state, the DICOM linear window.
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

    def url(self, series: str, study: str | None = None) -> str:
        return (f"{self.server.url}/dicomweb/studies/{study or self.study_uid}/series/{series}"
                "/volumes/rendered")

    def get(self, series: str, params: Mapping[str, Any], **kwargs: Any) -> requests.Response:
        return self.server.http.get(self.url(series), params=dict(params), timeout=120,
                                    **kwargs)


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


def test_mip_slab_through_the_volume_is_the_max_of_the_raw_slices(acrin: Study) -> None:
    info = acrin.server.http.get(f"{acrin.server.url}/api/series/{acrin.pet}/volume",
                                 timeout=30).json()
    nz, ny, nx = info["shape"]
    dz = info["spacing_mm"][0]
    assert dz <= min(info["spacing_mm"][1:])  # so the slab's samples land on every slice
    image = png(acrin.get(acrin.pet, {
        "renderingmethod": "MAXIMUM_IP", "mprslabthickness": (nz - 1) * dz * (1 - 1e-9),
        "orientation": "acquisition", "viewport": f"{nx},{ny}", "window": "2.5,5",
        "accept": "image/png"}))
    slices = [raw(acrin, {"series_uid": acrin.pet, "orientation": "acquisition",
                          "slice_index": k, "size_px": [nx, ny]}) for k in range(nz)]
    expected = window(np.nanmax(np.stack(slices), axis=0), 2.5, 5)
    assert image.shape == (ny, nx)
    assert np.abs(image.astype(int) - expected).max() <= 1
    assert (expected > 0).mean() > 0.2  # a real image, not an empty one


def test_whole_volume_ip_equals_the_3d_projection_of_api_render(acrin: Study) -> None:
    for method, mode in (("MAXIMUM_IP", "mip"), ("minip", "minip"), ("AVERAGE_IP", "avgip")):
        r = acrin.get(acrin.pet, {"renderingmethod": method, "viewport": "160,128",
                                  "window": "2.5,5"}, headers={"Accept": "image/png"})
        values = raw(acrin, {"series_uid": acrin.pet, "orientation": "coronal",
                             "size_px": [160, 128], "render3d": {"method": mode}})
        assert np.abs(png(r).astype(int) - window(values, 2.5, 5)).max() <= 1, method
    jpeg = acrin.get(acrin.pet, {"renderingmethod": "MAXIMUM_IP", "viewport": "128,128",
                                 "quality": 95})
    assert jpeg.status_code == 200 and jpeg.headers["Content-Type"] == "image/jpeg"
    assert jpeg.content[:2] == b"\xff\xd8"  # JPEG is the default (PS3.18 §8.7.4)


def test_mpr_with_window_equals_api_render_pixel_for_pixel(acrin: Study) -> None:
    params = {"renderingmethod": "MPR", "orientation": "axial", "position": -150,
              "viewport": "256,200", "window": "40,400,LINEAR", "rotation": 15, "zoom": 1.5,
              "pan": "10,-5", "accept": "image/png"}
    mine = png(acrin.get(acrin.ct, params))
    theirs = png(api_render(acrin, {
        "series_uid": acrin.ct, "orientation": "axial", "position_mm": -150,
        "size_px": [256, 200], "window": {"center": 40, "width": 400}, "rotation_deg": 15,
        "zoom": 1.5, "pan_px": [10, -5]}))
    assert mine.shape == (200, 256) and (mine > 0).mean() > 0.2
    np.testing.assert_array_equal(mine, theirs)


def test_a_viewpoint_is_the_plane_through_the_look_at_point(acrin: Study) -> None:
    look_at, eye, up = np.array([0.0, 0.0, -150.0]), np.array([300.0, -400.0, -150.0]), \
        np.array([0.0, 0.0, 1.0])
    r = acrin.get(acrin.ct, {"viewpointposition": ",".join(map(str, eye)),
                             "viewpointlookatpoint": ",".join(map(str, look_at)),
                             "viewpointupdirection": "0,0,1", "viewport": "128,128",
                             "window": "40,400", "accept": "image/png"})
    mine = png(r)
    plane = json.loads(r.headers["X-Plane"])
    normal = np.cross(plane["row_dir"], plane["col_dir"])
    np.testing.assert_allclose(plane["center_lps"], look_at, atol=1e-9)
    np.testing.assert_allclose(normal, (look_at - eye) / np.linalg.norm(look_at - eye), atol=1e-9)
    assert np.dot(plane["col_dir"], up) == pytest.approx(-1.0)  # up is the top of the screen
    theirs = png(api_render(acrin, {"series_uid": acrin.ct, "plane": plane,
                                    "window": {"center": 40, "width": 400}}))
    np.testing.assert_array_equal(mine, theirs)


def test_slab_thickness_changes_the_pixels_as_a_slab_does(acrin: Study) -> None:
    base = {"orientation": "coronal", "viewport": "200,160", "window": "40,400",
            "accept": "image/png"}
    thin = png(acrin.get(acrin.ct, base))
    thick = {m: png(acrin.get(acrin.ct, base | {"renderingmethod": m, "mprslabthickness": 20}))
             for m in ("MAXIMUM_IP", "MINIMUM_IP", "AVERAGE_IP")}
    assert (thick["MAXIMUM_IP"] >= thin).all() and (thick["MAXIMUM_IP"] > thin).mean() > 0.2
    assert (thick["MINIMUM_IP"] <= thin).all() and (thick["MINIMUM_IP"] < thin).mean() > 0.2
    assert (thick["MINIMUM_IP"] <= thick["AVERAGE_IP"]).all()
    assert (thick["AVERAGE_IP"] <= thick["MAXIMUM_IP"]).all()
    slab = png(api_render(acrin, {"series_uid": acrin.ct, "orientation": "coronal",
                                  "size_px": [200, 160], "window": {"center": 40, "width": 400},
                                  "slab": {"mode": "mip", "thickness_mm": 20}}))
    np.testing.assert_array_equal(thick["MAXIMUM_IP"], slab)
    # mprslabthickness alone: the server's default method for a thick MPR, AVERAGE_IP
    np.testing.assert_array_equal(png(acrin.get(acrin.ct, base | {"mprslabthickness": 20})),
                                  thick["AVERAGE_IP"])


def test_swivel_of_the_pet_mip(acrin: Study) -> None:
    params = {"renderingmethod": "MAXIMUM_IP", "viewport": "128,128", "window": "2.5,5"}
    still = png(acrin.get(acrin.pet, params | {"accept": "image/png"}))
    animation = params | {"presentationanimationstyle": "SWIVEL", "numberofframes": 8}
    r = acrin.get(acrin.pet, animation, headers={"Accept": 'multipart/related; type="image/png"'})
    parts = multipart_parts(r)
    assert [t for t, _ in parts] == ["image/png"] * 8
    assert r.headers["X-Swivel-Angles-Deg"] == "0,45,90,135,180,225,270,315"
    frames = [np.asarray(Image.open(io.BytesIO(body))).astype(int) for _, body in parts]
    np.testing.assert_array_equal(frames[0], still)
    # An orthographic MIP seen from behind is the mirror image of the front view.
    mirrored = np.abs(frames[4] - frames[0][:, ::-1])
    assert mirrored.mean() < 0.1 and mirrored.max() <= 2  # exact on the CPU
    assert np.abs(frames[2] - frames[0]).mean() > 5 * mirrored.mean()  # the side differs
    # The same frames as an animated GIF (default) and as an APNG.
    step = {"presentationanimationstyle": "SWIVEL", "animationstepsize": 45,
            "recommendedanimationrate": 20}
    gif = acrin.get(acrin.pet, params | step)
    assert gif.status_code == 200 and gif.headers["Content-Type"] == "image/gif"
    decoded = [np.asarray(f.convert("L")).astype(int)
               for f in ImageSequence.Iterator(Image.open(io.BytesIO(gif.content)))]
    assert len(decoded) == 8 and all(np.abs(d - f).max() <= 1 for d, f in zip(decoded, frames, strict=True))
    apng = acrin.get(acrin.pet, params | step | {"accept": "image/png"})
    image = Image.open(io.BytesIO(apng.content))
    assert apng.headers["Content-Type"] == "image/png" and getattr(image, "n_frames", 1) == 8
    image.seek(4)
    np.testing.assert_array_equal(np.asarray(image.convert("L")), frames[4])


def test_volume_rendering_and_a_partial_swivel(acrin: Study) -> None:
    r = acrin.get(acrin.pet, {"renderingmethod": "VOLUME_RENDERED", "vrpreset": "pet",
                              "viewport": "96,96", "accept": "image/png"})
    rgb = png(r)
    assert rgb.shape == (96, 96, 3) and rgb.max() > 100
    r = acrin.get(acrin.pet, {"renderingmethod": "MAXIMUM_IP", "viewport": "64,64",
                              "presentationanimationstyle": "SWIVEL", "swivelrange": 90,
                              "animationstepsize": 30, "accept": "multipart/related"})
    assert len(multipart_parts(r)) == 4 and r.headers["X-Swivel-Angles-Deg"] == "0,30,60,90"


@pytest.mark.parametrize(("params", "name"), [
    ({"renderingmethod": "SURFACE"}, "renderingmethod"),
    ({"mprslabthickness": -1, "renderingmethod": "MAXIMUM_IP"}, "mprslabthickness"),
    ({"mprslabthickness": 10, "renderingmethod": "VOLUME_RENDERED"}, "mprslabthickness"),
    ({"viewport": "0,10"}, "viewport"),
    ({"viewport": "10,10,0,0,5,5"}, "viewport"),
    ({"window": "40"}, "window"),
    ({"window": "40,400,SIGMOID"}, "window"),
    ({"quality": 101}, "quality"),
    ({"presentationanimationstyle": "FLYTHROUGH"}, "presentationanimationstyle"),
    ({"presentationanimationstyle": "SWIVEL", "numberofframes": 1000}, "numberofframes"),
    ({"presentationanimationstyle": "SWIVEL", "animationstepsize": 0.5}, "animationstepsize"),
    ({"presentationanimationstyle": "SWIVEL", "viewport": "2000,2000"}, "viewport"),
    ({"swivelrange": 90}, "swivelrange"),
    ({"viewpointposition": "1,2"}, "viewpointposition"),
    ({"viewpointposition": "0,-400,0"}, "viewpointlookatpoint"),
    ({"viewpointposition": "0,0,0", "viewpointlookatpoint": "0,0,0"}, "viewpointlookatpoint"),
    ({"viewpointposition": "0,-1,0", "viewpointlookatpoint": "0,0,0",
      "viewpointupdirection": "0,1,0"}, "viewpointupdirection"),
    ({"renderprojection": "PERSPECTIVE", "renderingmethod": "MPR"}, "renderprojection"),
    ({"vrpreset": "pet", "renderingmethod": "MAXIMUM_IP"}, "vrpreset"),
    ({"colormap": "viridis"}, "colormap"),
    ({"windowpreset": "ct-nothing"}, "windowpreset"),
    ({"orientation": "oblique"}, "orientation"),
    ({"frobnicate": 1}, "frobnicate"),
])
def test_bad_parameters_are_400_naming_the_parameter(acrin: Study, params: dict,
                                                     name: str) -> None:
    r = acrin.get(acrin.pet, params)
    assert r.status_code == 400, r.text
    assert repr(name) in r.json()["error"], r.json()


def test_unknown_or_unsuitable_series(acrin: Study) -> None:
    http = acrin.server.http
    r = http.get(acrin.url("1.2.3.4.5.6"), timeout=30)
    assert r.status_code == 404
    r = http.get(acrin.url(acrin.pet, study="1.2.3.999"), timeout=30)
    assert r.status_code == 404 and "not in study" in r.json()["error"]
    r = http.get(acrin.url(acrin.rwv), timeout=30)
    assert r.status_code == 404 and "not volumetric" in r.json()["error"]
    r = http.get(acrin.url(acrin.pet), params={"presentationanimationstyle": "SWIVEL"},
                 headers={"Accept": "image/jpeg"}, timeout=30)
    assert r.status_code == 406 and "image/gif" in r.json()["error"]


def test_a_token_is_required(acrin: Study) -> None:
    r = requests.get(acrin.url(acrin.pet), timeout=30)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
