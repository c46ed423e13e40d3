"""Fixtures of the page tests: one served archive per session, a page per module.

The browser is the Debian Chromium, driven by Playwright and launched with
everything that would reach the network switched off; every request it makes
is logged, so that tests can check what a page asked for, and so is every
Content-Security-Policy violation the browser reports.

The service answers with its Content-Security-Policy (``default-src
'self'``, and connect-src for the SAMP Web Profile hub), so every page test
also checks that the page needs no inline script or style and no eval.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
)

from model_training.neighbours.stage import compute_neighbours
from tap_schema import Settings, open_catalogue
from tests.browser import VIEWPORT
from tests.tap.server import RunningServer, serve_in_thread
from vo_service.app import create_app

from . import catalogue as page_catalogue
from .helpers import repeated_start

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"


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
    problems: list[str] = field(default_factory=list)
    """Content-Security-Policy violations and script errors the browser reported."""

    def record(self, request: Request) -> None:
        self.requests.append((request.url, request.resource_type))

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.problems.append(f"CSP: {text}")

    def page_error(self, error: Exception) -> None:
        self.problems.append(f"script error: {error}")

    def watch(self, page: Page) -> None:
        """Record what ``page`` (of this context) reports."""
        page.on("console", self.console)
        page.on("pageerror", self.page_error)

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
    """A small synthetic archive, ingested, with vectors and neighbour lists, on 127.0.0.1.

    Served as in production (its Content-Security-Policy included); uploads are embedded
    by `catalogue.BlockEmbedder` (the test models have no network).
    """
    root = tmp_path_factory.mktemp("page")
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(root / "data")})
    catalogue = open_catalogue(settings)
    try:
        archive = page_catalogue.build(settings, catalogue, root / "archive", 36, 3)
    finally:
        catalogue.dispose()
    compute_neighbours(settings, device="cpu", progress=False)
    catalogue = open_catalogue(settings)
    app = create_app(settings, catalogue=catalogue, embedder=page_catalogue.BlockEmbedder())
    try:
        with serve_in_thread(app) as url:
            yield Site(RunningServer(url, settings, catalogue, app), archive)
    finally:
        catalogue.dispose()


@pytest.fixture(scope="session")
def field_start(site: Site) -> str:
    """A public continuum image whose ranking hides repeated observations of its field."""
    return repeated_start(site.url, site.archive.of_kind("continuum"))


@pytest.fixture(scope="module")
def session(browser: Browser) -> Iterator[BrowserSession]:
    """A page of the module's browser, with the log of every request it made."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    browser_session = BrowserSession(context, page)
    context.on("request", browser_session.record)
    context.on("page", browser_session.watch)
    browser_session.watch(page)
    yield browser_session
    context.close()
    assert browser_session.problems == [], "\n".join(browser_session.problems)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder of the screenshots (git-ignored), emptied of earlier runs' pictures."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS
