"""The similarity service without HTTP: time passing, reloads, and the catalogue as last word."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tap_schema import Catalogue, Settings, open_catalogue
from tests import served_archive as archive
from vo_service.similarity import SimilarityQuery, SimilarityService
from vo_service.similarity.errors import NotFoundError

START = next(i for i in archive.PUBLIC if i.image_kind == "continuum")


@pytest.fixture
def catalogue(tmp_path: Path) -> Iterator[Catalogue]:
    settings = Settings.from_env(
        {"VOSIM_DATA_DIR": str(tmp_path / "data"), "VOSIM_AUTHORITY": archive.AUTHORITY}
    )
    catalogue = open_catalogue(settings)
    archive.build(settings, catalogue, tmp_path / "files")
    yield catalogue
    catalogue.dispose()


def ranked(service: SimilarityService, now: datetime | None = None, **query) -> list[str]:
    query.setdefault("selection", (START.did,))
    result = service.search(SimilarityQuery(maxrec=100, **query), now)
    return [row.product.obs_publisher_did for row in result.results]


def test_images_enter_the_ranking_at_their_release_date(catalogue: Catalogue) -> None:
    service = SimilarityService(catalogue)
    service.refresh()
    hidden = {image.did for image in archive.PROPRIETARY if image.image_kind == "continuum"}
    dated = {image.did for image in archive.PROPRIETARY if image.release is not None}
    assert not hidden & set(ranked(service))
    later = archive.FUTURE + timedelta(days=1)
    listed = set(ranked(service, later))
    compatible = {
        image.did
        for image in archive.IMAGES
        if image.did in hidden & dated and archive.compatible(START.category, image.category)
    }
    assert compatible and compatible <= listed
    never = next(image for image in archive.PROPRIETARY if image.release is None)
    assert never.did not in listed
    with pytest.raises(NotFoundError, match="not public"):
        ranked(service, selection=(never.did,))


def test_reload_when_a_new_model_becomes_current(catalogue: Catalogue) -> None:
    service = SimilarityService(catalogue)
    assert service.refresh()
    assert not service.refresh()
    assert service.indexes["continuum"].model_id == 2
    model = catalogue.table("similarity.model")
    embedding = catalogue.table("similarity.embedding")
    with catalogue.begin() as conn:
        conn.execute(model.update().values(is_current=0).where(model.c.model_id == 2))
        conn.execute(
            model.insert().values(
                model_id=4, model_name="new", image_kind="continuum", is_current=1
            )
        )
        conn.execute(
            embedding.insert(),
            [
                {"obs_publisher_did": image.did, "model_id": 4, "vector": archive.vector(image)}
                for image in archive.IMAGES
                if image.image_kind == "continuum" and image is not archive.IMAGES[3]
            ],
        )
    assert service.refresh()
    assert service.indexes["continuum"].model_id == 4
    assert archive.IMAGES[3].did not in service.indexes["continuum"].positions
    assert service.search(SimilarityQuery((START.did,))).model_id == 4


def test_the_catalogue_has_the_last_word_on_release_dates(catalogue: Catalogue) -> None:
    service = SimilarityService(catalogue)
    service.refresh()
    before = ranked(service)
    withdrawn = before[0]
    obscore = catalogue.table("ivoa.obscore")
    with catalogue.begin() as conn:
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == withdrawn)
            .values(obs_release_date=archive.FUTURE)
        )
    after = ranked(service)
    assert after == before[1:]
    assert service.refresh(), "a row found withdrawn makes the next check reload"
    assert withdrawn not in ranked(service)


def test_vectors_of_models_that_are_not_current_are_never_used(catalogue: Catalogue) -> None:
    service = SimilarityService(catalogue)
    service.refresh()
    embedding = catalogue.table("similarity.embedding")
    with catalogue.begin() as conn:
        old = conn.execute(
            sa.select(sa.func.count()).select_from(embedding).where(embedding.c.model_id == 1)
        ).scalar()
    assert old > 0
    result = service.search(SimilarityQuery((START.did,), maxrec=3))
    best = archive.expected_ranking([START.did])[0]
    assert result.results[0].product.obs_publisher_did == best[0].did
    assert result.results[0].similarity == pytest.approx(best[1], abs=1e-6)


def test_a_reingest_reloads_categories_and_release_dates_only(catalogue: Catalogue) -> None:
    service = SimilarityService(catalogue)
    service.refresh()
    before = service.indexes["continuum"]
    moved = next(i for i in archive.PUBLIC if i.image_kind == "continuum" and i is not START)
    obscore = catalogue.table("ivoa.obscore")
    product = catalogue.table("vosim.product")
    with catalogue.begin() as conn:  # what a re-ingest with a new metadata row does
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == moved.did)
            .values(obs_release_date=archive.FUTURE)
        )
        conn.execute(
            product.update()
            .where(product.c.obs_publisher_did == moved.did)
            .values(ingested_at=datetime.now())
        )
    assert service.refresh()
    after = service.indexes["continuum"]
    assert after is not before and after.vectors is before.vectors
    assert not after.public_mask(datetime.now())[after.positions[moved.did]]
    assert moved.did not in ranked(service)
