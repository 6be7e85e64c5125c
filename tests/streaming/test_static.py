"""The viewer's static files: served without a token, nothing outside ``web_client/``."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import ServerProcess

pytestmark = pytest.mark.integration


def test_pages_and_assets_are_served_without_a_token(voxcast_server: ServerProcess) -> None:
    for path in ("/", "/viewer"):
        r = requests.get(voxcast_server.url + path, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        assert "/static/" in r.text


def test_nothing_outside_the_web_client_is_served(voxcast_server: ServerProcess) -> None:
    for path in ("/static/../streaming/app.py", "/static/%2e%2e/streaming/app.py",
                 "/static/%2e%2e/%2e%2e/etc/passwd", "/static/no-such-file.js"):
        r = requests.get(voxcast_server.url + path, timeout=30)
        assert r.status_code == 404, path
        assert "import" not in r.text
