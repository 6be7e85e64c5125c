"""The REST API on a real server over the imported test archive."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import requests

from tests.conftest import DATA, ServerProcess

pytestmark = pytest.mark.integration

ACRIN_PID = "ACRIN-NSCLC-FDG-PET-042"


@pytest.fixture(scope="module")
def server(archive_server: ServerProcess) -> ServerProcess:
    return archive_server


def get(server: ServerProcess, path: str, **params: object) -> requests.Response:
    return server.http.get(server.url + path, params=params, timeout=60)  # type: ignore[arg-type]


def _acrin_study(server: ServerProcess) -> dict:
    studies = get(server, "/api/studies", PatientID=ACRIN_PID).json()
    assert len(studies) == 1
    return get(server, f"/api/studies/{studies[0]['study_uid']}").json()


def test_health_needs_no_credentials(server: ServerProcess) -> None:
    r = requests.get(server.url + "/api/health", timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_studies_filter_by_patient(server: ServerProcess) -> None:
    studies = get(server, "/api/studies", PatientID=ACRIN_PID).json()
    assert [s["patient_id"] for s in studies] == [ACRIN_PID]
    assert {"CT", "PT", "SEG", "RWV"} <= set(studies[0]["modalities"])
    everything = get(server, "/api/studies", limit=1000).json()
    assert len(everything) > len(studies)
    assert get(server, "/api/studies", PatientID="NO-SUCH-PATIENT").json() == []


def test_study_lists_series_with_counts_and_state(server: ServerProcess) -> None:
    study = _acrin_study(server)
    by_desc = {(s["modality"], s["series_description"]): s for s in study["series"]}
    assert by_desc[("CT", "CT IMAGES")]["instance_count"] == 135
    assert by_desc[("CT", "CT IMAGES")]["volume_state"] == "ready"
    assert by_desc[("PT", "PET AC")]["instance_count"] == 135
    assert by_desc[("RWV", "PET SUV Factors")]["volume_state"] == "not_volumetric"


def test_ct_volume_geometry_matches_the_dicom_attributes(server: ServerProcess) -> None:
    study = _acrin_study(server)
    ct = next(s for s in study["series"] if s["series_description"] == "CT IMAGES")
    vol = get(server, f"/api/series/{ct['series_uid']}/volume").json()
    assert vol["shape"] == [135, 512, 512]
    assert vol["index_order"] == "zyx"
    assert vol["units"] == "HU" and vol["modality"] == "CT"
    files = [pydicom.dcmread(p, stop_before_pixels=True, force=True) for p in (DATA / "petct-acrin042" / "CT").iterdir()]
    normal = np.cross([float(v) for v in files[0].ImageOrientationPatient[:3]],
                      [float(v) for v in files[0].ImageOrientationPatient[3:]])
    files.sort(key=lambda d: float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])))
    affine = np.asarray(vol["affine"])
    first, last = (np.array([float(v) for v in files[i].ImagePositionPatient]) for i in (0, -1))
    np.testing.assert_allclose(affine[:3, 3], first, atol=1e-3)
    np.testing.assert_allclose(affine[:3, :3] @ [134, 0, 0] + affine[:3, 3], last, atol=1e-3)
    dy, dx = (float(v) for v in files[0].PixelSpacing)
    np.testing.assert_allclose(vol["spacing_mm"][1:], [dy, dx], atol=1e-6)
    assert vol["levels"][0]["shape"] == [135, 512, 512] and len(vol["levels"]) >= 2
    assert vol["built_at"].endswith("Z")


def test_pet_volume_has_its_suv_factor(server: ServerProcess) -> None:
    study = _acrin_study(server)
    pet = next(s for s in study["series"] if s["series_description"] == "PET AC")
    vol = get(server, f"/api/series/{pet['series_uid']}/volume").json()
    assert vol["shape"] == [135, 128, 128]
    assert vol["suv_bw_factor"] == pytest.approx(4.2111e-4, rel=1e-3)
    ct = next(s for s in study["series"] if s["series_description"] == "CT IMAGES")
    assert vol["frame_of_reference_uid"] == ct["frame_of_reference_uid"] != ""


def test_quarantine_endpoint_lists_reasons(server: ServerProcess) -> None:
    entries = get(server, "/api/quarantine").json()
    assert entries and all(e["reason"] for e in entries)


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/api/studies/1.2.3.4.5", {}, 404),
    ("/api/series/1.2.3.4.5", {}, 404),
    ("/api/series/1.2.3.4.5/volume", {}, 404),
    ("/api/studies", {"limit": "ten"}, 400),
    ("/api/studies", {"limit": "-1"}, 400),
    ("/api/studies", {"offset": "1e9"}, 400),
    ("/api/quarantine", {"limit": "0"}, 400),
    ("/api/no-such-endpoint", {}, 404),
])
def test_bad_requests_get_4xx_with_a_message(server: ServerProcess, path: str,
                                             params: dict[str, str], status: int) -> None:
    r = get(server, path, **params)
    assert r.status_code == status
    assert r.json()["error"]


def test_volume_of_a_non_image_series_is_a_404(server: ServerProcess) -> None:
    study = _acrin_study(server)
    rwv = next(s for s in study["series"] if s["modality"] == "RWV")
    r = get(server, f"/api/series/{rwv['series_uid']}/volume")
    assert r.status_code == 404 and "not an image stack" in r.json()["error"]


def test_wrong_method_is_a_405(server: ServerProcess) -> None:
    r = server.http.delete(server.url + "/api/studies", timeout=30)
    assert r.status_code == 405 and r.json()["error"]
