"""Shared fixtures: the real DICOM data, free ports, and a real ``voxcast serve`` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VOXCAST_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def data_path(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} not available")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def voxcast_executable() -> list[str]:
    exe = Path(sys.executable).parent / "voxcast"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "streaming.cli"]


@dataclass
class ServerProcess:
    """A real ``voxcast serve`` subprocess on free ports."""

    data_dir: Path
    http_port: int
    dicom_port: int
    ae_title: str = "VOXCAST"
    proc: subprocess.Popen[str] | None = None
    quiet_seconds: float = 1.0
    env: dict[str, str] = field(default_factory=dict)  # extra VOXCAST_* settings
    _token: str | None = field(default=None, repr=False)
    _http: requests.Session | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def token(self) -> str:
        """A valid bearer token for this server (signed with its data directory's key)."""
        from streaming.auth import TokenSigner

        if self._token is None:
            self._token = TokenSigner.for_data_dir(self.data_dir.resolve()).issue(
                subject="voxcast-tests")
        return self._token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def http(self) -> requests.Session:
        """A ``requests`` session that sends this server's bearer token."""
        if self._http is None:
            self._http = requests.Session()
            self._http.headers.update(self.headers)
        return self._http

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = dict(os.environ, VOXCAST_SERIES_QUIET_SECONDS=str(self.quiet_seconds),
                   PYTHONUNBUFFERED="1", **self.env)
        self.proc = subprocess.Popen(
            [*voxcast_executable(), "serve", "--data-dir", str(self.data_dir),
             "--port", str(self.http_port), "--dicom-port", str(self.dicom_port),
             "--ae-title", self.ae_title],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        ready = threading.Event()
        self.log: list[str] = []

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            seen = 0
            for line in self.proc.stdout:
                self.log.append(line)
                if "listening on" in line:
                    seen += 1
                    if seen == 2:
                        ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("voxcast serve did not start:\n" + "".join(self.log))
        return self

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Call ``server_factory(data_dir=None)`` to start a server; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, **kwargs: object) -> ServerProcess:
        srv = ServerProcess(data_dir=data_dir or tmp_path_factory.mktemp("voxcast-data"),
                            http_port=free_port(), dicom_port=free_port(), **kwargs)  # type: ignore[arg-type]
        started.append(srv.start())
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def voxcast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One fresh server (empty data directory) per test module."""
    srv = ServerProcess(data_dir=tmp_path_factory.mktemp("voxcast-data"),
                        http_port=free_port(), dicom_port=free_port()).start()
    yield srv
    srv.stop()


@dataclass
class ImportedArchive:
    """A data directory holding every study of the shared test data, imported by the CLI."""

    data_dir: Path
    summary: dict[str, object]


@pytest.fixture(scope="session")
def imported_archive(tmp_path_factory: pytest.TempPathFactory) -> ImportedArchive:
    """Run the real ``voxcast ingest`` over all of ``../shared/data`` once per test session."""
    import json

    if not DATA.exists():
        pytest.skip(f"test data {DATA} not available")
    data_dir = tmp_path_factory.mktemp("archive")
    result = subprocess.run(
        [*voxcast_executable(), "ingest", "--data-dir", str(data_dir), "--json", str(DATA)],
        capture_output=True, text=True, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return ImportedArchive(data_dir=data_dir, summary=json.loads(result.stdout))


@pytest.fixture(scope="module")
def archive_server(imported_archive: ImportedArchive) -> Iterator[ServerProcess]:
    """A real server over the imported test archive, one per test module."""
    srv = ServerProcess(data_dir=imported_archive.data_dir, http_port=free_port(),
                        dicom_port=free_port()).start()
    yield srv
    srv.stop()
