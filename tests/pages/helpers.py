"""What the page tests do often: ask the service directly, read the page, take pictures."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
from playwright.sync_api import Page

from vo_service.pages.handlers import DEFAULT_MIN_SEPARATION_ARCSEC

MAXREC = 1000


def ranking(
    base_url: str,
    dids: list[str],
    *,
    quick_select: bool = False,
    excluded: list[str] = (),
    min_separation: float = DEFAULT_MIN_SEPARATION_ARCSEC,
) -> dict:
    """The similarity service's JSON answer for the page's state, asked without the page.

    By default with the page's own "other targets only" radius, as the page asks.
    """
    params = [("ID", did) for did in dids] + [("NOT_ID", did) for did in excluded]
    params += [("MAXREC", str(MAXREC)), ("RESPONSEFORMAT", "application/json")]
    params.append(("MIN_SEPARATION", str(min_separation)))
    if quick_select:
        params.append(("QUICKSELECT", "true"))
    response = httpx.get(f"{base_url}/similarity/sync", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def page_url(base_url: str, dids: list[str], excluded: list[str] = (), extra: str = "") -> str:
    query = [f"ID={quote(did, safe='')}" for did in dids]
    query += [f"NOT_ID={quote(did, safe='')}" for did in excluded]
    return f"{base_url}/similar?" + "&".join(query) + extra


def url_selection(url: str) -> list[str]:
    """The identifiers a page URL selects, in order."""
    return [value for key, value in parse_qsl(urlsplit(url).query) if key == "ID"]


def url_excluded(url: str) -> list[str]:
    """The identifiers a page URL marks "less like this", in order."""
    return [value for key, value in parse_qsl(urlsplit(url).query) if key == "NOT_ID"]


def wait_ranked(page: Page) -> None:
    """Wait until the page has shown the answer to its latest request."""
    page.wait_for_selector("#results[aria-busy='false']", timeout=15_000)


def selection_strip(page: Page) -> list[str]:
    """The identifiers the selection strip shows as selected (the original first)."""
    return page.eval_on_selector_all(
        "#selection-strip .chip:not(.chip-excluded)", "c => c.map(x => x.dataset.did)"
    )


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


def excluded_strip(page: Page) -> list[str]:
    """The identifiers the selection strip shows as "less like this"."""
    return page.eval_on_selector_all(
        "#selection-strip .chip-excluded", "c => c.map(x => x.dataset.did)"
    )


def screenshot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def upload_ranking(
    base_url: str,
    path: Path,
    *,
    dids: list[str] = (),
    excluded: list[str] = (),
    min_separation: float = DEFAULT_MIN_SEPARATION_ARCSEC,
    response_format: str = "application/json",
) -> httpx.Response:
    """The service's answer to the page's upload of ``path``, asked without the page."""
    data = {
        "ID": list(dids),
        "NOT_ID": list(excluded),
        "MIN_SEPARATION": str(min_separation),
        "MAXREC": str(MAXREC),
        "RESPONSEFORMAT": response_format,
    }
    files = {"IMAGE": (path.name, path.read_bytes(), "application/fits")}
    response = httpx.post(f"{base_url}/similarity/sync", data=data, files=files, timeout=60)
    response.raise_for_status()
    return response


def drop_file(page: Page, name: str, content: bytes, *, drop: bool = True) -> None:
    """Drag a file over the page (and drop it), as a user drags one from the desktop."""
    page.evaluate(
        """([name, data, drop]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/fits" }));
            const types = drop ? ["dragenter", "dragover", "drop"] : ["dragenter", "dragover"];
            for (const type of types) {
                const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
                document.querySelector("main").dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [name, base64.b64encode(content).decode("ascii"), drop],
    )


def tile_dids(page: Page) -> list[str]:
    """The identifiers of the tiles in the grid's DOM, by rank."""
    pairs = page.eval_on_selector_all(
        "#results .tile:not(.pending)",
        "tiles => tiles.map(t => [Number(t.dataset.rank), t.dataset.did])",
    )
    return [did for _, did in sorted(pairs)]


def open_page(page: Page, url: str) -> None:
    """Open a similarity page and wait for its first ranking."""
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    wait_ranked(page)


def pick_tile(page: Page, rank: int, part: str = ".tile-pick") -> str:
    """Click a part of the tile of a rank (it must be in the DOM); return its identifier."""
    tile = page.locator(f"#results .tile[data-rank='{rank}']")
    did = tile.get_attribute("data-did")
    tile.locator(part).click()
    wait_ranked(page)
    return did


def repeated_start(base_url: str, dids: list[str]) -> str:
    """Among ``dids``, an image whose ranking hides repeated observations of its field.

    The one with the longest ranking among those (so that there is scrolling).
    """
    hiding = []
    for did in dids:
        answer = ranking(base_url, [did])
        if answer["hidden_nearby"] > 0:
            hiding.append((len(answer["results"]), did))
    assert hiding, "no image of the test archive has a repeated observation"
    return max(hiding)[1]
