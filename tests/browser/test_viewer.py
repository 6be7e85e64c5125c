"""The viewer in a real Chromium (Debian's, driven by Playwright) against a real server.

Desktop (1920x1080) and a phone (390x844, touch): the study list opens the ACRIN PET-CT, the
first image shows within 3 s and is not blank, paging and presets change the pixels, an
ellipse ROI shows the numbers of ``POST /api/measure``, PET-CT layouts show fused (coloured)
pixels, the MPR layout three orthogonal planes and a 3D view, a pinch zooms, and the console
stays clean. Screenshots are kept in the test's temporary folder.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.browser.harness import Page
from tests.conftest import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _open_viewer(p: Page, server: ServerProcess, study_uid: str, layout: str = "1x1") -> float:
    """Open the viewer by its launch URL; seconds until the first frame is drawn."""
    start = time.perf_counter()
    p.page.goto(f"{server.url}/viewer?study={study_uid}&layout={layout}&token={server.token}")
    p.page.wait_for_function("(window.voxcast?.frames?.v0?.seq ?? 0) >= 1")
    return time.perf_counter() - start


def test_desktop_study_list_first_image_paging_and_preset(
        desktop: Page, server: ServerProcess, study_uid: str) -> None:
    page = desktop.page
    page.goto(f"{server.url}/?token={server.token}")
    row = page.locator(f'[data-testid=study-row][data-study-uid="{study_uid}"]')
    row.wait_for()
    desktop.shot("desktop-studies")
    start = time.perf_counter()
    row.locator("a").first.click() if row.locator("a").count() else row.click()
    page.wait_for_function("(window.voxcast?.frames?.v0?.seq ?? 0) >= 1")
    assert time.perf_counter() - start < 3.0
    first = desktop.canvas()
    assert first["std"] > 20, first  # an image, not a blank canvas
    desktop.settled()
    before = desktop.state()["view"]["slice_index"]
    image_before = desktop.canvas()
    seq = desktop.frame_seq()
    x, y = desktop.centre()
    page.mouse.move(x, y)
    for _ in range(4):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(60)
    desktop.wait_frame_after(seq)
    desktop.settled()
    assert desktop.state()["view"]["slice_index"] != before
    assert not np.allclose(desktop.canvas()["thumb"], image_before["thumb"], atol=2)
    # A preset changes the window the server applied, and so the pixels.
    seq = desktop.frame_seq()
    page.select_option("[data-testid=preset]", "ct-lung")
    desktop.wait_frame_after(seq)
    desktop.settled()
    state = desktop.state()
    assert state["window"] == {"center": -600.0, "width": 1500.0}
    lung = desktop.canvas()
    assert abs(lung["mean"] - image_before["mean"]) > 5
    desktop.shot("desktop-lung")
    assert desktop.errors == []


def test_ellipse_roi_shows_the_numbers_of_the_measure_endpoint(
        desktop: Page, server: ServerProcess, study_uid: str) -> None:
    page = desktop.page
    _open_viewer(desktop, server, study_uid)
    desktop.settled()
    page.click("[data-testid=tool-ellipse]")
    x, y = desktop.centre()
    page.mouse.move(x - 40, y - 30)
    page.mouse.down()
    page.mouse.move(x + 10, y, steps=5)
    page.mouse.move(x + 40, y + 30, steps=5)
    page.mouse.up()
    page.wait_for_function("window.voxcast?.measurements?.v0?.mean !== undefined")
    shown = page.evaluate("window.voxcast.measurements.v0")
    r = server.http.post(f"{server.url}/api/measure",
                         json={"view": shown["view"], "shapes": [shown["shape"]]}, timeout=60)
    assert r.status_code == 200, r.text
    reference = r.json()["results"][0]
    box = page.locator("[data-testid=measurement]")
    assert float(box.get_attribute("data-mean")) == pytest.approx(reference["mean"], abs=0.01)
    assert float(box.get_attribute("data-std")) == pytest.approx(reference["std"], abs=0.01)
    assert float(box.get_attribute("data-area")) == pytest.approx(reference["area_mm2"],
                                                                  rel=1e-3)
    assert reference["area_mm2"] > 100 and r.json()["units"] == "HU"
    desktop.shot("desktop-roi")
    assert desktop.errors == []


def test_petct_and_mpr_layouts(desktop: Page, server: ServerProcess, study_uid: str) -> None:
    page = desktop.page
    _open_viewer(desktop, server, study_uid, "petct-1x3")
    for vp in ("v0", "v1", "v2"):
        desktop.settled(vp)
    assert page.locator("[data-testid=viewport]").count() == 3
    ct, fused = desktop.canvas("v0"), desktop.canvas("v2")
    assert ct["colour"] < 1 and fused["colour"] > 5, (ct["colour"], fused["colour"])
    layers = desktop.state("v2")["view"]["layers"]
    assert layers and layers[0]["series_uid"] == desktop.state("v1")["view"]["series_uid"]
    desktop.shot("desktop-petct-1x3")
    # The MPR layout: three orthogonal planes of one series and a 3D view.
    seq = desktop.frame_seq()
    page.select_option("[data-testid=layout]", "mpr")
    page.wait_for_function("window.voxcast?.layout === 'mpr' && "
                           "Object.keys(window.voxcast.states || {}).length >= 4")
    for vp in ("v0", "v1", "v2", "v3"):
        desktop.settled(vp)
    assert page.locator("[data-testid=viewport]").count() == 4
    normals = []
    for vp in ("v0", "v1", "v2"):
        plane = desktop.state(vp)["geometry"]["plane"]
        normals.append(np.cross(plane["row_dir"], plane["col_dir"]))
    np.testing.assert_allclose(np.abs(np.array(normals)), np.eye(3)[::-1], atol=1e-6)
    assert desktop.state("v3")["view"]["render3d"] is not None
    assert desktop.canvas("v3")["std"] > 10
    assert seq >= 1
    desktop.shot("desktop-mpr")
    assert desktop.errors == []


def test_phone_pinch_zooms_and_one_finger_pages(phone: Page, server: ServerProcess,
                                                study_uid: str) -> None:
    page = phone.page
    seconds = _open_viewer(phone, server, study_uid)
    assert seconds < 3.0
    assert phone.canvas()["std"] > 20
    phone.settled()
    cdp = phone.context.new_cdp_session(page)

    def touch(kind: str, points: list[tuple[float, float]]) -> None:
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]})

    x, y = phone.centre()
    touch("touchStart", [(x - 40, y), (x + 40, y)])
    for k in range(1, 11):
        touch("touchMove", [(x - 40 - 6 * k, y), (x + 40 + 6 * k, y)])
        page.wait_for_timeout(20)
    touch("touchEnd", [])
    page.wait_for_function("window.voxcast.states.v0.view.zoom > 1.5")
    phone.settled()
    before = phone.state()["view"]["slice_index"]
    touch("touchStart", [(x, y)])
    for k in range(1, 11):
        touch("touchMove", [(x, y + 8 * k)])
        page.wait_for_timeout(20)
    touch("touchEnd", [])
    page.wait_for_function(f"window.voxcast.states.v0.view.slice_index !== {before}")
    phone.settled()
    phone.shot("phone-zoomed")
    assert phone.errors == []
