"""Ingest's side of the catalogue: what is already there, and writing a batch of products.

The only ingest module that talks to the database. Each product has exactly
one row in each of ``ivoa.obscore``, ``similarity.image`` and
``vosim.product``, keyed by ``obs_publisher_did``; they are written in one
transaction per batch, after the batch's cut-outs are safely on disk (see
`cutout_store`).

On SQLite the three tables are three files, which a crash can leave
committed in part (see `tap_schema.database`): ``vosim.product`` commits
last, so it never names a product whose other rows are missing, but the
other two can hold rows of a batch whose product rows never committed.
`ProductCatalogue.remove_uncommitted` deletes those before the next ingest
writes them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Table, func, select
from sqlalchemy.sql import Select

from tap_schema import Catalogue
from tap_schema.release import utc_now

from .prepare import PreparedProduct

__all__ = ["WRITTEN_SCHEMAS", "KnownProduct", "ProductCatalogue"]

OBSCORE = "ivoa.obscore"
SIMILARITY_IMAGE = "similarity.image"
PRODUCT = "vosim.product"
EMBEDDING = "similarity.embedding"
NEIGHBOUR = "similarity.neighbour"
DEPENDENT = (NEIGHBOUR, EMBEDDING)
"""Tables with rows per image, deleted with an image that a crash left half-written."""
WRITTEN_SCHEMAS = ("ivoa", "similarity", "vosim")
"""The schema files a batch's commit writes (their write locks are taken first)."""


@dataclass(frozen=True)
class KnownProduct:
    """What the catalogue remembers of an ingested file (its ``vosim.product`` row)."""

    obs_publisher_did: str
    product_key: str
    file_path: str
    file_size: int
    file_mtime: float
    cutout_index: int
    metadata_digest: str | None


