"""The archive's products as the HTTP endpoints see them: public or not, and where they lie.

DataLink, the preview and file endpoints and the similarity service all
start from a publisher DID or a product key and must answer the same two
questions: does the product exist, and may it be served now? The proprietary
rule: nothing of an image whose release date is in the future, or unknown, is
served through any endpoint (its ObsCore row itself is public, as in every
archive). `Product.is_public` applies the rule of `tap_schema.release`;
this module makes the only queries these endpoints make to ``ivoa.obscore``
and ``vosim.product``.

Release dates are compared with the current instant at each request, never
cached: an image becomes public while the server runs.

An identifier that is unknown and one that is not public yet get the same
answer on every endpoint, status and words (`not_found_message`): an
endpoint that told them apart would say which unknown-looking identifiers
the archive holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from tap_schema import Catalogue
from tap_schema.release import is_released

__all__ = ["Product", "ProductArchive", "has_content", "not_found_message"]


def has_content(path: Path) -> bool:
    """Whether a stored file (preview, FITS file) is there and not empty (as a full disk leaves)."""
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def not_found_message(name: str) -> str:
    """Return the one answer for ``name`` (a DID, a product file) unknown or not public yet."""
    return (
        f"{name} is not a public product of this archive: it is unknown here, or not "
        "public before its release date"
    )


_LOOKUP_BATCH = 1000
"""Identifiers per ``IN (…)`` list (a page of results): far below the backends' parameter limits."""


@dataclass(frozen=True)
class Product:
    """One ObsCore product, with its file if vosim ingested it.

    Parameters
    ----------
    obs_publisher_did
        IVOA dataset identifier.
    obs_release_date
        When it becomes public (naive UTC); None when unknown, which keeps it private.
    product_key
        URL-safe key of its preview and file (None without a ``vosim.product`` row).
    file_path, file_size
        The FITS file and its size at ingest; for a product harvested without
        keeping its file, the archive's URL of the file (`remote_file`).
    image_kind, target_name, s_ra, s_dec, band_list, scientific_category
        ObsCore values the similarity results show.
    """

    obs_publisher_did: str
    obs_release_date: datetime | None
    product_key: str | None
    file_path: str | None
    file_size: int | None
    image_kind: str | None
    target_name: str | None
    s_ra: float | None
    s_dec: float | None
    band_list: str | None
    scientific_category: str | None

    @property
    def remote_file(self) -> str | None:
        """The archive's URL of the file, when vosim harvested it without keeping a copy."""
        path = self.file_path or ""
        return path if path.startswith(("http://", "https://")) else None

    def is_public(self, now: datetime) -> bool:
        """Whether anything of the product may be served at ``now`` (naive UTC)."""
        return is_released(self.obs_release_date, now)


class ProductArchive:
    """Reads products from the catalogue by DID or by product key.

    Parameters
    ----------
    catalogue
        The open catalogue.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        obscore = catalogue.table("ivoa.obscore")
        product = catalogue.table("vosim.product")
        self._select = sa.select(
            obscore.c.obs_publisher_did,
            obscore.c.obs_release_date,
            product.c.product_key,
            product.c.file_path,
            product.c.file_size,
            obscore.c.image_kind,
            obscore.c.target_name,
            obscore.c.s_ra,
            obscore.c.s_dec,
            obscore.c.band_list,
            obscore.c.scientific_category,
        ).select_from(
            obscore.outerjoin(product, product.c.obs_publisher_did == obscore.c.obs_publisher_did)
        )
        self._did = obscore.c.obs_publisher_did
        self._key = product.c.product_key

    def find(self, dids: Iterable[str]) -> dict[str, Product]:
        """Return the products among ``dids`` that exist, by DID (public or not)."""
        wanted = list(dict.fromkeys(dids))
        found: dict[str, Product] = {}
        with self.catalogue.engine.connect() as connection:
            for start in range(0, len(wanted), _LOOKUP_BATCH):
                batch = wanted[start : start + _LOOKUP_BATCH]
                rows = connection.execute(self._select.where(self._did.in_(batch))).all()
                found.update((row[0], Product(*row)) for row in rows)
        return found

    def find_by_key(self, product_key: str) -> Product | None:
        """Return the ingested product with this key, or None."""
        with self.catalogue.engine.connect() as connection:
            row = connection.execute(self._select.where(self._key == product_key)).first()
        return None if row is None else Product(*row)
