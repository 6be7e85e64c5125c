"""The benchmarks' correctness guards catch a wrong path, so that a fast wrong one cannot score;
and ``voxcast bench`` says what is missing instead of failing half-way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from benchmarks.common import Guard, Ratio
from tests.conftest import REPO, data_path


def _phantom_ct() -> tuple[np.ndarray, object]:
    from ingest.assemble import assemble_series

    folder = data_path("ct-phantom-philips-2studies", "study1_S21570_S2010_5mm")  # untilted
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
    volume = assemble_series(datasets)
    return np.ascontiguousarray(volume.data).astype(np.int16), volume.geometry


def test_plane_guard_fails_for_a_plane_one_slice_off() -> None:
    pytest.importorskip("vtk")
    from benchmarks import render_cases as rc
    from render_engine.planes import standard_plane
    from render_engine.sampling import sample

    data, geometry = _phantom_ct()
    vol = rc.BenchVolume(key="phantom", label="phantom", data=data, geometry=geometry,
                         use_gpu=False)
    plane = standard_plane(geometry, "axial", size_px=(256, 256)).rotated_about([1, 0, 0], 20)
    setup = rc.mpr_case(vol, plane, trials=0)
    assert all(c.passed for c in setup.checks), setup.checks
    vtk_ref = setup.tools[rc.VTK]()
    interior = np.isfinite(vtk_ref)
    # the plane a slice further on: a plausible picture, off by one slice
    wrong = sample(data, geometry, plane.moved_along_normal(geometry.spacing_mm[0]), fill=np.nan)
    checks = rc.value_checks(wrong, {rc.VTK: vtk_ref}, interior & np.isfinite(wrong))
    failed = [c for c in checks if not c.passed]
    assert failed and failed[0].value > 10 * rc.VALUE_TOL_HU, checks


def test_first_picture_guard_fails_two_grey_levels_off() -> None:
    from benchmarks.streaming import first_image_guards

    reference = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    (cold, warm) = first_image_guards({"first_image": {"cold": [{"picture": reference.copy()}],
                                                       "warm": [{"picture": reference}]}},
                                      reference)
    assert cold.passed and warm.passed and cold.value == 0.0
    off = np.clip(reference.astype(int) + 2, 0, 255).astype(np.uint8)
    (bad,) = first_image_guards({"first_image": {"cold": [{"picture": off}]}}, reference)
    assert not bad.passed and bad.value == 2.0
    (missing,) = first_image_guards({"first_image": {"cold": [{"picture": None}]}}, reference)
    assert not missing.passed  # no picture is a failure, not a pass


def test_guard_and_ratio_semantics() -> None:
    assert not Guard(name="n", value=float("nan"), limit=1.0).passed
    assert Guard(name="a", value=135, limit=135, at_least=True).passed
    assert not Guard(name="a", value=134, limit=135, at_least=True).passed
    faster = Ratio(name="r", baseline="b", voxcast_value=2.0, baseline_value=6.0, unit="ms")
    assert faster.speedup == pytest.approx(3.0)
    rate = Ratio(name="r", baseline="b", voxcast_value=50.0, baseline_value=400.0,
                 unit="instances/s", higher_is_better=True)
    assert rate.speedup == pytest.approx(0.125)


def _bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "voxcast"
    return subprocess.run([str(exe), "bench", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_unknown_suite_is_refused_with_the_choices(tmp_path: Path) -> None:
    run = _bench("--suite", "render,gpu", "--out", str(tmp_path))
    assert run.returncode == 2
    assert "unknown suite(s) gpu" in run.stderr and "ingest, render, streaming, scaling" \
        in run.stderr
    assert not (tmp_path / "results.json").exists()


def test_missing_data_is_named_before_anything_runs(tmp_path: Path) -> None:
    run = _bench("--suite", "render", "--out", str(tmp_path / "out"),
                 env={"VOXCAST_TEST_DATA": str(tmp_path / "nowhere")})
    assert run.returncode == 2
    assert "ACRIN PET-CT study" in run.stderr and "VOXCAST_TEST_DATA" in run.stderr
