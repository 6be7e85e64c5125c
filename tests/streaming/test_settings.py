"""Settings come from defaults, the environment (VOXCAST_*) and the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from streaming.cli import main
from streaming.settings import Settings
from tests.conftest import REPO, voxcast_executable


def test_defaults() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.data_dir, s.host, s.port, s.dicom_port, s.ae_title) == (
        Path("./voxcast-data"), "127.0.0.1", 8080, 11112, "VOXCAST")
    assert s.resolved_database_url().startswith("sqlite:///")
    assert s.resolved_database_url().endswith("voxcast-data/catalog.sqlite")


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXCAST_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXCAST_HOST", "0.0.0.0")
    monkeypatch.setenv("VOXCAST_PORT", "9090")
    monkeypatch.setenv("VOXCAST_DICOM_PORT", "11113")
    monkeypatch.setenv("VOXCAST_AE_TITLE", "HOSPITAL_AE")
    monkeypatch.setenv("VOXCAST_DATABASE_URL", "postgresql+psycopg://u@db/voxcast")
    s = Settings()
    assert (s.data_dir, s.host, s.port, s.dicom_port, s.ae_title) == (
        tmp_path, "0.0.0.0", 9090, 11113, "HOSPITAL_AE")
    assert s.resolved_database_url() == "postgresql+psycopg://u@db/voxcast"


@pytest.mark.parametrize(("name", "value"), [("VOXCAST_PORT", "http"),
                                             ("VOXCAST_PORT", "70000"),
                                             ("VOXCAST_AE_TITLE", "A" * 17)])
def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        Settings()


def test_serve_documents_every_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--data-dir", "--host", "--port", "--dicom-port", "--ae-title", "--database-url"):
        assert flag in result.output


def test_ingest_of_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run([*voxcast_executable(), "ingest", "--data-dir", str(tmp_path),
                             str(tmp_path / "nope")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr
