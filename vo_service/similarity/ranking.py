"""Rank images against a combination of selected images: the arithmetic of the similarity service.

**The combined query.** The paper (Stoehr et al. 2024, "Interface") shows
"the images most similar to the combination of the selected images". The
vectors are L2-normalised, so cosine similarity is a dot product, and the
combination is the normalised mean of the selected vectors: the direction
that maximises the summed cosine similarity to all of them, so no single
selection dominates. Images the user marked "less like these" pull the query
away: ``q = normalise(mean(selected) - λ mean(excluded))`` with ``λ = 0.5``.
This is Rocchio's relevance feedback (Rocchio 1971), whose usual weights
also count negatives less than positives: a negative says what is not
wanted, which is weaker evidence than what is; and with ``λ < 1`` a negative
that equals a selected image halves its weight instead of cancelling the
query.

**Ranking.** Scores are float32 dot products, ranked best first; ties (the
same score) go to the earlier position, so a ranking never depends on the
order numpy happened to partition in.

**The compact copy.** Scanning every vector of a 260,000-image archive at
d = 2048 reads 2 GB per query, and a single query vector makes that scan
bound by memory bandwidth, not arithmetic. `ReducedCopy` keeps the vectors
projected onto their leading principal axes (centred PCA), each axis
quantised to int8 with its own scale: 384 axes take 1/21 of the memory of
the full vectors. A query scores all images there, keeps a generous
candidate set, and re-ranks those candidates exactly with the full float32
vectors (`rerank`). What the approximation can lose is only which images
enter the candidate set, never their final scores or order; how generous
the set must be is measured on the data itself
(`vo_service.similarity.index`). Both loops are compiled
(`vo_service.similarity.kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import gathered_dots, int8_scores

__all__ = [
    "NEGATIVE_WEIGHT",
    "EmptyQueryError",
    "ReducedCopy",
    "query_vector",
    "rerank",
    "top_positions",
]

NEGATIVE_WEIGHT = 0.5
"""λ: weight of the mean of the excluded images against the mean of the selected ones."""

_SMALLEST_NORM = 1e-6


class EmptyQueryError(ValueError):
    """The selected and excluded images cancel out: there is no direction to rank by."""


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, _SMALLEST_NORM)


def query_vector(
    selected: np.ndarray,
    excluded: np.ndarray | None = None,
    *,
    negative_weight: float = NEGATIVE_WEIGHT,
) -> np.ndarray:
    """Combine selected (and excluded) image vectors into one unit query vector.

    Parameters
    ----------
    selected
        ``(n, d)`` vectors of the selected images, ``n >= 1``.
    excluded
        ``(m, d)`` vectors of the images to rank away from, or None.
    negative_weight
        λ in ``mean(selected) - λ mean(excluded)``.

    Returns
    -------
    numpy.ndarray
        ``(d,)`` float32, unit length.

    Raises
    ------
    EmptyQueryError
        When the combination is (numerically) the zero vector.
    """
    query = _normalised(selected).mean(axis=0)
    if excluded is not None and len(excluded):
        query = query - negative_weight * _normalised(excluded).mean(axis=0)
    norm = float(np.linalg.norm(query))
    if norm < _SMALLEST_NORM:
        raise EmptyQueryError(
            "the selected images cancel each other out (or the excluded ones cancel them): "
            "there is nothing to rank by; select fewer images or exclude fewer"
        )
    return (query / norm).astype(np.float32)


def top_positions(scores: np.ndarray, positions: np.ndarray, depth: int) -> np.ndarray:
    """Return the indices into ``scores`` of the ``depth`` best, best first.

    Parameters
    ----------
    scores
        Score of each candidate.
    positions
        Position of each candidate in the index, the tie-breaker (smaller first).
    depth
        How many to return (fewer when there are fewer candidates).
    """
    count = len(scores)
    if depth <= 0 or count == 0:
        return np.zeros(0, dtype=np.int64)
    if depth < count:
        threshold = np.partition(scores, count - depth)[count - depth]
        chosen = np.flatnonzero(scores >= threshold)
    else:
        chosen = np.arange(count)
    order = np.lexsort((positions[chosen], -scores[chosen]))
    return chosen[order[:depth]]


@dataclass(frozen=True)
class ReducedCopy:
    """The vectors on their ``r`` leading principal axes, int8, for a fast first pass.

    Attributes
    ----------
    mean
        ``(d,)`` mean vector the projection is centred on.
    basis
        ``(d, r)`` orthonormal principal axes, float32.
    scale
        ``(r,)`` value of one int8 step on each axis.
    codes
        ``(n, r)`` the projected vectors divided by ``scale``, rounded, int8.
    """

    mean: np.ndarray
    basis: np.ndarray
    scale: np.ndarray
    codes: np.ndarray

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        dimensions: int,
        *,
        sample_size: int = 20_000,
        seed: int = 0,
        batch_rows: int = 32_768,
    ) -> ReducedCopy:
        """Find the principal axes on a sample of the vectors and project them all.

        The centred inner product ``q . (x - mean)`` ranks images exactly as
        ``q . x`` does (the difference is the same for every image), and
        centring lets the axes describe how images differ rather than what
        they share. Each axis's int8 step is set from the sample's largest
        coordinate on it, with a 10 % margin; the rare larger coordinate is
        clipped, which only makes its first-pass score less exact.
        """
        n, d = vectors.shape
        dimensions = min(dimensions, d)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
        sample = vectors[rows].astype(np.float64)
        mean = sample.mean(axis=0)
        sample -= mean
        second_moment = sample.T @ sample
        eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
        leading = np.argsort(eigenvalues)[::-1][:dimensions]
        basis = np.ascontiguousarray(eigenvectors[:, leading], dtype=np.float32)
        largest = np.abs(sample @ eigenvectors[:, leading]).max(axis=0)
        scale = (1.1 * np.maximum(largest, 1e-12) / 127.0).astype(np.float32)
        mean32 = mean.astype(np.float32)
        codes = np.empty((n, dimensions), dtype=np.int8)
        for start in range(0, n, batch_rows):
            projected = ((vectors[start : start + batch_rows] - mean32) @ basis) / scale
            codes[start : start + len(projected)] = np.clip(np.rint(projected), -127, 127)
        return cls(mean32, basis, scale, codes)

    @property
    def nbytes(self) -> int:
        """Memory held by the copy."""
        return self.mean.nbytes + self.basis.nbytes + self.scale.nbytes + self.codes.nbytes

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Approximate ``query . x`` (up to a constant) for every vector, as float32."""
        weights = ((query @ self.basis) * self.scale).astype(np.float32)
        out = np.empty(len(self.codes), dtype=np.float32)
        int8_scores(self.codes, weights, out)
        return out


def rerank(vectors: np.ndarray, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Exact float32 scores of the candidate ``positions`` (the second stage)."""
    out = np.empty(len(positions), dtype=np.float32)
    gathered_dots(vectors, positions, np.ascontiguousarray(query, dtype=np.float32), out)
    return out
