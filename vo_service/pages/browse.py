"""Where a browsing astronomer starts: sample images of each kind and a search by target.

The service layer of the home page (the handlers are in `vo_service.pages.handlers`):
it answers in `ImageCard` objects and is the only page code that talks to the
catalogue. Only images a user may be shown are returned: released (an
``obs_release_date`` in the past; NULL means unknown, hence proprietary) and
with a vector of the current model of their kind, since the similarity page
can do nothing with an image that has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from tap_schema import Catalogue
from tap_schema.release import released, utc_now

__all__ = [
    "IMAGE_KINDS",
    "ImageCard",
    "find_by_target",
    "public_images",
    "sample_images",
    "target_names",
]

IMAGE_KINDS = ("continuum", "peak_flux")
"""The two image spaces of the paper, in the order the home page shows them."""

_SAMPLE_CANDIDATES = 400
"""Brightest images read per kind when choosing a sample of distinct targets."""


@dataclass(frozen=True)
class ImageCard:
    """What a page shows of one public image; its URLs come from `vo_service.urls`."""

    obs_publisher_did: str
    target_name: str | None
    band_list: str | None
    scientific_category: str | None
    image_kind: str
    product_key: str | None


def sample_images(catalogue: Catalogue, per_kind: int = 6) -> dict[str, list[ImageCard]]:
    """Choose a few bright public images of each kind, one per target, to start browsing from.

    The brightest (highest peak S/N) make the clearest first impression; one
    image per target keeps the sample from showing the same source several
    times. The choice is deterministic, so the home page does not change on
    every visit.

    Parameters
    ----------
    catalogue
        The open catalogue.
    per_kind
        Images per kind.

    Returns
    -------
    dict
        ``image_kind`` to its sample, brightest first (kinds with no public
        image map to an empty list).
    """
    image = catalogue.table("similarity.image")
    samples: dict[str, list[ImageCard]] = {}
    with catalogue.begin() as conn:
        for kind in IMAGE_KINDS:
            query = (
                _public_cards(catalogue)
                .where(image.c.image_kind == kind)
                .order_by(image.c.peak_snr.desc().nulls_last(), image.c.obs_publisher_did)
                .limit(_SAMPLE_CANDIDATES)
            )
            cards, targets = [], set()
            for row in conn.execute(query).mappings():
                if row["target_name"] in targets:
                    continue
                targets.add(row["target_name"])
                cards.append(ImageCard(**row))
                if len(cards) == per_kind:
                    break
            samples[kind] = cards
    return samples


def find_by_target(catalogue: Catalogue, target: str, limit: int = 200) -> list[ImageCard]:
    """Public images whose target name contains ``target``, ignoring case.

    Parameters
    ----------
    catalogue
        The open catalogue.
    target
        Part of a target name, as typed (``%`` and ``_`` are literal).
    limit
        Most images returned.

    Returns
    -------
    list of ImageCard
        Ordered by target name, then kind, then identifier.
    """
    obscore = catalogue.table("ivoa.obscore")
    image = catalogue.table("similarity.image")
    query = (
        _public_cards(catalogue)
        .where(sa.func.lower(obscore.c.target_name).contains(target.lower(), autoescape=True))
        .order_by(obscore.c.target_name, image.c.image_kind, obscore.c.obs_publisher_did)
        .limit(limit)
    )
    with catalogue.begin() as conn:
        return [ImageCard(**row) for row in conn.execute(query).mappings()]


def target_names(catalogue: Catalogue, limit: int = 500) -> list[str]:
    """Distinct target names of the public images with a vector, for the search box to suggest.

    Only names a search finds are suggested: a suggestion that leads to "no
    public images" (or that names a proprietary target) would be worse than
    none. The most observed targets come first, then by name; at most
    ``limit``.
    """
    cards = _public_cards(catalogue).subquery()
    query = (
        sa.select(cards.c.target_name)
        .where(cards.c.target_name.is_not(None))
        .group_by(cards.c.target_name)
        .order_by(sa.func.count().desc(), cards.c.target_name)
        .limit(limit)
    )
    with catalogue.begin() as conn:
        return [name for (name,) in conn.execute(query)]


def public_images(catalogue: Catalogue, dids: list[str]) -> dict[str, ImageCard]:
    """Return the cards of those of ``dids`` that are public and have a vector.

    An identifier missing from the answer is unknown, proprietary or without
    a vector; callers say "not found" for all three, so that the page does
    not tell anyone that a proprietary image exists.
    """
    obscore = catalogue.table("ivoa.obscore")
    query = _public_cards(catalogue).where(obscore.c.obs_publisher_did.in_(dids))
    with catalogue.begin() as conn:
        cards = [ImageCard(**row) for row in conn.execute(query).mappings()]
    return {card.obs_publisher_did: card for card in cards}


def _public_cards(catalogue: Catalogue) -> sa.Select:
    """Cards of the released images that have a vector of the current model of their kind."""
    obscore = catalogue.table("ivoa.obscore")
    image = catalogue.table("similarity.image")
    product = catalogue.table("vosim.product")
    embedding = catalogue.table("similarity.embedding")
    model = catalogue.table("similarity.model")
    has_vector = sa.exists().where(
        embedding.c.obs_publisher_did == image.c.obs_publisher_did,
        embedding.c.model_id == model.c.model_id,
        model.c.image_kind == image.c.image_kind,
        model.c.is_current == 1,
    )
    return (
        sa.select(
            obscore.c.obs_publisher_did,
            obscore.c.target_name,
            obscore.c.band_list,
            obscore.c.scientific_category,
            image.c.image_kind,
            product.c.product_key,
        )
        .join(image, image.c.obs_publisher_did == obscore.c.obs_publisher_did)
        .outerjoin(product, product.c.obs_publisher_did == obscore.c.obs_publisher_did)
        .where(released(obscore.c.obs_release_date, utc_now()))
        .where(has_vector)
    )
