"""Which of vosim's images may appear in an archive's tables: public, and described alike.

The proprietary rule: nothing of a proprietary image (its vector, its neighbours, its
presence in anyone's list) is ever served. vosim's own TAP service hides such
rows when a query runs; an archive's TAP service knows nothing of that rule,
so in plugin mode its tables hold only the rows of public images, and the
archive's own release date says what is public.

An image is also left out when the archive classifies it differently from
vosim's catalogue (another image kind or scientific category, where the
mapping names those columns): its neighbour list was computed under the
other classification and could pair images the archive would call
incompatible. Re-ingesting with the archive's metadata and recomputing the
neighbours brings it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from tap_schema import Catalogue

from .archive_rows import ArchiveImage, ArchiveMapping

__all__ = ["Selection", "VosimImage", "read_vosim_images", "select_images"]


@dataclass(frozen=True)
class VosimImage:
    """How vosim's catalogue classifies one image that has a similarity row."""

    obs_publisher_did: str
    image_kind: str
    category: str | None


@dataclass
class Selection:
    """The images to publish, and why the others are held back."""

    published: set[str] = field(default_factory=set)
    proprietary: set[str] = field(default_factory=set)
    """In the archive, but with a release date in the future or none."""
    not_in_archive: set[str] = field(default_factory=set)
    """No row in the archive's table: nothing to join, and no release date."""
    disagreeing: dict[str, str] = field(default_factory=dict)
    """Publisher DID and what differs, for public images classified otherwise."""


def read_vosim_images(catalogue: Catalogue) -> dict[str, VosimImage]:
    """Every image with a ``similarity.image`` row, with its kind and category."""
    image, obscore = catalogue.table("similarity.image"), catalogue.table("ivoa.obscore")
    query = sa.select(
        image.c.obs_publisher_did, image.c.image_kind, obscore.c.scientific_category
    ).select_from(
        image.outerjoin(obscore, obscore.c.obs_publisher_did == image.c.obs_publisher_did)
    )
    with catalogue.begin() as conn:
        return {row[0]: VosimImage(*row) for row in conn.execute(query)}


def select_images(
    vosim: Mapping[str, VosimImage],
    archive: Mapping[str, ArchiveImage],
    mapping: ArchiveMapping,
    now: datetime,
) -> Selection:
    """Decide, image by image, whether it may be published.

    Parameters
    ----------
    vosim
        vosim's images (`read_vosim_images`).
    archive
        What the archive says of them (`read_archive_images`).
    mapping
        Which classifications the archive gives (kind, category, or neither).
    now
        The instant of publication, naive UTC.
    """
    selection = Selection()
    for did, image in vosim.items():
        described = archive.get(did)
        if described is None:
            selection.not_in_archive.add(did)
        elif not described.is_public(now):
            selection.proprietary.add(did)
        elif difference := _difference(image, described, mapping):
            selection.disagreeing[did] = difference
        else:
            selection.published.add(did)
    return selection


def _difference(image: VosimImage, described: ArchiveImage, mapping: ArchiveMapping) -> str:
    if mapping.kind is not None and described.image_kind != image.image_kind:
        return f"kind {image.image_kind!r} in vosim, {described.image_kind!r} in the archive"
    if mapping.category is not None and described.category != image.category:
        return f"category {image.category!r} in vosim, {described.category!r} in the archive"
    return ""
