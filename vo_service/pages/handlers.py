"""The HTML pages: the home page and the interactive similarity page (DESIGN.md, point 4).

Handlers only: they read the query, ask `vo_service.pages.browse` for the images
and render a template of ``templates/pages``. The ranking itself is not
computed here; ``static/similar.js`` asks the similarity service
(``/similarity/sync``, JSON) for it in the browser, so that every click
re-ranks without reloading the page, as in the paper's interface.

What a page shows of an image it is asked for follows the archive's rule
for proprietary data: an identifier that is unknown, still proprietary or
without a vector is "not found", in the same words, so that the page does
not reveal that a proprietary image exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from tap_schema import Catalogue
from vo_service.templating import templates
from vo_service.urls import ServiceUrls

from .browse import ImageCard, find_by_target, public_images, sample_images

__all__ = ["SIMILAR_PAGE", "home", "similar"]

SIMILAR_PAGE = "/similar"
PAGE_SCRIPT_URLS = {"service": "similarity/sync", "page_path": "similar"}
"""The URLs the page script asks, relative to the page (``<base>/similar``): right under
any prefix, and on the origin the browser loaded the page from (a fetch to another
origin would need CORS)."""
RESULTS_PER_RANKING = 1000
"""MAXREC of the page's requests: the paper's 1000 most similar images."""
SAMPLES_PER_KIND = 6
TARGET_SEARCH_LIMIT = 200


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
    samples = {
        kind: [_card_view(card, urls) for card in cards]
        for kind, cards in sample_images(catalogue, per_kind=SAMPLES_PER_KIND).items()
    }
    found = None
    if target:
        found = [
            _card_view(card, urls)
            for card in find_by_target(catalogue, target, TARGET_SEARCH_LIMIT)
        ]
    example = next((cards[0] for cards in samples.values() if cards), None)
    return templates.TemplateResponse(
        request,
        "pages/home.html",
        {
            "target": target,
            "found": found,
            "limit": TARGET_SEARCH_LIMIT,
            "samples": samples,
            "example_datalink": example,
        },
    )


def similar(request: Request) -> Response:
    """``GET /similar?ID=…[&ID=…]``: the similarity page of a selection of images.

    The first identifier is the original image; the others are images the
    user selected (the page writes them into its URL, so a shared URL opens
    the same selection).
    """
    dids = list(dict.fromkeys(_parameter_values(request, "ID")))
    if not dids:
        return _problem(
            request,
            400,
            PageProblem(
                "Which image?",
                "The similarity page needs the identifier of an image, as in "
                "similar?ID=ivo://…; start from an image on the home page.",
            ),
        )
    cards = public_images(_catalogue(request), dids)
    missing = tuple(did for did in dids if did not in cards)
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
                _page_url(ServiceUrls.from_request(request), found) if found else None,
            ),
        )
    urls = ServiceUrls.from_request(request)
    selection = [_card_view(cards[did], urls) for did in dids]
    config = {
        "selection": selection,
        "image_kind": selection[0]["image_kind"],
        "maxrec": RESULTS_PER_RANKING,
        **PAGE_SCRIPT_URLS,
    }
    return templates.TemplateResponse(
        request,
        "pages/similar.html",
        {
            "original": selection[0],
            "cards": selection,
            "config": config,
            "share_url": _page_url(urls, dids),
            "error": None,
        },
    )


def _problem(request: Request, status_code: int, problem: PageProblem) -> Response:
    return templates.TemplateResponse(
        request,
        "pages/similar.html",
        {"error": problem, "original": None},
        status_code=status_code,
    )


def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


def _parameter_values(request: Request, name: str) -> list[str]:
    """All values of a parameter whose name matches ``name`` in any case (as DALI asks)."""
    return [value for key, value in request.query_params.multi_items() if key.upper() == name]


def _page_url(urls: ServiceUrls, dids: list[str]) -> str:
    return urls.similar_page + "?" + urlencode([("ID", did) for did in dids])


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
