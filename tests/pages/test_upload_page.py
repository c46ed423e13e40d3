"""Search by your own FITS file: picked or dropped on the page, cut out by the service, refined.

The file is a CASA-style image of the page archive (a public continuum
image) or a line cube; what the page draws and ranks is compared with what
the service answers to the same upload asked without the page.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Route

from .conftest import BrowserSession, Site
from .helpers import (
    assert_grid_matches,
    drop_file,
    open_page,
    page_url,
    pick_tile,
    result_count,
    screenshot,
    tile_dids,
    upload_ranking,
    url_selection,
    wait_ranked,
)


@pytest.fixture(scope="module")
def continuum_file(site: Site) -> Path:
    did = site.archive.of_kind("continuum")[3]
    return site.archive.files[did]


@pytest.fixture(scope="module")
def cube_file(site: Site) -> Path:
    did = site.archive.of_kind("peak_flux")[0]
    return site.archive.files[did]


def canvas_pixels(session: BrowserSession) -> np.ndarray:
    values = session.page.eval_on_selector(
        "#upload-cutout",
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)",
    )
    return np.array(values, dtype=np.uint8)


def test_a_picked_file_is_cut_out_shown_and_ranked(
    session: BrowserSession, site: Site, continuum_file: Path, artifacts: Path
) -> None:
    page = session.page
    page.goto(site.url + "/similar")
    page.set_input_files("#upload-input", str(continuum_file))
    wait_ranked(page)
    answer = upload_ranking(site.url, continuum_file).json()
    described = answer["upload"]
    assert page.inner_text("#original-title") == continuum_file.name
    assert page.text_content("#original-eyebrow").startswith("Your image")
    facts = page.inner_text("#original-facts")
    assert "Continuum" in facts
    snr = f"{described['peak_snr']:.1f}"
    if described["cutout_rule"] == "peak":
        assert f"centred on the brightest pixel (S/N {snr} > 5)" in facts
    else:
        assert (
            f"centred on the image centre: no pixel above S/N 5 (the brightest has {snr})" in facts
        )
    assert f"RA {described['cutout_ra']:.5f}°" in facts
    assert page.locator("#upload-cutout").is_visible()
    drawn = canvas_pixels(session)
    sent = np.frombuffer(base64.b64decode(described["cutout_image"]["rgba"]), dtype=np.uint8)
    assert np.array_equal(drawn, sent), "the canvas shows the service's cut-out"
    assert_grid_matches(session.tiles(), result_count(page), answer)
    assert "ranked by your image" in page.inner_text("#result-count")
    assert page.url == site.url + "/similar"
    assert page.locator("#share-link").is_hidden() and page.locator("#share-note").is_visible()
    assert page.locator("#tap-query").is_hidden() and page.locator("#tap-note").is_visible()
    screenshot(page, artifacts, "upload-01-picked")


def test_refinement_works_from_the_upload(
    session: BrowserSession, site: Site, continuum_file: Path, artifacts: Path
) -> None:
    page = session.page
    page.goto(site.url + "/similar")
    page.set_input_files("#upload-input", str(continuum_file))
    wait_ranked(page)
    posted: list[str] = []
    page.on(
        "request",
        lambda r: posted.append(r.headers.get("content-type", "")) if r.method == "POST" else None,
    )
    chosen = pick_tile(page, 2)
    avoided = pick_tile(page, 1, ".tile-less")
    answer = upload_ranking(site.url, continuum_file, dids=[chosen], excluded=[avoided]).json()
    assert answer["selection"] == [chosen] and answer["excluded"] == [avoided]
    assert_grid_matches(session.tiles(), result_count(page), answer)
    # the service keeps nothing: each refinement posts the file again (only the file and
    # the IDs together give the ranking compared above)
    assert len(posted) == 2 and all(kind.startswith("multipart/form-data") for kind in posted)
    chips = page.eval_on_selector_all("#selection-strip .chip", "c => c.map(x => x.dataset.role)")
    assert chips == ["original", "selected", "excluded"]
    assert "ranked by 2 selected images, away from 1" in page.inner_text("#result-count")
    screenshot(page, artifacts, "upload-02-refined")


def test_a_dropped_cube_replaces_the_original_image(
    session: BrowserSession, site: Site, cube_file: Path, artifacts: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))
    chosen = pick_tile(page, 1)
    drop_file(page, cube_file.name, cube_file.read_bytes(), drop=False)
    assert page.locator("#drop-overlay").is_visible()
    screenshot(page, artifacts, "upload-03-dragging")
    drop_file(page, cube_file.name, cube_file.read_bytes())
    wait_ranked(page)
    assert page.locator("#drop-overlay").is_hidden()
    answer = upload_ranking(site.url, cube_file).json()
    assert answer["image_kind"] == "peak_flux"
    assert page.inner_text("#original-title") == cube_file.name
    assert "Peak flux (moment 8)" in page.inner_text("#original-facts")
    chips = page.eval_on_selector_all("#selection-strip .chip", "c => c.map(x => x.dataset.role)")
    assert chips == ["original"], f"the selection ({chosen}) starts afresh from the file"
    assert_grid_matches(session.tiles(), result_count(page), answer)
    assert page.url == site.url + "/similar" and url_selection(page.url) == []
    assert "peak-flux" in page.inner_text("#result-count")
    screenshot(page, artifacts, "upload-04-dropped-cube")


def test_an_unreadable_file_gives_the_services_message_not_a_blank_grid(
    session: BrowserSession, site: Site, tmp_path: Path, artifacts: Path
) -> None:
    page = session.page
    junk = tmp_path / "notes.fits"
    junk.write_bytes(b"these are my observing notes, not a FITS file\n" * 20)
    page.goto(site.url + "/similar")
    page.set_input_files("#upload-input", str(junk))
    page.wait_for_selector("#message:not([hidden])")
    files = {"IMAGE": (junk.name, junk.read_bytes())}
    import httpx

    words = httpx.post(
        f"{site.url}/similarity/sync", data={"RESPONSEFORMAT": "json"}, files=files
    ).json()["error"]
    assert words.startswith("the uploaded image cannot be used: ")
    assert words in page.inner_text("#message")
    assert page.locator("#grid-note").is_visible()
    assert words in page.inner_text("#grid-note")
    assert page.locator("#results .tile").count() == 0
    screenshot(page, artifacts, "upload-05-unreadable")


def test_a_failed_upload_keeps_the_ranking_shown(
    session: BrowserSession, site: Site, tmp_path: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))
    before = tile_dids(page)
    junk = tmp_path / "empty.fits"
    junk.write_bytes(b"")
    page.set_input_files("#upload-input", str(junk))
    page.wait_for_selector("#message:not([hidden])")
    wait_ranked(page)
    assert "IMAGE part is empty" in page.inner_text("#message")
    assert tile_dids(page) == before
    assert page.inner_text("#original-title") != junk.name
    assert url_selection(page.url) == [start]


def test_a_file_over_the_limit_is_refused_before_it_is_sent(
    session: BrowserSession, site: Site, continuum_file: Path
) -> None:
    page = session.page

    def small_limit(route: Route) -> None:
        body = route.fetch().text()
        body = body.replace('"upload_limit_bytes": 50000000', '"upload_limit_bytes": 1000')
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)

    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.route("**/similar", small_limit)
    try:
        page.goto(site.url + "/similar")
        page.set_input_files("#upload-input", str(continuum_file))
        page.wait_for_selector("#message:not([hidden])")
        size = f"{continuum_file.stat().st_size / 1e3:.0f} kB"
        said = page.inner_text("#message")
        assert f"has {size}; this service accepts files of at most 1 kB." in said
        assert posted == []
    finally:
        page.unroute("**/similar", small_limit)
