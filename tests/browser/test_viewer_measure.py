"""Measurement tools, ROI histograms, ROI auto window and occlusion masks in a real Chromium.

One desktop page (1920x1080) over the ACRIN CT, driven with real mouse gestures, in file
order: a length, an angle, a point value, a circle and a rectangle ROI each show the numbers of
``POST /api/measure`` for the same view and shape (and the length, angle and point value also
agree with the plane's geometry and the ``format=raw`` render); the histogram panel draws one
curve per area ROI with the counts of ``POST /api/measure`` for the same bins and range; the ROI
auto window (a dragged ROI, and the result box's button) applies the server's window; a mask
blacks out its pixels in the lossless frame, exactly as ``POST /api/render`` does, and "clear
masks" brings them back. Screenshots are kept in each test's temporary folder.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser.harness import ARGS, CHROMIUM, DESKTOP, Page
from tests.conftest import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The canvas's red channel (the frames are grey), base64 of h×w bytes.
CANVAS_GREY = """() => {
  const c = document.querySelector('[data-testid=viewport][data-viewport-id="v0"] canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const grey = new Uint8Array(d.length / 4);
  for (let i = 0; i < grey.length; i += 1) grey[i] = d[4 * i];
  let s = '';
  for (let i = 0; i < grey.length; i += 8192) s += String.fromCharCode(...grey.subarray(i, i + 8192));
  return [c.width, c.height, btoa(s)];
}"""


@pytest.fixture(scope="module")
def viewer(archive_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Page]:
    """One page with the ACRIN PET-CT open in the 1x1 layout (the CT), settled."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    studies = archive_server.http.get(f"{archive_server.url}/api/studies", params={
        "PatientID": "ACRIN-NSCLC-FDG-PET-042"}, timeout=30).json()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = Page(browser, DESKTOP, tmp_path_factory.mktemp("measure-shots"))
        page.page.goto(f"{archive_server.url}/viewer?study={studies[0]['study_uid']}"
                       f"&layout=1x1&transport=websocket&token={archive_server.token}")
        page.settled()
        assert page.state()["units"] == "HU"
        yield page
        page.close()
        browser.close()


@pytest.fixture
def vw(viewer: Page, tmp_path: Path) -> Iterator[Page]:
    """The shared page, its screenshots going to this test's folder; no errors afterwards."""
    viewer.shots = tmp_path
    yield viewer
    assert viewer.errors == []
    assert viewer.page.evaluate("window.voxcast.errors") == []


