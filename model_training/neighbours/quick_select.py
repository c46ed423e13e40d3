"""Quick select: five k-means clusters of an image's most similar images, and their representatives.

The paper (Stoehr et al. 2024, "Interface") clusters the vectors of the
1000 most similar images into five groups, shows the most representative
image of each, and preselects the 15 images closest to the one the user
clicks. The similarity service calls `quick_select` on every request, so it
must take milliseconds (figures in benchmarks/README.md, "Quick select"):

* Vectors of more than 256 dimensions are clustered on their 16 leading
  principal components: five clusters are described by four directions
  between their centroids, which the leading components hold, and every
  pass over the full vectors costs about as much as the whole clustering
  should. The components come from a randomized SVD with one power
  iteration (Halko, Martinsson & Tropp 2011, algorithms 4.3 and 5.1),
  written out in float32 because scikit-learn's ``randomized_svd`` draws
  its test matrix in float64 and so copies the vectors at twice their size.
* The call runs on one thread: it is a few milliseconds of small products,
  the server runs several requests at once, and OpenMP threads spinning on
  busy cores make it several times slower.
* k-means is scikit-learn's (k-means++, Lloyd) with a fixed ``random_state``
  and ``n_init=1``: the five groups are what the user browses, not a
  statistic to optimise.
* A cluster's representative is its member closest to the centroid in the
  full vector space; clusters come in the order of their representatives in
  the input (for a ranked list: the most similar first).
* Preselection: the ``n_preselect`` images most similar to the
  representative, among the input, the representative itself first (the
  image the user clicked); ties by input order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import ThreadpoolController

__all__ = ["QuickSelect", "quick_select"]

_THREAD_POOLS = ThreadpoolController()
"""BLAS and OpenMP pools, found once: looking them up again costs 3 ms a call."""


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
    components: int | None = 16,
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
    components
        Principal components k-means runs on when the vectors have more than 16
        times as many dimensions; None: always the full vectors.

    Returns
    -------
    QuickSelect
        Representatives, their preselections and the cluster labels.
    """
    points = np.ascontiguousarray(vectors, dtype=np.float32)
    n = points.shape[0]
    if n == 0:
        return QuickSelect([], [], np.zeros(0, dtype=np.int64))
    with _THREAD_POOLS.limit(limits=1):
        return _quick_select(points, n_clusters, n_preselect, random_state, max_iter, components)


def _quick_select(
    points: np.ndarray,
    n_clusters: int,
    n_preselect: int,
    random_state: int,
    max_iter: int,
    components: int | None,
) -> QuickSelect:
    n = points.shape[0]
    n_clusters = min(n_clusters, n)
    kmeans = KMeans(n_clusters, n_init=1, max_iter=max_iter, random_state=random_state)
    labels = kmeans.fit_predict(_reduced(points, components, random_state))
    representatives = _closest_to_centroids(points, labels, n_clusters)
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


def _closest_to_centroids(points: np.ndarray, labels: np.ndarray, n_clusters: int) -> list[int]:
    """Return, per non-empty cluster, the member closest to the cluster's mean (full space).

    Three passes over the vectors: the means, the products with them, the norms.
    """
    n = points.shape[0]
    counts = np.bincount(labels, minlength=n_clusters)
    membership = np.zeros((n_clusters, n), dtype=np.float32)
    membership[labels, np.arange(n)] = 1.0
    means = (membership @ points) / np.maximum(counts, 1)[:, None].astype(np.float32)
    own = (points @ means.T)[np.arange(n), labels]
    distances = np.einsum("ij,ij->i", points, points) - 2 * own
    distances += np.einsum("ij,ij->i", means, means)[labels]
    representatives = []
    for cluster in np.nonzero(counts)[0].tolist():
        members = np.nonzero(labels == cluster)[0]
        representatives.append(int(members[np.argmin(distances[members])]))
    return representatives


def _reduced(points: np.ndarray, components: int | None, random_state: int) -> np.ndarray:
    """Return the points' coordinates on their leading principal components (or the points)."""
    n, d = points.shape
    if components is None or d <= 16 * components or n <= components:
        return points
    centred = points - points.mean(0)
    rng = np.random.default_rng(random_state)
    test = rng.standard_normal((d, components + 8), dtype=np.float32)
    basis, _ = np.linalg.qr(centred @ test)
    basis, _ = np.linalg.qr(centred @ (centred.T @ basis))  # the power iteration
    small_left, singular, _ = np.linalg.svd(basis.T @ centred, full_matrices=False)
    left = basis @ small_left[:, :components]
    return (left * singular[:components]).astype(np.float32)
