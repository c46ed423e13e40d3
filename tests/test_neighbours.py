"""Exact neighbour lists: the search against brute force, and the stage against a full recompute."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import torch

from model_training.categories import CategoryCompatibility, store_compatibility
from model_training.neighbours import exact_top_k
from model_training.neighbours import store as neighbour_store
from model_training.neighbours.backends import backend_top_k
from model_training.neighbours.exact_top_k import (
    VectorSpace,
    all_pairs_top_k,
    decode,
    encode,
    merge_best,
    update_top_k,
)
from model_training.neighbours.stage import NoCurrentModelError, compute_neighbours
from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture

NOW = datetime(2025, 6, 1)
PAST = NOW - timedelta(days=400)
FUTURE = NOW + timedelta(days=200)
ISM, DISKS, GALAXIES = "ISM", "Disks", "Galaxies"


# ---------------------------------------------------------------- the search itself


def brute_force(vectors, categories, compatible, keys, k):
    """Reference lists: sort every row by (similarity desc, tie key asc), in float64 numpy."""
    scores = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(scores, -np.inf)
    scores[~compatible[categories][:, categories]] = -np.inf
    lists = {}
    for i in range(len(vectors)):
        order = np.lexsort((keys, -scores[i]))[:k]
        order = order[np.isfinite(scores[i, order])]
        lists[i] = (keys[order].tolist(), scores[i, order].tolist())
    return lists


def space_of(vectors, categories, compatible, keys):
    return VectorSpace(
        torch.from_numpy(vectors),
        torch.from_numpy(categories),
        torch.from_numpy(keys.astype(np.int32)),
        torch.from_numpy(compatible),
    )


def collected(found):
    lists = {}
    for rows, values, keys, *_ in found:
        positions = range(rows.start, rows.stop) if isinstance(rows, slice) else rows
        for row, position in enumerate(positions):
            finite = np.isfinite(values[row])
            lists[int(position)] = (keys[row][finite].tolist(), values[row][finite].tolist())
    return lists


def assert_same_lists(found, expected):
    assert found.keys() == expected.keys()
    for row, (keys, values) in expected.items():
        assert found[row][0] == keys, f"row {row}"
        np.testing.assert_allclose(found[row][1], values, atol=1e-6)


def random_archive(n, d, n_categories, seed, exact=False):
    """Random unit vectors; with ``exact``, vectors of eighths (products exact in float32)."""
    rng = np.random.default_rng(seed)
    if exact:
        vectors = (rng.integers(-3, 4, (n, d)) / 8).astype(np.float32)
    else:
        vectors = rng.standard_normal((n, d)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    categories = np.sort(rng.integers(0, n_categories, n))
    keys = rng.permutation(n)
    return vectors, categories, keys


ASYMMETRIC = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 1]], dtype=bool)


@pytest.mark.parametrize("block_size", [16, 50, 1000])
@pytest.mark.parametrize("compatible", [np.ones((3, 3), bool), ASYMMETRIC])
def test_exact_against_brute_force(block_size, compatible):
    vectors, categories, keys = random_archive(300, 8, 3, seed=1)
    expected = brute_force(vectors, categories, compatible, keys, 40)
    space = space_of(vectors, categories, compatible, keys)
    assert_same_lists(collected(all_pairs_top_k(space, 40, block_size)), expected)


def test_ties_are_broken_by_did_rank():
    # 16 distinct vectors (+-0.5 in 4 dimensions) shared by 200 images: every
    # similarity is a multiple of 0.25 and ties are everywhere, also at the k-th place.
    rng = np.random.default_rng(2)
    vectors = rng.choice([-0.5, 0.5], size=(200, 4)).astype(np.float32)
    categories = np.zeros(200, dtype=np.int64)
    keys = rng.permutation(200)
    compatible = np.ones((1, 1), bool)
    expected = brute_force(vectors, categories, compatible, keys, 30)
    for block_size in (7, 64, 500):
        space = space_of(vectors, categories, compatible, keys)
        assert_same_lists(collected(all_pairs_top_k(space, 30, block_size)), expected)


@pytest.mark.parametrize("host_path", [True, False])
def test_floors_and_their_recheck(monkeypatch, host_path):
    # k large enough for the sampled floors to be used; then floors set too
    # high on purpose so that most rows must be searched again. Vectors of
    # eighths: no float32 rounding, so the order is exact (and ties abound).
    vectors, categories, keys = random_archive(2000, 16, 3, seed=3, exact=True)
    compatible = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    expected = brute_force(vectors, categories, compatible, keys, 200)
    space = space_of(vectors, categories, compatible, keys)
    monkeypatch.setattr(exact_top_k, "_host_path", lambda device: host_path)
    rechecked = []
    recheck = exact_top_k._recheck

    def spy(space, lists, rows, *more):
        rechecked.append(int(lists.needs_recheck(rows).sum()))
        return recheck(space, lists, rows, *more)

    monkeypatch.setattr(exact_top_k, "_recheck", spy)
    assert_same_lists(collected(all_pairs_top_k(space, 200, 1024)), expected)
    assert sum(rechecked) == 0
    monkeypatch.setattr(exact_top_k, "_FLOOR_EXPECTED", 0.95)
    rechecked.clear()
    assert_same_lists(collected(all_pairs_top_k(space, 200, 1024)), expected)
    assert sum(rechecked) > 0


def test_fewer_compatible_images_than_k():
    vectors, categories, keys = random_archive(60, 4, 3, seed=4)
    compatible = np.eye(3, dtype=bool)
    expected = brute_force(vectors, categories, compatible, keys, 1000)
    space = space_of(vectors, categories, compatible, keys)
    found = collected(all_pairs_top_k(space, 1000, 32))
    assert_same_lists(found, expected)
    assert all(len(found[i][0]) == (categories == categories[i]).sum() - 1 for i in found)


def test_codes_order_by_similarity_then_key():
    values = torch.tensor([0.5, 0.5, -0.0, 0.0, -0.25, 1.0, float("-inf")])
    keys = torch.tensor([7, 3, 9, 2, 1, 5, 0], dtype=torch.int32)
    codes = encode(values, keys)
    order = torch.argsort(codes).tolist()
    assert [keys[i].item() for i in order] == [5, 3, 7, 2, 9, 1, 0]
    back_values, back_keys = decode(codes)
    assert torch.equal(back_keys, keys)
    assert torch.equal(back_values, values + 0.0)


@pytest.mark.parametrize("compatible", [np.ones((3, 3), bool), ASYMMETRIC])
def test_update_equals_full_search(compatible):
    vectors, categories, keys = random_archive(400, 8, 3, seed=5)
    k = 30
    full = brute_force(vectors, categories, compatible, keys, k)
    rng = np.random.default_rng(6)
    shuffled = rng.permutation(400)
    new, damaged, kept = np.sort(shuffled[:40]), np.sort(shuffled[40:70]), np.sort(shuffled[70:])
    # The stored lists of the kept rows: complete over every image but the new ones.
    without_new = categories.copy()
    mask_compatible = np.zeros((4, 4), bool)
    mask_compatible[:3, :3] = compatible
    without_new[new] = 3
    old = brute_force(vectors, without_new, mask_compatible, keys, k)
    old_values = np.full((kept.size, k), -np.inf, np.float32)
    old_keys = np.zeros((kept.size, k), np.int32)
    for row, position in enumerate(kept):
        stored_keys, stored_values = old[position]
        old_values[row, : len(stored_keys)] = stored_values
        old_keys[row, : len(stored_keys)] = stored_keys
    floors = np.where(np.isfinite(old_values[:, -1]), old_values[:, -1], -np.inf)
    space = space_of(vectors, categories, compatible, keys)
    recompute = np.sort(np.concatenate([new, damaged]))
    found = {}
    for positions, values, found_keys, complete in update_top_k(
        space,
        k,
        torch.from_numpy(recompute),
        torch.from_numpy(new),
        torch.from_numpy(kept),
        torch.from_numpy(floors.astype(np.float32)),
        block_size=64,
    ):
        if not complete:
            rows = np.searchsorted(kept, positions)
            values, found_keys = merge_best(old_values[rows], old_keys[rows], values, found_keys, k)
        found.update(collected([(positions, values, found_keys)]))
    for row, position in enumerate(kept):
        if position not in found:
            finite = np.isfinite(old_values[row])
            found[int(position)] = (old_keys[row][finite].tolist(), old_values[row][finite])
    assert_same_lists(found, full)


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss is not installed")
def test_faiss_backend_finds_the_same_lists():
    vectors, categories, keys = random_archive(500, 16, 3, seed=7)
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    expected = collected(all_pairs_top_k(space, 50, 128))
    assert_same_lists(collected(backend_top_k("faiss", space, 50)), expected)


@pytest.mark.skipif(importlib.util.find_spec("cuml") is None, reason="cuML is not installed")
def test_cuml_backend_finds_the_same_lists():
    vectors, categories, keys = random_archive(500, 16, 3, seed=8)
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    expected = collected(all_pairs_top_k(space, 50, 128))
    assert_same_lists(collected(backend_top_k("cuml", space, 50)), expected)


# ---------------------------------------------------------------- the stage on a catalogue


def key(i: int, kind: str) -> str:
    # DIDs of different lengths exercise every binary COPY record layout.
    return f"img{'x' * (i % 3)}{i:04d}_{kind}"


def did(i: int, kind: str) -> str:
    return fixture.did(key(i, kind), "vosim.example")


class Archive:
    """A small catalogue: images, ObsCore rows, two current models and their vectors."""

    def __init__(self, settings: Settings, seed: int = 0, d: int = 8) -> None:
        self.settings = settings
        self.catalogue = open_catalogue(settings)
        self.rng = np.random.default_rng(seed)
        self.d = d
        fixture.write_rows(
            self.catalogue,
            {
                "similarity.model": [
                    fixture.model_row(1, "continuum", model_name="c"),
                    fixture.model_row(2, "peak_flux", model_name="p"),
                ]
            },
        )
        compatibility = CategoryCompatibility(
            {(a, a): "derived" for a in (ISM, DISKS, GALAXIES)}
            | {(ISM, DISKS): "derived", (DISKS, ISM): "derived"}
        )
        store_compatibility(self.catalogue, compatibility)
        self.compatibility = compatibility

    def add(self, indices, kind, released, categories=None):
        model = 1 if kind == "continuum" else 2
        category_cycle = categories or [ISM, DISKS, GALAXIES, None]
        images = [
            fixture.FixtureImage(
                key=key(i, kind),
                image_kind=kind,
                observed=None,
                release=released,
                category=category_cycle[i % len(category_cycle)],
            )
            for i in indices
        ]
        rows = fixture.image_rows(images, "vosim.example")
        rows["similarity.embedding"] = [
            {
                "obs_publisher_did": did(i, kind),
                "model_id": model,
                "vector": vector / np.linalg.norm(vector),
            }
            for i in indices
            for vector in [self.rng.standard_normal(self.d).astype(np.float32)]
        ]
        fixture.write_rows(self.catalogue, rows)

    def release(self, indices, kind, when):
        obscore = self.catalogue.table("ivoa.obscore")
        with self.catalogue.begin() as conn:
            for i in indices:
                conn.execute(
                    obscore.update()
                    .where(obscore.c.obs_publisher_did == did(i, kind))
                    .values(obs_release_date=when)
                )

    def rows(self, model_id):
        table = self.catalogue.table("similarity.neighbour")
        with self.catalogue.begin() as conn:
            rows = conn.execute(
                sa.select(
                    table.c.obs_publisher_did,
                    table.c.rank,
                    table.c.neighbour_did,
                    table.c.cosine_similarity,
                )
                .where(table.c.model_id == model_id)
                .order_by(table.c.obs_publisher_did, table.c.rank)
            ).all()
        return [tuple(row) for row in rows]

    def expected_rows(self, model_id, kind, k):
        """Brute force over the public images of the kind, straight from the tables."""
        embedding = self.catalogue.table("similarity.embedding")
        obscore = self.catalogue.table("ivoa.obscore")
        with self.catalogue.begin() as conn:
            rows = conn.execute(
                sa.select(
                    embedding.c.obs_publisher_did,
                    embedding.c.vector,
                    obscore.c.scientific_category,
                    obscore.c.obs_release_date,
                    obscore.c.image_kind,
                )
                .join(obscore, obscore.c.obs_publisher_did == embedding.c.obs_publisher_did)
                .where(embedding.c.model_id == model_id)
            ).all()
        public = sorted(
            (row for row in rows if row[3] is not None and row[3] <= NOW and row[4] == kind),
            key=lambda row: row[0],
        )
        names = [row[0] for row in public]
        vectors = np.array([row[1] for row in public], dtype=np.float64)
        scores = vectors @ vectors.T
        expected = []
        for i, row in enumerate(public):
            candidates = [
                (-scores[i, j], names[j])
                for j in range(len(public))
                if j != i and self.compatibility.is_compatible(row[2], public[j][2])
            ]
            for rank, (score, name) in enumerate(sorted(candidates)[:k], start=1):
                expected.append((row[0], rank, name, -score))
        return expected


def assert_same_rows(rows, expected):
    assert [row[:3] for row in rows] == [row[:3] for row in expected]
    np.testing.assert_allclose([row[3] for row in rows], [row[3] for row in expected], atol=1e-6)


def run(archive, **options):
    options.setdefault("k", 12)
    return compute_neighbours(archive.settings, now=NOW, progress=False, device="cpu", **options)


def test_lists_respect_kind_category_and_release(any_settings):
    archive = Archive(any_settings)
    archive.add(range(0, 40), "continuum", PAST)
    archive.add(range(40, 46), "continuum", FUTURE)
    archive.add(range(46, 50), "continuum", None)
    archive.add(range(100, 130), "peak_flux", PAST)
    reports = run(archive)
    assert [(r.model_id, r.mode, r.n_images) for r in reports] == [
        (1, "full", 40),
        (2, "full", 30),
    ]
    for model_id, kind in ((1, "continuum"), (2, "peak_flux")):
        rows = archive.rows(model_id)
        assert_same_rows(rows, archive.expected_rows(model_id, kind, 12))
        named = {row[0] for row in rows} | {row[2] for row in rows}
        assert all(name.endswith(kind) for name in named)
    hidden = {did(i, "continuum") for i in range(40, 50)}
    continuum = archive.rows(1)
    assert not hidden & ({row[0] for row in continuum} | {row[2] for row in continuum})
    categories = {did(i, "continuum"): [ISM, DISKS, GALAXIES, None][i % 4] for i in range(50)}
    for query, _, neighbour, _ in continuum:
        a, b = categories[query], categories[neighbour]
        assert archive.compatibility.is_compatible(a, b)
        assert {a, b} not in ({GALAXIES, ISM}, {GALAXIES, DISKS})


def test_incremental_equals_full_recompute(any_settings):
    archive = Archive(any_settings, seed=1)
    archive.add(range(0, 60), "continuum", PAST)
    archive.add(range(60, 70), "continuum", FUTURE)
    archive.add(range(200, 220), "peak_flux", PAST)
    run(archive)
    archive.add(range(70, 80), "continuum", PAST)  # new images
    archive.release(range(60, 65), "continuum", PAST)  # proprietary ones become public
    archive.release([3, 17, 42], "continuum", FUTURE)  # public ones become proprietary again
    reports = {report.model_id: report for report in run(archive)}
    assert reports[1].mode == "incremental"
    assert (reports[1].n_new, reports[1].n_removed) == (15, 3)
    assert reports[1].n_researched > 0
    assert reports[2].mode == "unchanged"
    incremental = archive.rows(1)
    assert_same_rows(incremental, archive.expected_rows(1, "continuum", 12))
    again = {report.model_id: report for report in run(archive)}
    assert again[1].mode == "unchanged" and archive.rows(1) == incremental
    run(archive, full=True)
    assert_same_rows(archive.rows(1), incremental)
    assert [row[:3] for row in archive.rows(1)] == [row[:3] for row in incremental]


def test_changed_k_or_categories_recompute_everything(sqlite_settings):
    archive = Archive(sqlite_settings, seed=2)
    archive.add(range(0, 30), "continuum", PAST)
    assert run(archive)[0].mode == "full"
    assert run(archive, k=5)[0].mode == "full"
    assert_same_rows(archive.rows(1), archive.expected_rows(1, "continuum", 5))
    archive.compatibility = CategoryCompatibility(
        {(a, b): "override" for a in (ISM, DISKS, GALAXIES) for b in (ISM, DISKS, GALAXIES)}
    )
    store_compatibility(archive.catalogue, archive.compatibility)
    assert run(archive, k=5)[0].mode == "full"
    assert_same_rows(archive.rows(1), archive.expected_rows(1, "continuum", 5))


def test_an_interrupted_run_leaves_the_old_lists(sqlite_settings, monkeypatch):
    archive = Archive(sqlite_settings, seed=3)
    archive.add(range(0, 30), "continuum", PAST)
    run(archive)
    before = archive.rows(1)
    archive.add(range(30, 40), "continuum", PAST)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(neighbour_store.NeighbourWriter, "write", broken)
    with pytest.raises(OSError):
        run(archive)
    assert archive.rows(1) == before
    monkeypatch.undo()
    assert run(archive)[0].mode == "incremental"
    assert_same_rows(archive.rows(1), archive.expected_rows(1, "continuum", 12))


def test_bulk_load_rebuilds_the_indexes(any_settings, monkeypatch):
    monkeypatch.setattr(neighbour_store, "BULK_LOAD_ROWS", 10)
    archive = Archive(any_settings, seed=4)
    archive.add(range(0, 40), "continuum", PAST)
    run(archive)
    assert_same_rows(archive.rows(1), archive.expected_rows(1, "continuum", 12))
    inspector = sa.inspect(archive.catalogue.engine)
    assert inspector.get_pk_constraint("neighbour", schema="similarity")["constrained_columns"]
    assert {"neighbour_neighbour_did_idx"} <= {
        index["name"] for index in inspector.get_indexes("neighbour", schema="similarity")
    }
    assert len(inspector.get_foreign_keys("neighbour", schema="similarity")) == 2


def test_writer_round_trip(any_settings):
    catalogue = open_catalogue(any_settings)
    dids = [f"ivo://x/{'a' * (i % 5)}{i}" for i in range(50)]
    with catalogue.begin() as conn:
        conn.execute(
            catalogue.table("similarity.model").insert(),
            {"model_id": 3, "model_name": "m", "image_kind": "continuum"},
        )
        conn.execute(
            catalogue.table("similarity.image").insert(),
            [
                {"obs_publisher_did": d, "image_kind": "continuum", "cutout_rule": "peak"}
                for d in dids
            ],
        )
    rng = np.random.default_rng(9)
    values = np.sort(rng.random((50, 7)).astype(np.float32), axis=1)[:, ::-1].copy()
    values[5, 3:] = -np.inf
    neighbours = rng.integers(0, 50, (50, 7))
    with catalogue.begin() as conn:
        writer = neighbour_store.NeighbourWriter(conn, catalogue, 3, dids)
        assert writer.write(np.arange(50), values, neighbours) == 50 * 7 - 4
    table = catalogue.table("similarity.neighbour")
    with catalogue.begin() as conn:
        rows = conn.execute(sa.select(table)).all()
    stored = {(row.obs_publisher_did, row.rank): row for row in rows}
    assert len(stored) == 346
    for i in range(50):
        for j in range(7):
            if np.isfinite(values[i, j]):
                row = stored[dids[i], j + 1]
                assert row.neighbour_did == dids[neighbours[i, j]]
                assert np.float32(row.cosine_similarity) == values[i, j]
                assert row.model_id == 3


def test_no_current_model_is_an_error(sqlite_settings):
    open_catalogue(sqlite_settings)
    with pytest.raises(NoCurrentModelError, match="vosim train"):
        compute_neighbours(sqlite_settings, progress=False)


def test_cli_verb(sqlite_settings, monkeypatch, capsys):
    from vo_service.cli import main

    archive = Archive(sqlite_settings, seed=5)
    archive.add(range(0, 20), "continuum", PAST)
    monkeypatch.setenv("VOSIM_DATA_DIR", str(sqlite_settings.data_dir))
    assert main(["neighbours", "--k", "4", "--device", "cpu"]) == 0
    assert (
        "model 1 (continuum): full, 20 public images, 20 lists (80 rows)" in capsys.readouterr().out
    )


def test_gpu_code_paths_on_the_cpu(monkeypatch):
    # The CUDA branches (torch comparison and nonzero, torch stable sort,
    # whole-block chunks, one worker, torch sort of the lists) run the same
    # logic; without a GPU here, run them on CPU tensors.
    monkeypatch.setattr(exact_top_k, "_host_path", lambda device: False)
    vectors, categories, keys = random_archive(300, 8, 3, seed=10)
    expected = brute_force(vectors, categories, ASYMMETRIC, keys, 40)
    space = space_of(vectors, categories, ASYMMETRIC, keys)
    assert_same_lists(collected(all_pairs_top_k(space, 40, 64)), expected)


ROOT = Path(__file__).resolve().parents[1]

THREAD_COUNTS_SCRIPT = """
import sys
from model_training.neighbours.exact_top_k import all_pairs_top_k
from tests.test_neighbours import ASYMMETRIC, random_archive, space_of

vectors, categories, keys = random_archive(1300, 48, 3, seed=5)
space = space_of(vectors, categories, ASYMMETRIC, keys)
for rows, values, neighbours in all_pairs_top_k(space, 150, 512):
    sys.stdout.buffer.write(values.tobytes() + neighbours.tobytes())
"""


@pytest.mark.parametrize("kernel", ["Haswell", "SkylakeX"])
def test_the_bytes_do_not_depend_on_the_thread_count(kernel):
    """One thread or two give the same similarities to the bit, on BLAS kernels
    whose threaded products differ in the last bit (OpenBLAS's Haswell ones)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    environment.update(OPENBLAS_CORETYPE=kernel, PYTHONPATH=str(ROOT))
    found = [
        subprocess.run(
            [sys.executable, "-c", THREAD_COUNTS_SCRIPT],
            env={**environment, "OMP_NUM_THREADS": str(threads)},
            capture_output=True,
            check=True,
            timeout=300,
        ).stdout
        for threads in (1, 2)
    ]
    assert len(found[0]) == 1300 * 150 * 8
    assert found[0] == found[1]
