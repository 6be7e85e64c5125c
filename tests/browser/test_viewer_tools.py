"""The viewer's MPR, CPR, lesion-sync, magnifier, series, sync, history and phone tools in a real
Chromium against a real server over the real studies of ``../shared/data``.

Geometry is checked in millimetres against the plane contract of the README (the centre of
output pixel (x, y) is ``center + (x - (w-1)/2)·s·row + (y - (h-1)/2)·s·col``), computed here
independently of the page's own code; pixels against ``POST /api/render``; four-corner text
against the DICOM attributes read with pydicom.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.browser.harness import Page
from tests.conftest import ServerProcess, data_path

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The page's DOM facts of a viewport: its box, and the fit of the output image in it.
BOX = """(id) => {
  const el = document.querySelector(`[data-testid=viewport][data-viewport-id="${id}"]`);
  const r = el.getBoundingClientRect();
  return {x: r.left, y: r.top, cw: el.clientWidth, ch: el.clientHeight,
          bx: r.left + el.clientLeft, by: r.top + el.clientTop};
}"""
PIXELS = """(id) => {
  const c = document.querySelector(`[data-testid=viewport][data-viewport-id="${id}"] canvas`);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height);
  return {w: c.width, h: c.height, data: Array.from(d.data)};
}"""


def open_viewer(p: Page, server: ServerProcess, query: str) -> None:
    """Open the viewer over the WebSocket transport (these tests are about the tools; the
    WebRTC video has its own tests), so no video encoder competes for the two cores."""
    p.page.goto(f"{server.url}/viewer?{query}&transport=websocket&token={server.token}")
    p.page.wait_for_function("(window.voxcast?.frames?.v0?.seq ?? 0) >= 1")


def settle(p: Page, vp: str = "v0") -> dict[str, Any]:
    """Wait until the viewport's last frame is the lossless one of its latest state."""
    p.page.wait_for_function(
        f"""(() => {{ const f = window.voxcast.frames.{vp}, s = window.voxcast.states.{vp};
        return f && s && f.kind === 'lossless' && f.input_seq >= s.seq; }})()""")
    return p.state(vp)


def plane_point(plane: dict[str, Any], x: float, y: float) -> np.ndarray:
    w, h = plane["size_px"]
    s = plane["pixel_spacing_mm"]
    return (np.array(plane["center_lps"]) + (x - (w - 1) / 2) * s * np.array(plane["row_dir"])
            + (y - (h - 1) / 2) * s * np.array(plane["col_dir"]))


def css_to_out(p: Page, vp: str, css: tuple[float, float]) -> tuple[float, float]:
    """Page coordinates → output pixel of the viewport's plane (contain-fit of the image)."""
    box = p.page.evaluate(BOX, vp)
    w, h = p.state(vp)["geometry"]["plane"]["size_px"]
    s = min(box["cw"] / w, box["ch"] / h)
    ox, oy = (box["cw"] - w * s) / 2, (box["ch"] - h * s) / 2
    return (css[0] - box["bx"] - ox) / s - 0.5, (css[1] - box["by"] - oy) / s - 0.5


def out_to_css(p: Page, vp: str, out: tuple[float, float]) -> tuple[float, float]:
    box = p.page.evaluate(BOX, vp)
    w, h = p.state(vp)["geometry"]["plane"]["size_px"]
    s = min(box["cw"] / w, box["ch"] / h)
    ox, oy = (box["cw"] - w * s) / 2, (box["ch"] - h * s) / 2
    return box["bx"] + ox + (out[0] + 0.5) * s, box["by"] + oy + (out[1] + 0.5) * s


def normal(plane: dict[str, Any]) -> np.ndarray:
    return np.cross(plane["row_dir"], plane["col_dir"])


def distance(plane: dict[str, Any], q: np.ndarray) -> float:
    return abs(float((q - np.array(plane["center_lps"])) @ normal(plane)))


def reference_render(server: ServerProcess, view: dict[str, Any]) -> np.ndarray:
    r = server.http.post(f"{server.url}/api/render", json=view, timeout=60)
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))


def canvas_rgb(p: Page, vp: str) -> np.ndarray:
    d = p.page.evaluate(PIXELS, vp)
    return np.array(d["data"], dtype=np.uint8).reshape(d["h"], d["w"], 4)[:, :, :3]


