"""The browser harness of the viewer tests: Debian's Chromium driven by Playwright, a page
whose console errors are collected, and the canvas statistics the tests compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"viewport": {"width": 1920, "height": 1080}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}
TIMEOUT_MS = 30_000

# Luminance statistics of a viewport's canvas, and how coloured it is.
CANVAS_STATS = """(id) => {
  const c = document.querySelector(`[data-testid=viewport][data-viewport-id="${id}"] canvas`);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let s = 0, s2 = 0, colour = 0; const n = d.length / 4; const thumb = [];
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    s += y; s2 += y * y; colour += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]);
    if ((i / 4) % 997 === 0) thumb.push(y);
  }
  const mean = s / n;
  return {mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)), colour: colour / n, thumb};
}"""


class Page:
    """A page with its console errors collected."""

    def __init__(self, browser: Any, options: dict[str, Any], shots: Path) -> None:
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.shots = shots

    def frame_seq(self, vp: str = "v0") -> int:
        return int(self.page.evaluate(f"window.voxcast?.frames?.{vp}?.seq ?? 0"))

    def wait_frame_after(self, seq: int, vp: str = "v0", kind: str | None = None) -> None:
        cond = f"(window.voxcast?.frames?.{vp}?.seq ?? 0) > {seq}"
        if kind:
            cond += f" && window.voxcast.frames.{vp}.kind === '{kind}'"
        self.page.wait_for_function(cond)

    def settled(self, vp: str = "v0") -> None:
        self.page.wait_for_function(f"window.voxcast?.frames?.{vp}?.kind === 'lossless'")

    def state(self, vp: str = "v0") -> dict[str, Any]:
        return dict(self.page.evaluate(f"window.voxcast.states.{vp}"))

    def canvas(self, vp: str = "v0") -> dict[str, Any]:
        return dict(self.page.evaluate(CANVAS_STATS, vp))

    def centre(self, vp: str = "v0") -> tuple[float, float]:
        box = self.page.locator(f'[data-testid=viewport][data-viewport-id="{vp}"]').bounding_box()
        assert box is not None
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"))

    def close(self) -> None:
        self.context.close()
