"""What the page tests do often: ask the service directly, read the page, take pictures."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
from playwright.sync_api import Page

MAXREC = 1000


def ranking(base_url: str, dids: list[str], *, quick_select: bool = False) -> dict:
    """The similarity service's JSON answer for a selection, asked without the page."""
    params = [("ID", did) for did in dids]
    params += [("MAXREC", str(MAXREC)), ("RESPONSEFORMAT", "application/json")]
    if quick_select:
        params.append(("QUICKSELECT", "true"))
    response = httpx.get(f"{base_url}/similarity/sync", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def page_url(base_url: str, dids: list[str]) -> str:
    return f"{base_url}/similar?" + "&".join(f"ID={quote(did, safe='')}" for did in dids)


def url_selection(url: str) -> list[str]:
    """The identifiers a page URL selects, in order."""
    return [value for key, value in parse_qsl(urlsplit(url).query) if key == "ID"]


def wait_ranked(page: Page) -> None:
    """Wait until the page has shown the answer to its latest request."""
    page.wait_for_selector("#results[aria-busy='false']", timeout=15_000)


def selection_strip(page: Page) -> list[str]:
    return page.eval_on_selector_all("#selection-strip .chip", "c => c.map(x => x.dataset.did)")


def result_count(page: Page) -> int:
    return int(page.get_attribute("#results", "data-count"))


def assert_grid_matches(shown: list[tuple[int, str]], count: int, answer: dict) -> None:
    """The tiles in the DOM are exactly the service's results at their ranks, without gaps."""
    expected = {row["rank"]: row["obs_publisher_did"] for row in answer["results"]}
    assert shown, "no tile is shown"
    assert count == len(answer["results"])
    assert [did for _, did in shown] == [expected[rank] for rank, _ in shown]
    ranks = [rank for rank, _ in shown]
    assert ranks == list(range(ranks[0], ranks[0] + len(ranks)))


def screenshot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
