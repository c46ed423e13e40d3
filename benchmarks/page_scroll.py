"""Scrolling the similarity page through thousands of results: virtual grid against a plain one.

Serves a tiny demo archive, opens ``/similar?ID=…`` in headless Chromium and
answers the page's ranking request with N synthetic results (Playwright
intercepts ``/similarity/sync``), so that the figures measure the page alone,
at sizes the service would reach only with a large archive. Every result has
its own preview URL (one of the archive's real previews, with a query that
makes each URL distinct), so the browser fetches and decodes a preview per
tile, as with a real ranking.

For each N it scrolls the page at a steady 60 px per frame from the top to
the bottom of the grid (capped at 600 frames) and reports the DOM size and
the time between animation frames. The reference, in the same browser run,
is the same results drawn the plain way: every tile in the DOM, in a CSS grid
(what a page without virtual scrolling does).

Run from the repository root::

    python benchmarks/page_scroll.py [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Page, Route

from tap_schema import Settings, open_catalogue
from tests.browser import chromium
from tests.pages.catalogue import build
from tests.tap.server import running_server

VIEWPORT = {"width": 1280, "height": 900}
PAGES = (("virtual grid (vosim)", False), ("plain grid (reference)", True))
STEP_PX = 60
MAX_FRAMES = 600

# The reference: every result as a tile in the DOM, laid out by a CSS grid.
PLAIN_GRID = """
(results) => {
  const grid = document.getElementById("results");
  grid.style.display = "none";
  const plain = document.createElement("ol");
  plain.className = "cards";
  plain.id = "plain";
  plain.innerHTML = results.map((r) => `<li class="card"><a class="card-link" href="#">
    <span class="thumb"><img src="${r.preview_url}" alt="Preview" width="160" height="160"></span>
    <span class="card-target">${r.target_name}</span>
    <span class="card-meta">Band ${r.band_list} · ${r.similarity.toFixed(3)}</span>
    <span class="card-category">${r.scientific_category}</span></a></li>`).join("");
  grid.after(plain);
}
"""

DRAWN = """
() => {
  if (document.getElementById("results").getAttribute("aria-busy") !== "false") return false;
  const ranking = performance
    .getEntriesByType("resource")
    .find((entry) => entry.name.includes("/similarity/sync"));
  return ranking ? performance.now() - ranking.responseEnd : false;
}
"""

SCROLL = """
async ({ step, maxFrames, selector }) => {
  const grid = document.querySelector(selector);
  const end = grid.getBoundingClientRect().bottom + window.scrollY - window.innerHeight;
  window.scrollTo(0, grid.getBoundingClientRect().top + window.scrollY - 200);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const intervals = [];
  let domMax = 0;
  let last = performance.now();
  for (let i = 0; i < maxFrames && window.scrollY < end - 1; i += 1) {
    window.scrollBy(0, step);
    await new Promise((r) => requestAnimationFrame(r));
    const now = performance.now();
    intervals.push(now - last);
    last = now;
    domMax = Math.max(domMax, document.getElementsByTagName("*").length);
  }
  return { intervals, domMax };
}
"""


def results(n: int, cards: list[dict]) -> list[dict]:
    """N results cycling through the archive's images, each with its own preview URL."""
    rows = []
    for index in range(n):
        card = cards[index % len(cards)]
        rows.append(
            {
                "rank": index + 1,
                "obs_publisher_did": f"{card['obs_publisher_did']}#{index}",
                "target_name": card["target_name"],
                "s_ra": 0.0,
                "s_dec": 0.0,
                "band_list": card["band_list"],
                "scientific_category": card["scientific_category"],
                "similarity": 1.0 - index / (2 * n),
                "preview_url": f"/preview/{card['product_key']}.png?copy={index}",
                "datalink_url": "/datalink?ID=" + quote(card["obs_publisher_did"], safe=""),
                "file_url": f"/files/{card['product_key']}.fits",
                "page_url": "/similar?ID=" + quote(card["obs_publisher_did"], safe=""),
            }
        )
    return rows


