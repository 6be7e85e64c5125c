"""The house rules that tools can check: lint and the layering of DESIGN.md."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["render_engine", "volume_cache", "ingest", "streaming", "benchmarks", "tests"]


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def test_ruff_is_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", *PACKAGES], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_point_downward() -> None:
    """streaming → ingest → volume_cache → render_engine; geometry imports no I/O."""
    result = subprocess.run([_tool("lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cupy_is_imported_in_at_most_one_module() -> None:
    hits = [p for pkg in PACKAGES[:4] for p in (REPO / pkg).rglob("*.py")
            if any(line.lstrip().startswith(("import cupy", "from cupy"))
                   for line in p.read_text().splitlines())]
    assert len(hits) <= 1, hits


def test_mypy_is_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
