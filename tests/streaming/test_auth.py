"""Bearer-token authentication: :mod:`streaming.auth` itself, and a real server refusing and
accepting requests with it."""

from __future__ import annotations

import multiprocessing
import stat
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests

from streaming.auth import (
    KEY_FILE,
    AuthError,
    TokenSigner,
    load_key,
    needs_auth,
)
from tests.conftest import REPO, ServerProcess, voxcast_executable

OTHER_KEY = b"\x42" * 64


# -- streaming.auth, no server ----------------------------------------------------------------


def test_issued_token_verifies_to_its_principal(tmp_path: Path) -> None:
    signer = TokenSigner.for_data_dir(tmp_path)
    before = time.time()
    principal = signer.verify(signer.issue(subject="dr-who", role="radiologist", ttl_s=600))
    assert (principal.subject, principal.role) == ("dr-who", "radiologist")
    assert before + 598 <= principal.expires_at <= time.time() + 600


def test_token_of_another_key_is_refused(tmp_path: Path) -> None:
    forged = TokenSigner(OTHER_KEY).issue()
    with pytest.raises(AuthError, match="signature"):
        TokenSigner.for_data_dir(tmp_path).verify(forged)


def test_expired_token_is_refused(tmp_path: Path) -> None:
    signer = TokenSigner.for_data_dir(tmp_path)
    with pytest.raises(AuthError, match="expired"):
        signer.verify(signer.issue(now=time.time() - 7200, ttl_s=60))


@pytest.mark.parametrize("token", [
    "",
    "not-a-jwt",
    jwt.encode({"iss": "voxcast", "sub": "x", "exp": int(time.time()) + 600}, None,
               algorithm="none"),
    jwt.encode({"iss": "voxcast", "sub": "x", "exp": int(time.time()) + 600}, OTHER_KEY,
               algorithm="HS512"),
    jwt.encode({"iss": "someone-else", "sub": "x", "exp": int(time.time()) + 600}, OTHER_KEY,
               algorithm="HS256"),
    jwt.encode({"iss": "voxcast", "sub": "x"}, OTHER_KEY, algorithm="HS256"),  # no expiry
])
def test_malformed_unsigned_or_incomplete_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthError):
        TokenSigner(OTHER_KEY).verify(token)


def test_signer_refuses_short_keys_and_non_positive_lifetimes() -> None:
    with pytest.raises(ValueError, match="128 bits"):
        TokenSigner(b"short")
    with pytest.raises(ValueError, match="lifetime"):
        TokenSigner(OTHER_KEY).issue(ttl_s=0)


@pytest.mark.parametrize(("path", "protected"), [
    ("/api/health", False),
    ("/api/studies", True),
    ("/api/render", True),
    ("/dicomweb/studies", True),
    ("/wado", True),
    ("/", False),
    ("/viewer/app.js", False),
])
def test_which_paths_need_a_token(path: str, protected: bool) -> None:
    assert needs_auth(path) is protected


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    path = tmp_path / KEY_FILE
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(tmp_path) == key
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


def test_key_file_is_not_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert not [p for p in tracked if p.endswith(str(KEY_FILE))]
    default = Path("voxcast-data") / KEY_FILE  # the default data directory is ignored
    assert subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=REPO).returncode == 0


def test_concurrent_load_key_threads_agree(tmp_path: Path) -> None:
    for i in range(20):
        data_dir = tmp_path / str(i)
        barrier = threading.Barrier(4)

        def load(d: Path = data_dir, b: threading.Barrier = barrier) -> bytes:
            b.wait()
            return load_key(d)

        with ThreadPoolExecutor(4) as pool:
            keys = {f.result() for f in [pool.submit(load) for _ in range(4)]}
        assert len(keys) == 1
        assert keys == {load_key(data_dir)}


def _load_key_hex(data_dir: str) -> str:
    return load_key(Path(data_dir)).hex()


