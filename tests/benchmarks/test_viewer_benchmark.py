"""Smoke test of the viewer benchmark: ``--quick`` drives the real viewer in Chromium against a
real server and gives every figure, with a clean console."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, data_path

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CASES = {"first_image_cold", "first_image_warm", "first_lossless_cold", "first_lossless_warm",
         "grid_first_images", "paging_fps", "paging_latency", "closed_loop_frame",
         "naive_frame"}


def test_quick_viewer_benchmark_measures_every_figure(tmp_path: Path) -> None:
    data_path("petct-acrin042")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is not installed")
    run = subprocess.run([sys.executable, "-m", "benchmarks.viewer", "--quick", "--out",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=480)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert (tmp_path / "viewer.md").read_text().startswith("# VoxCast viewer benchmark")
    report = json.loads((tmp_path / "viewer.json").read_text())
    rows = {r["case"]: r for r in report["rows"]}
    assert set(rows) == CASES
    for row in rows.values():
        assert row["samples"] and all(math.isfinite(s) and s > 0 for s in row["samples"]), row
    # the numbers are of one page: a first lossless frame comes after the first frame
    assert rows["first_image_cold"]["median"] <= rows["first_lossless_cold"]["median"]
    assert rows["paging_latency"]["max"] < 10_000 and len(rows["paging_latency"]["samples"]) > 5
    assert report["facts"]["console errors"] == 0
