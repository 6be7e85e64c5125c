"""Smoke test of the streaming benchmark: ``--quick`` against a real server gives every figure."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, data_path

pytestmark = pytest.mark.integration

LATENCY_CASES = {f"{case} @ {rate} Hz" for case in ("page", "orbit", "slab MIP 20 mm, page")
                 for rate in (30, 60)}
ROW_CASES = {"first_image_cold", "first_image_warm", "first_lossless_cold",
             "first_lossless_warm", "first_image_naive", "latency", "sessions"}


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_quick_streaming_benchmark_measures_every_figure(tmp_path: Path) -> None:
    data_path("petct-acrin042", "CT")
    # On a fresh install the server first compiles its kernels (numba, one to two minutes on
    # two cores) before the quick run's 30 s of measuring.
    run = subprocess.run([sys.executable, "-m", "benchmarks.streaming", "--quick", "--out",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=480)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert (tmp_path / "streaming.md").read_text().startswith("# VoxCast streaming benchmark")
    report = json.loads((tmp_path / "streaming.json").read_text())
    assert report["machine"]["cpus"] >= 1

    rows = report["rows"]
    assert ROW_CASES <= {r["case"] for r in rows}
    for row in rows:
        assert row["samples"] and all(_positive(s) for s in row["samples"]), row["name"]
        assert row["min"] <= row["median"] <= row["max"], row["name"]
    units = {r["case"]: r["unit"] for r in rows}
    assert units["first_image_cold"] == "ms" and units["sessions"] == "frames/s"

    details = report["details"]
    first = details["first_image"]
    assert len(first["cold"]) >= 1 and len(first["warm"]) >= 1
    for r in first["cold"] + first["warm"]:
        assert 0 < r["first_s"] <= r["lossless_s"] < 30, r
        assert r["first_kind"] in ("lossy", "lossless")
    assert _positive(details["ratios"]["naive_over_cold"])

    assert set(details["latency"]) == LATENCY_CASES
    for name, r in details["latency"].items():
        assert 1 <= r["answered"] <= r["inputs"], name
        assert all(0 < ms < 10_000 for ms in r["latency_ms"]), name
        assert _positive(r["fps"]) and r["bytes"] and all(b > 0 for b in r["bytes"]), name
        assert _positive(r["settle_ms"]), name  # the view settled to a lossless frame

    assert set(details["sessions"]) == {"1", "4", "8"}
    for n, r in details["sessions"].items():
        assert len(r["fps"]) == int(n) and all(_positive(f) for f in r["fps"]), (n, r["fps"])

    webrtc = details["webrtc"]
    if "not_measured" in webrtc:
        assert webrtc["not_measured"].startswith("not measured: ")
    else:
        assert _positive(webrtc["fps"]) and webrtc["latency_ms"]
        assert all(_positive(ms) for ms in webrtc["latency_ms"])

    assert [g["goal"] for g in details["goals"]] and all(
        isinstance(g["met"], bool) for g in details["goals"])
