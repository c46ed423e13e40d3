"""``vosim.harvest_record``: what each harvest did with each product the archive lists.

The row of a harvested product is written in the transaction of the
product's catalogue rows (`model_training.ingest.stage.write_batch`'s
``also``), and ``vosim.harvest_record`` lies in the same SQLite file as
``vosim.product``, so the two commit together or not at all: a killed
harvest resumes with every product exactly once. Rows of held-back and
failed products are written on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from tap_schema import Catalogue
from tap_schema.release import utc_now

__all__ = ["FAILED", "HARVESTED", "HELD", "HarvestRecord", "HarvestRecords"]

HARVESTED = "harvested"
HELD = "held"
FAILED = "failed"

_REASON_LENGTH = 1024
_URL_LENGTH = 1024


@dataclass(frozen=True)
class HarvestRecord:
    """One row of ``vosim.harvest_record``."""

    obs_publisher_did: str
    archive_url: str
    record_digest: str
    state: str
    attempts: int
    reason: str | None = None
    release_date: datetime | None = None
    file_url: str | None = None


class HarvestRecords:
    """Reads and writes ``vosim.harvest_record``.

    Parameters
    ----------
    catalogue
        The open catalogue.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.table = catalogue.table("vosim.harvest_record")

    def load(self) -> dict[str, HarvestRecord]:
        """Every recorded product, by DID."""
        columns = [self.table.c[name] for name in HarvestRecord.__dataclass_fields__]
        with self.catalogue.begin() as conn:
            return {row[0]: HarvestRecord(*row) for row in conn.execute(select(*columns))}

    def put(self, conn: Connection, record: HarvestRecord) -> None:
        """Insert or replace a product's row in the caller's transaction."""
        row = {**record.__dict__, "updated_at": utc_now()}
        if row["reason"] is not None:
            row["reason"] = row["reason"][:_REASON_LENGTH]
        if row["file_url"] is not None and len(row["file_url"]) > _URL_LENGTH:
            row["file_url"] = None  # a cut URL names no file: such a rename is not recognised
        where = self.table.c.obs_publisher_did == record.obs_publisher_did
        conn.execute(self.table.delete().where(where))
        conn.execute(self.table.insert().values(row))

    def delete(self, conn: Connection, did: str) -> None:
        """Delete a product's row in the caller's transaction (its DID is gone: renamed)."""
        conn.execute(self.table.delete().where(self.table.c.obs_publisher_did == did))

    def put_alone(self, record: HarvestRecord) -> None:
        """Write a row in a transaction of its own (held-back and failed products)."""
        with self.catalogue.begin() as conn:
            self.put(conn, record)
