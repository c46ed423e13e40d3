"""The similarity page under ``/archive/vosim`` in a real browser: images load, selection works."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests import served_archive as archive
from tests.browser import VIEWPORT
from tests.pages.helpers import page_url, url_selection, wait_ranked

from .conftest import PREFIX, Mounted


def test_the_similar_page_works_under_the_prefix(mounted: Mounted, browser: Browser) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    requested: list[tuple[str, int]] = []
    context.on("response", lambda response: requested.append((response.url, response.status)))
    page = context.new_page()
    try:
        start = archive.PUBLIC[0].did
        # every image of this archive lies within 2 arcsec: show them all (MIN_SEPARATION=0)
        response = page.goto(page_url(mounted.local_base, [start], extra="&MIN_SEPARATION=0"))
        assert response is not None and response.status == 200
        wait_ranked(page)
        page.wait_for_function(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.locator("#results .tile img").count() > 0
        tile = page.locator("#results .tile[data-rank='1']")
        chosen = tile.get_attribute("data-did")
        tile.locator(".tile-pick").click()
        wait_ranked(page)
        assert url_selection(page.url) == [start, chosen]
        assert page.url.startswith(f"{mounted.local_base}/similar?")
        assert page.get_attribute("#share-link", "href") == page.url
        page.wait_for_function(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
    finally:
        context.close()
    failed = [(url, status) for url, status in requested if status != 200]
    assert failed == []
    assert requested and all(url.startswith(mounted.local_base + "/") for url, _ in requested)
    assert any(f"{PREFIX}/similarity/sync?" in url for url, _ in requested)
    assert any(f"{PREFIX}/static/similar.js" in url for url, _ in requested)
