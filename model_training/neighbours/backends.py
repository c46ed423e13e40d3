"""Optional search backends for full recomputations: faiss and RAPIDS cuML, when installed.

The exact search of `model_training.neighbours.exact_top_k` needs nothing but torch.
Archives that already run faiss (CPU, or GPU builds) or RAPIDS cuML (the
GPU library the paper used) can let those libraries do the products and
the selection. Both are exact brute-force searches here (``IndexFlatIP``;
cuML's ``brute`` algorithm), run per scientific category over the
compatible images, so the lists hold the same images as the exact path:

* ties at the k-th place are resolved as everywhere else (by DID) by asking
  for ``_TIE_MARGIN`` more neighbours than needed and re-sorting, which is
  exact unless more than that many images tie there;
* the similarities come from another BLAS and can differ in the last bit.

They serve only full recomputations; incremental updates always use the
torch search.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np

from .exact_top_k import VectorSpace, merge_best

__all__ = ["available_backends", "backend_top_k"]

_TIE_MARGIN = 8
_QUERIES = 8192


class BackendNotAvailableError(ValueError):
    """The requested search library is not installed."""


def available_backends() -> list[str]:
    """List the search backends usable here: always ``torch``, plus installed libraries."""
    names = ["torch"]
    names += [name for name in ("faiss", "cuml") if importlib.util.find_spec(name) is not None]
    return names


def backend_top_k(
    name: str, space: VectorSpace, k: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(positions, values, keys)`` like `all_pairs_top_k`, found by another library.

    Parameters
    ----------
    name
        ``faiss`` or ``cuml``.
    space
        The vectors, categories and tie keys.
    k
        Neighbours per vector.
    """
    if name not in available_backends() or name == "torch":
        raise BackendNotAvailableError(
            f"search backend {name!r} is not available here; installed: "
            f"{', '.join(available_backends())}"
        )
    search = _faiss_search if name == "faiss" else _cuml_search
    vectors = space.vectors.cpu().numpy()
    keys = space.tie_keys.cpu().numpy()
    codes = space.categories.numpy()
    for code in np.unique(codes).tolist():
        queries = np.nonzero(codes == code)[0]
        columns = np.nonzero(space.compatible[code].numpy()[codes])[0]
        wanted = min(k + 1 + _TIE_MARGIN, columns.size)
        for start in range(0, queries.size, _QUERIES):
            part = queries[start : start + _QUERIES]
            similarities, found = search(vectors[columns], vectors[part], wanted)
            found = columns[found]
            similarities[found == part[:, None]] = -np.inf
            values = np.where(np.isfinite(similarities), similarities, -np.inf).astype(np.float32)
            empty = np.full((part.size, 0), -np.inf, dtype=np.float32)
            best_values, best_keys = merge_best(
                values, keys[found], empty, np.zeros((part.size, 0), np.int32), k
            )
            yield part, best_values, best_keys


def _faiss_search(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(base)
    similarities, found = index.search(queries, k)
    return similarities, found


def _cuml_search(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from cuml.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine")
    model.fit(base)
    distances, found = model.kneighbors(queries)
    return (1.0 - np.asarray(distances)).astype(np.float32), np.asarray(found)
