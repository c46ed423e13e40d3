"""The similarity page in a real browser, as an astronomer uses it (the paper's "Interface").

Open an image, scroll, select and deselect images, use quick select, share
the URL; every ranking on the page is compared with what the similarity
service answers for the same selection. At the end: nothing proprietary was
shown or requested, and nothing was fetched from outside 127.0.0.1.
Screenshots of each step go to ``test-artifacts/page/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Request, Route

from .conftest import BrowserSession, Site
from .helpers import (
    assert_grid_matches,
    page_url,
    ranking,
    result_count,
    screenshot,
    selection_strip,
    url_selection,
    wait_ranked,
)


@pytest.fixture(scope="module")
def start(site: Site) -> str:
    """A public continuum image with the longest ranking among a few (so there is scrolling)."""
    candidates = site.archive.of_kind("continuum")[:12]
    return max(candidates, key=lambda did: len(ranking(site.url, [did])["results"]))


def open_page(session: BrowserSession, site: Site, dids: list[str]) -> None:
    response = session.page.goto(page_url(site.url, dids))
    assert response is not None and response.status == 200
    wait_ranked(session.page)


def pick(session: BrowserSession, rank: int) -> str:
    """Click the tile of a rank (it must be in the DOM); return its identifier."""
    tile = session.page.locator(f"#results .tile[data-rank='{rank}']")
    did = tile.get_attribute("data-did")
    tile.locator(".tile-pick").click()
    wait_ranked(session.page)
    return did


def test_opened_page_shows_the_original_and_its_ranking(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    open_page(session, site, [start])
    page = session.page
    image = httpx.get(
        f"{site.url}/similarity/image",
        params={"ID": start, "RESPONSEFORMAT": "application/json"},
    ).json()
    assert page.inner_text(".original h1") == image["target_name"]
    assert page.inner_text(".original .kind") == "Continuum"
    assert page.get_attribute(".original img", "alt").startswith("Preview of ")
    answer = ranking(site.url, [start])
    shown = session.tiles()
    assert_grid_matches(shown, result_count(page), answer)
    assert shown[0][0] == 1
    assert len(shown) < len(answer["results"]), "the archive is too small to need scrolling"
    assert f"{answer['total']} similar continuum images" in page.inner_text("#result-count")
    assert all(page.eval_on_selector_all("#results img", "i => i.map(x => !!x.alt)"))
    assert page.locator(".quick-pick").count() == 5
    screenshot(page, artifacts, "01-opened")


def test_scrolling_brings_in_the_next_tiles_and_keeps_the_dom_small(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    open_page(session, site, [start])
    page = session.page
    answer = ranking(site.url, [start])
    n = len(answer["results"])
    first = session.tiles()
    page.mouse.wheel(0, 600)
    page.wait_for_selector(f"#results .tile[data-rank='{first[-1][0] + 1}']")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_selector(f"#results .tile[data-rank='{n}']")
    last = session.tiles()
    assert last[-1][0] == n
    assert last[0][0] > 1, "the first rows left the DOM"
    assert len(last) < n
    assert_grid_matches(last, result_count(page), answer)
    screenshot(page, artifacts, "02-scrolled-to-the-end")


def test_the_ranking_arrives_in_pages_as_the_grid_scrolls(
    session: BrowserSession, site: Site, start: str
) -> None:
    """With pages of 10 rows, scrolling asks for each next page once, and the rows fit."""
    page = session.page
    asked: list[str] = []

    def small_pages(route: Route) -> None:
        body = route.fetch().text().replace('"maxrec": 1000', '"maxrec": 10')
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)

    def record(request: Request) -> None:
        asked.append(request.url)

    page.route("**/similar?*", small_pages)
    page.on("request", record)
    try:
        open_page(session, site, [start])
        answer = ranking(site.url, [start])
        n = len(answer["results"])
        assert page.get_attribute("#results", "data-total") == str(answer["total"]) == str(n)
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_selector(f"#results .tile[data-rank='{n}']:not(.pending)")
        assert_grid_matches(session.tiles(), n, answer)
    finally:
        page.unroute("**/similar?*", small_pages)
        page.remove_listener("request", record)
    pages = [dict(parse_qsl(urlsplit(url).query)) for url in asked if "/similarity/sync" in url]
    assert all(query["MAXREC"] == "10" for query in pages)
    offsets = [int(query.get("OFFSET", 0)) for query in pages]
    assert sorted(offsets) == sorted(set(offsets)), "a page was asked for twice"
    assert {0, (n - 1) // 10 * 10} <= set(offsets)
    assert all(offset % 10 == 0 for offset in offsets)
    assert [query.get("QUICKSELECT") for query in pages].count("true") == 1


def test_each_click_reranks_to_the_combination_and_a_second_click_deselects(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    open_page(session, site, [start])
    page = session.page
    before = [did for _, did in session.tiles()]

    first = pick(session, 1)
    assert url_selection(page.url) == [start, first]
    assert selection_strip(page) == [start, first]
    answer = ranking(site.url, [start, first])
    shown = session.tiles()
    assert_grid_matches(shown, result_count(page), answer)
    assert first not in [did for _, did in shown]
    assert [did for _, did in shown] != [did for did in before if did != first]

    second = pick(session, 3)
    assert url_selection(page.url) == [start, first, second]
    assert_grid_matches(
        session.tiles(), result_count(page), ranking(site.url, [start, first, second])
    )
    assert page.inner_text("#selection-count") == "3"
    assert "ranked by 3 selected images" in page.inner_text("#result-count")
    screenshot(page, artifacts, "03-two-selected")

    page.locator(f"#selection-strip .chip[data-did='{first}'] button").click()
    wait_ranked(page)
    assert url_selection(page.url) == [start, second]
    assert selection_strip(page) == [start, second]
    assert_grid_matches(session.tiles(), result_count(page), ranking(site.url, [start, second]))
    screenshot(page, artifacts, "04-one-deselected")


def test_tiles_toggle_from_the_keyboard(session: BrowserSession, site: Site, start: str) -> None:
    open_page(session, site, [start])
    page = session.page
    tile = page.locator("#results .tile[data-rank='2']")
    did = tile.get_attribute("data-did")
    tile.locator(".tile-pick").focus()
    page.keyboard.press("Enter")
    wait_ranked(page)
    assert url_selection(page.url) == [start, did]
    other = page.locator("#results .tile[data-rank='1']")
    other_did = other.get_attribute("data-did")
    other.locator(".tile-pick").focus()
    page.keyboard.press("Space")
    wait_ranked(page)
    assert url_selection(page.url) == [start, did, other_did]
    page.locator(f"#selection-strip .chip[data-did='{did}'] button").focus()
    page.keyboard.press("Enter")
    wait_ranked(page)
    assert url_selection(page.url) == [start, other_did]


def test_quick_select_preselects_the_fifteen_closest(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    open_page(session, site, [start])
    page = session.page
    groups = ranking(site.url, [start], quick_select=True)["quick_select"]
    assert page.locator(".quick-pick").count() == len(groups) == 5
    shown = page.eval_on_selector_all(".quick-pick", "b => b.map(x => x.dataset.did)")
    assert shown == [group["representative"] for group in groups]
    screenshot(page, artifacts, "05-quick-select-row")

    page.locator(".quick-pick").nth(1).click()
    wait_ranked(page)
    members = groups[1]["members"]
    assert len(members) == 15
    selection = [start, *(did for did in members if did != start)]
    assert url_selection(page.url) == selection
    assert selection_strip(page) == selection
    assert_grid_matches(session.tiles(), result_count(page), ranking(site.url, selection))
    screenshot(page, artifacts, "06-quick-selected")


def test_the_url_is_the_selection_and_opens_it_again(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    open_page(session, site, [start])
    page = session.page
    chosen = [start, pick(session, 2), pick(session, 4)]
    shared = page.url
    assert url_selection(shared) == chosen
    assert page.get_attribute("#share-link", "href") == shared

    other = session.context.new_page()
    try:
        response = other.goto(shared)
        assert response is not None and response.status == 200
        wait_ranked(other)
        assert url_selection(other.url) == chosen
        assert selection_strip(other) == chosen
        shown = sorted(
            other.eval_on_selector_all(
                "#results .tile", "t => t.map(x => [Number(x.dataset.rank), x.dataset.did])"
            )
        )
        session.seen.update(did for _, did in shown)
        assert_grid_matches(
            [tuple(pair) for pair in shown], result_count(other), ranking(site.url, chosen)
        )
        screenshot(other, artifacts, "07-shared-url-reopened")
    finally:
        other.close()


def test_images_of_two_kinds_give_the_services_message(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    continuum = site.archive.of_kind("continuum")[0]
    peak_flux = site.archive.of_kind("peak_flux")[0]
    response = httpx.get(
        f"{site.url}/similarity/sync",
        params=[("ID", continuum), ("ID", peak_flux), ("RESPONSEFORMAT", "application/json")],
    )
    assert response.status_code == 400
    open_page(session, site, [continuum, peak_flux])
    message = session.page.locator("#message")
    assert message.is_visible()
    assert response.json()["error"] in message.inner_text()
    screenshot(session.page, artifacts, "08-service-error")


def test_a_proprietary_image_is_not_found(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    page = session.page
    for hidden in sorted(site.archive.proprietary)[:3]:
        response = page.goto(page_url(site.url, [hidden]))
        assert response is not None and response.status == 404
        assert page.inner_text("h1") == "Image not found"
        assert page.locator("#message").is_visible()
        assert page.locator("#results").count() == 0
        assert page.locator("img").count() == 0
    screenshot(page, artifacts, "09-proprietary-not-found")

    response = page.goto(page_url(site.url, [start, hidden]))
    assert response is not None and response.status == 404
    page.get_by_text("Open the page with the images that were found").click()
    wait_ranked(page)
    assert url_selection(page.url) == [start]


def test_nothing_proprietary_was_shown_or_requested(session: BrowserSession, site: Site) -> None:
    assert session.seen, "no grid was seen"
    assert not session.seen & site.archive.proprietary
    hidden_keys = {site.archive.product_keys[did] for did in site.archive.proprietary}
    hidden_dids = {quote(did, safe="") for did in site.archive.proprietary}
    images = [url for url, kind in session.requests if kind == "image"]
    assert any("/preview/" in url for url in images)
    for url in images:
        assert not any(key in url for key in hidden_keys), url
    for url, kind in session.requests:
        if kind == "document":
            continue  # the tests themselves opened pages of proprietary IDs
        assert not any(did in url for did in hidden_dids), url


def test_the_page_works_offline(session: BrowserSession) -> None:
    assert session.requests
    outside = [url for url, _ in session.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == []
