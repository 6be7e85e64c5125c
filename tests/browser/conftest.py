"""Fixtures of the viewer tests: one Chromium and one real server over the imported test
archive per test module, and a desktop (1920x1080) or phone (390x844, touch) page per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import ARGS, CHROMIUM, DESKTOP, PHONE, Page
from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(archive_server: ServerProcess) -> ServerProcess:
    return archive_server


@pytest.fixture(scope="module")
def study_uid(server: ServerProcess) -> str:
    studies = server.http.get(f"{server.url}/api/studies", params={
        "PatientID": "ACRIN-NSCLC-FDG-PET-042"}, timeout=30).json()
    return str(studies[0]["study_uid"])


@pytest.fixture
def desktop(browser: Any, tmp_path: Path) -> Iterator[Page]:
    page = Page(browser, DESKTOP, tmp_path)
    yield page
    page.close()


@pytest.fixture
def phone(browser: Any, tmp_path: Path) -> Iterator[Page]:
    page = Page(browser, PHONE, tmp_path)
    yield page
    page.close()
