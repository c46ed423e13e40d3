"""``vosim embed`` killed at every commit point: each model's vectors are all there or none.

Embed writes each model's vectors in one transaction of one file
(``similarity``), so a kill inside it must leave every public image's
vector of that model present exactly once, or every one absent: the
service never ranks against half a model. The sweep SIGKILLs a first embed
of two models (one per image kind) at its 1st, 2nd, … ``fdatasync`` on
SQLite, and on PostgreSQL just before and just after each commit
(`tests.faults.commit_points`); after each kill the next plain embed completes the vectors and
reports no repair, since there is nothing to repair.
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from model_training.learn.embed import embed_images
from tap_schema import Settings, open_catalogue
from tests.faults.commit_points import kill_at_point
from tests.faults.strace_faults import kill_forked_at, run_forked
from tests.pg import fresh_database, sessions_ended
from tests.test_models_embed import _register_untrained
from tests.toy_archive import write_toy_archive
from vo_service.similarity.storage import VectorStorage

KINDS = ("continuum", "peak_flux")
N_SOURCES, N_VIEWS = 2, 2
MAX_SYNCS = 40
"""More fdatasync calls than an embed of this archive makes: the sweep ends before."""


def _prepared(settings: Settings) -> dict[int, set[str]]:
    """Toy images of both kinds and an untrained current model each: ``model -> its images``."""
    dids = write_toy_archive(settings, N_SOURCES, N_VIEWS, kinds=KINDS)
    per_kind = len(dids) // len(KINDS)
    return {
        _register_untrained(settings, kind, current=True): set(
            dids[index * per_kind : (index + 1) * per_kind]
        )
        for index, kind in enumerate(KINDS)
    }


def _embed(settings: Settings, report_file: Path) -> None:
    """The stage as ``vosim embed`` runs it, its report kept in ``report_file``."""
    report = embed_images(settings, device="cpu", progress=False, threads=1)
    report_file.write_text(f"{report.exit_status}\n{report}")


def _next_run(settings: Settings, folder: Path) -> list[str]:
    """Run embed again to its end (in a child, as the killed one ran): its report's lines."""
    report_file = folder / "next-run.txt"
    run_forked(lambda: _embed(settings, report_file))
    status, *lines = report_file.read_text().splitlines()
    assert status == "0", lines
    return lines


def _stored(settings: Settings) -> dict[int, list[str]]:
    """Every stored vector's image, per model (a list: a duplicate would show)."""
    catalogue = open_catalogue(settings, create=False)
    embedding = catalogue.table("similarity.embedding")
    try:
        with catalogue.begin() as conn:
            rows = conn.execute(sa.select(embedding.c.model_id, embedding.c.obs_publisher_did))
            stored: dict[int, list[str]] = {}
            for model_id, did in rows:
                stored.setdefault(model_id, []).append(did)
        return stored
    finally:
        catalogue.dispose()


def _served(settings: Settings) -> dict[int, set[str]]:
    """The images the similarity service would rank, per current model."""
    catalogue = open_catalogue(settings, create=False)
    try:
        storage = VectorStorage(catalogue)
        served = {}
        for model in storage.current_models():
            vectors = storage.kind_vectors(model)
            assert np.isfinite(vectors.vectors).all()
            served[model.model_id] = set(vectors.dids)
        return served
    finally:
        catalogue.dispose()


def assert_all_or_none(settings: Settings, models: dict[int, set[str]]) -> dict[int, bool]:
    """Each model has every image's vector once, or none; the service serves that. Which did."""
    stored, served = _stored(settings), _served(settings)
    complete = {}
    for model_id, images in models.items():
        dids = stored.get(model_id, [])
        assert len(dids) == len(set(dids)), f"model {model_id}: a vector stored twice"
        assert set(dids) in (set(), images), f"model {model_id}: {len(dids)} of {len(images)}"
        assert served.get(model_id, set()) == set(dids)
        complete[model_id] = bool(dids)
    return complete


def _clear_vectors(settings: Settings) -> None:
    catalogue = open_catalogue(settings, create=False)
    with catalogue.begin() as conn:
        conn.execute(catalogue.table("similarity.embedding").delete())
    catalogue.dispose()


def _check_kill(settings: Settings, models: dict[int, set[str]], folder: Path) -> dict[int, bool]:
    """After a kill: all or none per model; the next run completes and reports no repair."""
    torn = assert_all_or_none(settings, models)
    lines = _next_run(settings, folder)
    assert not [line for line in lines if "repaired" in line], lines
    assert all(assert_all_or_none(settings, models).values())
    return torn


def test_embed_killed_at_every_fdatasync_on_sqlite(tmp_path: Path) -> None:
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "data")})
    models = _prepared(settings)
    report_file = tmp_path / "killed-run.txt"
    states = []
    for when in range(1, MAX_SYNCS):
        _clear_vectors(settings)
        ended_by = kill_forked_at(lambda: _embed(settings, report_file), "fdatasync", when)
        if ended_by is None:  # the run got past its last sync: every point was hit
            assert all(assert_all_or_none(settings, models).values())
            break
        assert ended_by == signal.SIGKILL
        states.append(_check_kill(settings, models, tmp_path))
    else:
        raise AssertionError(f"embed still killed at its {MAX_SYNCS}th fdatasync")
    # the sweep hit the point between the two models' commits (one model complete)
    assert {tuple(state.values()) for state in states} >= {(False, False), (True, False)}


def test_embed_killed_at_each_commit_on_postgresql(tmp_path: Path, pg_server_url: str) -> None:
    with fresh_database(pg_server_url, "vosim_embed_kill") as url:
        data = str(tmp_path / "data")
        settings = Settings.from_env({"VOSIM_DATA_DIR": data, "VOSIM_DB_URL": url})
        models = _prepared(settings)
        report_file = tmp_path / "killed-run.txt"
        states = []
        for when in range(1, MAX_SYNCS):
            _clear_vectors(settings)
            ended_by = kill_at_point(lambda: _embed(settings, report_file), when)
            if ended_by is None:  # the run got past its last commit
                break
            assert ended_by == signal.SIGKILL
            sessions_ended(url)
            states.append(tuple(_check_kill(settings, models, tmp_path).values()))
        # before and after each model's commit
        assert states == [(False, False), (True, False), (True, False), (True, True)]