def test_crosshair_moves_every_plane_through_the_point_and_lines_rotate_obliques(
        desktop: Page, server: ServerProcess, study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}&layout=mpr")
    for vp in ("v0", "v1", "v2"):
        settle(p, vp)
    page.click("[data-testid=tool-crosshair]")
    box = page.evaluate(BOX, "v0")
    click = (box["bx"] + box["cw"] * 0.55, box["by"] + box["ch"] * 0.45)
    out = css_to_out(p, "v0", click)
    point = plane_point(p.state("v0")["geometry"]["plane"], *out)
    page.mouse.click(*click)
    page.wait_for_function("window.voxcast.crosshair && window.voxcast.crosshair.viewports.length === 3")
    assert np.allclose(page.evaluate("window.voxcast.crosshair.point_lps"), point, atol=0.05)
    for vp in ("v1", "v2"):  # the other planes now go through the point
        page.wait_for_function(f"""(() => {{ const s = window.voxcast.states.{vp}; const q = {point.tolist()};
          const p = s.geometry.plane, n = [p.row_dir[1]*p.col_dir[2]-p.row_dir[2]*p.col_dir[1],
          p.row_dir[2]*p.col_dir[0]-p.row_dir[0]*p.col_dir[2], p.row_dir[0]*p.col_dir[1]-p.row_dir[1]*p.col_dir[0]];
          return Math.abs((q[0]-p.center_lps[0])*n[0]+(q[1]-p.center_lps[1])*n[1]+(q[2]-p.center_lps[2])*n[2]) < 0.01; }})()""")
        assert distance(p.state(vp)["geometry"]["plane"], point) < 0.01
    assert page.locator("[data-testid=crosshair-point]").count() == 3
    # In the axial view, the coronal viewport's (v1) reference line goes through the point.
    line = page.locator('[data-viewport-id="v0"] .refline[data-target="v1"] line')
    x1, y1, x2, y2 = (float(line.get_attribute(a)) for a in ("x1", "y1", "x2", "y2"))
    cx, cy = click[0] - box["bx"], click[1] - box["by"]
    dist_px = abs((x2 - x1) * (y1 - cy) - (x1 - cx) * (y2 - y1)) / math.hypot(x2 - x1, y2 - y1)
    assert dist_px < 1.5
    # Drag that line's arm 30° about the centre: v1 turns 30° about the axial normal, still
    # through the point.
    before = p.state("v1")["geometry"]["plane"]
    r = min(box["cw"], box["ch"]) * 0.3
    ux, uy = (x2 - x1) / math.hypot(x2 - x1, y2 - y1), (y2 - y1) / math.hypot(x2 - x1, y2 - y1)
    start = (click[0] + r * ux, click[1] + r * uy)
    a = math.radians(30)
    end = (click[0] + r * (ux * math.cos(a) - uy * math.sin(a)),
           click[1] + r * (ux * math.sin(a) + uy * math.cos(a)))
    page.mouse.move(*start)
    page.mouse.down()
    for k in range(1, 11):
        b = a * k / 10
        page.mouse.move(click[0] + r * (ux * math.cos(b) - uy * math.sin(b)),
                        click[1] + r * (ux * math.sin(b) + uy * math.cos(b)))
        page.wait_for_timeout(16)
    page.mouse.move(*end)
    page.mouse.up()
    page.wait_for_timeout(300)
    after = settle(p, "v1")["geometry"]["plane"]
    axial_n = normal(p.state("v0")["geometry"]["plane"])
    cos = float(normal(before) @ normal(after))
    assert math.degrees(math.acos(min(1.0, abs(cos)))) == pytest.approx(30, abs=1.0)
    assert abs(float(normal(after) @ axial_n)) < 1e-6  # turned about the axial normal
    assert distance(after, point) < 0.05
    assert p.state("v1")["view"]["plane"] is not None  # an explicit oblique plane
    # its lossless frame is exactly POST /api/render of the state it echoes
    assert np.array_equal(canvas_rgb(p, "v1"), reference_render(server, p.state("v1")["view"]))
    p.shot("mpr-oblique")
    assert p.errors == []


