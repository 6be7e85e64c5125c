"""Malformed, unknown and oversized DICOMweb requests get 4xx answers, never 5xx (PS3.18).

Each case names the request and the status PS3.18 (or HTTP) gives it; the body is the
server's JSON error message for 4xx outside STOW-RS, and a Store Instances Response Module
for refused STOW-RS parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pydicom
import pytest
import requests

from tests.conftest import ServerProcess, data_path

pytestmark = pytest.mark.integration

BOUNDARY = "voxcast-bad-request-boundary"
MULTIPART_DICOM = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def multipart_body(parts: list[bytes], part_type: str = "application/dicom") -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode()
    return b"".join(head + p + b"\r\n" for p in parts) + f"--{BOUNDARY}--\r\n".encode()


@dataclass
class Seeded:
    http: requests.Session
    base: str
    study: str
    series: str
    sop: str


@pytest.fixture(scope="module")
def seeded(voxcast_server: ServerProcess) -> Iterator[Seeded]:
    source = sorted(data_path("petct-acrin042", "PT_AC").glob("*.dcm"))[0]
    base = f"{voxcast_server.url}/dicomweb"
    resp = voxcast_server.http.post(f"{base}/studies",
                                    data=multipart_body([source.read_bytes()]),
                                    headers={"Content-Type": MULTIPART_DICOM}, timeout=30)
    assert resp.status_code in (200, 202), resp.text
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    yield Seeded(http=voxcast_server.http, base=base, study=str(ds.StudyInstanceUID),
                 series=str(ds.SeriesInstanceUID), sop=str(ds.SOPInstanceUID))


def _json_error(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert body["status"] == status and body["error"]
    return str(body["error"])


UNKNOWN = "1.2.3.4.5.6.7.8.9"


@pytest.mark.parametrize("path", [
    "/studies/{unknown}",
    "/studies/{unknown}/metadata",
    "/studies/{study}/series/{unknown}",
    "/studies/{study}/series/{unknown}/metadata",
    "/studies/{unknown}/series/{series}/instances/{sop}",
    "/studies/{study}/series/{series}/instances/{unknown}",
    "/studies/{study}/series/{series}/instances/{unknown}/metadata",
    "/studies/{study}/series/{series}/instances/{unknown}/frames/1",
    "/studies/{study}/series/{series}/instances/{unknown}/bulkdata/7FE00010",
    "/studies/{study}/series/{series}/instances/{sop}/bulkdata/00091001",
    "/studies/{study}/series/{unknown}/thumbnail",
    "/studies/{study}/series/{series}/instances/{sop}/frames/999",
])
def test_unknown_resources_are_404(seeded: Seeded, path: str) -> None:
    url = seeded.base + path.format(unknown=UNKNOWN, study=seeded.study, series=seeded.series,
                                    sop=seeded.sop)
    _json_error(seeded.http.get(url, timeout=30), 404)


@pytest.mark.parametrize("query", [
    {"NoSuchKeyword": "x"},
    {"StudyDate": "2020"},
    {"StudyDate": "20201301"},
    {"StudyDate": "20201231-20200101"},
    {"StudyDate": "-"},
    {"StudyTime": "25"},
    {"StudyInstanceUID": "not-a-uid"},
    {"limit": "ten"},
    {"limit": "-1"},
    {"offset": "1.5"},
    {"fuzzymatching": "maybe"},
    {"includefield": "NotAnAttribute"},
    {"PatientID": ["a", "b"]},
])
def test_malformed_search_is_400(seeded: Seeded, query: dict[str, str]) -> None:
    _json_error(seeded.http.get(f"{seeded.base}/studies", params=query, timeout=30), 400)


def test_malformed_series_and_instance_keys_are_400(seeded: Seeded) -> None:
    _json_error(seeded.http.get(f"{seeded.base}/series", params={"SeriesNumber": "two"},
                                timeout=30), 400)
    _json_error(seeded.http.get(f"{seeded.base}/instances", params={"InstanceNumber": "x"},
                                timeout=30), 400)


def test_unsupported_matching_is_ignored_with_a_warning(seeded: Seeded) -> None:
    resp = seeded.http.get(f"{seeded.base}/studies", timeout=30,
                           params={"PatientWeight": "91", "fuzzymatching": "true"})
    assert resp.status_code == 200
    assert "PatientWeight" in resp.headers["Warning"]
    assert "fuzzymatching" in resp.headers["Warning"]
    assert len(resp.json()) == 1


@pytest.mark.parametrize("frames", ["0", "a", "1,,2", "-1", "1;2"])
def test_malformed_frame_lists_are_400(seeded: Seeded, frames: str) -> None:
    url = (f"{seeded.base}/studies/{seeded.study}/series/{seeded.series}/instances/"
           f"{seeded.sop}/frames/{frames}")
    _json_error(seeded.http.get(url, timeout=30), 400)


def test_bad_bulkdata_path_is_400(seeded: Seeded) -> None:
    url = (f"{seeded.base}/studies/{seeded.study}/series/{seeded.series}/instances/"
           f"{seeded.sop}/bulkdata/pixels")
    _json_error(seeded.http.get(url, timeout=30), 400)


@pytest.mark.parametrize(("path", "accept"), [
    ("/studies/{study}", "image/png"),
    ("/studies/{study}/series/{series}", 'multipart/related; type="application/dicom+xml"'),
    ("/studies/{study}/series/{series}/instances/{sop}",
     'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'),
    ("/studies/{study}/metadata", "application/dicom+xml"),
    ("/studies", "application/dicom+xml"),
    ("/studies/{study}/series/{series}/instances/{sop}/frames/1", "image/jls"),
    ("/studies/{study}/series/{series}/thumbnail", "application/pdf"),
])
def test_unacceptable_media_types_are_406(seeded: Seeded, path: str, accept: str) -> None:
    url = seeded.base + path.format(study=seeded.study, series=seeded.series, sop=seeded.sop)
    _json_error(seeded.http.get(url, headers={"Accept": accept}, timeout=30), 406)


@pytest.mark.parametrize("viewport", ["0,10", "a,b", "10", "99999,10"])
def test_bad_viewport_is_400(seeded: Seeded, viewport: str) -> None:
    url = f"{seeded.base}/studies/{seeded.study}/series/{seeded.series}/thumbnail"
    _json_error(seeded.http.get(url, params={"viewport": viewport}, timeout=30), 400)


# -- STOW-RS ----------------------------------------------------------------------------------


def _post(seeded: Seeded, body: bytes, content_type: str | None) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return seeded.http.post(f"{seeded.base}/studies", data=body, headers=headers, timeout=30)


def test_stow_non_dicom_part_is_a_failure_entry_and_409(seeded: Seeded) -> None:
    resp = _post(seeded, multipart_body([b"\x00" * 200 + b"not dicom at all"]),
                 MULTIPART_DICOM)
    assert resp.status_code == 409
    assert resp.headers["Content-Type"] == "application/dicom+json"
    failed = resp.json()["00081198"]["Value"]
    assert len(failed) == 1
    assert failed[0]["00081197"]["Value"] == [0xC000]
    assert failed[0]["00000902"]["Value"][0]
    assert "00081199" not in resp.json()


def test_stow_truncated_after_a_good_part_stores_it_and_reports_202(seeded: Seeded) -> None:
    source = sorted(data_path("petct-acrin042", "PT_AC").glob("*.dcm"))[1]
    body = multipart_body([source.read_bytes()]).removesuffix(f"--{BOUNDARY}--\r\n".encode())
    body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + b"\x01" * 99
    resp = _post(seeded, body, MULTIPART_DICOM)
    assert resp.status_code == 202
    assert len(resp.json()["00081199"]["Value"]) == 1
    assert resp.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]


def test_stow_part_of_another_media_type_fails(seeded: Seeded) -> None:
    body = multipart_body([b'{"00100010": {"vr": "PN"}}'], part_type="application/json")
    resp = _post(seeded, body, f"multipart/related; boundary={BOUNDARY}")
    assert resp.status_code == 409
    assert resp.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]


@pytest.mark.parametrize("content_type", [
    None,
    "application/dicom",
    "application/json",
    f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}',
    f"multipart/form-data; boundary={BOUNDARY}",
])
def test_stow_wrong_content_type_is_415(seeded: Seeded, content_type: str | None) -> None:
    _json_error(_post(seeded, multipart_body([b"x" * 10]), content_type), 415)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"", MULTIPART_DICOM),
    (b"garbage without any boundary line", MULTIPART_DICOM),
    (f"--{BOUNDARY}--\r\n".encode(), MULTIPART_DICOM),
    (multipart_body([b"x"]), 'multipart/related; type="application/dicom"'),
    (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + b"\x00" * 300,
     MULTIPART_DICOM),  # _truncated: the body ends inside the part
    (f"--{BOUNDARY}\r\nnot a header line\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode(),
     MULTIPART_DICOM),  # _invalid part header
    (multipart_body([b"x"]), "multipart/related; type=application/dicom; boundary="),
])
def test_stow_empty_or_garbage_body_is_400(seeded: Seeded, body: bytes,
                                           content_type: str) -> None:
    _json_error(_post(seeded, body, content_type), 400)


def test_stow_oversized_body_is_413(server_factory: Callable[..., ServerProcess],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXCAST_MAX_UPLOAD_BYTES", str(64 * 1024))
    srv = server_factory()
    source = sorted(data_path("petct-acrin042", "CT").glob("*.dcm"))[0]  # ~0.5 MB
    body = multipart_body([source.read_bytes()])
    url = f"{srv.url}/dicomweb/studies"
    _json_error(srv.http.post(url, data=body, headers={"Content-Type": MULTIPART_DICOM},
                              timeout=30), 413)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for i in range(0, len(body), 16 * 1024):
            yield body[i:i + 16 * 1024]

    _json_error(srv.http.post(url, data=chunked(), headers={"Content-Type": MULTIPART_DICOM},
                              timeout=30), 413)
    small = sorted(data_path("petct-acrin042", "PT_AC").glob("*.dcm"))[0]  # ~40 KB: fits
    ok = srv.http.post(url, data=multipart_body([small.read_bytes()]),
                       headers={"Content-Type": MULTIPART_DICOM}, timeout=30)
    assert ok.status_code in (200, 202)
    assert srv.http.get(f"{srv.url}/dicomweb/studies", timeout=30).json()
