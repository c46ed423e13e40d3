"""What the archive itself says of each image: release date, scientific category, image kind.

In plugin mode the archive's own ObsCore table stays the archive's, and it
is the authority on when an image becomes public and how it is classified;
where it keeps these is the mapping file of `model_training.archive_mapping`.
The names are looked up in the database, never pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from model_training.archive_mapping import ArchiveMapping, ArchiveMappingError
from tap_schema.release import is_released, naive_utc

__all__ = [
    "ArchiveImage",
    "ArchiveMapping",
    "ArchiveMappingError",
    "read_archive_images",
]

_LOOKUP_CHUNK = 10_000


@dataclass(frozen=True)
class ArchiveImage:
    """One image as the archive describes it."""

    obs_publisher_did: str
    release_date: datetime | None
    """Naive UTC; None when unknown (the image is then proprietary)."""
    category: str | None
    image_kind: str | None

    def is_public(self, now: datetime) -> bool:
        """Whether the proprietary period has ended at ``now`` (naive UTC)."""
        return is_released(self.release_date, now)


def read_archive_images(
    conn: Connection, mapping: ArchiveMapping, dids: Collection[str]
) -> dict[str, ArchiveImage]:
    """Read what the archive says of the images vosim knows.

    Parameters
    ----------
    conn
        Connection to the archive's database.
    mapping
        Where the values are.
    dids
        Publisher DIDs of vosim's images; archive rows of other products are
        not read.

    Returns
    -------
    dict
        Per publisher DID found in the archive, its `ArchiveImage`.

    Raises
    ------
    ArchiveMappingError
        If the table or a column does not exist, or a release date cannot be
        read as a date.
    """
    table = _reflect(conn, mapping.table)
    columns = {
        "did": mapping.publisher_did,
        "release": mapping.release_date,
        "category": mapping.category,
        "kind": mapping.kind,
    }
    for name in columns.values():
        if name is not None and name not in table.c:
            raise ArchiveMappingError(
                f"{mapping.table} has no column {name!r}; it has {', '.join(table.c.keys())}"
            )
    selected = [table.c[name].label(key) for key, name in columns.items() if name is not None]
    images: dict[str, ArchiveImage] = {}
    for chunk in _chunks(sorted(dids), _LOOKUP_CHUNK):
        query = sa.select(*selected).where(table.c[mapping.publisher_did].in_(chunk))
        for row in conn.execute(query).mappings():
            images[row["did"]] = ArchiveImage(
                obs_publisher_did=row["did"],
                release_date=_utc(row["release"], row["did"]),
                category=row.get("category"),
                image_kind=mapping.image_kind(row["kind"]) if mapping.kind else None,
            )
    return images


def _reflect(conn: Connection, qualified_name: str) -> sa.Table:
    schema, _, name = qualified_name.rpartition(".")
    try:
        return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
    except sa.exc.NoSuchTableError:
        raise ArchiveMappingError(
            f"the archive's database has no table or view {qualified_name!r} "
            "(set [archive] table in the mapping file)"
        ) from None


def _utc(value: Any, did: str) -> datetime | None:
    """Convert a release date to naive UTC, whatever type the archive stores it in."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise ArchiveMappingError(f"release date {value!r} of {did} is not ISO 8601") from None
    if isinstance(value, datetime):
        return naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise ArchiveMappingError(f"release date {value!r} of {did} is not a date")


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