def test_cpr_from_clicked_centreline_points(desktop: Page, server: ServerProcess,
                                            study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}&layout=mpr")
    settle(p, "v1")
    page.click("[data-testid=tool-cpr]")
    box = page.evaluate(BOX, "v1")
    plane = p.state("v1")["geometry"]["plane"]
    clicks = [(box["bx"] + box["cw"] * (0.5 + dx), box["by"] + box["ch"] * y)
              for dx, y in ((-0.02, 0.2), (0.02, 0.4), (-0.01, 0.6), (0.01, 0.8))]
    expected = [plane_point(plane, *css_to_out(p, "v1", c)) for c in clicks]
    for c in clicks[:-1]:
        page.mouse.click(*c)
    page.mouse.dblclick(*clicks[-1])
    page.wait_for_function("window.voxcast.states.v3?.view?.cpr")
    view = settle(p, "v3")["view"]
    points = np.array(view["cpr"]["path"]["points_lps"])
    assert points.shape == (4, 3)
    np.testing.assert_allclose(points, expected, atol=0.01)
    assert view["render3d"] is None and view["cpr"]["mode"] == "straightened"
    assert np.array_equal(canvas_rgb(p, "v3"), reference_render(server, view))
    assert page.locator('[data-viewport-id="v1"] [data-testid=cpr-path]').count() == 1
    # paging a CPR turns it about its centreline
    seq = p.frame_seq("v3")
    x, y = p.centre("v3")
    page.mouse.move(x, y)
    page.mouse.wheel(0, 100)
    p.wait_frame_after(seq, "v3")
    assert settle(p, "v3")["view"]["cpr"]["rotation_deg"] == pytest.approx(5.0)
    p.shot("cpr")
    assert p.errors == []


def test_magnifier_is_a_finer_plane_rendered_by_the_server(
        desktop: Page, server: ServerProcess, study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}")
    plane = settle(p)["geometry"]["plane"]
    page.click("[data-testid=tool-magnify]")
    x, y = p.centre()
    page.mouse.move(x + 30, y - 20)
    page.mouse.down()
    page.wait_for_function("window.voxcast.magnifier?.frames >= 1")
    lens = page.locator("[data-testid=magnifier]")
    assert lens.is_visible()
    at = page.evaluate("window.voxcast.magnifier.at_px")
    np.testing.assert_allclose(at, css_to_out(p, "v0", (x + 30, y - 20)), atol=0.01)
    # the lens image is the server's rendering of a plane 3x finer on screen, centred on the point
    size = page.evaluate("(() => { const i = document.querySelector('[data-testid=magnifier] img');"
                         " return [i.naturalWidth, i.naturalHeight]; })()")
    box = page.evaluate(BOX, "v0")
    s = min(box["cw"] / plane["size_px"][0], box["ch"] / plane["size_px"][1])
    lens_view = {"series_uid": p.state()["view"]["series_uid"], "window": p.state()["window"],
                 "plane": {"center_lps": plane_point(plane, *at).tolist(),
                           "row_dir": plane["row_dir"], "col_dir": plane["col_dir"],
                           "size_px": size, "pixel_spacing_mm":
                               plane["pixel_spacing_mm"] / 3 * 220 / (size[0] * s)}}
    shown = page.evaluate("""(() => { const i = document.querySelector('[data-testid=magnifier] img');
      const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
      const g = c.getContext('2d'); g.drawImage(i, 0, 0); return Array.from(g.getImageData(0, 0, c.width, c.height).data); })()""")
    shown_rgb = np.array(shown, dtype=np.uint8).reshape(size[1], size[0], 4)[:, :, :3]
    reference = reference_render(server, lens_view)
    assert np.abs(shown_rgb.astype(int) - reference.astype(int)).max() <= 1
    assert shown_rgb.std() > 5
    p.shot("magnifier")
    page.mouse.up()
    assert not lens.is_visible()
    assert p.errors == []


