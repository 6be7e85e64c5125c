"""Render sessions over a real WebSocket, against a real ``voxcast serve`` over the ACRIN PET-CT.

Frames are checked against ``POST /api/render`` (the settled frame must be the same pixels),
states against the geometry of the volume in millimetres, rates against the wall clock.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator

import aiohttp
import numpy as np
import psutil
import pytest
from PIL import Image

from tests.conftest import ImportedArchive, ServerProcess, free_port
from tests.streaming.session_client import SessionClient, run

pytestmark = pytest.mark.integration

IDLE_S = 3.0


@pytest.fixture(scope="module")
def server(imported_archive: ImportedArchive) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir=imported_archive.data_dir, http_port=free_port(),
                        dicom_port=free_port(),
                        env={"VOXCAST_SESSION_IDLE_SECONDS": str(IDLE_S)}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def study_uid(server: ServerProcess) -> str:
    studies = server.http.get(f"{server.url}/api/studies",
                              params={"PatientID": "ACRIN-NSCLC-FDG-PET-042"}, timeout=30).json()
    return str(studies[0]["study_uid"])


def _http(server: ServerProcess) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers=server.headers)


async def _render_png(http: aiohttp.ClientSession, server: ServerProcess,
                      view: dict) -> np.ndarray:
    r = await http.post(f"{server.url}/api/render", json=view)
    assert r.status == 200, await r.text()
    return np.asarray(Image.open(io.BytesIO(await r.read())))


def test_session_contract_and_first_frame(server: ServerProcess, study_uid: str) -> None:
    async def go() -> None:
        async with _http(server) as http:
            client = await SessionClient.open(http, server.url, study_uid, "1x1")
            created = client.created
            assert set(created) >= {"session_id", "viewports", "ws_url", "webrtc_url"}
            assert created["ws_url"].endswith(f"/api/sessions/{client.session_id}/ws")
            assert created["webrtc_url"].endswith(f"/api/sessions/{client.session_id}/webrtc")
            view = created["viewports"][0]["view"]
            # The acquisition plane, middle slice, the CT's own window, fitted to 512².
            assert view["orientation"] == "acquisition" and view["size_px"] == [512, 512]
            assert view["slice_index"] == 135 // 2
            assert view["window"] is not None
            hello = await client.event("hello")
            assert hello["protocol"] == 1 and hello["session_id"] == client.session_id
            first = await client.frame()
            h = first.header
            assert h is not None and h["view_width"] == 512 and h["view_height"] == 512
            assert h["encoding"] in ("jpeg", "png") and h["input_seq"] == 0
            pixels = first.pixels
            assert pixels.shape[:2] == (h["height"], h["width"]) and pixels.std() > 10
            # The viewport's initial state renders through the stateless endpoint as it is.
            reference = await _render_png(http, server, view)
            assert reference.shape == (512, 512)
            await client.close()
    run(go())


def test_paging_changes_frames_and_settles_to_the_render_endpoint(
        server: ServerProcess, study_uid: str) -> None:
    async def go() -> None:
        async with _http(server) as http:
            client = await SessionClient.open(http, server.url, study_uid, "1x1")
            await client.frame(kind="lossless")
            before = client.last_state()["view"]
            seq = 0
            for _ in range(5):
                seq = await client.send("page", delta=2)
            frame = await client.frame(input_seq=seq)
            state = client.last_state()
            assert state["seq"] == seq
            assert state["view"]["slice_index"] == before["slice_index"] + 10
            # The plane moved by 10 slices along its normal (in mm, from the volume geometry).
            plane0 = np.array(before_plane := (await _plane(http, server, before))["center_lps"])
            plane1 = np.array((await _plane(http, server, state["view"]))["center_lps"])
            assert before_plane is not None
            assert abs(np.linalg.norm(plane1 - plane0) - 10 * _slice_spacing(server)) < 0.05
            assert state["geometry"]["plane"]["center_lps"] == pytest.approx(plane1.tolist())
            # Window drag, zoom and pan, then the settle frame: lossless, the exact pixels of
            # POST /api/render for the echoed state.
            await client.send("window", drag_px=[40, -20])
            await client.send("zoom", factor=1.5, at_px=[200, 300])
            last = await client.send("pan", delta_px=[15, -10])
            settled = await client.frame(kind="lossless", input_seq=last)
            view = client.last_state()["view"]
            assert settled.header is not None and settled.header["encoding"] == "png"
            assert view["zoom"] == pytest.approx(1.5) and view["window"]["width"] > 400
            reference = await _render_png(http, server, view)
            assert np.array_equal(settled.pixels, reference)
            assert not np.array_equal(frame.pixels.shape, (0, 0))
            await client.close()
    run(go())


async def _plane(http: aiohttp.ClientSession, server: ServerProcess, view: dict) -> dict:
    r = await http.post(f"{server.url}/api/render?format=raw", json=view)
    assert r.status == 200
    import json
    return json.loads(r.headers["X-Plane"])


def _slice_spacing(server: ServerProcess) -> float:
    studies = server.http.get(f"{server.url}/api/studies", params={
        "PatientID": "ACRIN-NSCLC-FDG-PET-042"}, timeout=30).json()
    detail = server.http.get(f"{server.url}/api/studies/{studies[0]['study_uid']}",
                             timeout=30).json()
    ct = next(s for s in detail["series"] if s["series_description"] == "CT IMAGES")
    volume = server.http.get(f"{server.url}/api/series/{ct['series_uid']}/volume",
                             timeout=30).json()
    return float(volume["spacing_mm"][0])


def test_cine_plays_at_the_requested_rate(server: ServerProcess, study_uid: str) -> None:
    fps, seconds = 10.0, 3.0

    async def go() -> None:
        async with _http(server) as http:
            client = await SessionClient.open(http, server.url, study_uid, "1x1")
            await client.frame(kind="lossless")
            await client.send("cine", action="start", fps=fps)
            await client.event("cine")
            start = time.perf_counter()
            slices = set()
            while time.perf_counter() - start < seconds:
                item = await client.receive()
                if item.event is not None and item.event["type"] == "state":
                    slices.add(item.event["view"]["slice_index"])
            await client.send("cine", action="stop")
            rate = len(slices) / seconds
            assert fps * 0.8 <= rate <= fps * 1.2, rate
            # Stopping settles to a lossless frame.
            await client.frame(kind="lossless")
            await client.close()
    run(go())


def test_slow_client_does_not_grow_server_memory(server: ServerProcess, study_uid: str) -> None:
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)

    async def go() -> None:
        async with _http(server) as http:
            slow = await SessionClient.open(http, server.url, study_uid, "1x1")
            await slow.frame(kind="lossless")
            await slow.send("cine", action="start", fps=60)
            await asyncio.sleep(1.0)
            rss0 = proc.memory_info().rss
            # The slow client reads nothing for 6 s; another session must still be served.
            other = await SessionClient.open(http, server.url, study_uid, "1x1")
            await other.frame(kind="lossless")
            frames = 0
            end = time.perf_counter() + 6.0
            while time.perf_counter() < end:
                seq = await other.send("page", delta=1 if frames % 60 < 30 else -1)
                await other.frame(input_seq=seq)
                frames += 1
            grown = proc.memory_info().rss - rss0
            assert grown < 64 * 2**20, f"server RSS grew by {grown / 2**20:.0f} MB"
            assert frames / 6.0 >= 10
            # The slow client still gets fresh frames once it reads again.
            await slow.send("cine", action="stop")
            await slow.frame(kind="lossless", timeout=30)
            await other.close()
            await slow.close()
    run(go())


def test_eight_sessions_each_keep_ten_frames_per_second(server: ServerProcess,
                                                        study_uid: str) -> None:
    seconds = 4.0

    async def one(http: aiohttp.ClientSession) -> float:
        client = await SessionClient.open(http, server.url, study_uid, "1x1")
        await client.frame(kind="lossless", timeout=60)
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            seq = await client.send("page", delta=1 if frames % 60 < 30 else -1)
            await client.frame(input_seq=seq)
            frames += 1
        rate = frames / (time.perf_counter() - start)
        await client.close()
        return rate

    async def go() -> list[float]:
        async with _http(server) as http:
            return list(await asyncio.gather(*(one(http) for _ in range(8))))

    rates = run(go())
    assert min(rates) >= 10, rates


def test_sessions_end_on_delete_and_when_idle(server: ServerProcess, study_uid: str) -> None:
    async def go() -> None:
        async with _http(server) as http:
            client = await SessionClient.open(http, server.url, study_uid, "1x1")
            await client.frame()
            r = await http.delete(f"{server.url}/api/sessions/{client.session_id}")
            assert r.status == 204
            closing = await client.event("closing")
            assert closing["reason"] == "closed"
            msg = await client.ws.receive(timeout=10)  # type: ignore[union-attr]
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4000
            r = await http.get(f"{server.url}/api/sessions/{client.session_id}")
            assert r.status == 404
            # A session nobody connects to ends after the idle timeout.
            r = await http.post(f"{server.url}/api/sessions",
                                json={"study_uid": study_uid, "layout": "1x1"})
            sid = (await r.json())["session_id"]
            assert (await http.get(f"{server.url}/api/sessions/{sid}")).status == 200
            await asyncio.sleep(IDLE_S + 6)
            assert (await http.get(f"{server.url}/api/sessions/{sid}")).status == 404
    run(go())


def test_bad_messages_get_errors_and_others_go_on(server: ServerProcess, study_uid: str) -> None:
    async def go() -> None:
        async with _http(server) as http:
            a = await SessionClient.open(http, server.url, study_uid, "1x1")
            b = await SessionClient.open(http, server.url, study_uid, "1x1")
            await a.frame(kind="lossless")
            await b.frame(kind="lossless")
            assert a.ws is not None
            await a.ws.send_str("{not json")
            assert (await a.event("error"))["code"] == "bad_json"
            seq = await a.send("page", viewport="v9", delta=1)
            assert (await a.event("error", seq=seq))["code"] == "unknown_viewport"
            seq = await a.send("size", size_px=[100000, 100000])
            assert "size_px" in (await a.event("error", seq=seq))["message"]
            seq = await a.send("frobnicate")
            assert (await a.event("error", seq=seq))["code"] == "unknown_type"
            seq = await a.send("page", delta="many")
            assert (await a.event("error", seq=seq))["code"] == "bad_message"
            # Still alive after all that.
            seq = await a.send("page", delta=1)
            await a.frame(input_seq=seq)
            # A huge message closes that socket with 1009; the other session goes on.
            await a.ws.send_str('{"type": "ping", "pad": "' + "x" * 400_000 + '"}')
            msg = await a.ws.receive(timeout=10)
            while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                msg = await a.ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009
            seq = await b.send("page", delta=1)
            await b.frame(input_seq=seq)
            await b.close()
            # Unknown session, unknown layout, no token.
            r = await http.post(f"{server.url}/api/sessions",
                                json={"study_uid": study_uid, "layout": "7x7"})
            assert r.status == 400 and "layout" in (await r.json())["error"]
            r = await http.post(f"{server.url}/api/sessions", json={"study_uid": "1.2.3"})
            assert r.status == 404
            r = await http.get(f"{server.url}/api/sessions/nope/ws")
            assert r.status == 404
        async with aiohttp.ClientSession() as anonymous:
            r = await anonymous.post(f"{server.url}/api/sessions",
                                     json={"study_uid": study_uid})
            assert r.status == 401
    run(go())


def test_petct_layouts_fuse_and_sync_the_crosshair(server: ServerProcess,
                                                   study_uid: str) -> None:
    async def go() -> None:
        async with _http(server) as http:
            r = await http.get(f"{server.url}/api/layouts")
            names = {x["name"] for x in await r.json() if x["petct"]}
            assert len(names) >= 5
            client = await SessionClient.open(http, server.url, study_uid, "petct-2x2",
                                              viewport_size=[256, 256])
            views = [v["view"] for v in client.created["viewports"]]
            assert len(views) == 4
            ct_uid, pet_uid = views[0]["series_uid"], views[1]["series_uid"]
            assert views[2]["series_uid"] == ct_uid and views[2]["layers"][0]["series_uid"] \
                == pet_uid
            assert views[3]["render3d"]["method"] == "mip"
            fused = await client.frame(viewport="v2", kind="lossless")
            assert fused.pixels.ndim == 3  # RGB: the PET colour map over the grey CT
            assert np.array_equal(fused.pixels, await _render_png(http, server, views[2]))
            # Lesion sync: a point picked on the CT moves the PET and fusion viewports to it.
            seq = await client.send("crosshair", viewport="v0", at_px=[128, 100])
            event = await client.event("crosshair", seq=seq)
            point = np.array(event["point_lps"])
            synced = {x["viewport"] for x in event["viewports"]}
            assert {"v0", "v1", "v2"} <= synced and "v3" not in synced
            for vp in ("v1", "v2"):
                await client.frame(viewport=vp, input_seq=seq)
                plane = client.last_state(vp)["geometry"]["plane"]
                normal = np.cross(plane["row_dir"], plane["col_dir"])
                assert abs((point - np.array(plane["center_lps"])) @ normal) < 0.01
            # The PET MIP swivels as a cine.
            # (Read the socket until the turn shows: the client's log holds only what it read.)
            await client.send("cine", viewport="v3", action="start", fps=5)
            turned = await client.until(lambda r: r.event is not None and r.event["type"] ==
                                        "state" and r.event["viewport"] == "v3" and
                                        r.event["view"]["orbit_deg"][0] > 0, timeout=15)
            assert turned.event is not None and turned.event["view"]["render3d"] is not None
            await client.send("cine", viewport="v3", action="stop")
            await client.close()
    run(go())


def test_measure_over_the_socket_equals_the_measure_endpoint(server: ServerProcess,
                                                             study_uid: str) -> None:
    shape = {"type": "ellipse", "center_px": [256, 256], "radii_px": [30, 20]}

    async def go() -> None:
        async with _http(server) as http:
            client = await SessionClient.open(http, server.url, study_uid, "1x1")
            await client.frame(kind="lossless")
            seq = await client.send("measure", shapes=[shape])
            event = await client.event("measurement", seq=seq)
            view = client.last_state()["view"]
            r = await http.post(f"{server.url}/api/measure", json={"view": view,
                                                                   "shapes": [shape]})
            assert r.status == 200, await r.text()
            reference = await r.json()
            assert event["results"] == reference["results"] and event["units"] == "HU"
            await client.close()
    run(go())
