"""A second harvest after the archive changed a product's values or its DID."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx
import numpy as np
import sqlalchemy as sa

from model_training.harvest.stage import harvest_archive
from model_training.ingest.catalogue_writer import WRITTEN_SCHEMAS, ProductCatalogue
from model_training.ingest.cutout_store import CutoutStore
from model_training.ingest.obscore_row import access_url
from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture
from tests import served_archive
from tests.harvest.conftest import ServedArchive
from tests.harvest.helpers import archive_values, harvested_rows, options_for, snapshot, subset
from tests.tap.server import running_server

IMAGES = subset()
RENAMED = "ivo://eso.org/ID?uid://A001/X1296/Xrenamed"


@contextmanager
def archive_renames(archive: ServedArchive, old: str, new: str) -> Iterator[None]:
    """Give a product a new DID in the archive for the block, as its re-ingest would."""

    def rename(source: str, target: str) -> None:
        products = ProductCatalogue(archive.catalogue)
        with archive.catalogue.begin_writing(WRITTEN_SCHEMAS) as conn:
            products.rename(conn, source, target)
            conn.execute(
                products.obscore.update()
                .where(products.obscore.c.obs_publisher_did == target)
                .values(access_url=access_url(archive.settings, target))
            )

    rename(old, new)
    try:
        yield
    finally:
        rename(new, old)


def test_changed_values_update_that_product_and_nothing_else(
    archive: ServedArchive, harvester: Settings
) -> None:
    first = harvest_archive(harvester, archive.tap_url, options_for(IMAGES))
    assert (first.harvested, first.failed) == (len(IMAGES), 0), str(first)
    before = snapshot(harvester)
    renamed_target, retitled = IMAGES[0], IMAGES[2]
    later = datetime(2021, 6, 1, 12, 0, 0)
    with (
        archive_values(archive, renamed_target.did, target_name="NGC 1316"),
        archive_values(archive, retitled.did, obs_release_date=later),
    ):
        again = harvest_archive(harvester, archive.tap_url, options_for(IMAGES))

    assert (again.harvested, again.updated, again.unchanged, again.failed) == (0, 2, 2, 0), str(
        again
    )
    after = snapshot(harvester)
    obscore = after["ivoa.obscore"]
    assert obscore[renamed_target.did]["target_name"] == "NGC 1316"
    assert obscore[retitled.did]["obs_release_date"] == later
    changed = {renamed_target.did, retitled.did}
    for table, rows in after.items():
        assert set(rows) == set(before[table]), table
        for did in set(rows) - changed:
            assert rows[did] == before[table][did], (table, did)
        for did in changed:  # same cut-out row and URL key: updated in place
            if table == "vosim.product":
                for column in ("product_key", "cutout_index"):
                    assert rows[did][column] == before[table][did][column]
    assert CutoutStore(harvester.cutout_store).n_rows == len(IMAGES)


def test_changed_did_moves_the_product_and_all_that_follows_it(
    archive: ServedArchive, harvester: Settings
) -> None:
    harvest_archive(harvester, archive.tap_url, options_for(IMAGES))
    old, partner = IMAGES[0].did, IMAGES[1].did
    _write_vectors_and_neighbours(harvester, [image.did for image in IMAGES])
    before = snapshot(harvester)
    selection = [*IMAGES[1:], _renamed(IMAGES[0])]
    with archive_renames(archive, old, RENAMED):
        again = harvest_archive(harvester, archive.tap_url, options_for(selection))

    assert (again.harvested, again.updated, again.unchanged, again.failed) == (0, 1, 3, 0), str(
        again
    )
    after = snapshot(harvester)
    for table, rows in after.items():
        assert set(rows) == set(before[table]) - {old} | {RENAMED}, table
    product = after["vosim.product"]
    for column in ("product_key", "cutout_index"):  # its URLs keep working
        assert product[RENAMED][column] == before["vosim.product"][old][column]
    assert after["vosim.harvest_record"][RENAMED]["state"] == "harvested"
    catalogue = open_catalogue(harvester)
    try:
        with catalogue.begin() as conn:
            embedding = catalogue.table("similarity.embedding")
            vectors = set(conn.execute(sa.select(embedding.c.obs_publisher_did)).scalars())
            neighbour = catalogue.table("similarity.neighbour")
            pairs = set(
                conn.execute(sa.select(neighbour.c.obs_publisher_did, neighbour.c.neighbour_did))
            )
    finally:
        catalogue.dispose()
    assert vectors == {RENAMED, *(image.did for image in IMAGES[1:])}
    assert (RENAMED, partner) in pairs and (partner, RENAMED) in pairs
    assert not any(old in pair for pair in pairs)
    assert CutoutStore(harvester.cutout_store).n_rows == len(IMAGES)


def test_release_date_moved_into_the_future_stops_serving_the_product(
    archive: ServedArchive, harvester: Settings
) -> None:
    harvest_archive(harvester, archive.tap_url, options_for(IMAGES))
    withdrawn = IMAGES[1]
    before = snapshot(harvester)
    with archive_values(archive, withdrawn.did, obs_release_date=served_archive.FUTURE):
        again = harvest_archive(harvester, archive.tap_url, options_for(IMAGES))
    assert (again.held_back, again.unchanged, again.fetched_bytes) == (1, 3, 0), str(again)
    assert f"{withdrawn.did}: proprietary until" in str(again)
    after = snapshot(harvester)
    for table, rows in after.items():
        for did in set(rows) - {withdrawn.did}:
            assert rows[did] == before[table][did], (table, did)
    key = before["vosim.product"][withdrawn.did]["product_key"]
    with running_server(harvester) as mirror:
        assert httpx.get(f"{mirror.url}/files/{key}.fits").status_code == 404
        assert httpx.get(f"{mirror.url}/preview/{key}.png").status_code == 404

    released = harvest_archive(harvester, archive.tap_url, options_for(IMAGES))
    assert (released.updated, released.unchanged, released.held_back) == (1, 3, 0), str(released)
    assert harvested_rows(harvester)[withdrawn.did]["obs_release_date"] == withdrawn.release


def _renamed(image: served_archive.ArchiveImage) -> served_archive.ArchiveImage:
    from dataclasses import replace

    return replace(image, archive_did=RENAMED)


def _write_vectors_and_neighbours(settings: Settings, dids: list[str]) -> None:
    """Vectors and neighbour lists for the harvested products, as the pipeline would write them."""
    kinds = {did: row["image_kind"] for did, row in harvested_rows(settings).items()}
    catalogue = open_catalogue(settings)
    try:
        models = {"continuum": 1, "peak_flux": 2}
        fixture.write_rows(
            catalogue,
            {
                "similarity.model": [
                    fixture.model_row(1, "continuum", embedding_dim=4),
                    fixture.model_row(2, "peak_flux", embedding_dim=4),
                ],
                "similarity.embedding": [
                    {
                        "obs_publisher_did": did,
                        "model_id": models[kinds[did]],
                        "vector": np.ones(4, dtype=np.float32) / 2,
                    }
                    for did in dids
                ],
                "similarity.neighbour": [
                    {
                        "obs_publisher_did": did,
                        "rank": rank,
                        "neighbour_did": other,
                        "cosine_similarity": 0.5,
                        "model_id": models[kinds[did]],
                    }
                    for did in dids
                    for rank, other in enumerate(
                        (o for o in dids if o != did and kinds[o] == kinds[did]), start=1
                    )
                ],
            },
        )
    finally:
        catalogue.dispose()
