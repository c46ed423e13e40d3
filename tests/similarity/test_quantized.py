"""The int8 copy of the full vectors: its bound holds, and its candidates hold the exact best."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from vo_service.adql.ranked_scores import RankedScores
from vo_service.similarity.index import IndexOptions, KindIndex
from vo_service.similarity.kernels import gathered_dots
from vo_service.similarity.quantized import QuantizedVectors
from vo_service.similarity.service import _candidate_scores, _kind_scores, _scan_scores
from vo_service.tap.score_tables import RankedLevels

NOW = datetime(2026, 1, 1)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def random_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    return _unit(np.random.default_rng(seed).standard_normal((n, d)))


def clustered_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Tight clusters, variance decaying along the axes, and exact duplicates (ties)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d)) * 4
    rows = centres[rng.integers(8, size=n)] + rng.standard_normal((n, d)) * 0.3
    rows *= np.arange(1, d + 1) ** -0.5
    rows[n // 2 : n // 2 + 40] = rows[n // 2]  # 40 images of one equal score to any query
    return _unit(rows)


def integer_tied_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Few distinct small-integer vectors: many exactly equal scores."""
    rng = np.random.default_rng(seed)
    return rng.integers(-2, 3, size=(6, d))[rng.integers(6, size=n)].astype(np.float32)


SETS = {"random": random_vectors, "clustered": clustered_vectors, "tied": integer_tied_vectors}


@pytest.mark.parametrize("make", SETS.values(), ids=SETS.keys())
@pytest.mark.parametrize("d", [16, 700])
def test_every_exact_score_lies_within_its_bound(make, d: int) -> None:
    vectors = make(3000, d)
    copy = QuantizedVectors.fit(vectors)
    rng = np.random.default_rng(1)
    for query in (vectors[7], vectors[2500], rng.standard_normal(d).astype(np.float32) * 3):
        approximate, half = copy.bounds(query)
        for exact in (
            (vectors @ query).astype(np.float64),
            _gathered(vectors, np.arange(len(vectors)), query),
            vectors.astype(np.float64) @ query.astype(np.float64),
        ):
            assert (np.abs(exact - approximate) <= half).all()


