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

import math

import numpy as np
from numba import njit, prange

__all__ = ["gathered_dots", "int8_scores", "quantise_rows"]


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


@njit(parallel=True, nogil=True, cache=True)
def quantise_rows(
    vectors: np.ndarray,
    gamma: float,
    codes: np.ndarray,
    scales: np.ndarray,
    radius: np.ndarray,
) -> None:
    """Write each row's int8 codes, scale and error bound (`quantized.QuantizedVectors`).

    In float64 and without fastmath: the residual, the vector's norm and
    the codes' are bounds, and must not be reordered into float32.
    """
    rows, width = vectors.shape
    for i in prange(rows):
        peak = 0.0
        for j in range(width):
            peak = max(peak, abs(np.float64(vectors[i, j])))
        scale = np.float32(peak / 127.0) if peak > 0.0 else np.float32(1.0)
        step = np.float64(scale)
        residual = 0.0
        vector_norm = 0.0
        code_norm = 0.0
        for j in range(width):
            value = np.float64(vectors[i, j])
            code = min(max(np.rint(value / step), -127.0), 127.0)
            codes[i, j] = np.int8(code)
            error = value - step * code
            residual += error * error
            vector_norm += value * value
            code_norm += code * code
        scales[i] = scale
        radius[i] = math.sqrt(residual) + gamma * (
            math.sqrt(vector_norm) + step * math.sqrt(code_norm)
        )
