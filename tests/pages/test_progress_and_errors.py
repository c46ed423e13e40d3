"""Progress and errors: a request that takes longer than 300 ms shows progress; a failed one
says why, in the service's words, and never leaves a blank grid.

Slow answers are made by holding the browser's request (Playwright's routing)
until the test has seen what the page shows meanwhile; nothing here depends
on how fast this machine is.
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Route

from .conftest import BrowserSession, Site
from .helpers import open_page, page_url, screenshot, tile_dids, wait_ranked


def held(page, pattern: str) -> list[Route]:
    """Hold every request matching ``pattern`` until the test answers it."""
    routes: list[Route] = []

    def hold(route: Route) -> None:
        routes.append(route)

    page.route(pattern, hold)
    return routes


def wait_for(page, routes: list[Route]) -> Route:
    for _ in range(200):
        if routes:
            return routes.pop()
        page.wait_for_timeout(25)
    raise AssertionError("the page sent no request")


def test_a_slow_refinement_shows_progress_then_the_ranking(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))
    assert page.locator("#progress").is_hidden()
    routes = held(page, "**/similarity/sync?*")
    try:
        page.locator("#results .tile[data-rank='1'] .tile-pick").click()
        route = wait_for(page, routes)
        page.wait_for_selector("#progress:not([hidden])")
        assert page.inner_text("#progress-text") == "Ranking…"
        assert page.get_attribute("#results", "aria-busy") == "true"
        screenshot(page, artifacts, "progress-01-ranking")
        route.continue_()
        wait_ranked(page)
    finally:
        page.unroute("**/similarity/sync?*")
    assert page.locator("#progress").is_hidden()
    assert page.locator("#message").is_hidden()


def test_a_slow_upload_shows_how_far_it_is(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    path = site.archive.files[site.archive.of_kind("continuum")[1]]
    page.goto(site.url + "/similar")
    routes = held(page, "**/similarity/sync")
    try:
        page.set_input_files("#upload-input", str(path))
        route = wait_for(page, routes)
        page.wait_for_selector("#progress:not([hidden])")
        text = page.inner_text("#progress-text")
        assert text.startswith(("Uploading", "Cutting out and ranking")), text
        screenshot(page, artifacts, "progress-02-upload")
        route.continue_()
        wait_ranked(page)
    finally:
        page.unroute("**/similarity/sync")
    assert page.locator("#progress").is_hidden()
    assert page.locator("#results .tile").count() > 0


def test_a_failed_refinement_says_why_and_keeps_the_grid(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))
    before = tile_dids(page)
    words = "the continuum model changed while the service was reloading; try again in a minute"

    def fail(route: Route) -> None:
        route.fulfill(
            status=503, content_type="application/json", body=json.dumps({"error": words})
        )

    page.route("**/similarity/sync?*", fail)
    try:
        page.locator("#results .tile[data-rank='2'] .tile-pick").click()
        page.wait_for_selector("#message:not([hidden])")
        wait_ranked(page)
    finally:
        page.unroute("**/similarity/sync?*", fail)
    assert words in page.inner_text("#message")
    assert tile_dids(page) == before, "the previous ranking stays"
    assert page.locator("#selection-strip .chip").count() == 1, "the click was undone"
    screenshot(page, artifacts, "errors-01-refinement-failed")


def test_a_first_ranking_that_fails_never_leaves_a_blank_grid(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    page.route("**/similarity/sync?*", lambda route: route.abort("connectionrefused"))
    try:
        page.goto(page_url(site.url, [start]))
        page.wait_for_selector("#grid-note:not([hidden])")
    finally:
        page.unroute("**/similarity/sync?*")
    note = page.inner_text("#grid-note")
    assert note.startswith("Nothing to show: the similarity service could not be reached")
    assert page.inner_text("#message").startswith("The similarity service could not rank")
    assert page.inner_text("#result-count") == "No ranking to show."
    screenshot(page, artifacts, "errors-02-first-ranking-failed")
