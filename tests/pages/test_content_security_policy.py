"""The pages under the production Content-Security-Policy: no inline script or style, no eval.

Every page test runs with ``default-src 'self'`` (plus connect-src for the
SAMP hub) and fails on any violation the browser reports (`conftest`). This
module checks that the detector works, and reads the pages and scripts for
what the policy forbids.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from vo_service.security_headers import CONTENT_SECURITY_POLICY

from .conftest import BrowserSession, Site
from .helpers import open_page, page_url

JSON = "application/json"
STATIC = Path(__file__).resolve().parents[2] / "templates" / "static"


class InlineFinder(HTMLParser):
    """Collect what a policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "style":
            self.found.append("<style> element")
        # a JSON data block is never run
        if tag == "script" and "src" not in attributes and attributes.get("type") != JSON:
            self.found.append("inline <script>")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"style attribute on <{tag}>")
            if name.startswith("on"):
                self.found.append(f"{name} handler on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL on <{tag}>")


@pytest.fixture(scope="module")
def pages(site: Site) -> dict[str, str]:
    start = site.archive.of_kind("continuum")[0]
    hidden = sorted(site.archive.proprietary)[0]
    return {
        "home": site.url + "/",
        "search": site.url + "/?target=J",
        "similar": page_url(site.url, [start]),
        "upload": site.url + "/similar",
        "not found": page_url(site.url, [hidden]),
    }


def test_every_page_carries_the_policy_and_has_nothing_inline(pages: dict[str, str]) -> None:
    for name, url in pages.items():
        response = httpx.get(url)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, name
        finder = InlineFinder()
        finder.feed(response.text)
        assert finder.found == [], f"{name}: {finder.found}"


def test_the_scripts_use_nothing_the_policy_forbids() -> None:
    for script in STATIC.glob("*.js"):
        source = script.read_text()
        for pattern in (
            r"\beval\s*\(",
            r"new\s+Function\s*\(",
            r"setTimeout\(\s*[\"'`]",
            r"setAttribute\(\s*[\"']style",
            r"\.innerHTML\s*=",
            r"data:image",
        ):
            assert not re.search(pattern, source), f"{script.name}: {pattern}"


def test_a_violation_would_be_caught(session: BrowserSession, site: Site) -> None:
    """The detector every page test relies on sees an inline style being refused."""
    page = session.page
    open_page(page, page_url(site.url, [site.archive.of_kind("continuum")[0]]))
    page.evaluate("() => document.body.setAttribute('style', 'background: red')")
    caught: list[str] = []
    for _ in range(80):  # the report arrives with the browser's console events
        caught = [problem for problem in session.problems if "style" in problem]
        if caught:
            break
        page.wait_for_timeout(25)
    assert caught, "the browser reported no violation of the policy"
    assert (
        page.evaluate("() => getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    )
    session.problems.clear()
