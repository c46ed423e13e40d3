"""Small screens and long selections: the page at 390 px wide, and a strip that shows it scrolls.

At a phone's width nothing may stick out sideways (header links, facts, the
identifier, the toolbar), and with many selected images the selection strip
says that more chips follow and scrolls to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import PHONE

from .conftest import BrowserSession, Site
from .helpers import open_page, page_url, screenshot, wait_ranked


@pytest.fixture
def phone(browser: Browser, session: BrowserSession) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    context.on("request", session.record)
    page = context.new_page()
    session.watch(page)
    yield page
    context.close()


def overflow(page: Page) -> list[str]:
    """Elements that stick out of the viewport or are cut off inside their own box."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const problems = [];
            if (document.documentElement.scrollWidth > width) {
                problems.push(`page is ${document.documentElement.scrollWidth}px wide`);
            }
            const watched = ".masthead a, .facts dt, .facts dd, .original h1, .toolbar-title, " +
                ".controls label, .result-count, .actions a, .actions button, .quick-pick";
            for (const node of document.querySelectorAll(watched)) {
                const box = node.getBoundingClientRect();
                if (box.width === 0) continue;
                if (box.left < -1 || box.right > width + 1) {
                    const text = node.textContent.trim().slice(0, 30);
                    problems.push(`${node.className || node.tagName} ${text}`);
                }
            }
            return problems;
        }"""
    )


def fill_selection(page: Page) -> None:
    """Quick select: the selection gets 15 more images."""
    page.locator(".quick-pick").first.click()
    wait_ranked(page)


def test_the_page_fits_a_phone(phone: Page, site: Site, artifacts: Path) -> None:
    start = site.archive.of_kind("continuum")[0]
    open_page(phone, page_url(site.url, [start]))
    assert overflow(phone) == []
    did = phone.locator(".original code.did")
    lines = did.evaluate(
        "c => Math.round(c.getBoundingClientRect().height"
        " / parseFloat(getComputedStyle(c).lineHeight))"
    )
    characters = len(did.inner_text())
    assert characters / lines >= 25, (
        f"the identifier wraps {characters / lines:.0f} characters a line"
    )
    assert phone.locator(".masthead-nav a").count() == 3
    screenshot(phone, artifacts, "phone-01-opened")
    phone.locator("#quick-select-title").scroll_into_view_if_needed()
    screenshot(phone, artifacts, "phone-02-quick-select")
    fill_selection(phone)
    assert overflow(phone) == []
    phone.locator(".results-section").scroll_into_view_if_needed()
    phone.wait_for_selector("#results .tile:not(.pending)")
    columns = phone.eval_on_selector_all(
        "#results .tile", "t => new Set(t.map(x => x.getBoundingClientRect().left)).size"
    )
    assert columns == 2, "two columns of tiles on a phone"
    toolbar = phone.eval_on_selector(".toolbar", "t => t.getBoundingClientRect().height")
    assert toolbar < PHONE["height"] / 3, f"the sticky toolbar takes {toolbar}px of the screen"
    screenshot(phone, artifacts, "phone-03-selected-results")


def test_the_home_page_fits_a_phone(phone: Page, site: Site, artifacts: Path) -> None:
    phone.goto(site.url + "/")
    problems = phone.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert problems <= 0
    screenshot(phone, artifacts, "phone-04-home", full_page=True)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_long_selection_shows_that_it_scrolls(
    session: BrowserSession, phone: Page, site: Site, size: str, artifacts: Path
) -> None:
    page = session.page if size == "desktop" else phone
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))
    assert page.locator("#strip-on").is_hidden(), "one chip fits"
    fill_selection(page)
    page.locator("#strip-frame").scroll_into_view_if_needed()
    assert page.locator("#selection-strip .chip").count() >= 4
    on = page.locator("#strip-on")
    assert on.is_visible()
    more = int(on.get_attribute("data-more"))
    assert more > 0 and f"{more} more not in view" in on.get_attribute("aria-label")
    assert page.locator("#strip-back").is_hidden()
    assert page.eval_on_selector("#strip-frame", "f => f.classList.contains('can-scroll-on')")
    screenshot(page, artifacts, f"strip-01-{size}-long")
    on.click()
    page.wait_for_function("() => document.getElementById('selection-strip').scrollLeft > 0")
    page.wait_for_selector("#strip-back:not([hidden])")
    screenshot(page, artifacts, f"strip-02-{size}-scrolled")
    page.eval_on_selector("#selection-strip", "s => { s.scrollLeft = s.scrollWidth; }")
    page.wait_for_selector("#strip-on[hidden]", state="attached")
