"""The ranking arithmetic and the in-memory index, against brute force on small data."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from vo_service.similarity.index import IndexOptions, KindIndex, allowed_categories
from vo_service.similarity.ranking import (
    EmptyQueryError,
    ReducedCopy,
    query_vector,
    rerank,
    top_positions,
)

NOW = datetime(2026, 1, 1)


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    values = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def structured_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Clustered vectors whose variance decays along the axes, as learned representations do."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, d + 1) ** -1.0).astype(np.float32) ** 0.5
    centres = rng.normal(size=(40, d)).astype(np.float32)
    values = (centres[rng.integers(40, size=n)] + rng.normal(size=(n, d))) * scale
    values = values.astype(np.float32)
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def test_query_vector_is_the_normalised_mean() -> None:
    vectors = unit_rows(3, 8)
    assert query_vector(vectors[:1]) == pytest.approx(vectors[0], abs=1e-6)
    mean = vectors.mean(axis=0)
    assert query_vector(vectors) == pytest.approx(mean / np.linalg.norm(mean), abs=1e-6)
    rocchio = vectors[:2].mean(axis=0) - 0.5 * vectors[2]
    combined = query_vector(vectors[:2], vectors[2:])
    assert combined == pytest.approx(rocchio / np.linalg.norm(rocchio), abs=1e-6)
    assert np.linalg.norm(combined) == pytest.approx(1.0)
    assert query_vector(2.0 * vectors[:1]) == pytest.approx(vectors[0], abs=1e-6)


def test_opposite_selections_cancel_out() -> None:
    vector = unit_rows(1, 8)
    with pytest.raises(EmptyQueryError, match="cancel"):
        query_vector(np.vstack([vector, -vector]))


def test_ties_go_to_the_earlier_position() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1], dtype=np.float32)
    positions = np.array([10, 11, 3, 4, 5])
    assert positions[top_positions(scores, positions, 3)].tolist() == [4, 11, 3]
    assert top_positions(scores, positions, 0).size == 0
    assert len(top_positions(scores, positions, 99)) == 5


def small_index(n: int = 60, **options) -> KindIndex:
    categories = [("A", "B", "C", None)[i % 4] for i in range(n)]
    releases = [NOW - timedelta(days=1)] * n
    return KindIndex(
        "continuum",
        7,
        [f"ivo://x/{i:04d}" for i in range(n)],
        unit_rows(n, 12),
        categories,
        releases,
        IndexOptions(**options),
    )


def test_exact_index_matches_brute_force_with_category_and_negatives() -> None:
    index = small_index()
    compatibility = {"A": frozenset({"B"}), "B": frozenset({"A"})}
    selected, avoided = [0, 8], [5]
    query = query_vector(index.vectors[selected], index.vectors[avoided])
    eligible = index.public_mask(NOW) & index.compatible_mask(
        allowed_categories(compatibility, index.categories[0])
    )
    eligible[selected + avoided] = False
    ranking = index.rank(query, eligible, 20)
    truth = [
        i
        for i in range(len(index))
        if i not in selected + avoided and index.categories[i] in ("A", "B", None)
    ]
    truth.sort(key=lambda i: (-float(index.vectors[i].astype(np.float64) @ query), i))
    assert ranking.total == len(truth)
    assert ranking.positions.tolist() == truth[:20]
    assert ranking.scores == pytest.approx([index.vectors[i] @ query for i in truth[:20]])
    assert {index.categories[i] for i in ranking.positions} <= {"A", "B", None}


def test_unknown_category_is_compatible_with_every_category() -> None:
    index = small_index()
    assert index.compatible_mask(None).all()
    mask = index.compatible_mask(allowed_categories({}, "C"))
    assert {index.categories[i] for i in np.flatnonzero(mask)} == {"C", None}


def test_release_dates_are_checked_at_each_instant() -> None:
    n = 5
    releases = [
        NOW - timedelta(days=1),
        NOW + timedelta(days=1),
        None,
        NOW,
        NOW + timedelta(days=2),
    ]
    index = KindIndex("continuum", 1, list("abcde"), unit_rows(n, 4), [None] * n, releases)
    assert index.public_mask(NOW).tolist() == [True, False, False, True, False]
    later = NOW + timedelta(days=1, seconds=1)
    assert index.public_mask(later).tolist() == [True, True, False, True, False]
    assert index.public_mask(NOW + timedelta(days=3)).tolist() == [True, True, False, True, True]
    assert index.public_mask(NOW).tolist() == [True, False, False, True, False]


def test_reduced_copy_scores_rank_like_the_full_vectors() -> None:
    vectors = structured_rows(3000, 64)
    copy = ReducedCopy.fit(vectors, 64)
    query = query_vector(vectors[:3])
    exact = vectors @ query
    approximate = copy.scores(query)
    assert np.corrcoef(exact, approximate)[0, 1] > 0.999
    assert copy.codes.dtype == np.int8 and copy.codes.shape == (3000, 64)
    assert copy.nbytes < vectors.nbytes / 3


def test_rerank_gives_the_exact_scores() -> None:
    vectors = unit_rows(500, 48)
    query = query_vector(vectors[:2])
    positions = np.array([3, 17, 250, 499])
    assert rerank(vectors, positions, query) == pytest.approx(vectors[positions] @ query, abs=1e-6)


def test_two_stage_ranking_equals_the_exact_scan() -> None:
    n = 30_000
    vectors = structured_rows(n, 64, seed=3)
    dids = [f"ivo://x/{i:05d}" for i in range(n)]
    releases = [NOW - timedelta(days=1)] * n
    categories = [None] * n
    two_stage = KindIndex(
        "continuum",
        1,
        dids,
        vectors,
        categories,
        releases,
        IndexOptions(reduce_from=10_000, reduced_dimensions=16),
    )
    assert two_stage.reduced is not None, "the reduced copy was not worth keeping"
    assert two_stage.measured_recall >= 0.999
    assert two_stage.candidate_factor * 1000 < n / 2
    exact = KindIndex("continuum", 1, dids, vectors, categories, releases)
    assert exact.reduced is None
    rng = np.random.default_rng(5)
    for size in (1, 3, 10):
        selected = rng.choice(n, size=size, replace=False)
        query = query_vector(vectors[selected])
        eligible = np.ones(n, dtype=bool)
        eligible[selected] = False
        got = two_stage.rank(query, eligible, 100)
        want = exact.rank(query, eligible, 100)
        assert got.positions.tolist() == want.positions.tolist()
        assert got.total == want.total == n - size