def _gathered(vectors: np.ndarray, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
    out = np.empty(positions.size, dtype=np.float32)
    gathered_dots(vectors, positions, np.ascontiguousarray(query), out)
    return out.astype(np.float64)


@pytest.mark.parametrize("make", SETS.values(), ids=SETS.keys())
@pytest.mark.parametrize("best", [1, 10, 100, 400])
def test_candidates_hold_the_exact_best_with_ties_and_no_ineligible_image(make, best: int) -> None:
    vectors = make(4000, 600)
    copy = QuantizedVectors.fit(vectors)
    eligible = np.random.default_rng(2).random(len(vectors)) > 0.2
    for query_at in (0, 2000, 2010, 3999):
        query = vectors[query_at]
        candidates = copy.best_candidates(query, eligible, best)
        assert eligible[candidates].all()
        exact = _gathered(vectors, np.arange(len(vectors)), query)
        shown = np.where(eligible, exact, -np.inf)
        cut_off = np.sort(shown)[-best]
        assert set(np.flatnonzero(shown >= cut_off)) <= set(candidates.tolist())


@pytest.mark.parametrize("make", SETS.values(), ids=SETS.keys())
@pytest.mark.parametrize("best", [1, 10, 100, 400])
def test_the_candidates_scored_exactly_hold_every_best_image_ties_included(make, best: int) -> None:
    """Fewer than the candidates are scored, but every image reaching the best-th best is."""
    vectors = make(4000, 600)
    copy = QuantizedVectors.fit(vectors)
    eligible = np.random.default_rng(4).random(len(vectors)) > 0.2
    threads = [i["num_threads"] for i in ThreadpoolController().info()]
    for query_at in (0, 2000, 2010, 3999):
        query = vectors[query_at]
        found = copy.candidate_bounds(query, eligible, best)
        np.testing.assert_array_equal(found[0], copy.best_candidates(query, eligible, best))
        positions, scores = _candidate_scores(vectors, query, best, *found)
        assert set(positions.tolist()) <= set(found[0].tolist())
        assert (np.diff(positions) > 0).all()
        with threadpool_limits(limits=1, user_api="blas"):  # as the candidates are scored
            scanned = _scan_scores(vectors, positions, query)
        np.testing.assert_array_equal(scores, scanned)
        exact = _gathered(vectors, np.arange(len(vectors)), query)
        shown = np.where(eligible, exact, -np.inf)
        cut_off = np.sort(shown)[-best]
        assert set(np.flatnonzero(shown >= cut_off)) <= set(positions.tolist())
    assert [i["num_threads"] for i in ThreadpoolController().info()] == threads


def _index(vectors: np.ndarray) -> KindIndex:
    n = len(vectors)
    return KindIndex(
        "continuum",
        7,
        [f"ivo://x/{i:05d}" for i in range(n)],
        vectors,
        [None] * n,
        [NOW - timedelta(days=1)] * n,
        IndexOptions(quantize_from_images=1, quantize_from_dimensions=1),
    )


@pytest.mark.parametrize("make", SETS.values(), ids=SETS.keys())
def test_a_ranking_of_best_scores_cuts_as_the_exact_scores_do(make) -> None:
    """Every level of a ranking (TOP 3, 4 x 3 = 12 images, then x 16) is the exact scores'."""
    # To the bit with one BLAS thread; with several, a scan's rounding depends
    # on how its rows were split, and the scores agree to float32 rounding.
    with threadpool_limits(limits=1, user_api="blas"):
        _cuts_as_the_exact_scores_do(make)


def _cuts_as_the_exact_scores_do(make) -> None:
    index = _index(make(5001, 600))  # a last row the scan scores alone
    assert index.quantized is not None
    public = np.random.default_rng(3).random(len(index)) > 0.1
    ranking = RankedScores(slot=0, rows=3)
    for query_at in (1, 2500, 4000):
        query = index.vectors[query_at]
        scan = _kind_scores(index, query, public)  # today's exact scores
        exact = scan.scores
        full = RankedLevels(ranking, [scan])
        best = _kind_scores(index, query, public, RankedLevels.first_size(3))
        assert best.complete is not None
        cut = RankedLevels(ranking, [best])
        assert cut.dids(0) == full.dids(0)
        assert cut.threshold(0) == full.threshold(0)
        assert np.isnan(best.scores[~public]).all()
        known = ~np.isnan(best.scores)
        np.testing.assert_array_equal(best.scores[known], exact[known])  # to the bit
        assert cut.dids(1) == full.dids(1)  # completes the scores
        assert np.isnan(cut.kinds[0].scores[~public]).all()
        np.testing.assert_array_equal(cut.kinds[0].scores, exact)
        assert cut.dids(2) == full.dids(2)
        assert cut.is_last(len(full._sizes)) and not cut.is_last(len(full._sizes) - 1)


def test_an_index_quantises_only_from_its_thresholds() -> None:
    vectors = random_vectors(300, 64)
    n = len(vectors)
    common = ("continuum", 7, [f"ivo://x/{i}" for i in range(n)], vectors, [None] * n, [NOW] * n)
    assert KindIndex(*common).quantized is None  # defaults: from 50,000 images of d >= 512
    small = KindIndex(*common, IndexOptions(quantize_from_images=1, quantize_from_dimensions=65))
    assert small.quantized is None
    kept = KindIndex(*common, IndexOptions(quantize_from_images=300, quantize_from_dimensions=64))
    assert kept.quantized is not None
    assert kept.nbytes == vectors.nbytes + kept.quantized.nbytes


def test_a_non_finite_query_has_no_bound() -> None:
    copy = QuantizedVectors.fit(random_vectors(10, 8))
    with pytest.raises(ValueError, match="non-finite"):
        copy.bounds(np.array([np.nan] + [0.0] * 7, dtype=np.float32))


def test_codes_scales_and_bounds_are_those_of_the_definition() -> None:
    """c = round(v / s), s = max|v| / 127; w = ||v - s c|| + g (||v|| + s ||c||), rounded up."""
    vectors = clustered_vectors(500, 300)
    vectors[3] = 0.0
    copy = QuantizedVectors.fit(vectors)
    block = vectors.astype(np.float64)
    peak = np.abs(block).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32).astype(np.float64)
    codes = np.rint(block / scale[:, None])
    np.testing.assert_array_equal(copy.codes, codes.astype(np.int8))
    np.testing.assert_array_equal(copy.scales, scale.astype(np.float32))
    gamma = 300 * 2.0**-24 / (1 - 300 * 2.0**-24)
    norms = np.linalg.norm(block, axis=1) + scale * np.linalg.norm(codes, axis=1)
    bound = np.linalg.norm(block - scale[:, None] * codes, axis=1) + gamma * norms
    assert (copy.radius >= bound).all()
    np.testing.assert_allclose(copy.radius, bound, rtol=1e-8)
