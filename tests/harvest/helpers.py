"""What the harvest tests share: the options a test harvest runs with, and reading its results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from model_training.archive_mapping import ArchiveMapping
from model_training.harvest.download import FetchLimits
from model_training.harvest.stage import HarvestOptions
from tap_schema import Settings, open_catalogue
from tests import served_archive
from tests.tap.server import RunningServer

MAPPING = ArchiveMapping(category="scientific_category")
"""vosim's obscore keeps the category in a column of that name (the release date is ObsCore's)."""
OPTIONS = HarvestOptions(
    mapping=MAPPING, workers=2, progress=False, limits=FetchLimits(retries=1, backoff_s=0.1)
)

PER_PRODUCT_TABLES = ("ivoa.obscore", "similarity.image", "vosim.product", "vosim.harvest_record")


def subset() -> list[served_archive.ArchiveImage]:
    """Four public products of every kind the archive has: minted, ALMA and DaCHS DIDs, gzip."""
    public = served_archive.PUBLIC
    return [
        next(i for i in public if i.archive_did is None and i.image_kind == "continuum"),
        next(i for i in public if i.archive_did and "uid://" in i.archive_did),
        next(i for i in public if i.image_kind == "peak_flux" and i.archive_did),
        next(i for i in public if i.file_name.endswith(".gz")),
    ]


def only(images: list[served_archive.ArchiveImage]) -> str:
    """The ``--where`` condition that selects these products."""
    dids = ", ".join("'" + image.did.replace("'", "''") + "'" for image in images)
    return f"o.obs_publisher_did IN ({dids})"


def options_for(images: list[served_archive.ArchiveImage], **changes) -> HarvestOptions:
    """`OPTIONS` restricted to these products, with other fields changed."""
    return replace(OPTIONS, where=only(images), **changes)


@contextmanager
def archive_values(archive: RunningServer, did: str, **values: Any) -> Iterator[None]:
    """Change a product's ``ivoa.obscore`` values in the archive for the block."""
    obscore = archive.catalogue.table("ivoa.obscore")
    where = obscore.c.obs_publisher_did == did
    with archive.catalogue.begin() as conn:
        before = conn.execute(sa.select(*(obscore.c[n] for n in values)).where(where)).one()
        conn.execute(obscore.update().where(where).values(values))
    try:
        yield
    finally:
        with archive.catalogue.begin() as conn:
            conn.execute(obscore.update().where(where).values(before._asdict()))


def harvested_rows(settings: Settings, table: str = "ivoa.obscore") -> dict[str, dict]:
    """The rows of a per-product table of an installation, by DID."""
    catalogue = open_catalogue(settings)
    try:
        selected = catalogue.table(table)
        with catalogue.begin() as conn:
            rows = conn.execute(sa.select(selected)).mappings().all()
        return {row["obs_publisher_did"]: dict(row) for row in rows}
    finally:
        catalogue.dispose()


def snapshot(settings: Settings) -> dict[str, dict[str, dict]]:
    """Every per-product row of an installation, by table and DID."""
    return {table: harvested_rows(settings, table) for table in PER_PRODUCT_TABLES}


def harvested_key(settings: Settings, did: str) -> str:
    """The URL key under which an installation serves a product."""
    return harvested_rows(settings, "vosim.product")[did]["product_key"]