def test_series_thumbnail_dragged_into_a_viewport_shows_that_series(
        desktop: Page, server: ServerProcess, study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}&layout=1x2")
    settle(p, "v1")
    study = server.http.get(f"{server.url}/api/studies/{study_uid}", timeout=30).json()
    pet = next(s for s in study["series"] if s["modality"] == "PT" and "NAC" not in
               (s["series_description"] or "").upper())
    item = page.locator(f'[data-testid=series-item][data-series-uid="{pet["series_uid"]}"]')
    item.wait_for()
    thumbs = page.evaluate("Array.from(document.querySelectorAll('.series-item img'))"
                           ".filter(i => i.src).map(i => i.complete && i.naturalWidth > 0)")
    assert thumbs and all(thumbs)
    item.drag_to(page.locator('[data-testid=viewport][data-viewport-id="v1"]'))
    page.wait_for_function(f"window.voxcast.states.v1.view.series_uid === '{pet['series_uid']}'")
    view = settle(p, "v1")["view"]
    assert view["preset"] == "pet-suv-0-5" and p.state("v1")["units"] == "SUVbw"
    # the dropped series is the viewport's reset view now
    page.click('[data-testid=viewport][data-viewport-id="v1"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("r")
    page.wait_for_function(f"window.voxcast.states.v1.view.series_uid === '{pet['series_uid']}'"
                           f" && window.voxcast.states.v1.slice.index === {view.get('slice_index') or 67}")
    p.shot("series-dragged")
    assert p.errors == []


def test_scroll_sync_and_scrollbar_on_the_petct_layout(
        desktop: Page, server: ServerProcess, study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}&layout=petct-1x3")
    for vp in ("v0", "v1", "v2"):
        settle(p, vp)
    # The scrollbar: a click near its top pages to the first slices.
    bar = page.locator('[data-viewport-id="v0"] [data-testid=scrollbar]')
    b = bar.bounding_box()
    assert b is not None
    page.mouse.click(b["x"] + b["width"] / 2, b["y"] + 2)
    page.wait_for_function("window.voxcast.states.v0.slice.index <= 1")
    page.click("[data-testid=sync]")
    x, y = p.centre("v0")
    page.mouse.move(x, y)
    for _ in range(6):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(40)
    page.wait_for_timeout(300)
    s0 = settle(p, "v0")
    assert s0["slice"]["index"] >= 5
    for vp in ("v1", "v2"):  # PET and fusion follow to the same patient position
        page.wait_for_function(f"Math.abs(window.voxcast.states.{vp}.slice.position_mm - "
                               f"{s0['slice']['position_mm']}) < 0.01")
    assert page.evaluate("document.querySelector('[data-viewport-id=v0] [data-testid=scrollbar]')"
                         ".dataset.index") == str(s0["slice"]["index"])
    assert p.errors == []


def test_four_corners_follow_the_dicom_attributes(desktop: Page, server: ServerProcess,
                                                  study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}&lang=en")
    state = settle(p)
    ct_files = sorted(data_path("petct-acrin042").rglob("*.dcm"))
    ds = next(d for d in (pydicom.dcmread(f, stop_before_pixels=True) for f in ct_files)
              if d.Modality == "CT" and d.SeriesInstanceUID == state["view"]["series_uid"])
    text = {c: page.locator(f'[data-viewport-id="v0"] [data-corner="{c}"]').text_content()
            for c in ("tl", "tr", "bl", "br")}
    assert str(ds.PatientID) in text["tl"]
    assert str(ds.Manufacturer) in text["tr"] and str(ds.ManufacturerModelName) in text["tr"]
    assert f"{int(float(ds.KVP))} kV" in text["bl"]
    n = state["slice"]["count"]
    assert f"Im: {state['slice']['index'] + 1} / {n}" in text["bl"] and n == 135
    assert f"Thk: {float(ds.SliceThickness):.1f} mm" in text["bl"]
    w = state["window"]
    assert f"W: {round(w['width'])} L: {round(w['center'])} HU" in text["br"]
    page.click("[data-testid=overlay-toggle]")
    assert page.locator('[data-viewport-id="v0"] [data-corner]').count() == 0
    assert p.errors == []


def test_history_compares_a_prior_with_position_synced_paging(
        desktop: Page, server: ServerProcess) -> None:
    p, page = desktop, desktop.page
    studies = server.http.get(f"{server.url}/api/studies", params={"PatientID": "PLASTIC"},
                              timeout=30).json()
    assert len(studies) == 2
    # the untilted study is the current one; the prior is gantry-tilted (-18.5°), same frame
    current, prior = (s["study_uid"] for s in sorted(studies, key=lambda s: s["instance_count"]))
    open_viewer(p, server, f"study={current}")
    page.click("[data-testid=history-toggle]")
    card = page.locator(f'[data-testid=history-study][data-study-uid="{prior}"]')
    card.wait_for()
    assert page.locator("[data-testid=history-study]").count() == 2
    card.locator("[data-testid=compare]").click()
    page.wait_for_function("window.voxcast.layout === '1x2' && window.voxcast.states.v1")
    prior_series = {s["series_uid"] for s in server.http.get(
        f"{server.url}/api/studies/{prior}", timeout=30).json()["series"]}
    page.wait_for_function("window.voxcast.compareAligned === true")
    v0, v1 = settle(p, "v0"), settle(p, "v1")
    assert v1["view"]["series_uid"] in prior_series
    assert v0["view"]["series_uid"] not in prior_series
    # the prior is shown in the current view's orientation (parallel planes), so paging syncs
    assert abs(float(normal(v0["geometry"]["plane"]) @ normal(v1["geometry"]["plane"]))) \
        == pytest.approx(1.0, abs=1e-9)
    assert page.evaluate("window.voxcast.sync") is True
    note = page.locator("[data-testid=compare-note]").text_content()
    assert "参考坐标系" in note or "frame of reference" in note
    x, y = p.centre("v0")
    page.mouse.move(x, y)
    for _ in range(3):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(40)
    page.wait_for_timeout(300)
    s0 = settle(p, "v0")
    page.wait_for_function(f"Math.abs(window.voxcast.states.v1.slice.position_mm - "
                           f"{s0['slice']['position_mm']}) < 0.01")
    p.shot("history-compare")
    assert p.errors == []


def test_phone_long_press_menu_and_portrait_grid(phone: Page, server: ServerProcess,
                                                 study_uid: str) -> None:
    p, page = phone, phone.page
    open_viewer(p, server, f"study={study_uid}&layout=petct-fusion-mip")
    settle(p, "v0")
    settle(p, "v1")
    # a two-column layout stacks on a portrait phone
    b0 = page.locator('[data-viewport-id="v0"]').bounding_box()
    b1 = page.locator('[data-viewport-id="v1"]').bounding_box()
    assert b0 and b1 and b1["y"] >= b0["y"] + b0["height"] - 1 and b1["width"] > 300
    cdp = p.context.new_cdp_session(page)
    x, y = p.centre("v0")
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    page.wait_for_function("window.voxcast.toolMenu === true", timeout=3000)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    menu = page.locator("[data-testid=tool-menu]")
    assert menu.is_visible()
    menu.locator('[data-tool="length"]').tap()
    assert page.evaluate("window.voxcast.tool") == "length" and not menu.is_visible()
    # one finger now draws a length in mm
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x - 40, "y": y}]})
    for k in range(1, 9):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x - 40 + 10 * k, "y": y}]})
        page.wait_for_timeout(16)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_function("window.voxcast.measurements?.v0?.length_mm > 0")
    plane = p.state("v0")["geometry"]["plane"]
    a, b = (css_to_out(p, "v0", (x - 40 + dx, y)) for dx in (0, 80))
    assert page.evaluate("window.voxcast.measurements.v0.length_mm") == pytest.approx(
        math.dist(a, b) * plane["pixel_spacing_mm"], abs=0.05)
    p.shot("phone-length")
    assert p.errors == []