def _measure(server: ServerProcess, view: dict[str, Any], shape: dict[str, Any]
             ) -> dict[str, Any]:
    r = server.http.post(f"{server.url}/api/measure", json={"view": view, "shapes": [shape]},
                         timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _drag(vw: Page, tool: str | None, a: tuple[float, float], b: tuple[float, float],
          shot: str | None = None) -> None:
    """Press at ``a``, move to ``b`` in small steps, release (optionally a shot before it)."""
    if tool:
        vw.page.click(f"[data-testid=tool-{tool}]")
    vw.page.mouse.move(*a)
    vw.page.mouse.down()
    vw.page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
    vw.page.mouse.move(*b, steps=4)
    if shot:
        vw.shot(shot)
    vw.page.mouse.up()


def _new_mark(vw: Page, kind: str) -> dict[str, Any]:
    """Wait for the newest mark to be `kind` and measured; return it."""
    vw.page.wait_for_function(
        "(() => { const a = window.voxcast.annotations; const m = a[a.length - 1];"
        f" return m && m.kind === '{kind}' && m.result; }})()")
    return dict(vw.page.evaluate("window.voxcast.annotations.at(-1)"))


def _box(vw: Page, key: str) -> float:
    value = vw.page.locator("[data-testid=measurement]").get_attribute(f"data-{key}")
    assert value is not None, key
    return float(value)


def _settled_after(vw: Page, seq: int) -> None:
    vw.page.wait_for_function(
        "(() => { const f = window.voxcast.frames.v0;"
        f" return f && f.kind === 'lossless' && f.input_seq >= {seq}; }})()")


def _scale(vw: Page) -> float:
    """CSS pixels per output pixel of v0 (the frame is fitted into the viewport)."""
    w, h = vw.state()["geometry"]["plane"]["size_px"]
    cw, ch = vw.page.evaluate("(() => { const e = document.querySelector("
                              "'[data-testid=viewport][data-viewport-id=\"v0\"]');"
                              " return [e.clientWidth, e.clientHeight]; })()")
    return float(min(cw / w, ch / h))


def _canvas(vw: Page) -> np.ndarray:
    """v0's canvas as an (h, w) uint8 array."""
    w, h, data = vw.page.evaluate(CANVAS_GREY)
    return np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(h, w)


def _angle_deg(a: Any, vertex: Any, b: Any) -> float:
    """The angle at ``vertex`` between the arms to ``a`` and ``b`` (2D points), degrees."""
    ux, uy = a[0] - vertex[0], a[1] - vertex[1]
    vx, vy = b[0] - vertex[0], b[1] - vertex[1]
    return math.degrees(math.atan2(abs(ux * vy - uy * vx), ux * vx + uy * vy))


def _bilinear(values: np.ndarray, x: float, y: float) -> float:
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    fx, fy = x - x0, y - y0
    v = values.astype(np.float64)
    return float((1 - fy) * ((1 - fx) * v[y0, x0] + fx * v[y0, x0 + 1])
                 + fy * ((1 - fx) * v[y0 + 1, x0] + fx * v[y0 + 1, x0 + 1]))


def test_length_equals_the_measure_endpoint_and_the_plane_spacing(
        vw: Page, archive_server: ServerProcess) -> None:
    x, y = vw.centre()
    a, b = (x - 150, y - 60), (x + 90, y + 70)
    _drag(vw, "length", a, b)
    mark = _new_mark(vw, "length")
    ref = _measure(archive_server, mark["view"], mark["shape"])
    plane = vw.state()["geometry"]["plane"]
    assert ref["plane"]["pixel_spacing_mm"] == pytest.approx(plane["pixel_spacing_mm"])
    length = ref["results"][0]["length_mm"]
    assert _box(vw, "length") == pytest.approx(length, abs=0.01)
    (x0, y0), (x1, y1) = mark["shape"]["from_px"], mark["shape"]["to_px"]
    assert math.hypot(x1 - x0, y1 - y0) * plane["pixel_spacing_mm"] == pytest.approx(
        length, abs=0.01)
    # …and the distance the mouse travelled, in output pixels of the fitted frame
    css = math.hypot(b[0] - a[0], b[1] - a[1])
    assert css / _scale(vw) * plane["pixel_spacing_mm"] == pytest.approx(length, rel=1e-3)
    assert length > 50
    vw.shot("length")


def test_angle_equals_the_geometry_of_its_three_points(
        vw: Page, archive_server: ServerProcess) -> None:
    x, y = vw.centre()
    a, vertex, b = (x - 140, y + 90), (x - 20, y - 40), (x + 130, y + 40)
    _drag(vw, "angle", a, vertex)            # the first arm, from its end to the vertex
    vw.page.mouse.move(*b, steps=5)          # the second arm follows the pointer…
    vw.page.mouse.click(*b)                  # …until the click that ends it
    mark = _new_mark(vw, "angle")
    s = mark["shape"]
    geometric = _angle_deg(s["a_px"], s["vertex_px"], s["b_px"])
    shown = _box(vw, "angle")
    assert shown == pytest.approx(geometric, abs=1e-4)
    ref = _measure(archive_server, mark["view"], s)["results"][0]["angle_deg"]
    assert shown == pytest.approx(ref, abs=1e-9)
    # the fitted frame scales both axes alike: the angle the mouse drew
    assert shown == pytest.approx(_angle_deg(a, vertex, b), abs=0.05)
    vw.shot("angle")


def test_point_value_equals_the_measure_endpoint_and_the_raw_render(
        vw: Page, archive_server: ServerProcess) -> None:
    # click on the centre of an output pixel, placed from the canvas's box and the fit
    box = vw.page.locator("[data-testid=viewport][data-viewport-id=\"v0\"] canvas").bounding_box()
    assert box is not None
    w, h = vw.state()["geometry"]["plane"]["size_px"]
    s = min(box["width"] / w, box["height"] / h)
    target = (w // 2 + 37, h // 2 + 23)
    vw.page.click("[data-testid=tool-point]")
    vw.page.mouse.click(box["x"] + (box["width"] - w * s) / 2 + (target[0] + 0.5) * s,
                        box["y"] + (box["height"] - h * s) / 2 + (target[1] + 0.5) * s)
    mark = _new_mark(vw, "point")
    assert mark["shape"]["at_px"] == pytest.approx(target, abs=0.3)
    shown = _box(vw, "value")
    ref = _measure(archive_server, mark["view"], mark["shape"])["results"][0]
    assert shown == pytest.approx(ref["value"], abs=1e-6)
    r = archive_server.http.post(f"{archive_server.url}/api/render?format=raw",
                                 json=mark["view"], timeout=60)
    assert r.status_code == 200, r.text
    rows, cols = (int(v) for v in r.headers["X-Shape"].split(","))
    raw = np.frombuffer(r.content, dtype="<f4").reshape(rows, cols)
    px, py = mark["shape"]["at_px"]
    assert shown == pytest.approx(_bilinear(raw, px, py), abs=1e-3)
    assert -1100 < shown < 3000
    # a point has no auto W/L in its result box
    assert vw.page.locator("[data-testid=measurement] [data-testid=auto-wl]").count() == 0


def test_circle_and_rectangle_rois_and_their_auto_window_button(
        vw: Page, archive_server: ServerProcess) -> None:
    x, y = vw.centre()
    for tool, a, b in (("circle", (x - 90, y + 40), (x - 60, y + 75)),
                       ("rectangle", (x + 70, y - 90), (x + 160, y - 20))):
        _drag(vw, tool, a, b)
        mark = _new_mark(vw, tool)
        ref = _measure(archive_server, mark["view"], mark["shape"])["results"][0]
        assert _box(vw, "mean") == pytest.approx(ref["mean"], abs=0.01)
        assert _box(vw, "std") == pytest.approx(ref["std"], abs=0.01)
        assert _box(vw, "area") == pytest.approx(ref["area_mm2"], rel=1e-6)
        assert ref["count"] > 100 and ref["window"]["width"] >= 1
        if tool == "circle":  # R38: centre at the press, radius to the release
            radius = math.hypot(b[0] - a[0], b[1] - a[1]) / _scale(vw)
            assert mark["shape"]["radius_px"] == pytest.approx(radius, rel=1e-3)
    vw.shot("circle-rectangle")
    # The rectangle's result box: "auto W/L" applies that ROI's window.
    seq = vw.state()["seq"]
    vw.page.click("[data-testid=measurement] [data-testid=auto-wl]")
    want = mark["result"]["window"]
    vw.page.wait_for_function(
        f"window.voxcast.states.v0.seq > {seq} && "
        f"window.voxcast.states.v0.window.center === {want['center']!r} && "
        f"window.voxcast.states.v0.window.width === {want['width']!r}")
    assert vw.state()["view"]["window"] == want
    _settled_after(vw, vw.state()["seq"])


def test_histogram_panel_compares_the_area_rois(vw: Page,
                                                archive_server: ServerProcess) -> None:
    page = vw.page
    size = vw.state()["view"]["size_px"]
    page.click("[data-testid=histogram-toggle]")
    assert page.locator("[data-testid=side-panel]").is_visible()
    marks = [m for m in page.evaluate("window.voxcast.annotations")
             if m["kind"] in ("circle", "rectangle", "ellipse")]
    assert len(marks) == 2

    def drawn(n: int) -> dict[str, Any]:
        page.wait_for_function(f"Object.keys(window.voxcast.histograms).length === {n} && "
                               "document.querySelectorAll('[data-testid=histogram-chart] "
                               f"polyline.hist-curve').length === {n}")
        return dict(page.evaluate("window.voxcast.histograms"))

    hist = drawn(2)
    lo, hi = hist[str(marks[0]["id"])]["range"]
    assert lo <= min(m["result"]["min"] for m in marks)
    assert hi >= max(m["result"]["max"] for m in marks)
    for m in marks:
        h = hist[str(m["id"])]
        assert h["range"] == [lo, hi] and h["units"] == "HU"
        ref = _measure(archive_server, m["view"], {**m["shape"], "bins": h["bins"],
                                                   "range": [lo, hi]})["results"][0]
        assert h["counts"] == ref["histogram"]["counts"]
        assert h["edges"] == pytest.approx(ref["histogram"]["edges"])
        assert sum(h["counts"]) == ref["count"] == m["result"]["count"]
        curve = page.locator(f"polyline.hist-curve[data-mark-id=\"{m['id']}\"]")
        assert curve.get_attribute("stroke") == h["colour"]
    assert page.locator(".hist-legend li").count() == 2
    assert "HU" in page.locator("[data-axis=x]").text_content()
    # The grid got narrower: the viewport's output size follows; the marks stay on the anatomy.
    page.wait_for_function("JSON.stringify(window.voxcast.states.v0.view.size_px) !== "
                           f"'{json.dumps(size, separators=(',', ':'))}'")
    _settled_after(vw, vw.state()["seq"])
    vw.shot("histogram")
    # A new ROI adds a curve on the same kind of axis…
    x, y = vw.centre()
    _drag(vw, "ellipse", (x - 220, y - 70), (x - 140, y - 10))
    _new_mark(vw, "ellipse")
    hist = drawn(3)
    assert len({tuple(h["range"]) for h in hist.values()}) == 1
    # …in English too…
    page.click("[data-testid=lang]")
    page.wait_for_function("document.querySelector('[data-axis=x]')?.textContent === "
                           "'Value (HU)'")
    vw.shot("histogram-en")
    page.click("[data-testid=lang]")
    # …and clearing the marks empties the chart.
    page.click("[data-testid=clear-marks]")
    drawn(0)
    assert page.locator(".hist-empty").is_visible()


def test_roi_auto_window_applies_the_servers_window(vw: Page,
                                                   archive_server: ServerProcess) -> None:
    page = vw.page
    x, y = vw.centre()
    for tool, shape in (("roi-window", "rectangle"), ("roi-window-ellipse", "ellipse")):
        seq = vw.state()["seq"]
        page.evaluate("window.voxcast.roiWindow = null")
        page.click(f"[data-testid=tool-{tool}]")
        page.mouse.move(x - 110, y - 80)
        page.mouse.down()
        page.mouse.move(x + 60, y + 90, steps=6)
        assert page.locator("[data-testid=rubber-band]").count() == 1  # drawn while dragging
        if shape == "rectangle":
            vw.shot("roi-window-drag")
        page.mouse.up()
        page.wait_for_function("window.voxcast.roiWindow")
        applied = page.evaluate("window.voxcast.roiWindow")
        assert applied["shape"]["type"] == shape
        page.wait_for_function(f"window.voxcast.states.v0.seq >= {applied['seq']}")
        state = vw.state()
        assert state["seq"] > seq
        assert state["window"] == applied["window"] == state["view"]["window"]
        ref = _measure(archive_server, applied["view"], applied["shape"])["results"][0]
        assert applied["window"] == pytest.approx(ref["window"])
        page.wait_for_function("!document.querySelector('[data-testid=rubber-band]')")
        _settled_after(vw, state["seq"])
    vw.shot("roi-window")


def test_masks_black_out_their_pixels_and_clear_masks_restores_them(
        vw: Page, archive_server: ServerProcess) -> None:
    page = vw.page
    x, y = vw.centre()
    _settled_after(vw, vw.state()["seq"])
    w, h = vw.state()["geometry"]["plane"]["size_px"]
    before = _canvas(vw)
    assert before.shape == (h, w)
    _drag(vw, "mask-rect", (x - 90, y - 50), (x + 50, y + 40), shot="mask-drag")
    page.wait_for_function("window.voxcast.states.v0.view.masks.length === 1")
    state = vw.state()
    _settled_after(vw, state["seq"])
    mask = state["view"]["masks"][0]
    assert mask["shape"] == "rectangle" and "center_lps" not in mask
    (cx, cy), (hx, hy) = mask["center_px"], mask["half_size_px"]
    cols = np.arange(w)[None, :]
    rows = np.arange(h)[:, None]
    covered = (np.abs(cols - cx) <= hx) & (np.abs(rows - cy) <= hy)
    assert covered.sum() > 1000
    frame = _canvas(vw)
    assert (frame[covered] == 0).all()
    assert (before[covered] > 0).mean() > 0.5  # it was not black before
    np.testing.assert_array_equal(frame[~covered], before[~covered])
    # The settle frame is POST /api/render's image of that state, mask included.
    r = archive_server.http.post(f"{archive_server.url}/api/render", json=state["view"],
                                 timeout=60)
    assert r.status_code == 200, r.text
    rendered = np.array(Image.open(io.BytesIO(r.content)).convert("L"))
    np.testing.assert_array_equal(frame, rendered)
    vw.shot("mask")
    # An ellipse mask covers its inscribed ellipse only.
    _drag(vw, "mask-ellipse", (x + 80, y - 60), (x + 180, y + 40))
    page.wait_for_function("window.voxcast.states.v0.view.masks.length === 2")
    state = vw.state()
    _settled_after(vw, state["seq"])
    ellipse = state["view"]["masks"][1]
    assert ellipse["shape"] == "ellipse"
    (ex, ey), (ax, ay) = ellipse["center_px"], ellipse["half_size_px"]
    inside = ((cols - ex) / ax) ** 2 + ((rows - ey) / ay) ** 2 <= 1
    frame = _canvas(vw)
    assert (frame[inside] == 0).all()
    corner = (np.abs(cols - ex) <= ax) & (np.abs(rows - ey) <= ay) & ~inside & ~covered
    np.testing.assert_array_equal(frame[corner], before[corner])
    vw.shot("masks")
    # Clear masks: the pixels come back exactly.
    page.click("[data-testid=clear-masks]")
    page.wait_for_function("window.voxcast.states.v0.view.masks.length === 0")
    _settled_after(vw, vw.state()["seq"])
    np.testing.assert_array_equal(_canvas(vw), before)
