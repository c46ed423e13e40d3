"""Neighbours and vectors on a Dask cluster: the same bytes as on one process.

A `LocalCluster` of two worker processes stands in for a real cluster; one
cluster serves the whole module (starting one costs seconds).
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from model_training.neighbours import exact_top_k
from model_training.neighbours.exact_top_k import all_pairs_top_k, update_top_k
from tap_schema import Settings
from tests.test_neighbours import (
    ASYMMETRIC,
    FUTURE,
    PAST,
    Archive,
    assert_same_rows,
    random_archive,
    run,
    space_of,
)
from tests.toy_archive import write_toy_archive
from vo_service.cli.command import main

distributed = pytest.importorskip("distributed")

from model_training.cluster import (  # noqa: E402
    WORKER_ENVIRONMENT,
    ClusterNotAvailableError,
    connect,
    parse_address,
)
from model_training.neighbours.cluster_search import (  # noqa: E402
    cluster_all_pairs_top_k,
    cluster_update_top_k,
)


@pytest.fixture(scope="module")
def client():
    with connect("local:2") as client:
        yield client


def by_row(found, n, k):
    """Lists yielded block by block, as two ``(n, k)`` arrays in position order."""
    values = np.full((n, k), np.nan, np.float32)
    keys = np.full((n, k), -1, np.int32)
    for rows, block_values, block_keys, *_ in found:
        values[rows], keys[rows] = block_values, block_keys
    return values, keys


def assert_identical(found, expected):
    assert found[0].tobytes() == expected[0].tobytes()
    assert found[1].tobytes() == expected[1].tobytes()


def test_addresses():
    assert parse_address("local") == ("local", None)
    assert parse_address("local:3") == ("local", 3)
    assert parse_address("tcp://scheduler:8786") == ("tcp://scheduler:8786", None)
    for wrong in ("local:0", "local:x", "scheduler:8786", ""):
        with pytest.raises(ClusterNotAvailableError, match="expected local"):
            parse_address(wrong)


def test_workers_get_one_thread_and_the_parent_keeps_its_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = dict(os.environ)
    with connect("local:1") as one:
        seen = one.run(lambda: {name: os.environ.get(name) for name in WORKER_ENVIRONMENT})
        assert dict(os.environ) == before
    assert list(seen.values()) == [WORKER_ENVIRONMENT]
    assert dict(os.environ) == before


@pytest.mark.parametrize(("n", "d", "k", "block_size"), [(700, 8, 20, 64), (1300, 16, 150, 256)])
def test_full_search_is_byte_identical(client, n, d, k, block_size):
    # The second archive has k large enough for estimated floors (and their checks).
    vectors, categories, keys = random_archive(n, d, 3, seed=n)
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    expected = by_row(all_pairs_top_k(space, k, block_size), n, k)
    found = by_row(cluster_all_pairs_top_k(client, space, k, block_size), n, k)
    assert_identical(found, expected)


def incremental_case(n=900, d=8, k=25, seed=4):
    vectors, categories, keys = random_archive(n, d, 3, seed=seed)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n)
    new, damaged, kept = np.sort(shuffled[:60]), np.sort(shuffled[60:90]), np.sort(shuffled[90:])
    floors = rng.uniform(0.2, 0.6, kept.size).astype(np.float32)
    floors[::7] = -np.inf  # lists shorter than k
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    arguments = (
        torch.from_numpy(np.sort(np.concatenate([new, damaged]))),
        torch.from_numpy(new),
        torch.from_numpy(kept),
        torch.from_numpy(floors),
    )
    return space, k, arguments


def incremental_lists(found, n, k):
    """``{(position, complete): (values bytes, keys bytes)}`` of an update's yields."""
    lists = {}
    for positions, values, keys, complete in found:
        for row, position in enumerate(np.asarray(positions).tolist()):
            assert (position, complete) not in lists
            lists[position, complete] = (values[row].tobytes(), keys[row].tobytes())
    return lists


def test_incremental_search_is_byte_identical(client):
    space, k, arguments = incremental_case()
    expected = incremental_lists(update_top_k(space, k, *arguments, block_size=128), len(space), k)
    found = incremental_lists(
        cluster_update_top_k(client, space, k, *arguments, block_size=128), len(space), k
    )
    assert any(not complete for _, complete in expected)
    assert found == expected


