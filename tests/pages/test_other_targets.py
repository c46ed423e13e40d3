"""Other targets only: the page leaves out repeated observations of the selected fields.

The toggle is on by default (``MIN_SEPARATION`` of the page's default radius
in every request), the page says how many observations it hid, "show them"
or the toggle brings them back, and the choice is kept in the page's URL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.sky import cutout_centres
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
    wait_ranked,
)


@pytest.fixture(scope="module")
def start(field_start: str) -> str:
    """A continuum image whose ranking hides repeated observations of its field."""
    return field_start


def service_queries(session: BrowserSession) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(urlsplit(url).query))
        for url, _ in session.requests
        if "/similarity/sync?" in url
    ]


def test_repeated_observations_are_hidden_by_default_and_counted(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    answer = ranking(site.url, [start])
    assert service_queries(session)[-1]["MIN_SEPARATION"] == f"{DEFAULT_MIN_SEPARATION_ARCSEC:g}"
    assert page.is_checked("#other-targets")
    assert_grid_matches(session.tiles(), result_count(page), answer)
    hidden = answer["hidden_nearby"]
    noun = "observation" if hidden == 1 else "observations"
    assert page.inner_text("#hidden-text") == f"{hidden} {noun} of the selected positions hidden"
    assert page.locator("#hidden-count").is_visible()
    everything = ranking(site.url, [start], min_separation=0)
    centres = cutout_centres(site.server.catalogue)
    near = [
        row["obs_publisher_did"]
        for row in everything["results"]
        if centres[row["obs_publisher_did"]].separation(centres[start]).arcsec
        < DEFAULT_MIN_SEPARATION_ARCSEC
    ]
    assert len(near) == hidden
    assert not set(near) & {row["obs_publisher_did"] for row in answer["results"]}
    screenshot(page, artifacts, "other-targets-01-on")


def test_the_toggle_and_show_them_bring_them_back(
    session: BrowserSession, site: Site, start: str, artifacts: Path
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    page.uncheck("#other-targets")
    wait_ranked(page)
    everything = ranking(site.url, [start], min_separation=0)
    assert_grid_matches(session.tiles(), result_count(page), everything)
    assert dict(parse_qsl(urlsplit(page.url).query))["MIN_SEPARATION"] == "0"
    assert page.locator("#hidden-count").is_hidden()
    screenshot(page, artifacts, "other-targets-02-off")

    reopened = session.context.new_page()
    try:
        open_page(reopened, page.url)
        assert not reopened.is_checked("#other-targets")
        assert service_queries(session)[-1].get("MIN_SEPARATION") is None
    finally:
        reopened.close()

    page.check("#other-targets")
    wait_ranked(page)
    assert "MIN_SEPARATION" not in dict(parse_qsl(urlsplit(page.url).query))
    assert_grid_matches(session.tiles(), result_count(page), ranking(site.url, [start]))
    page.click("#show-hidden")
    wait_ranked(page)
    assert not page.is_checked("#other-targets")
    assert_grid_matches(session.tiles(), result_count(page), everything)


def test_every_selected_image_hides_its_own_field(
    session: BrowserSession, site: Site, start: str
) -> None:
    page = session.page
    open_page(page, page_url(site.url, [start]))
    chosen = pick_tile(page, 2)
    answer = ranking(site.url, [start, chosen])
    assert_grid_matches(session.tiles(), result_count(page), answer)
    centres = cutout_centres(site.server.catalogue)
    for row in answer["results"]:
        position = centres[row["obs_publisher_did"]]
        for did in (start, chosen):
            assert position.separation(centres[did]).arcsec >= DEFAULT_MIN_SEPARATION_ARCSEC


def test_a_custom_radius_in_the_url_is_kept(session: BrowserSession, site: Site, start: str):
    page = session.page
    open_page(page, page_url(site.url, [start], extra="&MIN_SEPARATION=5"))
    assert page.is_checked("#other-targets")
    assert page.inner_text("#separation-value") == "5″"
    assert service_queries(session)[-1]["MIN_SEPARATION"] == "5"
    assert_grid_matches(
        session.tiles(), result_count(page), ranking(site.url, [start], min_separation=5)
    )
    response = page.goto(page_url(site.url, [start], extra="&MIN_SEPARATION=-3"))
    assert response is not None and response.status == 400
    assert page.locator("#message").is_visible()
