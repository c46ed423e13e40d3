"""Quick select: five clusters of a neighbour list, their representatives and preselections."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.neighbours.quick_select import quick_select


def clustered(d: int, seed: int, n: int = 1000, spread: float = 0.6):
    """Unit vectors around five random directions, shuffled like a ranked list."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, 5, n)
    vectors = centres[truth] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), truth


@pytest.mark.parametrize("d", [128, 2048])
def test_known_clusters_are_found(d):
    vectors, truth = clustered(d, seed=d)
    result = quick_select(vectors)
    assert len(result.representatives) == 5
    assert result.representatives == sorted(result.representatives)
    # One representative per true cluster, and the labels are the true clusters.
    assert sorted(truth[result.representatives].tolist()) == [0, 1, 2, 3, 4]
    for position, representative in enumerate(result.representatives):
        assert np.array_equal(result.labels == position, truth == truth[representative])


@pytest.mark.parametrize("d", [64, 2048])
def test_representative_is_the_member_closest_to_the_centroid(d):
    # At d = 2048 k-means runs on principal components; representatives are
    # still chosen in the full space.
    vectors, _ = clustered(d, seed=1, spread=1.5)
    result = quick_select(vectors)
    for position, representative in enumerate(result.representatives):
        members = np.nonzero(result.labels == position)[0]
        centroid = vectors[members].mean(0)
        distances = np.linalg.norm(vectors[members] - centroid, axis=1)
        assert representative == members[np.argmin(distances)]


def test_preselection_is_the_15_closest_to_the_representative():
    vectors, _ = clustered(32, seed=2, spread=1.0)
    result = quick_select(vectors)
    for representative, chosen in zip(result.representatives, result.preselected, strict=True):
        assert len(chosen) == 15 and chosen[0] == representative
        similarity = vectors @ vectors[representative]
        similarity[representative] = np.inf
        expected = np.lexsort((np.arange(len(vectors)), -similarity))[:15]
        assert chosen == expected.tolist()


def test_same_list_same_row():
    vectors, _ = clustered(128, seed=3, spread=2.0)
    first, second = quick_select(vectors), quick_select(vectors)
    assert first.representatives == second.representatives
    assert first.preselected == second.preselected
    assert quick_select(vectors, random_state=1).labels.shape == (1000,)


def test_short_lists():
    vectors, _ = clustered(16, seed=4, n=8)
    result = quick_select(vectors)
    assert len(result.representatives) == 5
    assert all(len(chosen) == 8 for chosen in result.preselected)
    assert len(quick_select(vectors[:3]).representatives) == 3
    assert quick_select(vectors[:0]).representatives == []