def test_concurrent_load_key_processes_agree(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        keys = set(pool.map(_load_key_hex, [str(tmp_path)] * 2))
    assert keys == {load_key(tmp_path).hex()}


# -- a real server ----------------------------------------------------------------------------


def _assert_401(resp: requests.Response, reason: str) -> None:
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    body = resp.json()
    assert body["status"] == 401 and reason in body["error"], body


@pytest.mark.integration
def test_no_token_is_401(voxcast_server: ServerProcess) -> None:
    _assert_401(requests.get(f"{voxcast_server.url}/api/studies", timeout=30), "bearer token")


@pytest.mark.integration
@pytest.mark.parametrize("header", ["Basic dm94Y2FzdDpzZWNyZXQ=", "Bearer", "Bearer   ", "token"])
def test_malformed_authorization_header_is_401(voxcast_server: ServerProcess,
                                               header: str) -> None:
    resp = requests.get(f"{voxcast_server.url}/api/studies", timeout=30,
                        headers={"Authorization": header})
    _assert_401(resp, "Bearer <token>")


@pytest.mark.integration
def test_token_of_another_key_is_401(voxcast_server: ServerProcess) -> None:
    forged = TokenSigner(OTHER_KEY).issue()
    resp = requests.get(f"{voxcast_server.url}/api/studies", timeout=30,
                        headers={"Authorization": f"Bearer {forged}"})
    _assert_401(resp, "signature")


@pytest.mark.integration
def test_expired_token_is_401(voxcast_server: ServerProcess) -> None:
    signer = TokenSigner.for_data_dir(voxcast_server.data_dir.resolve())
    expired = signer.issue(now=time.time() - 7200, ttl_s=60)
    resp = requests.get(f"{voxcast_server.url}/api/studies", timeout=30,
                        headers={"Authorization": f"Bearer {expired}"})
    _assert_401(resp, "expired")
    _assert_401(requests.get(f"{voxcast_server.url}/api/studies", params={"token": expired},
                             timeout=30), "expired")


@pytest.mark.integration
def test_header_token_is_accepted(voxcast_server: ServerProcess) -> None:
    resp = requests.get(f"{voxcast_server.url}/api/studies", headers=voxcast_server.headers,
                        timeout=30)
    assert resp.status_code == 200 and resp.json() == []


@pytest.mark.integration
def test_query_token_is_accepted(voxcast_server: ServerProcess) -> None:
    resp = requests.get(f"{voxcast_server.url}/api/studies",
                        params={"token": voxcast_server.token}, timeout=30)
    assert resp.status_code == 200 and resp.json() == []


@pytest.mark.integration
def test_health_needs_no_token(voxcast_server: ServerProcess) -> None:
    resp = requests.get(f"{voxcast_server.url}/api/health", timeout=30)
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


@pytest.mark.integration
def test_dicomweb_and_wado_are_protected(voxcast_server: ServerProcess) -> None:
    url = f"{voxcast_server.url}/dicomweb/studies"
    _assert_401(requests.get(url, timeout=30), "bearer token")
    _assert_401(requests.post(url, data=b"x", timeout=30), "bearer token")
    _assert_401(requests.get(f"{voxcast_server.url}/wado", timeout=30), "bearer token")
    resp = voxcast_server.http.get(url, timeout=30)
    assert resp.status_code in (200, 204)


@pytest.mark.integration
def test_unknown_api_paths_do_not_reveal_themselves_without_a_token(
        voxcast_server: ServerProcess) -> None:
    _assert_401(requests.get(f"{voxcast_server.url}/api/no-such-endpoint", timeout=30),
                "bearer token")


@pytest.mark.integration
def test_cli_token_is_one_line_the_server_accepts(voxcast_server: ServerProcess) -> None:
    result = subprocess.run(
        [*voxcast_executable(), "token", "--data-dir", str(voxcast_server.data_dir),
         "--subject", "cli-test", "--ttl-hours", "0.5"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout == lines[0] + "\n"
    principal = TokenSigner.for_data_dir(voxcast_server.data_dir.resolve()).verify(lines[0])
    assert principal.subject == "cli-test"
    assert principal.expires_at <= time.time() + 1800 + 1
    resp = requests.get(f"{voxcast_server.url}/api/studies", timeout=30,
                        headers={"Authorization": f"Bearer {lines[0]}"})
    assert resp.status_code == 200


@pytest.mark.integration
def test_cli_token_refuses_a_non_positive_lifetime(tmp_path: Path) -> None:
    result = subprocess.run(
        [*voxcast_executable(), "token", "--data-dir", str(tmp_path), "--ttl-hours", "0"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode != 0 and not result.stdout


@pytest.mark.integration
def test_serve_prints_a_viewer_url_with_a_working_token(voxcast_server: ServerProcess) -> None:
    deadline = time.monotonic() + 30
    while not (lines := [ln for ln in voxcast_server.log if ln.startswith("VoxCast viewer:")]):
        assert time.monotonic() < deadline, "".join(voxcast_server.log)
        time.sleep(0.1)
    url = lines[0].split(":", 1)[1].strip()
    assert "/?token=" in url
    token = url.split("?token=", 1)[1]
    resp = requests.get(f"{voxcast_server.url}/api/studies", params={"token": token}, timeout=30)
    assert resp.status_code == 200