def test_fusion_vr_and_keyboard_controls(desktop: Page, server: ServerProcess,
                                         study_uid: str) -> None:
    p, page = desktop, desktop.page
    open_viewer(p, server, f"study={study_uid}&layout=petct-fusion-mip")
    before = settle(p, "v0")
    assert page.locator("[data-testid=fusion-opacity]").is_visible()
    page.locator("[data-testid=fusion-opacity]").fill("80")
    page.wait_for_function("window.voxcast.states.v0.view.layers[0].opacity === 0.8")
    page.select_option("[data-testid=fusion-colormap]", "rainbow")
    page.wait_for_function("window.voxcast.states.v0.view.layers[0].colormap === 'rainbow'")
    after = settle(p, "v0")
    assert np.array_equal(canvas_rgb(p, "v0"), reference_render(server, after["view"]))
    assert after["view"]["layers"][0]["series_uid"] == before["view"]["layers"][0]["series_uid"]
    # the PET MIP turns through 360° with the angle control
    page.click('[data-testid=viewport][data-viewport-id="v1"]')
    page.locator("[data-testid=angle3d]").fill("90")
    page.wait_for_function("window.voxcast.states.v1.view.orbit_deg[0] === 90")
    mip = settle(p, "v1")
    assert np.array_equal(canvas_rgb(p, "v1"), reference_render(server, mip["view"]))
    # volume rendering presets
    page.select_option("[data-testid=render]", "vr")
    page.wait_for_function("window.voxcast.states.v1.view.render3d.method === 'vr'")
    page.select_option("[data-testid=vr-preset]", "pet")
    page.wait_for_function("window.voxcast.states.v1.view.render3d.preset === 'pet'")
    # keyboard: arrows page the selected viewport, letters pick tools
    page.click('[data-testid=viewport][data-viewport-id="v0"]')
    index = p.state("v0")["slice"]["index"]
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"window.voxcast.states.v0.slice.index === {index + 1}")
    page.keyboard.press("l")
    assert page.evaluate("window.voxcast.tool") == "length"
    p.shot("fusion-vr")
    assert p.errors == []

