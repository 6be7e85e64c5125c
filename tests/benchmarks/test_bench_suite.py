"""``voxcast bench --quick``, the CI smoke run of the benchmark suite: every suite runs against
the real tools (VTK, SimpleITK, pydicom, dcmtk storescp, a real ``voxcast serve``), every guard
passes, every ratio comes from figures of the same run, and the report and plots are written.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, data_path

pytestmark = pytest.mark.integration

SUITES = ("ingest", "render", "streaming", "scaling")
# Every baseline the suite must show VoxCast against (prefixes of the ratios' baseline names).
BASELINES = ("vtkImageReslice", "vtkImageSlabReslice", "vtkFixedPointVolumeRayCastMapper",
             "SimpleITK Resample", "naive pydicom", "dcmtk storescp")
RENDER_CASES = {"axial_mpr", "oblique_mpr", "axial_slab_mip", "coronal_slab_mip",
                "oblique_slab_mip", "cpr", "mip_3d", "volume_rendering", "roi_stats"}
PLOTS = ("ratios", "ingest", "render", "streaming", "scaling-depth", "scaling-size",
         "scaling-sessions")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    pytest.importorskip("vtk")
    data_path("petct-acrin042", "CT")
    out = tmp_path_factory.mktemp("bench")
    exe = Path(sys.executable).parent / "voxcast"
    # On a fresh install the server compiles its kernels first (numba, a minute or two on two
    # cores), before the quick run's 90 s of measuring.
    run = subprocess.run([str(exe), "bench", "--quick", "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "COLUMNS": "120"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    return out, json.loads((out / "results.json").read_text()), run.stdout


def _suite(results: dict[str, Any], name: str, tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / name / f"{name}.json").read_text())


def test_every_suite_passes_its_guards(bench: tuple[Path, dict[str, Any], str]) -> None:
    out, results, stdout = bench
    assert results["passed"] is True and results["mode"] == "quick"
    assert list(results["suites"]) == list(SUITES)
    for name, suite in results["suites"].items():
        assert suite["status"] == "passed" and suite["exit_code"] == 0, name
        assert suite["guards"] and all(g["passed"] for g in suite["guards"]), name
        assert (out / suite["report"]).is_file() and (out / suite["log"]).is_file(), name
    # one progress line per step in a log (the output is not a terminal here)
    assert re.search(r"render \[\d+/9\] ACRIN CT", stdout), stdout[-3000:]


def test_machine_is_described(bench: tuple[Path, dict[str, Any], str]) -> None:
    machine = bench[1]["machine"]
    assert machine["cpus"] >= 1 and machine["cpus usable"] >= 1 and machine["cpu"]
    assert machine["memory GiB"] > 0.5
    assert isinstance(machine["gpus"], list)  # [] on a machine without an NVIDIA GPU
    libs = machine["libraries"]
    for lib in ("numpy", "numba", "vtk", "SimpleITK", "pydicom", "zarr", "matplotlib"):
        assert libs[lib] and re.match(r"\d+\.\d+", libs[lib]), lib
    assert machine["dcmtk"] and "3." in machine["dcmtk"]


def test_every_figure_has_its_statistics(bench: tuple[Path, dict[str, Any], str]) -> None:
    for name, suite in bench[1]["suites"].items():
        assert suite["figures"], name
        for f in suite["figures"]:
            s = np.asarray(f["samples"], dtype=float)
            assert f["unit"] and f["count"] == s.size > 0, f["name"]
            assert np.isfinite(s).all() and (s > 0).all(), f["name"]
            assert f["median"] == pytest.approx(np.median(s)), f["name"]
            assert f["p95"] == pytest.approx(np.percentile(s, 95)), f["name"]
            assert (f["min"], f["max"]) == (pytest.approx(s.min()), pytest.approx(s.max()))


def _median_of(suite: dict[str, Any], name: str) -> float:
    hits = [f["median"] for f in suite["figures"] if f["name"] == name]
    assert len(hits) == 1, (name, [f["name"] for f in suite["figures"]][:20])
    return float(hits[0])


def test_ratios_come_from_figures_of_this_run(bench: tuple[Path, dict[str, Any], str]) -> None:
    suites = bench[1]["suites"]
    tool = {"vtk": "VTK", "Sim": "SimpleITK"}
    for r in suites["render"]["ratios"] + suites["scaling"]["ratios"]:
        suite = suites["render"] if r in suites["render"]["ratios"] else suites["scaling"]
        assert r["voxcast_value"] == _median_of(suite, f"{r['name']} · VoxCast")
        assert r["baseline_value"] == _median_of(suite, f"{r['name']} · {tool[r['baseline'][:3]]}")
        assert r["speedup"] == pytest.approx(r["baseline_value"] / r["voxcast_value"])
    for r in suites["streaming"]["ratios"]:
        key = "cold" if ", cold" in r["name"] else "warm"
        assert r["voxcast_value"] == _median_of(
            suites["streaming"], f"first image, {key} (volume {'not ' if key == 'cold' else ''}"
            "in RAM)")
        assert r["baseline_value"] == _median_of(
            suites["streaming"], "naive path: pydicom read + volume + window + PNG")
    (ingest,) = suites["ingest"]["ratios"]
    assert ingest["higher_is_better"] and ingest["voxcast_value"] == _median_of(
        suites["ingest"], "VoxCast serve, storescu TCP_NODELAY=1")
    assert ingest["baseline_value"] == _median_of(
        suites["ingest"], "storescp (writes files), TCP_NODELAY=1 both sides")
    assert ingest["speedup"] == pytest.approx(ingest["voxcast_value"] / ingest["baseline_value"])


def test_headline_shows_every_baseline(bench: tuple[Path, dict[str, Any], str]) -> None:
    out, results, stdout = bench
    headline = results["headline"]
    for baseline in BASELINES:
        assert any(r["baseline"].startswith(baseline) for r in headline), baseline
    assert all(r["guard_passed"] and math.isfinite(r["speedup"]) for r in headline)
    report = (out / "report.md").read_text()
    assert report.startswith("# VoxCast benchmark report")
    head = report.split("## Headline", 1)[1].split("\n## ", 1)[0]
    for baseline in BASELINES:
        assert baseline in head and baseline in stdout, baseline
    for r in headline:  # the table quotes this run's figures
        assert f"{r['speedup']:.2f}x" in head, r["name"]


def test_plots_are_written_and_linked(bench: tuple[Path, dict[str, Any], str]) -> None:
    out = bench[0]
    report = (out / "report.md").read_text()
    for name in PLOTS:
        path = out / "plots" / f"{name}.png"
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width >= 600 and im.height >= 150, name
            grey = np.asarray(im.convert("L"), dtype=float)
        assert grey.std() > 5, name  # something is drawn on the white
        assert f"(plots/{name}.png)" in report, name


def test_render_suite_times_every_case_with_its_references(
        bench: tuple[Path, dict[str, Any], str]) -> None:
    render = _suite(bench[1], "render", bench[0])
    cases = render["details"]["cases"]
    assert {c["case"] for c in cases} == RENDER_CASES
    timed: dict[str, set[str]] = {}
    for row in render["rows"]:
        timed.setdefault(row["case"], set()).add(row["tool"])
    for case in RENDER_CASES:
        want = {"VoxCast", "VTK"} | (set() if case in ("mip_3d", "volume_rendering")
                                     else {"SimpleITK"})
        assert want <= timed[case], (case, timed[case])


def test_scaling_covers_depth_size_and_sessions(bench: tuple[Path, dict[str, Any], str]) -> None:
    figures = bench[1]["suites"]["scaling"]["figures"]
    points: dict[tuple[str, str], set[int]] = {}
    for f in figures:
        extra = f["extra"]
        points.setdefault((extra["axis"], f["tool"]), set()).add(int(extra["x"]))
    assert {128, 512, 135} <= points[("depth", "VoxCast")] <= points[("depth", "VTK")]
    assert {256, 1024} <= points[("size", "VoxCast")] <= points[("size", "VTK")]
    fps = {int(f["extra"]["x"]): f for f in figures if f["case"] == "sessions:fps"}
    assert set(fps) == {1, 4, 16}
    for n, f in fps.items():
        assert f["count"] == n and f["extra"]["total_fps"] > 0, n
    real = [f for f in figures if f["extra"].get("real")]
    assert real and all(f["extra"]["x"] == 135 for f in real)


def test_streaming_suite_measures_every_figure(bench: tuple[Path, dict[str, Any], str]) -> None:
    details = _suite(bench[1], "streaming", bench[0])["details"]
    for r in details["first_image"]["cold"] + details["first_image"]["warm"]:
        assert 0 < r["first_s"] <= r["lossless_s"] < 30, r
    assert {f"{case} @ {rate} Hz" for case in ("page", "orbit", "slab MIP 20 mm, page")
            for rate in (30, 60)} == set(details["latency"])
    for name, r in details["latency"].items():
        assert 1 <= r["answered"] <= r["inputs"] and r["settle_ms"] > 0, name
    assert {n: len(r["fps"]) for n, r in details["sessions"].items()} == {"1": 1, "4": 4, "8": 8}
    webrtc = details["webrtc"]
    assert webrtc.get("not_measured", "not measured: ").startswith("not measured: ") \
        or webrtc["latency_ms"]
