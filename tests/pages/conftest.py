"""Fixtures of the page tests: one served archive per session, one browser per module.

The browser is the Debian Chromium, driven by Playwright and launched with
everything that would reach the network switched off; every request it makes
is logged, so that tests can check what a page asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from tap_schema import Settings, open_catalogue
from tests.tap.server import RunningServer, running_server

from . import catalogue as page_catalogue

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"
VIEWPORT = {"width": 1180, "height": 820}


@dataclass
class Site:
    """The served archive and what the tests know about it."""

    server: RunningServer
    archive: page_catalogue.PageArchive

    @property
    def url(self) -> str:
        return self.server.url


@dataclass
class BrowserSession:
    """A browser context whose requests are all recorded."""

    context: BrowserContext
    page: Page
    requests: list[tuple[str, str]] = field(default_factory=list)
    """``(url, resource type)`` of every request the browser made."""
    seen: set[str] = field(default_factory=set)
    """Identifier of every tile the tests have seen in a grid."""

    def record(self, request: Request) -> None:
        self.requests.append((request.url, request.resource_type))

    def tiles(self) -> list[tuple[int, str]]:
        """``(rank, identifier)`` of every tile now in the grid's DOM, by rank."""
        pairs = self.page.eval_on_selector_all(
            "#results .tile:not(.pending)",
            "tiles => tiles.map(t => [Number(t.dataset.rank), t.dataset.did])",
        )
        self.seen.update(did for _, did in pairs)
        return sorted((rank, did) for rank, did in pairs)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A small synthetic archive, ingested, with vectors, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("page")
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(root / "data")})
    catalogue = open_catalogue(settings)
    try:
        archive = page_catalogue.build(settings, catalogue, root / "archive", 36, 3)
    finally:
        catalogue.dispose()
    with running_server(settings) as server:
        yield Site(server, archive)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (starting one takes about a second)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def session(browser: Browser) -> Iterator[BrowserSession]:
    """A page of the module's browser, with the log of every request it made."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    browser_session = BrowserSession(context, page)
    context.on("request", browser_session.record)
    yield browser_session
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder of the screenshots (git-ignored), emptied of earlier runs' pictures."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS
