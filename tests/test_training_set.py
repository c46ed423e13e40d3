"""Which images a network learns from: public ones by default, all with --include-proprietary."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
import torch

from model_training.ingest.cutout_store import CutoutStore
from model_training.learn import train
from model_training.learn.train import TrainingRunError, train_model
from tap_schema import Settings, open_catalogue
from tests.toy_archive import TINY_CONFIG, write_toy_archive

CONFIG = TINY_CONFIG.replace(epochs=1)


@pytest.fixture
def archive(sqlite_settings: Settings) -> Settings:
    """Twelve toy images: two released in 2099, one whose release date is unknown."""
    dids = write_toy_archive(sqlite_settings, 4, 3, proprietary=frozenset({0, 1}))
    catalogue = open_catalogue(sqlite_settings)
    obscore = catalogue.table("ivoa.obscore")
    with catalogue.begin() as conn:
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == dids[2])
            .values(obs_release_date=None)
        )
    return sqlite_settings


@pytest.fixture
def trained_on(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """The cut-outs each training run is given."""
    seen: list[torch.Tensor] = []
    real_fit = train.fit

    def recording_fit(method, cutouts, config, **options):
        seen.append(cutouts.clone())
        return real_fit(method, cutouts, config, **options)

    monkeypatch.setattr(train, "fit", recording_fit)
    return seen


def _model_rows(settings: Settings) -> list:
    with open_catalogue(settings).begin() as conn:
        return conn.execute(
            sa.text("SELECT n_images, includes_proprietary FROM similarity.model ORDER BY model_id")
        ).all()


def test_by_default_only_public_images_are_trained_on(archive: Settings, trained_on) -> None:
    outcome = train_model(archive, "continuum", CONFIG, progress=False, threads=1)
    store = CutoutStore(archive.cutout_store).open_memmap()
    # Positions 0 and 1 are released in 2099, position 2 at an unknown date.
    assert np.array_equal(trained_on[0].numpy(), store[3:12])
    assert [tuple(row) for row in _model_rows(archive)] == [(9, 0)]
    assert "trained on 9 images, public only" in str(outcome)


def test_include_proprietary_trains_on_all_and_is_recorded(archive: Settings, trained_on) -> None:
    outcome = train_model(
        archive, "continuum", CONFIG, progress=False, threads=1, include_proprietary=True
    )
    store = CutoutStore(archive.cutout_store).open_memmap()
    assert np.array_equal(trained_on[0].numpy(), store[:12])
    assert [tuple(row) for row in _model_rows(archive)] == [(12, 1)]
    assert "12 images, 3 of them proprietary (--include-proprietary)" in str(outcome)


def test_a_resumed_run_cannot_change_its_training_set(archive: Settings) -> None:
    def crash(record) -> None:
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        real_fit = train.fit
        patch.setattr(train, "fit", lambda *a, **k: real_fit(*a, **k, on_epoch_end=crash))
        with pytest.raises(KeyboardInterrupt):
            train_model(archive, "continuum", CONFIG.replace(epochs=2), progress=False, threads=1)
    with pytest.raises(TrainingRunError, match="public images only"):
        train_model(
            archive,
            "continuum",
            CONFIG.replace(epochs=2),
            progress=False,
            resume=True,
            include_proprietary=True,
        )
    resumed = train_model(
        archive, "continuum", CONFIG.replace(epochs=2), progress=False, resume=True, threads=1
    )
    assert resumed is not None and resumed.history[-1].epoch == 2


def test_too_few_public_images_say_how_to_train_on_all(sqlite_settings: Settings) -> None:
    write_toy_archive(sqlite_settings, 1, 2, proprietary=frozenset({0}))
    with pytest.raises(
        TrainingRunError, match=r"only 1 public continuum images.*--include-proprietary"
    ):
        train_model(sqlite_settings, "continuum", CONFIG, progress=False)