class ProductCatalogue:
    """Reads and writes the three per-product tables of a catalogue.

    Parameters
    ----------
    catalogue
        The open catalogue.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.obscore = catalogue.table(OBSCORE)
        self.image = catalogue.table(SIMILARITY_IMAGE)
        self.product = catalogue.table(PRODUCT)
        self._string_lengths = {
            table.name: {
                column.name: column.type.length
                for column in table.columns
                if isinstance(column.type, String) and column.type.length
            }
            for table in (self.obscore, self.image, self.product)
        }

    def known_products(self) -> list[KnownProduct]:
        """Every ingested product, as recorded in ``vosim.product``."""
        columns = [self.product.c[name] for name in KnownProduct.__dataclass_fields__]
        with self.catalogue.begin() as conn:
            return [KnownProduct(*row) for row in conn.execute(select(*columns))]

    def remove_uncommitted(self) -> dict[str, int]:
        """Delete the rows of images that ``vosim.product`` does not record.

        Such rows are what a crash inside a commit leaves on SQLite: the
        batch reached ``ivoa.obscore`` (and perhaps ``similarity.image``) but
        not ``vosim.product``. Without this, the next ingest of those files
        would fail on the unique DID. Rows of other stages that hang on such
        an image (its vector, its neighbour list) go with it.

        Returns
        -------
        dict of str to int
            Rows deleted per table, only tables where some were.
        """
        deleted = {}
        with self.catalogue.begin() as conn:
            for name in (*DEPENDENT, SIMILARITY_IMAGE, OBSCORE):
                table = self.catalogue.table(name)
                result = conn.execute(
                    table.delete().where(table.c.obs_publisher_did.in_(self._unrecorded(table)))
                )
                if result.rowcount:
                    deleted[name] = result.rowcount
        return deleted

    def _unrecorded(self, table: Table) -> Select:
        """Select the DIDs in ``table`` that have no ``vosim.product`` row."""
        recorded = select(self.product.c.obs_publisher_did)
        return select(table.c.obs_publisher_did).where(table.c.obs_publisher_did.not_in(recorded))

    def referenced_cutout_rows(self) -> int:
        """One past the highest cut-out row a committed product references (0 if none)."""
        with self.catalogue.begin() as conn:
            highest = conn.execute(select(func.max(self.product.c.cutout_index))).scalar()
        return 0 if highest is None else int(highest) + 1

    def problems(self, prepared: PreparedProduct) -> list[str]:
        """Values the database would refuse (strings longer than their column), as sentences."""
        found = []
        for table, row in (
            (self.obscore, prepared.obscore),
            (self.image, prepared.image),
            (self.product, self._product_row(prepared, 0)),
        ):
            for name, length in self._string_lengths[table.name].items():
                value = row.get(name)
                if isinstance(value, str) and len(value) > length:
                    found.append(
                        f"{name} is {len(value)} characters long, more than the {length} of"
                        f" {table.fullname}.{name}; shorten it (file name, header or metadata)"
                    )
        return found

    def write(
        self,
        conn: Connection,
        new: Iterable[tuple[PreparedProduct, int]],
        updated: Iterable[tuple[PreparedProduct, KnownProduct]],
    ) -> None:
        """Insert new products and update re-ingested ones, in the caller's transaction.

        Parameters
        ----------
        conn
            A connection inside a transaction.
        new
            Products with the cut-out row they were appended to.
        updated
            Products already in the catalogue, with what the catalogue knew of
            them; their rows are replaced by the new values and they keep their
            cut-out row.
        """
        new = list(new)
        if new:
            conn.execute(self.obscore.insert(), [p.obscore for p, _ in new])
            conn.execute(self.image.insert(), [p.image for p, _ in new])
            conn.execute(self.product.insert(), [self._product_row(p, i) for p, i in new])
        for prepared, known in updated:
            did = prepared.obscore["obs_publisher_did"]
            if did != known.obs_publisher_did:
                self.rename(conn, known.obs_publisher_did, did)
            for table, row in (
                (self.obscore, prepared.obscore),
                (self.image, prepared.image),
                (self.product, self._product_row(prepared, known.cutout_index)),
            ):
                where = table.c.obs_publisher_did == did
                conn.execute(table.update().where(where).values(row))

    def rename(self, conn: Connection, old_did: str, new_did: str) -> None:
        """Give a product a new DID: its rows, vectors and neighbour rows (both ways) follow.

        The vectors and rankings reference ``similarity.image``, so its row
        under the new DID is written first and the old one deleted last.
        """
        conn.execute(
            self.obscore.update()
            .where(self.obscore.c.obs_publisher_did == old_did)
            .values(obs_publisher_did=new_did)
        )
        image_row = conn.execute(
            select(self.image).where(self.image.c.obs_publisher_did == old_did)
        ).mappings()
        conn.execute(
            self.image.insert(), [{**row, "obs_publisher_did": new_did} for row in image_row]
        )
        embedding = self.catalogue.table(EMBEDDING)
        neighbour = self.catalogue.table(NEIGHBOUR)
        for column in (
            embedding.c.obs_publisher_did,
            neighbour.c.obs_publisher_did,
            neighbour.c.neighbour_did,
        ):
            conn.execute(
                column.table.update().where(column == old_did).values({column.name: new_did})
            )
        conn.execute(self.image.delete().where(self.image.c.obs_publisher_did == old_did))
        conn.execute(
            self.product.update()
            .where(self.product.c.obs_publisher_did == old_did)
            .values(obs_publisher_did=new_did)
        )

    def set_release_date(self, conn: Connection, did: str, release: datetime | None) -> None:
        """Give a product a new release date in the caller's transaction (nothing else changes)."""
        conn.execute(
            self.obscore.update()
            .where(self.obscore.c.obs_publisher_did == did)
            .values(obs_release_date=release)
        )

    def counts(self) -> dict[str, int]:
        """Rows in each of the three tables (they are equal after every ingest)."""
        with self.catalogue.begin() as conn:
            return {
                table.fullname: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (self.obscore, self.image, self.product)
            }

    @staticmethod
    def _product_row(prepared: PreparedProduct, cutout_index: int) -> dict[str, Any]:
        task = prepared.task
        return {
            "obs_publisher_did": prepared.obscore["obs_publisher_did"],
            "product_key": task.key,
            "file_path": task.stored_path or str(task.path),
            "file_size": task.file_size,
            "file_mtime": task.file_mtime,
            "cutout_index": cutout_index,
            "cutout_x": prepared.cutout_x,
            "cutout_y": prepared.cutout_y,
            "ingested_at": utc_now(),
            "metadata_digest": task.metadata_digest,
        }
