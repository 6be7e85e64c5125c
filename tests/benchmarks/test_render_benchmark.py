"""Smoke test of the render benchmark: ``--quick`` runs every case, every guard passes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, data_path

pytestmark = pytest.mark.integration

CASES = {"axial_mpr", "oblique_mpr", "axial_slab_mip", "coronal_slab_mip", "oblique_slab_mip",
         "cpr", "mip_3d", "volume_rendering", "roi_stats"}
# Tools timed in every case; SimpleITK has no 3D renderer.
TOOLS = {case: {"VoxCast", "VTK", "SimpleITK"} for case in CASES} | {
    "mip_3d": {"VoxCast", "VTK"}, "volume_rendering": {"VoxCast", "VTK"}}


def test_quick_render_benchmark_runs_every_case_and_passes_every_guard(tmp_path: Path) -> None:
    pytest.importorskip("vtk")
    data_path("petct-acrin042", "CT")
    run = subprocess.run([sys.executable, "-m", "benchmarks.render", "--quick", "--out",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads((tmp_path / "render.json").read_text())
    assert (tmp_path / "render.md").read_text().startswith("# VoxCast render benchmark")

    cases = report["details"]["cases"]
    assert {c["case"] for c in cases} == CASES
    for case in cases:
        assert case["guard_passed"], case
        assert case["checks"] and all(check["passed"] for check in case["checks"]), case
    timed: dict[str, set[str]] = {}
    for row in report["rows"]:
        assert row["unit"] == "ms"
        assert row["samples"] and all(s > 0 for s in row["samples"]), row
        for key in ("median", "p95", "min", "max"):
            assert math.isfinite(row[key]) and row[key] > 0, row
        assert row["min"] <= row["median"] <= row["max"]
        timed.setdefault(row["case"], set()).add(row["tool"])
    for case, tools in TOOLS.items():
        assert tools <= timed.get(case, set()), (case, timed.get(case))
    assert report["machine"]["cpus"] >= 1
