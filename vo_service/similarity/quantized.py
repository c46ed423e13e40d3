"""An int8 copy of the full vectors, whose scores come with a proven error bound.

A ranking in ADQL (`vo_service.adql.ranked_scores`) must be exact: its best
N images are those of the exact scores, ties at the cut-off included. The
exact scores of every image are a float32 matrix-vector product that reads
every vector's 4 d bytes; this copy reads d bytes per vector instead, and
bounds how far each of its scores can be from the exact one, so that only
the images whose bound reaches the N-th best are scored exactly.

Each vector ``v`` is stored as ``s c`` with ``s = max|v_j| / 127`` (float32)
and ``c = round(v / s)`` (int8). For a float32 query ``q``, the first pass
computes ``a = s * fl(c . q)`` (`kernels.int8_scores`, then one exact
float64 product: two float32 numbers multiply exactly in float64). The
exact score ``e`` the service returns is ``fl(v . q)``, a float32 dot
product in any summation order. With ``u = 2^-24`` and
``g = d u / (1 - d u)`` (a dot product of d terms, products rounded too,
in any order of additions: Higham, Accuracy and Stability of Numerical
Algorithms, 2002, section 3.1):

- ``|fl(c . q) - c . q| <= g ||c|| ||q||`` (Cauchy-Schwarz on ``sum |c_j q_j|``),
- ``|fl(v . q) - v . q| <= g ||v|| ||q||``,
- ``|v . q - s c . q| <= r ||q||`` with ``r = ||v - s c||``,

so ``|e - a| <= ||q|| w`` with ``w = r + g (||v|| + s ||c||)``, computed per
vector in float64 at load and rounded up (`SLACK`), as is ``||q||``. The
bound assumes no float32 underflow or overflow (unit vectors and queries
of ordinary size; a non-finite query is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import int8_scores, quantise_rows

__all__ = ["QuantizedVectors"]

_UNIT_ROUNDOFF = 2.0**-24
SLACK = 1.0 + 1e-9
"""Factor every computed bound is raised by: float64 roundings of the bound itself (~1e-16)."""


@dataclass(frozen=True)
class QuantizedVectors:
    """Every vector as ``scale * codes``, with the bound of its scores' error.

    Attributes
    ----------
    codes
        ``(n, d)`` int8, ``round(v / scale)``.
    scales
        ``(n,)`` float32, ``max |v_j| / 127`` (1 for a zero vector).
    radius
        ``(n,)`` float64 ``w``: ``|exact - approximate| <= ||q|| w`` for every query ``q``
        (`kernels.quantise_rows`).
    """

    codes: np.ndarray
    scales: np.ndarray
    radius: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> QuantizedVectors:
        """Quantise ``vectors`` (float32 rows); residuals and norms in float64."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows, width = vectors.shape
        gamma = width * _UNIT_ROUNDOFF / (1.0 - width * _UNIT_ROUNDOFF)
        codes = np.empty((rows, width), dtype=np.int8)
        scales = np.empty(rows, dtype=np.float32)
        radius = np.empty(rows, dtype=np.float64)
        quantise_rows(vectors, gamma, codes, scales, radius)
        return cls(codes, scales, radius * SLACK)

    @property
    def nbytes(self) -> int:
        """Memory held by the copy."""
        return self.codes.nbytes + self.scales.nbytes + self.radius.nbytes

    def bounds(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return each vector's approximate score and the half-width of its interval, float64.

        The exact score ``fl(v . query)`` lies in ``approximate ± half-width``.

        Raises
        ------
        ValueError
            For a query with a non-finite component (no bound holds).
        """
        weights = np.ascontiguousarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(weights.astype(np.float64)))
        if not np.isfinite(norm):
            raise ValueError("the query vector has a non-finite component")
        dots = np.empty(self.codes.shape[0], dtype=np.float32)
        int8_scores(self.codes, weights, dots)
        approximate = self.scales.astype(np.float64) * dots.astype(np.float64)
        return approximate, self.radius * (norm * SLACK)

    def best_candidates(self, query: np.ndarray, eligible: np.ndarray, best: int) -> np.ndarray:
        """Positions of the eligible vectors whose exact score may be among the ``best`` best.

        Every eligible vector whose exact score is at least the ``best``-th best
        exact score is in them, ties included: at least ``best`` vectors score
        at least the ``best``-th best lower bound, so that score is at least this
        bound too, and a vector reaching it has an upper bound reaching it.
        """
        return self.candidate_bounds(query, eligible, best)[0]

    def candidate_bounds(
        self, query: np.ndarray, eligible: np.ndarray, best: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`best_candidates`, in index order, with each one's approximate score and upper bound.

        The bounds let the caller score exactly fewer of them
        (`vo_service.similarity.service`): once ``best`` of them are scored,
        a candidate whose upper bound is below the lowest of those scores
        cannot reach the ``best``-th best.
        """
        approximate, half = self.bounds(query)
        positions = np.flatnonzero(eligible)
        if positions.size > best:
            lower = approximate[positions] - half[positions]
            at = positions.size - best
            floor = np.partition(lower, at)[at]
            upper = approximate[positions] + half[positions]
            positions = positions[upper >= floor]
        return positions, approximate[positions], approximate[positions] + half[positions]