def test_rechecked_rows_are_byte_identical(monkeypatch):
    # Floors too high on purpose, so that most rows are searched again; the
    # workers are threads of this process here, so they see the patch too.
    monkeypatch.setattr(exact_top_k, "_FLOOR_EXPECTED", 0.95)
    vectors, categories, keys = random_archive(2000, 16, 3, seed=3, exact=True)
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    rechecked = []
    recheck = exact_top_k._recheck

    def spy(space, lists, rows, *more):
        targets = more[3] if len(more) > 3 else rows
        rechecked.append(int(lists.needs_recheck(targets).sum()))
        return recheck(space, lists, rows, *more)

    monkeypatch.setattr(exact_top_k, "_recheck", spy)
    from model_training.neighbours import cluster_search

    monkeypatch.setattr(cluster_search, "_recheck", spy)
    expected = by_row(all_pairs_top_k(space, 200, 512), 2000, 200)
    assert sum(rechecked) > 0
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1) as threads:
        rechecked.clear()
        found = by_row(cluster_all_pairs_top_k(threads, space, 200, 512), 2000, 200)
        assert sum(rechecked) > 0
        assert_identical(found, expected)
        space_u, k, arguments = incremental_case(2000, 16, 200, seed=8)
        rechecked.clear()
        expected_u = incremental_lists(update_top_k(space_u, k, *arguments, block_size=512), 0, k)
        assert sum(rechecked) > 0
        found_u = incremental_lists(
            cluster_update_top_k(threads, space_u, k, *arguments, block_size=512), 0, k
        )
        assert found_u == expected_u


class KillWorker:
    """A progress bar that kills one worker process when the first task finishes."""

    def __init__(self, client):
        self.pids = list(client.run(os.getpid).values())
        self.killed = None

    def update(self, _count):
        if self.killed is None:
            self.killed = self.pids[0]
            os.kill(self.killed, signal.SIGKILL)


def test_a_killed_worker_changes_nothing(client):
    vectors, categories, keys = random_archive(800, 32, 3, seed=11)
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    expected = by_row(all_pairs_top_k(space, 30, 64), 800, 30)
    killer = KillWorker(client)
    found = by_row(cluster_all_pairs_top_k(client, space, 30, 64, killer), 800, 30)
    assert killer.killed is not None
    assert_identical(found, expected)
    client.wait_for_workers(2, timeout=60)
    assert killer.killed not in client.run(os.getpid).values()


# ---------------------------------------------------------------- the stage


def test_stage_writes_the_same_rows_full_and_incremental(client, any_settings, tmp_path):
    """The same archive twice: one searched here (SQLite), one on the cluster (both backends)."""
    here = Archive(Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "here")}), seed=2, d=16)
    there = Archive(any_settings, seed=2, d=16)
    steps = [
        lambda a: (
            a.add(range(0, 150), "continuum", PAST),
            a.add(range(150, 170), "peak_flux", PAST),
        ),
        lambda a: (
            a.add(range(300, 320), "continuum", PAST),
            a.release([3, 17, 42, 99], "continuum", FUTURE),
            a.add(range(400, 405), "peak_flux", PAST),
        ),
    ]
    for step, mode in zip(steps, ["full", "incremental"], strict=True):
        step(here)
        step(there)
        alone = run(here, block_size=32)
        together = run(there, block_size=32, cluster=client)
        assert [r.mode for r in together] == [r.mode for r in alone] == [mode, mode]
        assert [r.n_rows_written for r in together] == [r.n_rows_written for r in alone]
        for model_id in (1, 2):
            assert there.rows(model_id) == here.rows(model_id)
    assert_same_rows(there.rows(1), there.expected_rows(1, "continuum", 12))


class KillingBar:
    """The stage's progress bar, with a `KillWorker` told of every finished task too."""

    def __init__(self, bar, killer):
        self.bar, self.killer = bar, killer

    def update(self, count):
        self.bar.update(count)
        self.killer.update(count)

    def __getattr__(self, name):
        return getattr(self.bar, name)


