"""What the browser viewer needs from a render session, over a real WebSocket against a real
``voxcast serve`` of the shared archive: the slice position in ``state`` events, the series
facts (with the four-corner text), prior studies of the same patient in one session, and the
``series`` message (a series dropped into a viewport).

Numbers are checked against the volume (``GET /api/series/{uid}/volume``), the DICOM
attributes of the files themselves (pydicom) and the plane geometry in millimetres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pydicom
import pytest

from tests.conftest import ServerProcess, data_path
from tests.streaming.session_client import Received, SessionClient, run

pytestmark = pytest.mark.integration

ACRIN = "ACRIN-NSCLC-FDG-PET-042"
PHANTOM = "PLASTIC"  # ct-phantom-philips-2studies: two studies, one frame of reference


def _http(server: ServerProcess) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers=server.headers)


def _studies(server: ServerProcess, patient_id: str) -> list[dict[str, Any]]:
    r = server.http.get(f"{server.url}/api/studies", params={"PatientID": patient_id},
                        timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json())


def _volume(server: ServerProcess, series_uid: str) -> dict[str, Any]:
    r = server.http.get(f"{server.url}/api/series/{series_uid}/volume", timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _study_series(server: ServerProcess, study_uid: str) -> list[dict[str, Any]]:
    r = server.http.get(f"{server.url}/api/studies/{study_uid}", timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["series"])


@pytest.fixture(scope="module")
def acrin_study(archive_server: ServerProcess) -> str:
    return str(_studies(archive_server, ACRIN)[0]["study_uid"])


@pytest.fixture(scope="module")
def phantom_studies(archive_server: ServerProcess) -> list[str]:
    data_path("ct-phantom-philips-2studies")
    studies = _studies(archive_server, PHANTOM)
    assert len(studies) == 2
    return [str(s["study_uid"]) for s in studies]


async def _settled(client: SessionClient, viewports: set[str]) -> None:
    """Wait until each of ``viewports`` has sent a lossless frame (in whatever order)."""
    waiting = set(viewports)

    def done(r: Received) -> bool:
        if r.header is not None and r.header["kind"] == "lossless":
            waiting.discard(r.header["viewport"])
        return not waiting

    await client.until(done, timeout=60)


def _normal(plane: dict[str, Any]) -> np.ndarray:
    return np.cross(plane["row_dir"], plane["col_dir"])


def _distance_from_plane(point: np.ndarray, plane: dict[str, Any]) -> float:
    return float(abs((point - np.array(plane["center_lps"])) @ _normal(plane)))


def test_state_events_say_where_the_slice_is_in_the_stack(archive_server: ServerProcess,
                                                          acrin_study: str) -> None:
    async def go() -> None:
        async with _http(archive_server) as http:
            client = await SessionClient.open(http, archive_server.url, acrin_study, "1x1",
                                              viewport_size=[256, 256])
            first = await client.event("state")
            ct_uid = first["view"]["series_uid"]
            volume = _volume(archive_server, ct_uid)
            nz, ny, _ = volume["shape"]
            assert (nz, ny) == (135, 512)
            where = first["slice"]
            assert where["count"] == nz and where["index"] == nz // 2
            assert where["spacing_mm"] == pytest.approx(volume["spacing_mm"][0], abs=1e-3)
            plane = first["geometry"]["plane"]
            assert where["position_mm"] == pytest.approx(
                float(np.array(plane["center_lps"]) @ _normal(plane)), abs=1e-6)
            # On the acquisition plane the index is the volume's slice index.
            seq = await client.send("page", index=10)
            state = await client.event("state", seq=seq)
            assert state["view"]["slice_index"] == 10
            assert state["slice"]["index"] == 10 and state["slice"]["count"] == nz
            affine = np.array(volume["affine"])
            slice10 = affine @ np.array([10.0, 0.0, 0.0, 1.0])
            assert state["slice"]["position_mm"] == pytest.approx(
                float(slice10[:3] @ _normal(state["geometry"]["plane"])), abs=1e-3)
            # Coronal: one slice per row of the volume; paging by 5 moves the index by 5.
            seq = await client.send("view", set={"orientation": "coronal"})
            coronal = (await client.event("state", seq=seq))["slice"]
            assert coronal["count"] == ny
            assert coronal["spacing_mm"] == pytest.approx(volume["spacing_mm"][1], abs=1e-3)
            seq = await client.send("page", delta=5)
            paged = (await client.event("state", seq=seq))["slice"]
            assert paged["index"] == coronal["index"] + 5 and paged["count"] == ny
            assert paged["position_mm"] - coronal["position_mm"] == pytest.approx(
                5 * coronal["spacing_mm"], abs=1e-3)
            # A 3D view has no slice.
            seq = await client.send("mode", render="mip")
            three_d = await client.event("state", seq=seq)
            assert "slice" not in three_d and three_d["view"]["render3d"]["method"] == "mip"
            await client.close()
    run(go())


def _first_file(folder: Path) -> pydicom.Dataset:
    return pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True)


def test_series_facts_carry_shape_units_and_the_four_corner_text(
        archive_server: ServerProcess, acrin_study: str) -> None:
    ct_ds = _first_file(data_path("petct-acrin042", "CT"))
    pet_ds = _first_file(data_path("petct-acrin042", "PT_AC"))

    async def go() -> None:
        async with _http(archive_server) as http:
            client = await SessionClient.open(http, archive_server.url, acrin_study, "1x1",
                                              viewport_size=[128, 128])
            created = client.created["series"]
            hello = await client.event("hello")
            r = await http.get(f"{archive_server.url}/api/sessions/{client.session_id}")
            described = (await r.json())["series"]
            assert created == hello["series"] == described
            assert client.created["studies"] == [acrin_study]
            by_uid = {s["series_uid"]: s for s in created}
            assert len(by_uid) == len(created)
            catalog = {s["series_uid"]: s for s in _study_series(archive_server, acrin_study)}
            for entry in created:
                assert entry["series_uid"] in catalog and entry["study_uid"] == acrin_study
                volume = _volume(archive_server, entry["series_uid"])
                assert entry["shape"] == volume["shape"]
                assert entry["frame_of_reference_uid"] == volume["frame_of_reference_uid"]
            ct = by_uid[ct_ds.SeriesInstanceUID]
            assert ct["modality"] == "CT" and ct["units"] == "HU" and not ct["is_suv"]
            assert ct["series_number"] == int(ct_ds.SeriesNumber)
            assert ct["series_description"] == ct_ds.SeriesDescription
            assert ct["frame_of_reference_uid"] == ct_ds.FrameOfReferenceUID
            assert ct["shape"] == [135, 512, 512]
            corner = ct["four_corner"]
            assert corner["kvp"] == pytest.approx(float(ct_ds.KVP))
            assert corner["manufacturer"] == ct_ds.Manufacturer
            assert corner["manufacturer_model_name"] == ct_ds.ManufacturerModelName
            assert corner["institution_name"] == str(ct_ds.get("InstitutionName") or "")
            assert corner["slice_thickness_mm"] == pytest.approx(float(ct_ds.SliceThickness))
            assert corner["series_description"] == ct_ds.SeriesDescription
            assert corner["patient_id"] == ct_ds.PatientID
            pet = by_uid[pet_ds.SeriesInstanceUID]
            assert pet["modality"] == "PT" and pet["is_suv"] and pet["units"] == "SUVbw"
            assert pet["frame_of_reference_uid"] == ct["frame_of_reference_uid"]
            assert pet["four_corner"]["manufacturer"] == pet_ds.Manufacturer
            assert pet["four_corner"]["series_description"] == pet_ds.SeriesDescription
            await client.close()
    run(go())


def test_prior_studies_fill_the_grid_and_share_the_crosshair(
        archive_server: ServerProcess, phantom_studies: list[str], acrin_study: str) -> None:
    current, prior = phantom_studies
    series_of = {u: {s["series_uid"] for s in _study_series(archive_server, u)}
                 for u in phantom_studies}

    async def go() -> None:
        async with _http(archive_server) as http:
            client = await SessionClient.open(http, archive_server.url, current, "1x2",
                                              viewport_size=[256, 256],
                                              prior_study_uids=[prior, current])
            created = client.created
            assert created["studies"] == [current, prior]
            assert {s["study_uid"] for s in created["series"]} == {current, prior}
            v0, v1 = (v["view"] for v in created["viewports"])
            assert v0["series_uid"] in series_of[current]
            assert v1["series_uid"] in series_of[prior]
            assert v0["orientation"] == v1["orientation"] == "acquisition"
            hello = await client.event("hello")
            assert hello["studies"] == [current, prior]
            await _settled(client, {"v0", "v1"})
            # Lesion sync across the studies: one frame of reference, one patient point.
            seq = await client.send("crosshair", viewport="v0", at_px=[140, 110])
            event = await client.event("crosshair", seq=seq)
            point = np.array(event["point_lps"])
            assert {x["viewport"] for x in event["viewports"]} == {"v0", "v1"}
            await client.frame(viewport="v1", input_seq=seq)
            plane1 = client.last_state("v1")["geometry"]["plane"]
            assert _distance_from_plane(point, plane1) < 0.01
            plane0 = client.last_state("v0")["geometry"]["plane"]
            assert _distance_from_plane(point, plane0) < 0.01
            # view set may switch a viewport to the prior's series.
            seq = await client.send("view", viewport="v0", set={"series_uid": v1["series_uid"]})
            state = await client.event("state", seq=seq)
            assert state["viewport"] == "v0" and state["view"]["series_uid"] == v1["series_uid"]
            await client.close()
            # 3x3 with one prior: studies alternate, orientations acq, cor, sag, ax, acq.
            r = await http.post(f"{archive_server.url}/api/sessions", json={
                "study_uid": current, "layout": "3x3", "viewport_size": [64, 64],
                "prior_study_uids": [prior]})
            assert r.status == 201, await r.text()
            grid = await r.json()
            views = [v["view"] for v in grid["viewports"]]
            await http.delete(f"{archive_server.url}/api/sessions/{grid['session_id']}")
            orientations = ["acquisition", "coronal", "sagittal", "axial"]
            for i, view in enumerate(views):
                assert view["series_uid"] in series_of[[current, prior][i % 2]]
                assert view["orientation"] == orientations[(i // 2) % 4]
            # Other layouts keep to the current study.
            r = await http.post(f"{archive_server.url}/api/sessions", json={
                "study_uid": current, "layout": "mpr", "prior_study_uids": [prior]})
            body = await r.json()
            assert r.status == 201 and body["studies"] == [current, prior]
            assert all(v["view"]["series_uid"] in series_of[current] for v in body["viewports"])
            await http.delete(f"{archive_server.url}/api/sessions/{body['session_id']}")
            # Another patient's study is 400, an unknown one 404, more than four 400.
            r = await http.post(f"{archive_server.url}/api/sessions", json={
                "study_uid": current, "layout": "1x2", "prior_study_uids": [acrin_study]})
            assert r.status == 400 and "patient" in (await r.json())["error"]
            r = await http.post(f"{archive_server.url}/api/sessions", json={
                "study_uid": current, "prior_study_uids": ["1.2.3.4.5"]})
            assert r.status == 404
            r = await http.post(f"{archive_server.url}/api/sessions", json={
                "study_uid": current, "prior_study_uids": [f"1.2.{i}" for i in range(5)]})
            assert r.status == 400 and "at most 4" in (await r.json())["error"]
            r = await http.post(f"{archive_server.url}/api/sessions", json={
                "study_uid": current, "prior_study_uids": "nope"})
            assert r.status == 400
    run(go())


def test_series_message_shows_a_series_first_view_and_reset_returns_to_it(
        archive_server: ServerProcess, acrin_study: str) -> None:
    pet_uid = _first_file(data_path("petct-acrin042", "PT_AC")).SeriesInstanceUID

    async def go() -> None:
        async with _http(archive_server) as http:
            client = await SessionClient.open(http, archive_server.url, acrin_study, "1x1",
                                              viewport_size=[256, 256])
            ct_view = client.created["viewports"][0]["view"]
            await client.frame(kind="lossless", timeout=60)
            seq = await client.send("size", size_px=[320, 240])
            await client.event("state", seq=seq)
            await client.send("cine", action="start", fps=10)
            await client.event("cine")
            # Drop the PET into the viewport: its first view, at the viewport's size.
            seq = await client.send("series", series_uid=pet_uid)
            assert (await client.event("cine", seq=seq))["fps"] == 0.0
            state = await client.event("state", seq=seq)
            pet_view = state["view"]
            pet_shape = _volume(archive_server, pet_uid)["shape"]
            assert pet_view["series_uid"] == pet_uid and pet_view["size_px"] == [320, 240]
            assert pet_view["orientation"] == "acquisition"
            assert pet_view["slice_index"] == pet_shape[0] // 2
            assert pet_view["preset"] == "pet-suv-0-5" and state["units"] == "SUVbw"
            assert state["slice"]["index"] == pet_shape[0] // 2
            # Move away; reset comes back to the PET's first view, not the CT's.
            await client.send("page", delta=7)
            await client.send("zoom", factor=2.0)
            seq = await client.send("reset")
            assert (await client.event("state", seq=seq))["view"] == pet_view
            # Back to the CT, coronal: the CT's own window, as the layout showed it.
            seq = await client.send("series", series_uid=ct_view["series_uid"],
                                    orientation="coronal")
            coronal = (await client.event("state", seq=seq))["view"]
            assert coronal["orientation"] == "coronal" and coronal["window"] == ct_view["window"]
            assert coronal["size_px"] == [320, 240]
            seq = await client.send("series", series_uid=ct_view["series_uid"])
            again = (await client.event("state", seq=seq))["view"]
            assert again == {**ct_view, "size_px": [320, 240]}
            # An unknown series is an error event; the connection stays open.
            seq = await client.send("series", series_uid="1.2.3.4")
            assert (await client.event("error", seq=seq))["code"] == "unknown_series"
            seq = await client.send("series", series_uid=pet_uid, orientation="oblique")
            assert (await client.event("error", seq=seq))["code"] == "bad_message"
            seq = await client.send("ping", viewport=None)
            await client.event("pong", seq=seq)
            await client.close()
    run(go())


def test_a_client_joining_a_settled_session_gets_its_frames_without_new_renders(
        archive_server: ServerProcess, acrin_study: str) -> None:
    """A second client (e.g. the WebRTC peer next to the WebSocket) is sent the last lossless
    frame and state of every settled viewport; the first client sees nothing again."""
    async def go() -> None:
        async with _http(archive_server) as http:
            a = await SessionClient.open(http, archive_server.url, acrin_study, "1x2")
            settled: dict[str, Received] = {}
            while len(settled) < 2:  # the viewports settle in either order
                item = await a.until(lambda r: r.is_frame and r.header is not None
                                     and r.header["kind"] == "lossless", timeout=60)
                assert item.header is not None
                settled[item.header["viewport"]] = item
            b = SessionClient(http=http, base_url=archive_server.url, created=a.created,
                              ws=await http.ws_connect(a.created["ws_url"], max_msg_size=0))
            joined: dict[str, Received] = {}
            while len(joined) < 2:
                item = await b.until(lambda r: r.is_frame and r.header is not None
                                     and r.header["kind"] == "lossless", timeout=10)
                assert item.header is not None
                joined[item.header["viewport"]] = item
            for vp, old in settled.items():
                new = joined[vp]
                assert new.header is not None and old.header is not None
                assert new.payload == old.payload
                assert new.header["frame_seq"] == old.header["frame_seq"]
                state = b.last_state(vp)  # the state came first, as for any frame
                assert state["view"] == a.last_state(vp)["view"] and not state["coarse"]
            with pytest.raises(TimeoutError):  # nothing was rendered again for the first client
                await a.until(lambda r: r.is_frame, timeout=1.5)
            # both clients get what follows
            seq = await b.send("page", "v0", delta=1)
            for client in (a, b):
                await client.frame(viewport="v0", kind="lossless", input_seq=seq, timeout=30)
            await b.close()
            await a.close()
    run(go())
