"""The HTML pages: the home page and the interactive similarity page.

Handlers only: they read the query, ask `vo_service.pages.browse` for the images
and render a template of ``templates/pages``. The ranking itself is not
computed here; ``static/similar.js`` asks the similarity service
(``/similarity/sync``, JSON) for it in the browser, so that every click
re-ranks without reloading the page, as in the paper's interface.

What a page shows of an image it is asked for follows the archive's rule
for proprietary data: an identifier that is unknown, still proprietary or
without a vector is "not found", in the same words, so that the page does
not reveal that a proprietary image exists.

The similarity page's URL is its state, so that it can be shared:
``ID`` (the original image, then the selected ones), ``NOT_ID`` (the images
marked "less like this") and ``MIN_SEPARATION`` (only when it is not the
page's default, `DEFAULT_MIN_SEPARATION_ARCSEC`). ``/similar`` without an
``ID`` is the page of a search by the user's own FITS file, which the page
script uploads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from tap_schema import Catalogue
from vo_service.similarity.errors import ParameterError
from vo_service.similarity.parameters import angle_arcsec
from vo_service.templating import templates
from vo_service.urls import ServiceUrls

from .browse import ImageCard, find_by_target, public_images, sample_images, target_names

__all__ = ["SIMILAR_PAGE", "home", "similar"]

SIMILAR_PAGE = "/similar"
PAGE_SCRIPT_URLS = {"service": "similarity/sync", "page_path": "similar", "tap_sync": "tap/sync"}
"""The URLs the page script asks, relative to the page (``<base>/similar``): right under
any prefix, and on the origin the browser loaded the page from (a fetch to another
origin would need CORS)."""
RESULTS_PER_RANKING = 1000
"""MAXREC of the page's requests: the paper's 1000 most similar images."""
SAMPLES_PER_KIND = 6
TARGET_SEARCH_LIMIT = 200
MAX_TARGET_CHARACTERS = 200
"""Longest target name searched for (ObsCore names are a few dozen characters at most)."""
TARGET_SUGGESTIONS = 500
"""Target names the home page's search box suggests (of public images with a vector)."""

MAX_URL_LENGTH = 8000
"""Longest ranking URL the page sends by GET; a longer one (a selection of some seventy
images or more) goes as a POSTed form: uvicorn (h11) refuses request lines over 16 KiB,
and proxies often allow 8 KiB."""

DEFAULT_MIN_SEPARATION_ARCSEC = 30.0
"""The page's "other targets only" radius: ``MIN_SEPARATION`` unless the user turns it off.

Two observations whose cut-out centres lie closer than this are taken to be
of the same field. 30 arcsec is the half-power radius of ALMA's 12-m primary
beam in band 3 (FWHM 1.13 λ/D: 58 arcsec at 100 GHz; 19 at 300 GHz in band
7, 9 at 650 GHz in band 9): a repeated observation of a target, in any band
from 3 up, has its phase centre on the target, and the cut-out, centred on
the brightest pixel or on the phase centre, stays within that field. In the
demo archive (300 sources, 4 observations each, `vosim demo`) the cut-out
centres of 99.0 % of the 1,826 pairs of observations of one source are
closer than 30 arcsec (median 0.3, 99th percentile 30, largest 72), while
the nearest other source is 1,366 arcsec away. Stein et al. (2021) leave out
neighbours within 5 pixels (1.3 arcsec) of the Legacy Survey, about one
seeing disc: there every object is seen at one resolution, whereas ALMA
observes a source at resolutions from 0.01 to 4 arcsec, and its brightest
pixel moves within the source between observations. In crowded fields
(Orion's proplyds, a protocluster) distinct targets can be closer: the
page's toggle turns the limit off.
"""


@dataclass(frozen=True)
class PageProblem:
    """Why the similarity page cannot be shown, in words for the user."""

    title: str
    message: str
    missing: tuple[str, ...] = ()
    rest_url: str | None = None


def home(request: Request) -> Response:
    """``GET /``: what this is, images to start from, a search by target name."""
    catalogue = _catalogue(request)
    urls = ServiceUrls.from_request(request)
    target = (request.query_params.get("target") or "").strip() or None
    too_long = target is not None and len(target) > MAX_TARGET_CHARACTERS
    if too_long:
        target = target[:MAX_TARGET_CHARACTERS] + "…"
    samples = {
        kind: [_card_view(card, urls) for card in cards]
        for kind, cards in sample_images(catalogue, per_kind=SAMPLES_PER_KIND).items()
    }
    found = None
    if target and not too_long:
        found = [
            _card_view(card, urls)
            for card in find_by_target(catalogue, target, TARGET_SEARCH_LIMIT)
        ]
    example = next((cards[0] for cards in samples.values() if cards), None)
    examples = list(
        dict.fromkeys(
            card["target_name"]
            for cards in samples.values()
            for card in cards
            if card["target_name"]
        )
    )[:3]
    return templates.TemplateResponse(
        request,
        "pages/home.html",
        {
            "target": target,
            "target_too_long": MAX_TARGET_CHARACTERS if too_long else None,
            "found": found,
            "limit": TARGET_SEARCH_LIMIT,
            "samples": samples,
            "example_datalink": example,
            "target_examples": examples,
            "target_names": target_names(catalogue, TARGET_SUGGESTIONS),
        },
        status_code=400 if too_long else 200,
    )


