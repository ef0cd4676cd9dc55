"""The real service (`python -m app` on the committed models, loopback port) and the system
Chromium, started once for this directory and stopped when it is done.

Our own fixtures rather than pytest-playwright's: those hold Playwright's event loop for the whole
session, and every later test calling `asyncio.run` then fails ("cannot be called from a running
event loop"). Each test module skips itself, with the reason, when `support.skip_reason()` says
Playwright or Chromium is missing, so nothing is imported from Playwright at module level here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from bench.server import REPO, Server, running_server
from tests.browser.support import chromium_path

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("browser") / "server.log"
    with running_server(REPO / "models", log_path) as server:
        yield server


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    # Playwright's own Chromium download needs the internet; headless, no sandbox by default.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path()))
        yield browser
        browser.close()


@pytest.fixture
def base_url(live_server: Server) -> str:
    return live_server.url


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh context per test (no state carried over), URLs relative to the service."""
    context = browser.new_context(base_url=base_url, viewport={"width": 800, "height": 900})
    yield context.new_page()
    context.close()
