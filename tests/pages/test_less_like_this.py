"""Less like this: marking images as negatives (``NOT_ID``) on the page.

Three ways, as a user finds them: the − button on a tile, the key N on a
focused tile, and the "Less like this" click mode. Negatives have their own
colour in the selection strip, a click there takes the mark away, and they
are kept in the page's URL. Every ranking is compared with the service's
answer for the same state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import BrowserSession, Site
from .helpers import (
    assert_grid_matches,
    excluded_strip,
    open_page,
    page_url,
    pick_tile,
    ranking,
    result_count,
    screenshot,
    selection_strip,
    url_excluded,
    url_selection,
    wait_ranked,
)

AVOID_COLOUR = "rgb(59, 91, 219)"  # --avoid in vosim.css
SELECT_COLOUR = "rgb(242, 140, 30)"  # --select


@pytest.fixture(scope="module")
def start(site: Site) -> str:
    candidates = site.archive.of_kind("continuum")[:12]
    return max(candidates, key=lambda did: len(ranking(site.url, [did])["results"]))


def border_colour(session: BrowserSession, did: str) -> str:
    return session.page.eval_on_selector(
        f"#selection-strip .chip[data-did='{did}']", "c => getComputedStyle(c).borderTopColor"
    )


def test_the_minus_button_marks_an_image_less_like_this(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    avoided = pick_tile(page, 1, ".tile-less")
    assert url_selection(page.url) == [start]
    assert url_excluded(page.url) == [avoided]
    assert excluded_strip(page) == [avoided]
    assert border_colour(session, avoided) == AVOID_COLOUR
    assert border_colour(session, start) == SELECT_COLOUR
    answer = ranking(site.url, [start], excluded=[avoided])
    assert answer["excluded"] == [avoided]
    shown = session.tiles()
    assert_grid_matches(shown, result_count(page), answer)
    assert avoided not in [did for _, did in shown]
    assert "away from 1" in page.inner_text("#result-count")
    screenshot(page, artifacts, "less-01-minus-button")


def test_the_key_n_marks_the_focused_image(session: BrowserSession, site: Site, start: str) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    tile = page.locator("#results .tile[data-rank='2']")
    first = tile.get_attribute("data-did")
    tile.locator(".tile-pick").focus()
    page.keyboard.press("n")
    wait_ranked(page)
    assert url_excluded(page.url) == [first]
    tile = page.locator("#results .tile[data-rank='1']")
    second = tile.get_attribute("data-did")
    tile.locator(".tile-pick").focus()
    page.keyboard.press("Enter")  # Enter still selects
    wait_ranked(page)
    assert url_selection(page.url) == [start, second]
    assert url_excluded(page.url) == [first]
    assert_grid_matches(
        session.tiles(), result_count(page), ranking(site.url, [start, second], excluded=[first])
    )


def test_the_less_click_mode_and_taking_marks_away(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    selected = pick_tile(page, 1)
    page.get_by_role("radio", name="Less like this").check()
    avoided = [pick_tile(page, 1), pick_tile(page, 3)]
    assert url_selection(page.url) == [start, selected]
    assert url_excluded(page.url) == avoided
    assert selection_strip(page) == [start, selected]
    assert excluded_strip(page) == avoided
    assert_grid_matches(
        session.tiles(), result_count(page), ranking(site.url, [start, selected], excluded=avoided)
    )
    screenshot(page, artifacts, "less-02-click-mode")

    # In "less" mode a click on the selected image would make it a negative: it moves.
    page.locator(f"#selection-strip .chip[data-did='{avoided[0]}'] button").click()
    wait_ranked(page)
    assert url_excluded(page.url) == avoided[1:]
    page.get_by_role("radio", name="More like this").check()
    page.click("#clear-selection")
    wait_ranked(page)
    assert url_selection(page.url) == [start] and url_excluded(page.url) == []


def test_negatives_are_kept_in_the_shared_url(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    chosen = pick_tile(page, 2)
    avoided = pick_tile(page, 1, ".tile-less")
    shared = page.get_attribute("#share-link", "href")
    assert url_selection(shared) == [start, chosen] and url_excluded(shared) == [avoided]
    other = session.context.new_page()
    try:
        open_page(other, shared)
        assert excluded_strip(other) == [avoided]
        assert selection_strip(other) == [start, chosen]
        assert (
            other.eval_on_selector(
                f"#selection-strip .chip[data-did='{avoided}']",
                "c => getComputedStyle(c).borderTopColor",
            )
            == AVOID_COLOUR
        )
        shown = sorted(
            other.eval_on_selector_all(
                "#results .tile", "t => t.map(x => [Number(x.dataset.rank), x.dataset.did])"
            )
        )
        session.seen.update(did for _, did in shown)
        assert_grid_matches(
            [tuple(pair) for pair in shown],
            result_count(other),
            ranking(site.url, [start, chosen], excluded=[avoided]),
        )
        screenshot(other, artifacts, "less-03-shared-url")
    finally:
        other.close()


def test_a_proprietary_negative_is_not_found(session: BrowserSession, site: Site, start: str):
    hidden = sorted(site.archive.proprietary)[0]
    page = session.page
    response = page.goto(page_url(site.url, [start], [hidden]))
    assert response is not None and response.status == 404
    assert page.inner_text("h1") == "Image not found"
    assert page.locator("img").count() == 0
    page.get_by_text("Open the page with the images that were found").click()
    wait_ranked(page)
    assert url_selection(page.url) == [start] and url_excluded(page.url) == []


def test_nothing_proprietary_was_shown_or_requested(session: BrowserSession, site: Site) -> None:
    assert session.seen and not session.seen & site.archive.proprietary
    hidden_keys = {site.archive.product_keys[did] for did in site.archive.proprietary}
    for url, kind in session.requests:
        if kind == "image":
            assert not any(key in url for key in hidden_keys), url