def test_a_killed_worker_changes_nothing_in_an_incremental_run(
    client, any_settings, tmp_path, monkeypatch
):
    """``vosim neighbours`` incremental on the cluster, one worker killed mid-run: same rows."""
    from model_training.neighbours import stage

    here = Archive(Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "here")}), seed=6, d=16)
    there = Archive(any_settings, seed=6, d=16)
    for archive in (here, there):
        archive.add(range(0, 160), "continuum", PAST)
    run(here, block_size=32)
    run(there, block_size=32, cluster=client)
    for archive in (here, there):
        archive.add(range(300, 330), "continuum", PAST)
        archive.release([5, 21, 77], "continuum", FUTURE)
    killer = KillWorker(client)
    searched = stage.cluster_update_top_k

    def killed_midway(cluster, *arguments):
        *head, bar, device = arguments
        return searched(cluster, *head, KillingBar(bar, killer), device)

    monkeypatch.setattr(stage, "cluster_update_top_k", killed_midway)
    alone = run(here, block_size=32)
    together = run(there, block_size=32, cluster=client)
    assert killer.killed is not None
    assert [r.mode for r in together] == [r.mode for r in alone] == ["incremental", "unchanged"]
    assert [r.n_rows_written for r in together] == [r.n_rows_written for r in alone]
    assert there.rows(1) == here.rows(1)
    assert_same_rows(there.rows(1), there.expected_rows(1, "continuum", 12))
    client.wait_for_workers(2, timeout=60)
    assert killer.killed not in client.run(os.getpid).values()


def test_cli_cluster_option(sqlite_settings, monkeypatch, capsys):
    archive = Archive(sqlite_settings)
    archive.add(range(0, 20), "continuum", PAST)
    monkeypatch.setenv("VOSIM_DATA_DIR", str(sqlite_settings.data_dir))
    argv = ["neighbours", "--k", "4", "--device", "cpu", "--block-size", "8"]
    assert main([*argv, "--cluster", "local:1"]) == 0
    assert "full, 20 public images, 20 lists (80 rows)" in capsys.readouterr().out
    assert main([*argv, "--cluster", "nowhere"]) == 2
    assert "expected local, local:N" in capsys.readouterr().err


# ---------------------------------------------------------------- embeddings


def embedded_on(settings, **options):
    from model_training.learn.embed import embed_images
    from tests.test_models_embed import _register_untrained, _stored_vectors

    write_toy_archive(settings, 10, 4, proprietary=frozenset({5}))
    model_id = _register_untrained(settings, "continuum", current=True)
    report = embed_images(settings, device="cpu", batch_size=3, progress=False, **options)
    assert report.embedded == {model_id: 39}
    return _stored_vectors(settings, model_id)


def test_vectors_are_byte_identical(client, any_settings, tmp_path, monkeypatch):
    from model_training.learn import cluster_embed

    monkeypatch.setattr(cluster_embed, "BATCHES_PER_TASK", 2)  # several tasks of whole batches
    here = embedded_on(Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "here")}))
    there = embedded_on(any_settings, cluster=client)
    assert list(there) == list(here)
    for did, vector in here.items():
        assert (
            np.asarray(there[did], np.float32).tobytes() == np.asarray(vector, np.float32).tobytes()
        )


def test_vectors_survive_a_killed_worker(client, monkeypatch):
    from model_training.learn import cluster_embed
    from model_training.learn.inference import compute_vectors
    from model_training.learn.simclr import build_method
    from tests.toy_archive import TINY_CONFIG, toy_cutouts

    monkeypatch.setattr(cluster_embed, "BATCHES_PER_TASK", 1)
    cutouts = toy_cutouts(12, 4, seed=3)[0]
    torch.manual_seed(0)
    method = build_method(TINY_CONFIG)
    expected = compute_vectors(method, cutouts, TINY_CONFIG, batch_size=4)
    killer = KillWorker(client)
    found = cluster_embed.cluster_vectors(
        client, method, cutouts, TINY_CONFIG, device="cpu", batch_size=4, progress=killer
    )
    assert killer.killed is not None
    assert found.numpy().tobytes() == expected.numpy().tobytes()
    client.wait_for_workers(2, timeout=60)