def measure(page: Page, url: str, rows: list[dict], plain: bool) -> dict:
    answer = {
        "selection": [],
        "excluded": [],
        "image_kind": "continuum",
        "model_id": 1,
        "total": len(rows),
        "results": rows,
        "quick_select": [],
    }
    body = json.dumps(answer)

    def rank(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=body)

    page.route("**/similarity/sync?*", rank)
    page.goto(url)
    # From the ranking's arrival to the first frame that shows it (JSON parsing included).
    drawn = page.wait_for_function(DRAWN, polling="raf").json_value()
    first_frame_ms = drawn
    if plain:
        started = page.evaluate("performance.now()")
        page.evaluate(PLAIN_GRID, rows)
        page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        first_frame_ms += page.evaluate("performance.now()") - started
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    before = _main_thread(cdp)
    outcome = page.evaluate(
        SCROLL,
        {"step": STEP_PX, "maxFrames": MAX_FRAMES, "selector": "#plain" if plain else "#results"},
    )
    after = _main_thread(cdp)
    cdp.detach()
    page.unroute("**/similarity/sync?*", rank)
    intervals = sorted(outcome["intervals"])
    busy = {name: (after[name] - before[name]) * 1000 / len(intervals) for name in after}
    return {
        "dom_nodes": outcome["domMax"],
        "first_frame_ms": first_frame_ms,
        "frames": len(intervals),
        "median_ms": statistics.median(intervals),
        "p95_ms": intervals[int(0.95 * (len(intervals) - 1))],
        "max_ms": intervals[-1],
        "over_50ms": sum(1 for value in intervals if value > 50),
        "task_ms": busy["TaskDuration"],
        "script_ms": busy["ScriptDuration"],
        "layout_ms": busy["LayoutDuration"] + busy["RecalcStyleDuration"],
    }


def _main_thread(cdp) -> dict[str, float]:
    """Seconds the renderer's main thread has spent so far, in all and on script and layout."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    names = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    return {name: metrics[name] for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        settings = Settings.from_env({"VOSIM_DATA_DIR": str(root / "data")})
        catalogue = open_catalogue(settings)
        archive = build(settings, catalogue, root / "archive", 8, 2)
        catalogue.dispose()
        start = archive.of_kind("continuum")[0]
        from vo_service.pages.browse import public_images  # the cards the page itself shows

        catalogue = open_catalogue(settings, create=False)
        cards = [
            {
                "obs_publisher_did": card.obs_publisher_did,
                "target_name": card.target_name,
                "band_list": card.band_list,
                "scientific_category": card.scientific_category,
                "product_key": card.product_key,
            }
            for card in public_images(catalogue, archive.of_kind("continuum")).values()
        ]
        catalogue.dispose()

        table = []
        with running_server(settings) as server, chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            url = f"{server.url}/similar?ID={quote(start, safe='')}"
            for n in args.sizes:
                rows = results(n, cards)
                for name, plain in PAGES:
                    table.append((n, name, measure(page, url, rows, plain)))
    header = (
        f"{'results':>8}  {'page':<24}{'DOM nodes':>10}{'1st frame ms':>13}{'frames':>8}"
        f"{'median ms':>10}{'p95 ms':>8}{'max ms':>8}{'>50 ms':>7}"
        f"{'main/frame':>11}{'script':>8}{'layout':>8}"
    )
    print(f"Scrolling at {STEP_PX} px/frame, viewport {VIEWPORT['width']}x{VIEWPORT['height']}")
    print(header)
    print("-" * len(header))
    for n, name, row in table:
        print(
            f"{n:>8}  {name:<24}{row['dom_nodes']:>10}{row['first_frame_ms']:>13.0f}"
            f"{row['frames']:>8}{row['median_ms']:>10.1f}{row['p95_ms']:>8.1f}"
            f"{row['max_ms']:>8.1f}{row['over_50ms']:>7}"
            f"{row['task_ms']:>11.2f}{row['script_ms']:>8.2f}{row['layout_ms']:>8.2f}"
        )


if __name__ == "__main__":
    main()
