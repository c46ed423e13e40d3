"""The two loops of the two-stage ranking, compiled with numba.

Both are memory-bound scans that numpy and torch can only do with an extra
pass: numpy has no int8 matrix product that uses the CPU's vector units
(its integer products are plain loops, and torch's float16 product on AVX2
converted element by element, at a third of memory speed), and gathering
candidate rows with fancy indexing copies them before the product reads
them again. Compiled loops read each byte once, with vector instructions,
on every core (``prange``), without holding the GIL (requests rank in
worker threads).

Summation order differs from BLAS, as BLAS's differs between machines:
the scores agree with numpy's to float32 rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["gathered_dots", "int8_scores"]


@njit(parallel=True, fastmath=True, nogil=True, cache=True)
def int8_scores(codes: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """Write ``codes[i] . weights`` (int8 rows, float32 weights) into ``out[i]`` for every row."""
    rows, width = codes.shape
    for i in prange(rows):
        total = np.float32(0.0)
        for j in range(width):
            total += np.float32(codes[i, j]) * weights[j]
        out[i] = total


@njit(parallel=True, fastmath=True, nogil=True, cache=True)
def gathered_dots(
    vectors: np.ndarray, positions: np.ndarray, query: np.ndarray, out: np.ndarray
) -> None:
    """Write ``vectors[positions[k]] . query`` into ``out[k]``, reading each row in place."""
    width = vectors.shape[1]
    for k in prange(positions.shape[0]):
        row = positions[k]
        total = np.float32(0.0)
        for j in range(width):
            total += vectors[row, j] * query[j]
        out[k] = total
