"""DICOMweb against a real ``voxcast serve``: STOW-RS, QIDO-RS, WADO-RS, thumbnails (PS3.18).

The client is ``dicomweb-client`` where it can express the request; raw ``requests`` calls
check what it hides (exact bytes, status codes, headers).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.conftest import ServerProcess, data_path

pytestmark = pytest.mark.integration

BOUNDARY = "voxcast-test-boundary-7d1f"
CT_FILES = 20


@dataclass
class Stored:
    """What the module fixture stored, with the source files to compare against."""

    srv: ServerProcess
    client: DICOMwebClient
    ct_files: list[Path]
    ct_study: str
    ct_series: str
    pt_file: Path
    jls_file: Path
    emri_file: Path
    stow_ct_status: int
    stow_ct_body: dict[str, Any]

    @property
    def base(self) -> str:
        return f"{self.srv.url}/dicomweb"

    @property
    def http(self) -> requests.Session:
        return self.srv.http


def multipart_body(parts: list[bytes], part_type: str = "application/dicom") -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode()
    return b"".join(head + p + b"\r\n" for p in parts) + f"--{BOUNDARY}--\r\n".encode()


def stow(srv: ServerProcess, parts: list[bytes], study: str | None = None) -> requests.Response:
    url = f"{srv.url}/dicomweb/studies" + (f"/{study}" if study else "")
    return srv.http.post(url, data=multipart_body(parts), timeout=60, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        "Accept": "application/dicom+json"})


def parse_multipart(resp: requests.Response) -> list[tuple[str, bytes]]:
    """(part Content-Type, body) of each part, parsed independently of the server."""
    ctype = resp.headers["Content-Type"]
    assert ctype.startswith("multipart/related"), ctype
    boundary = next(p.split("=", 1)[1].strip('"') for p in ctype.split(";")
                    if p.strip().startswith("boundary="))
    chunks = (b"\r\n" + resp.content).split(b"\r\n--" + boundary.encode())
    assert chunks[-1].startswith(b"--"), "missing closing delimiter"
    out = []
    for chunk in chunks[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        types = [h.split(b":", 1)[1].strip().decode() for h in head.split(b"\r\n")
                 if h.lower().startswith(b"content-type:")]
        out.append((types[0] if types else "", body))
    return out


def values(ds: dict[str, Any], tag: str) -> list[Any]:
    return list(ds.get(tag, {}).get("Value", []))


def first(ds: dict[str, Any], tag: str) -> Any:
    got = values(ds, tag)
    return got[0] if got else None


@pytest.fixture(scope="module")
def stored(voxcast_server: ServerProcess) -> Iterator[Stored]:
    ct_files = sorted(data_path("petct-acrin042", "CT").glob("*.dcm"))[:CT_FILES]
    pt_file = sorted(data_path("petct-acrin042", "PT_AC").glob("*.dcm"))[60]
    jls_file = data_path("compressed-wg04", "CT1_JLSL.dcm")
    emri_file = data_path("compressed-wg04", "pydicom-data_emri_multiframe",
                          "emri_small_jpeg_ls_lossless.dcm")
    client = DICOMwebClient(url=f"{voxcast_server.url}/dicomweb",
                            headers=voxcast_server.headers)
    resp = stow(voxcast_server, [f.read_bytes() for f in ct_files])
    ct0 = pydicom.dcmread(ct_files[0], stop_before_pixels=True)
    client.store_instances([pydicom.dcmread(pt_file), pydicom.dcmread(jls_file)])
    emri = pydicom.dcmread(emri_file, stop_before_pixels=True)
    stow(voxcast_server, [emri_file.read_bytes()], emri.StudyInstanceUID)
    yield Stored(srv=voxcast_server, client=client, ct_files=ct_files,
                 ct_study=str(ct0.StudyInstanceUID), ct_series=str(ct0.SeriesInstanceUID),
                 pt_file=pt_file, jls_file=jls_file, emri_file=emri_file,
                 stow_ct_status=resp.status_code, stow_ct_body=resp.json())


# -- STOW-RS ----------------------------------------------------------------------------------


def test_stow_response_lists_every_instance(stored: Stored) -> None:
    assert stored.stow_ct_status in (200, 202)
    body = stored.stow_ct_body
    assert "00081198" not in body  # no failures
    refs = values(body, "00081199")
    assert len(refs) == CT_FILES
    sops = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
            for f in stored.ct_files}
    assert {first(r, "00081155") for r in refs} == sops
    assert all(first(r, "00081150") == "1.2.840.10008.5.1.4.1.1.2" for r in refs)
    assert first(body, "00081190") == f"{stored.base}/studies/{stored.ct_study}"
    url = first(refs[0], "00081190")
    assert url.startswith(f"{stored.base}/studies/{stored.ct_study}/series/{stored.ct_series}/")
    if stored.stow_ct_status == 200:
        assert all("00081196" not in r for r in refs)


def test_stow_duplicate_is_success_and_new_version_warns(stored: Stored) -> None:
    again = stow(stored.srv, [stored.ct_files[0].read_bytes()])
    assert again.status_code in (200, 202)
    assert len(values(again.json(), "00081199")) == 1
    # Same SOP Instance UID, other bytes (uncompressed twin of the JPEG-LS file).
    twin = stored.emri_file.with_name("emri_small.dcm")
    resp = stow(stored.srv, [twin.read_bytes()])
    assert resp.status_code == 202
    ref = values(resp.json(), "00081199")[0]
    assert first(ref, "00081196") == 0xB100


def test_stow_into_other_study_is_refused_with_a900(stored: Stored) -> None:
    resp = stow(stored.srv, [stored.jls_file.read_bytes()], study=stored.ct_study)
    assert resp.status_code == 409
    body = resp.json()
    failed = values(body, "00081198")
    assert len(failed) == 1 and "00081199" not in body
    assert first(failed[0], "00081197") == 0xA900
    assert first(failed[0], "00081155") == str(
        pydicom.dcmread(stored.jls_file, stop_before_pixels=True).SOPInstanceUID)
    assert "Study" in first(failed[0], "00000902")
    assert len(first(failed[0], "00000902")) <= 64


def test_stow_mixed_parts_give_202(stored: Stored) -> None:
    resp = stow(stored.srv, [stored.ct_files[1].read_bytes(), b"definitely not DICOM"])
    assert resp.status_code == 202
    body = resp.json()
    assert len(values(body, "00081199")) == 1
    failed = values(body, "00081198")
    assert first(failed[0], "00081197") == 0xC000
    assert "00081155" in failed[0] and first(failed[0], "00081155") is None


# -- QIDO-RS ----------------------------------------------------------------------------------


def test_search_studies_returns_required_attributes(stored: Stored) -> None:
    studies = stored.client.search_for_studies()
    assert len(studies) == 3
    acrin = next(s for s in studies if first(s, "0020000D") == stored.ct_study)
    for tag in ("00080020", "00080030", "00080050", "00080061", "00080090", "00100010",
                "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206",
                "00201208", "00081190"):
        assert tag in acrin, tag
    assert first(acrin, "00100020") == "ACRIN-NSCLC-FDG-PET-042"
    assert first(acrin, "00100010") == {"Alphabetic": "ACRIN-NSCLC-FDG-PET-042"}
    assert values(acrin, "00080061") == ["CT", "PT"]
    assert first(acrin, "00201206") == 2
    assert first(acrin, "00201208") == CT_FILES + 1
    # dicomweb-client sends ``Host`` without the port, so compare the path only.
    assert urlsplit(first(acrin, "00081190")).path == f"/dicomweb/studies/{stored.ct_study}"


@pytest.mark.parametrize(("filters", "expected"), [
    ({"PatientID": "ACRIN-NSCLC-FDG-PET-042"}, {"acrin"}),
    ({"PatientID": "ACRIN*"}, {"acrin"}),
    ({"PatientID": "acrin*"}, set()),  # PatientID (LO) matches case-sensitively
    ({"PatientID": "?CT1"}, {"wg04"}),
    ({"PatientName": "acrin-nsclc*"}, {"acrin"}),  # PN: case-insensitive
    ({"PatientName": "compressedsamples^ct?"}, {"wg04"}),
    ({"00100020": "1CT1"}, {"wg04"}),
    ({"StudyDate": "19600116"}, {"acrin"}),
    ({"StudyDate": "19600101-19601231"}, {"acrin"}),
    ({"StudyDate": "-19700101"}, {"acrin"}),
    ({"StudyDate": "20000101-"}, {"wg04", "emri"}),
    ({"StudyDate": "20040826-20040826"}, {"wg04"}),
    ({"ModalitiesInStudy": "PT"}, {"acrin"}),
    ({"ModalitiesInStudy": "MR"}, {"emri"}),
    ({"Modality": "CT", "PatientID": "1CT1"}, {"wg04"}),  # series key: returned, not matched
])
def test_search_studies_matching(stored: Stored, filters: dict[str, str],
                                 expected: set[str]) -> None:
    names = {stored.ct_study: "acrin",
             "1.3.6.1.4.1.5962.1.2.1.20040826185059.5457": "wg04",
             str(pydicom.dcmread(stored.emri_file, stop_before_pixels=True).StudyInstanceUID):
                 "emri"}
    found = stored.client.search_for_studies(search_filters=filters)
    assert {names[first(s, "0020000D")] for s in found} == expected


def test_search_studies_uid_list_limit_offset_includefield(stored: Stored) -> None:
    wg04 = "1.3.6.1.4.1.5962.1.2.1.20040826185059.5457"
    both = stored.client.search_for_studies(
        search_filters={"StudyInstanceUID": f"{stored.ct_study},{wg04}"})
    assert {first(s, "0020000D") for s in both} == {stored.ct_study, wg04}
    everything = stored.client.search_for_studies()
    page = stored.client.search_for_studies(limit=1, offset=1)
    assert [first(s, "0020000D") for s in page] == [first(everything[1], "0020000D")]
    described = stored.client.search_for_studies(
        search_filters={"PatientID": "ACRIN-NSCLC-FDG-PET-042"},
        fields=["00081030", "PatientAge", "SeriesDescription"])
    assert "00081030" in described[0] and "00101010" in described[0]
    assert "0008103E" not in described[0]  # series level: never in a study result
    full = stored.http.get(f"{stored.base}/studies", params={
        "PatientID": "ACRIN-NSCLC-FDG-PET-042", "includefield": "all",
        "fuzzymatching": "false"}, timeout=30)
    assert full.status_code == 200
    assert full.headers["Content-Type"] == "application/dicom+json"
    assert "00101030" in full.json()[0]  # PatientWeight, from the stored header


def test_search_series_and_instances(stored: Stored) -> None:
    series = stored.client.search_for_series(stored.ct_study)
    assert {first(s, "00080060") for s in series} == {"CT", "PT"}
    ct = next(s for s in series if first(s, "00080060") == "CT")
    assert first(ct, "00201209") == CT_FILES
    assert first(ct, "0020000E") == stored.ct_series
    assert urlsplit(first(ct, "00081190")).path == \
        f"/dicomweb/studies/{stored.ct_study}/series/{stored.ct_series}"
    by_number = stored.client.search_for_series(stored.ct_study,
                                                 search_filters={"SeriesNumber": "2"})
    assert [first(s, "0020000E") for s in by_number] == [stored.ct_series]
    everywhere = stored.client.search_for_series(
        search_filters={"Modality": "CT", "PatientName": "*nsclc*"}, fields=["Manufacturer"])
    assert [first(s, "0020000E") for s in everywhere] == [stored.ct_series]
    assert first(everywhere[0], "00100020") == "ACRIN-NSCLC-FDG-PET-042"  # study attributes
    assert first(everywhere[0], "00080070")  # Manufacturer from the header

    instances = stored.client.search_for_instances(stored.ct_study, stored.ct_series)
    assert len(instances) == CT_FILES
    numbers = [first(i, "00200013") for i in instances]
    assert numbers == sorted(numbers)
    one = instances[3]
    for tag in ("00080016", "00080018", "00200013", "00280010", "00280011", "00280100",
                "00280008", "00081190"):
        assert tag in one, tag
    assert first(one, "00280100") == 16
    sop = first(one, "00080018")
    assert [first(i, "00080018") for i in stored.client.search_for_instances(
        search_filters={"SOPInstanceUID": sop})] == [sop]
    page = stored.client.search_for_instances(stored.ct_study, stored.ct_series,
                                              limit=5, offset=5)
    assert [first(i, "00080018") for i in page] == [first(i, "00080018")
                                                    for i in instances[5:10]]
    pets = stored.client.search_for_instances(stored.ct_study, search_filters={"Modality": "PT"})
    assert len(pets) == 1
    assert stored.client.search_for_instances(search_filters={"PatientID": "nobody"}) == []


# -- WADO-RS ----------------------------------------------------------------------------------


def test_retrieve_instance_bytes_are_exactly_the_stored_file(stored: Stored) -> None:
    source = stored.ct_files[4]
    sop = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    url = f"{stored.base}/studies/{stored.ct_study}/series/{stored.ct_series}/instances/{sop}"
    resp = stored.http.get(url, timeout=30,
                           headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert resp.status_code == 200
    parts = parse_multipart(resp)
    assert len(parts) == 1
    assert parts[0][0].startswith("application/dicom")
    assert parts[0][1] == source.read_bytes()
    ds = stored.client.retrieve_instance(stored.ct_study, stored.ct_series, sop)
    assert ds.SOPInstanceUID == sop
    series = stored.client.retrieve_series(stored.ct_study, stored.ct_series)
    assert len(series) == CT_FILES


def test_retrieve_bare_data_set_gets_generated_file_meta(stored: Stored) -> None:
    source = stored.ct_files[0].with_name("CT_0100.dcm")
    data = source.read_bytes()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    meta_end = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
    bare = data[meta_end:]
    assert stow(stored.srv, [bare]).status_code in (200, 202)
    url = (f"{stored.base}/studies/{stored.ct_study}/series/{stored.ct_series}/instances/"
           f"{ds.SOPInstanceUID}")
    body = parse_multipart(stored.http.get(url, timeout=30))[0][1]
    assert body[128:132] == b"DICM" and body.endswith(bare)
    back = pydicom.dcmread(io.BytesIO(body))
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert np.array_equal(back.pixel_array, pydicom.dcmread(source).pixel_array)


def test_retrieve_transcodes_to_explicit_little_endian_on_request(stored: Stored) -> None:
    src = pydicom.dcmread(stored.jls_file)
    url = (f"{stored.base}/studies/{src.StudyInstanceUID}/series/{src.SeriesInstanceUID}/"
           f"instances/{src.SOPInstanceUID}")
    resp = stored.http.get(url, timeout=30, headers={
        "Accept": 'multipart/related; type="application/dicom"; '
                  'transfer-syntax=1.2.840.10008.1.2.1'})
    assert resp.status_code == 200
    back = pydicom.dcmread(io.BytesIO(parse_multipart(resp)[0][1]))
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(back.pixel_array, src.pixel_array)


def test_metadata_and_bulkdata(stored: Stored) -> None:
    meta = stored.client.retrieve_study_metadata(stored.ct_study)
    assert len(meta) >= CT_FILES + 1
    ct_meta = [m for m in meta if first(m, "00080060") == "CT"]
    pixel = ct_meta[0]["7FE00010"]
    assert "Value" not in pixel and "InlineBinary" not in pixel
    uri = pixel["BulkDataURI"]
    sop = first(ct_meta[0], "00080018")
    assert urlsplit(uri).path == (f"/dicomweb/studies/{stored.ct_study}/series/"
                                  f"{stored.ct_series}/instances/{sop}/bulkdata/7FE00010")
    uri = stored.base + urlsplit(uri).path.removeprefix("/dicomweb")
    source = next(f for f in stored.ct_files + [stored.ct_files[0].with_name("CT_0100.dcm")]
                  if pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID == sop)
    assert stored.client.retrieve_bulkdata(uri) == [pydicom.dcmread(source).PixelData]
    series_meta = stored.client.retrieve_series_metadata(stored.ct_study, stored.ct_series)
    assert {first(m, "0020000E") for m in series_meta} == {stored.ct_series}
    one = stored.client.retrieve_instance_metadata(stored.ct_study, stored.ct_series, sop)
    assert first(one, "00080018") == sop and first(one, "00100020") == "ACRIN-NSCLC-FDG-PET-042"


def test_frames_native_and_decoded(stored: Stored) -> None:
    source = pydicom.dcmread(stored.ct_files[7])
    frames = stored.client.retrieve_instance_frames(
        stored.ct_study, stored.ct_series, str(source.SOPInstanceUID), [1])
    got = np.frombuffer(frames[0], dtype=source.pixel_array.dtype).reshape(512, 512)
    assert np.array_equal(got, source.pixel_array)

    # JPEG-LS multi-frame: decoded frames, native little endian (the current version is the
    # uncompressed twin stored by another test, or the JPEG-LS original: same pixels).
    emri = pydicom.dcmread(stored.emri_file)
    expected = emri.pixel_array
    frames = stored.client.retrieve_instance_frames(
        str(emri.StudyInstanceUID), str(emri.SeriesInstanceUID), str(emri.SOPInstanceUID),
        [1, 5, 10])
    assert len(frames) == 3
    for number, frame in zip([1, 5, 10], frames, strict=True):
        pixels = np.frombuffer(frame, dtype="<" + expected.dtype.str[1:])
        assert np.array_equal(pixels.reshape(expected.shape[1:]), expected[number - 1])


def _wait_for_volume(stored: Stored, series: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = stored.http.get(f"{stored.srv.url}/api/series/{series}", timeout=10).json()[
            "volume_state"]
        if state in ("ready", "failed", "not_volumetric"):
            return str(state)
        time.sleep(0.2)
    return str(state)


def test_thumbnail_and_rendered(stored: Stored) -> None:
    assert _wait_for_volume(stored, stored.ct_series) == "ready"
    url = f"{stored.base}/studies/{stored.ct_study}/series/{stored.ct_series}"
    png = stored.http.get(f"{url}/thumbnail", headers={"Accept": "image/png"}, timeout=30)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.format == "PNG" and image.size == (128, 128)
    assert np.asarray(image, dtype=np.float64).std() > 0
    jpeg = stored.http.get(f"{url}/thumbnail", params={"viewport": "64,32"}, timeout=30)
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    small = Image.open(io.BytesIO(jpeg.content))
    assert small.format == "JPEG" and small.size == (32, 32)
    rendered = stored.client.retrieve_series_rendered(stored.ct_study, stored.ct_series,
                                                      media_types=("image/png",))
    full = Image.open(io.BytesIO(rendered))
    assert full.size == (512, 512) and np.asarray(full, dtype=np.float64).std() > 0

    pt = pydicom.dcmread(stored.pt_file, stop_before_pixels=True)
    pet = stored.http.get(f"{stored.base}/studies/{pt.StudyInstanceUID}/series/"
                          f"{pt.SeriesInstanceUID}/thumbnail", params={"viewport": "256,256"},
                          headers={"Accept": "image/png"}, timeout=30)
    assert pet.status_code == 200
    pet_image = Image.open(io.BytesIO(pet.content))
    assert pet_image.size == (256, 256) and np.asarray(pet_image, dtype=np.float64).std() > 0
