"""Quick select: five k-means clusters of an image's most similar images, and their representatives.

The paper (Stoehr et al. 2024, "Interface"): "we have implemented a k-means
clustering algorithm to cluster the vectors of the 1000 most similar images
in five groups. The most representative image of each cluster is displayed
[...]. When the astronomer clicks on an image of this 'quick select' row,
the interface preselects the 15 images closest to that representative
image." The similarity service calls `quick_select` for every request, so
it has to take milliseconds:

* k-means (scikit-learn's Lloyd iterations, ``n_init=1``) runs on float32
  vectors from a k-means++ seeding done here in float32 with one matrix
  product per step. scikit-learn's own seeding computes its distances in
  float64 and took most of the time at d = 2048; with a fixed
  ``random_state`` both give the same kind of start (greedy k-means++ with
  ``2 + log k`` local trials), and one run suffices: the five groups of a
  neighbour list are what the user browses, not a statistic.
* The representative of a cluster is its member closest to the cluster's
  centroid; clusters are returned in the order of their representatives in
  the input (for a ranked list: the most similar representative first).
* Preselection: the ``n_preselect`` images with the highest cosine
  similarity to the representative, among the input, the representative
  itself first (it is the image the user clicked); ties by input order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

__all__ = ["QuickSelect", "quick_select"]


@dataclass(frozen=True)
class QuickSelect:
    """The quick-select row of one neighbour list.

    Attributes
    ----------
    representatives
        Index (into the input vectors) of each cluster's representative, in
        input order.
    preselected
        For each representative, the indices of the images it preselects,
        closest first (the representative itself first).
    labels
        Cluster of every input vector: the position of its cluster in
        ``representatives``.
    """

    representatives: list[int]
    preselected: list[list[int]]
    labels: np.ndarray


def quick_select(
    vectors: np.ndarray,
    n_clusters: int = 5,
    n_preselect: int = 15,
    random_state: int = 0,
    max_iter: int = 50,
) -> QuickSelect:
    """Cluster a neighbour list and pick the quick-select representatives.

    Parameters
    ----------
    vectors
        ``(n, d)`` L2-normalised vectors of the images of a list (typically
        the 1000 most similar images of the query, best first).
    n_clusters
        Number of clusters (fewer when there are fewer images).
    n_preselect
        Images preselected by each representative (at most ``n``).
    random_state
        Seed of the k-means++ seeding: the same list gives the same row.
    max_iter
        Bound on the Lloyd iterations (they converge in a handful).

    Returns
    -------
    QuickSelect
        Representatives, their preselections and the cluster labels.
    """
    points = np.ascontiguousarray(vectors, dtype=np.float32)
    n = points.shape[0]
    if n == 0:
        return QuickSelect([], [], np.zeros(0, dtype=np.int64))
    n_clusters = min(n_clusters, n)
    seeds = _kmeans_plusplus(points, n_clusters, np.random.default_rng(random_state))
    kmeans = KMeans(n_clusters, init=seeds, n_init=1, max_iter=max_iter, algorithm="lloyd")
    labels = kmeans.fit_predict(points)
    centroids = kmeans.cluster_centers_.astype(np.float32)
    representatives = []
    for cluster in range(n_clusters):
        members = np.nonzero(labels == cluster)[0]
        if members.size == 0:
            continue
        offsets = points[members] - centroids[cluster]
        representatives.append(int(members[np.argmin(np.einsum("ij,ij->i", offsets, offsets))]))
    representatives.sort()
    relabel = np.full(n_clusters, -1, dtype=np.int64)
    for position, representative in enumerate(representatives):
        relabel[labels[representative]] = position
    similarities = points @ points[representatives].T
    preselected = [
        _closest(similarities[:, column], representative, min(n_preselect, n))
        for column, representative in enumerate(representatives)
    ]
    return QuickSelect(representatives, preselected, relabel[labels])


def _closest(similarities: np.ndarray, representative: int, count: int) -> list[int]:
    """Pick the ``count`` most similar images: the representative, then by similarity, index."""
    others = similarities.copy()
    others[representative] = -np.inf
    if count - 1 < others.size:
        candidates = np.argpartition(-others, count - 1)[: count - 1]
    else:
        candidates = np.arange(others.size)
    candidates = candidates[np.isfinite(others[candidates])]
    order = np.lexsort((candidates, -others[candidates]))
    return [representative, *candidates[order].tolist()][:count]


def _kmeans_plusplus(points: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding in float32 (Arthur & Vassilvitskii 2007, as scikit-learn does it).

    Each new centre is the best of ``2 + log k`` candidates drawn with
    probability proportional to the squared distance to the nearest centre.
    """
    n = points.shape[0]
    norms = np.einsum("ij,ij->i", points, points)
    first = int(rng.integers(n))
    nearest = np.maximum(norms + norms[first] - 2 * (points @ points[first]), 0)
    chosen = [first]
    trials = 2 + int(math.log(n_clusters))
    for _ in range(1, n_clusters):
        total = float(nearest.sum())
        if total <= 0:
            candidates = rng.integers(n, size=trials)
        else:
            cumulative = np.cumsum(nearest, dtype=np.float64)
            candidates = np.searchsorted(cumulative, rng.random(trials) * cumulative[-1])
            candidates = np.minimum(candidates, n - 1)
        distances = (
            norms[None, :] + norms[candidates][:, None] - 2 * (points[candidates] @ points.T)
        )
        distances = np.minimum(np.maximum(distances, 0), nearest[None, :])
        best = int(np.argmin(distances.sum(1)))
        chosen.append(int(candidates[best]))
        nearest = distances[best]
    return points[chosen]
