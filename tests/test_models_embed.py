"""Model rows, the current model of each kind, and the incremental embedding stage."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
import torch

from model_training.learn.checkpoints import (
    current_model_id,
    load_model,
    make_current,
    register_model,
    save_network,
)
from model_training.learn.embed import embed_images
from model_training.learn.inference import compute_vectors
from model_training.learn.simclr import build_method
from tap_schema import Settings, open_catalogue
from tests.toy_archive import TINY_CONFIG, toy_cutouts, write_toy_archive


def _register_untrained(settings: Settings, kind: str, *, current: bool, path: Path | None = None):
    catalogue = open_catalogue(settings)
    if path is None:
        path = settings.model_dir / f"untrained-{kind}.pt"
        torch.manual_seed(0)
        save_network(path, build_method(TINY_CONFIG), TINY_CONFIG)
    with catalogue.begin() as conn:
        return register_model(
            conn,
            catalogue,
            {"model_name": f"untrained {kind}", "image_kind": kind},
            path,
            current=current,
        )


def test_current_model_per_kind(sqlite_settings: Settings) -> None:
    catalogue = open_catalogue(sqlite_settings)
    first = _register_untrained(sqlite_settings, "continuum", current=True)
    with catalogue.begin() as conn:
        assert current_model_id(conn, "continuum") == first
        assert current_model_id(conn, "peak_flux") is None
    second = _register_untrained(sqlite_settings, "continuum", current=True)
    # One network serving both kinds: a row per kind, one file.
    shared = sqlite_settings.model_dir / "untrained-continuum.pt"
    for_peak = _register_untrained(sqlite_settings, "peak_flux", current=True, path=shared)
    with catalogue.begin() as conn:
        assert current_model_id(conn, "continuum") == second
        assert current_model_id(conn, "peak_flux") == for_peak
        make_current(conn, catalogue, first)
        assert current_model_id(conn, "continuum") == first
        assert current_model_id(conn, "peak_flux") == for_peak
        current = conn.execute(sa.text("SELECT sum(is_current) FROM similarity.model")).scalar()
    assert current == 2
    loaded = load_model(catalogue, image_kind="peak_flux")
    assert loaded.model_id == for_peak
    assert loaded.config == TINY_CONFIG


def _stored_vectors(settings: Settings, model_id: int) -> dict[str, np.ndarray]:
    catalogue = open_catalogue(settings)
    table = catalogue.table("similarity.embedding")
    with catalogue.begin() as conn:
        rows = conn.execute(
            sa.select(table.c.obs_publisher_did, table.c.vector).where(table.c.model_id == model_id)
        ).all()
    return {did: np.asarray(vector) for did, vector in rows}


def test_embed_only_public_images_without_a_vector(any_settings: Settings) -> None:
    dids = write_toy_archive(any_settings, 4, 2, proprietary=frozenset({0, 3}))
    model_id = _register_untrained(any_settings, "continuum", current=True)
    report = embed_images(any_settings, progress=False)
    assert report.embedded == {model_id: 6}
    stored = _stored_vectors(any_settings, model_id)
    assert set(stored) == set(dids) - {dids[0], dids[3]}  # nothing of proprietary images
    # The stored vectors are the network's, unit length, float32.
    cutouts = toy_cutouts(4, 2, seed=0)[0]
    torch.manual_seed(0)
    expected = compute_vectors(build_method(TINY_CONFIG), cutouts, TINY_CONFIG).numpy()
    for position, did in enumerate(dids):
        if did in stored:
            assert stored[did].dtype == np.float32
            np.testing.assert_allclose(stored[did], expected[position], atol=1e-5)
            assert abs(np.linalg.norm(stored[did]) - 1) < 1e-5

    again = embed_images(any_settings, progress=False)
    assert again.embedded == {model_id: 0} and again.already_done == {model_id: 6}

    # New images arrive and a proprietary one becomes public: only they are embedded.
    new_dids = write_toy_archive(any_settings, 2, 2, seed=1)
    catalogue = open_catalogue(any_settings)
    obscore = catalogue.table("ivoa.obscore")
    with catalogue.begin() as conn:
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == dids[0])
            .values(obs_release_date=datetime(2021, 1, 1))
        )
    later = embed_images(any_settings, progress=False)
    assert later.embedded == {model_id: len(new_dids) + 1}
    assert set(_stored_vectors(any_settings, model_id)) == set(dids + new_dids) - {dids[3]}
