"""The home page in a browser: images to start from, a search by target, the VO entry points."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import sqlalchemy as sa

from tap_schema import open_catalogue

from .conftest import BrowserSession, Site
from .helpers import screenshot, url_selection, wait_ranked


def card_dids(session: BrowserSession, scope: str) -> list[str]:
    hrefs = session.page.eval_on_selector_all(
        f"{scope} .card-link", "links => links.map(a => a.getAttribute('href'))"
    )
    return [parse_qs(urlsplit(href).query)["ID"][0] for href in hrefs]


def target_names(site: Site) -> dict[str, str]:
    catalogue = open_catalogue(site.server.settings, create=False)
    try:
        obscore = catalogue.table("ivoa.obscore")
        with catalogue.begin() as conn:
            rows = conn.execute(sa.select(obscore.c.obs_publisher_did, obscore.c.target_name))
            return dict(rows.all())
    finally:
        catalogue.dispose()


def test_home_page_offers_public_images_of_each_kind(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    response = page.goto(site.url + "/")
    assert response is not None and response.status == 200
    assert page.inner_text("h1") == "Find images that look alike"
    for kind in ("continuum", "peak_flux"):
        dids = card_dids(session, f"section[aria-labelledby='sample-{kind}']")
        assert len(dids) == 6
        assert all(site.archive.public.get(did) == kind for did in dids)
    assert page.locator("a[href$='/tap/capabilities']").count() >= 1
    example = page.get_attribute("section.vo a[href*='/datalink?ID=']", "href")
    assert example.startswith(site.url + "/datalink?ID=")
    datalink = httpx.get(example)
    assert datalink.status_code in (200, 404)  # DataLink is served by its own branch
    assert all(page.eval_on_selector_all("img", "i => i.map(x => x.alt.startsWith('Preview of'))"))
    page.wait_for_load_state("networkidle")
    screenshot(page, artifacts, "10-home", full_page=True)


def test_search_by_target_is_case_insensitive_and_public_only(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    names = target_names(site)
    # a target with public and proprietary images, typed in lower case and without its first letter
    public_targets = {names[did] for did in site.archive.public}
    hidden = sorted(site.archive.proprietary)
    target = next(names[did] for did in hidden if names[did] in public_targets)
    part = target[1:].lower()
    expected = {did for did in site.archive.public if part in names[did].lower()}
    assert expected
    page = session.page
    page.goto(site.url + "/")
    page.fill("#target", part)
    page.press("#target", "Enter")
    page.wait_for_url("**/?target=*")
    found = card_dids(session, "section.found")
    assert set(found) == expected
    assert not set(found) & site.archive.proprietary
    assert page.input_value("#target") == part
    assert page.inner_text("#found-title").startswith(f"{len(expected)} image")
    page.wait_for_load_state("networkidle")
    screenshot(page, artifacts, "11-target-search", full_page=True)

    page.goto(site.url + "/?target=no-such-target%25")
    assert "No public images" in page.inner_text("#found-title")


def test_a_sample_image_opens_its_similarity_page(session: BrowserSession, site: Site) -> None:
    page = session.page
    page.goto(site.url + "/")
    first = card_dids(session, "section[aria-labelledby='sample-peak_flux']")[0]
    page.locator("section[aria-labelledby='sample-peak_flux'] .card-link").first.click()
    page.wait_for_url("**/similar?ID=*")
    wait_ranked(page)
    assert url_selection(page.url) == [first]
    assert page.inner_text(".original .kind") == "Peak flux (moment 8)"
    assert page.locator("#results .tile").count() > 0


def test_similar_page_without_an_image_offers_to_search_by_a_file(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    page.goto(site.url + "/")
    page.get_by_role("link", name="search by your own FITS image").click()
    page.wait_for_url(site.url + "/similar")
    assert page.inner_text("h1") == "Search by your own image"
    assert page.get_by_role("button", name="Search by your own FITS image…").is_visible()
    assert "Choose or drop a FITS file" in page.inner_text("#result-count")
    assert page.locator("#grid-note").is_visible(), "the empty grid says what will be there"
    assert page.locator("#results .tile").count() == 0
    screenshot(page, artifacts, "home-02-upload-page")


def test_the_search_box_suggests_targets_that_exist(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    page = session.page
    page.goto(site.url + "/")
    placeholder = page.get_attribute("#target", "placeholder")
    suggested = page.eval_on_selector_all("#target-names option", "o => o.map(x => x.value)")
    names = target_names(site)
    public_names = {names[did] for did in site.archive.public}
    hidden_names = {names[did] for did in site.archive.proprietary} - public_names
    assert suggested and set(suggested) <= public_names
    assert not set(suggested) & hidden_names
    examples = placeholder.removeprefix("e.g. ").split(", ")
    assert examples and set(examples) <= public_names
    for name in [*examples, suggested[-1]]:
        page.goto(site.url + "/?" + urlencode({"target": name}))
        assert page.locator("section.found .card").count() >= 1, name
    page.goto(site.url + "/")
    page.fill("#target", suggested[0][:4])
    screenshot(page, artifacts, "home-03-suggestions")


def test_the_home_page_works_offline(session: BrowserSession) -> None:
    outside = [url for url, _ in session.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert session.requests and outside == []