def similar(request: Request) -> Response:
    """``GET /similar?ID=…[&ID=…][&NOT_ID=…][&MIN_SEPARATION=…]``: the similarity page.

    The first identifier is the original image; the others are images the
    user selected, ``NOT_ID`` those marked "less like this" (the page writes
    them all into its URL, so a shared URL opens the same selection).
    Without ``ID`` it is the page of a search by an uploaded FITS file.
    """
    dids = list(dict.fromkeys(_parameter_values(request, "ID")))
    excluded = [d for d in dict.fromkeys(_parameter_values(request, "NOT_ID")) if d not in dids]
    separation = _min_separation(request)
    if separation is None:
        return _problem(
            request,
            400,
            PageProblem(
                "Which separation?",
                "MIN_SEPARATION must be an angle in arcsec, 0 or more (0 shows repeated "
                "observations of the selected fields too).",
            ),
        )
    cards = public_images(_catalogue(request), [*dids, *excluded])
    missing = tuple(did for did in (*dids, *excluded) if did not in cards)
    urls = ServiceUrls.from_request(request)
    if missing:
        found = [did for did in dids if did in cards]
        return _problem(
            request,
            404,
            PageProblem(
                "Image not found",
                "No public image with a similarity vector has "
                + ("this identifier:" if len(missing) == 1 else "these identifiers:"),
                missing,
                _page_url(urls, found, [d for d in excluded if d in cards], separation)
                if found
                else None,
            ),
        )
    selection = [_card_view(cards[did], urls) for did in dids]
    avoided = [_card_view(cards[did], urls) for did in excluded]
    config = {
        "selection": selection,
        "excluded": avoided,
        "image_kind": selection[0]["image_kind"] if selection else None,
        "maxrec": RESULTS_PER_RANKING,
        "export_maxrec": request.app.state.similarity.limits.hard_maxrec,
        "upload_limit_bytes": request.app.state.similarity.limits.upload_limit_bytes,
        "default_min_separation": DEFAULT_MIN_SEPARATION_ARCSEC,
        "min_separation": separation,
        "max_url_length": MAX_URL_LENGTH,
        **PAGE_SCRIPT_URLS,
    }
    return templates.TemplateResponse(
        request,
        "pages/similar.html",
        {
            "original": selection[0] if selection else None,
            "upload": not selection,
            "cards": selection,
            "excluded": avoided,
            "config": config,
            "min_separation": separation,
            "default_min_separation": DEFAULT_MIN_SEPARATION_ARCSEC,
            "share_url": _page_url(urls, dids, excluded, separation) if selection else None,
            "error": None,
        },
    )


def _problem(request: Request, status_code: int, problem: PageProblem) -> Response:
    return templates.TemplateResponse(
        request,
        "pages/similar.html",
        {"error": problem, "original": None, "upload": False},
        status_code=status_code,
    )


def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


def _parameter_values(request: Request, name: str) -> list[str]:
    """All values of a parameter whose name matches ``name`` in any case (as DALI asks)."""
    return [value for key, value in request.query_params.multi_items() if key.upper() == name]


def _min_separation(request: Request) -> float | None:
    """Read the page's MIN_SEPARATION: the default when not given, None when malformed."""
    values = _parameter_values(request, "MIN_SEPARATION")
    if not values:
        return DEFAULT_MIN_SEPARATION_ARCSEC
    try:
        return angle_arcsec("MIN_SEPARATION", values[-1])
    except ParameterError:
        return None


def _page_url(
    urls: ServiceUrls,
    dids: list[str],
    excluded: list[str] = (),
    separation: float = DEFAULT_MIN_SEPARATION_ARCSEC,
) -> str:
    """Return the URL of the page of a selection (the default separation is left out)."""
    query = [("ID", did) for did in dids] + [("NOT_ID", did) for did in excluded]
    if separation != DEFAULT_MIN_SEPARATION_ARCSEC:
        query.append(("MIN_SEPARATION", f"{separation:g}"))
    return urls.similar_page + "?" + urlencode(query)


def _card_view(card: ImageCard, urls: ServiceUrls) -> dict[str, Any]:
    """Describe an image for a template and the page script, as the similarity JSON does."""
    key, did = card.product_key, card.obs_publisher_did
    return {
        "obs_publisher_did": did,
        "target_name": card.target_name,
        "band_list": card.band_list,
        "scientific_category": card.scientific_category,
        "image_kind": card.image_kind,
        "preview_url": urls.preview(key) if key else None,
        "datalink_url": urls.datalink(did),
        "file_url": urls.file(key) if key else None,
        "page_url": urls.page(did),
    }
