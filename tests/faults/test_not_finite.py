"""A corrupted cut-out (NaN pixels): embed refuses it by name, nothing serves a NaN."""

from __future__ import annotations

import json

import numpy as np
import sqlalchemy as sa

from model_training.ingest.cutout_store import CutoutStore
from model_training.learn.embed import embed_images
from tap_schema import Settings, open_catalogue
from tests.test_models_embed import _register_untrained, _stored_vectors
from tests.toy_archive import write_toy_archive
from vo_service.similarity.responses import _without_nan
from vo_service.similarity.storage import VectorStorage


def _corrupt_cutout(settings: Settings, did: str) -> None:
    catalogue = open_catalogue(settings)
    product = catalogue.table("vosim.product")
    with catalogue.begin() as conn:
        row = conn.execute(
            sa.select(product.c.cutout_index).where(product.c.obs_publisher_did == did)
        ).scalar_one()
    catalogue.dispose()
    CutoutStore(settings.cutout_store).write(row, np.full((64, 64), np.nan, np.float32))


def test_embed_refuses_a_cut_out_with_nan_pixels(sqlite_settings: Settings) -> None:
    dids = write_toy_archive(sqlite_settings, 3, 2)
    _corrupt_cutout(sqlite_settings, dids[2])
    model_id = _register_untrained(sqlite_settings, "continuum", current=True)

    report = embed_images(sqlite_settings, progress=False)

    assert report.exit_status == 1
    assert report.embedded == {model_id: len(dids) - 1}
    assert len(report.refused) == 1 and dids[2] in report.refused[0]
    assert "refused:" in str(report) and "NaN" in str(report)
    stored = _stored_vectors(sqlite_settings, model_id)
    assert set(stored) == set(dids) - {dids[2]}
    assert all(np.isfinite(vector).all() for vector in stored.values())


def test_vectors_that_are_not_finite_are_never_ranked(sqlite_settings: Settings) -> None:
    """A NaN vector stored by an older vosim stays out of the service's index."""
    dids = write_toy_archive(sqlite_settings, 3, 2)
    model_id = _register_untrained(sqlite_settings, "continuum", current=True)
    embed_images(sqlite_settings, progress=False)
    catalogue = open_catalogue(sqlite_settings)
    embedding = catalogue.table("similarity.embedding")
    with catalogue.begin() as conn:
        conn.execute(
            embedding.update()
            .where(embedding.c.obs_publisher_did == dids[1])
            .values(
                vector=np.full(len(_stored_vectors(sqlite_settings, model_id)[dids[0]]), np.nan)
            )
        )
    storage = VectorStorage(catalogue)
    (model,) = storage.current_models()
    vectors = storage.kind_vectors(model)
    catalogue.dispose()

    assert dids[1] not in vectors.dids and len(vectors.dids) == len(dids) - 1
    assert np.isfinite(vectors.vectors).all()


def test_json_answers_carry_null_not_nan() -> None:
    document = {"results": [{"similarity": float("nan"), "s_ra": 1.5}], "x": float("inf")}
    text = json.dumps(_without_nan(document), allow_nan=False)
    assert json.loads(text) == {"results": [{"similarity": None, "s_ra": 1.5}], "x": None}
