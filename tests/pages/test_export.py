"""Export: "Download this ranking" as VOTable and CSV, and the "TAP query" link.

The downloads hold the page's whole state (selection, negatives, other
targets only) and every row up to the service's limit; the VOTable passes
``stilts votlint``. The TAP query is the original image's neighbour list in
ADQL with the same images left out; it runs on the service's own TAP.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from astropy.io.votable import parse
from playwright.sync_api import Route

from tests.sky import cutout_centres
from tests.stilts_lint import run_votlint
from vo_service.pages.handlers import DEFAULT_MIN_SEPARATION_ARCSEC

from .conftest import BrowserSession, Site
from .helpers import (
    assert_grid_matches,
    open_page,
    page_url,
    pick_tile,
    ranking,
    result_count,
    screenshot,
    upload_ranking,
    wait_ranked,
)


@pytest.fixture(scope="module")
def start(field_start: str) -> str:
    """A continuum image whose ranking hides repeated observations of its field."""
    return field_start


def download(session: BrowserSession, selector: str, folder: Path) -> Path:
    with session.page.expect_download() as info:
        session.page.click(selector)
    saved = folder / info.value.suggested_filename
    info.value.save_as(saved)
    return saved


def votable_rows(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    document = parse(str(path))
    infos: dict[str, list[str]] = {}
    for info in document.resources[0].infos:
        infos.setdefault(info.name, []).append(info.value)
    table = document.get_first_table().to_table()
    return [str(did) for did in table["obs_publisher_did"]], infos


def test_the_downloads_hold_the_whole_state_and_all_rows(
    session: BrowserSession, site: Site, start: str, tmp_path: Path, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    chosen = pick_tile(page, 2)
    avoided = pick_tile(page, 1, ".tile-less")
    answer = ranking(site.url, [start, chosen], excluded=[avoided])
    expected = [row["obs_publisher_did"] for row in answer["results"]]
    screenshot(page, artifacts, "export-01-links")

    saved = download(session, "#export-votable", tmp_path)
    assert saved.name.startswith("vosim-similar-to-") and saved.name.endswith(".vot.xml")
    dids, infos = votable_rows(saved)
    assert dids == expected and len(dids) == answer["total"]
    assert infos["ID"] == [start, chosen] and infos["NOT_ID"] == [avoided]
    assert float(infos["MIN_SEPARATION"][0]) == DEFAULT_MIN_SEPARATION_ARCSEC
    assert int(infos["hidden_nearby"][0]) == answer["hidden_nearby"]
    report = run_votlint(str(saved))
    assert report.errors == report.warnings == 0, report.describe()
    query = dict(parse_qsl(urlsplit(page.get_attribute("#export-votable", "href")).query))
    assert query["MAXREC"] == str(site.server.app.state.similarity.limits.hard_maxrec)

    saved = download(session, "#export-csv", tmp_path)
    assert saved.suffix == ".csv"
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert [row["obs_publisher_did"] for row in rows] == expected
    assert [int(row["rank"]) for row in rows] == list(range(1, len(rows) + 1))


def test_an_uploads_ranking_downloads_too(
    session: BrowserSession, site: Site, tmp_path: Path
) -> None:
    page = session.page
    path = site.archive.files[site.archive.of_kind("continuum")[2]]
    page.goto(site.url + "/similar")
    page.set_input_files("#upload-input", str(path))
    wait_ranked(page)
    saved = download(session, "#export-votable", tmp_path)
    dids, infos = votable_rows(saved)
    expected = upload_ranking(site.url, path, response_format="votable").content
    assert dids == votable_rows(_write(tmp_path / "expected.xml", expected))[0]
    assert infos["upload_file_name"] == [path.name]
    assert run_votlint(str(saved)).errors == 0
    saved = download(session, "#export-csv", tmp_path)
    assert [row["obs_publisher_did"] for row in csv.DictReader(saved.open())] == dids


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("separation", [True, False], ids=["other-targets", "all"])
def test_the_tap_query_is_the_neighbour_list_with_the_same_images_left_out(
    session: BrowserSession, site: Site, start: str, separation: bool, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    if not separation:
        page.uncheck("#other-targets")
        wait_ranked(page)
    chosen = pick_tile(page, 3)
    avoided = pick_tile(page, 1, ".tile-less")
    page.click("#tap-adql summary")
    adql = page.inner_text("#adql-text")
    assert "FROM similarity.neighbour AS n" in adql and start in adql
    screenshot(page, artifacts, f"export-02-adql-{'other-targets' if separation else 'all'}")
    response = httpx.get(page.eval_on_selector("#tap-query", "a => a.href"))
    assert response.status_code == 200, response.text
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    listed = [str(did) for did in table["neighbour_did"]]

    # Expected: the original's own ranking (the neighbour list is its exact top 1000),
    # without the selected and excluded images, and without those near a selected one.
    whole = ranking(site.url, [start], min_separation=0)["results"]
    centres = cutout_centres(site.server.catalogue)
    expected = [
        row["obs_publisher_did"]
        for row in whole
        if row["obs_publisher_did"] not in {chosen, avoided}
        and not (
            separation
            and any(
                centres[row["obs_publisher_did"]].separation(centres[did]).arcsec
                < DEFAULT_MIN_SEPARATION_ARCSEC
                for did in (start, chosen)
            )
        )
    ]
    assert listed == expected
    assert list(table["rank"]) == sorted(table["rank"])


def test_a_selection_too_long_for_a_url_goes_by_post(
    session: BrowserSession, site: Site, start: str, tmp_path: Path
) -> None:
    """Past the page's URL limit (lowered here to 300 characters) nothing breaks.

    Rankings and downloads are POSTed forms, and the links that must be URLs
    (TAP query, SAMP) say why they are not offered.
    """
    page = session.page

    def short_urls(route: Route) -> None:
        body = route.fetch().text().replace('"max_url_length": 8000', '"max_url_length": 300')
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)

    methods: list[str] = []
    page.on("request", lambda r: methods.append(r.method) if "/similarity/sync" in r.url else None)
    page.route("**/similar?*", short_urls)
    try:
        open_page(page, page_url(site.url, [start]))
        chosen = pick_tile(page, 2)
        avoided = pick_tile(page, 1, ".tile-less")
    finally:
        page.unroute("**/similar?*", short_urls)
    assert methods[-1] == "POST"
    answer = ranking(site.url, [start, chosen], excluded=[avoided])
    assert_grid_matches(session.tiles(), result_count(page), answer)
    assert page.locator("#tap-query").is_hidden()
    assert "too long for a link" in page.inner_text("#tap-note")
    assert page.is_disabled("#samp-table")
    saved = download(session, "#export-votable", tmp_path)
    dids, infos = votable_rows(saved)
    assert dids == [row["obs_publisher_did"] for row in answer["results"]]
    assert infos["ID"] == [start, chosen] and infos["NOT_ID"] == [avoided]
