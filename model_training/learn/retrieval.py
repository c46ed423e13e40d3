"""Same-source retrieval scores: the paper's outlook, made into numbers.

"In many cases we do have several images for each source […] This allows us
to construct an overall score value from the similarity distance of images
that we know are from the same source" (Stoehr et al. 2024, Outlook). For
every image that has another image of its source in the evaluated set, all
other images are ranked by cosine similarity, as the service ranks them, and
the ranks at which the same-source images appear are scored:

- recall@k: the fraction of queries with a same-source image in the first k;
- mean average precision (mAP): precision averaged at the rank of every
  same-source image, then over queries (the standard retrieval score,
  Manning et al., "Introduction to Information Retrieval", section 8.4);
- median first rank: the median rank of the first same-source image;
- class precision@10: where morphology classes are known, the fraction of
  the first 10 neighbours of every image that have its class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from .morphology import copy_scores, pairwise_similarity

__all__ = ["MAX_K", "RetrievalScores", "retrieval_scores", "self_retrieval_rate"]

MAX_K = 100
"""Longest neighbour list scored (recall curve from k = 1 to 100)."""


@dataclass(frozen=True)
class RetrievalScores:
    """Same-source retrieval scores of one set of vectors.

    Attributes
    ----------
    recall_at_1, recall_at_10, recall_at_100, mean_average_precision, median_first_rank
        As in the module description, over ``n_queries`` images.
    class_precision_at_10
        None where no morphology classes are known.
    recall_curve
        Recall at k = 1 … `MAX_K`.
    n_queries
        Images with at least one other image of their source.
    """

    recall_at_1: float
    recall_at_10: float
    recall_at_100: float
    mean_average_precision: float
    median_first_rank: float
    class_precision_at_10: float | None
    recall_curve: tuple[float, ...]
    n_queries: int

    def model_columns(self) -> dict[str, float | None]:
        """Return the scores under their ``similarity.model`` column names."""
        values = asdict(self)
        del values["recall_curve"], values["n_queries"]
        return values


def retrieval_scores(
    vectors: Tensor,
    source: np.ndarray,
    morphology: np.ndarray | None = None,
    *,
    block_size: int = 512,
) -> RetrievalScores:
    """Score how well cosine similarity of ``vectors`` brings images of one source together.

    Parameters
    ----------
    vectors
        ``(N, D)`` vectors, or ``(N, G, D)`` (best of G versions of the query,
        `model_training.learn.morphology.pairwise_similarity`); normalised
        here, so any scale works.
    source
        Source label of each image.
    morphology
        Morphology class of each image, or None.
    block_size
        Queries ranked at once (memory: ``block_size × N``).

    Returns
    -------
    RetrievalScores
        The scores; NaN where there is no query (no source seen twice).
    """
    vectors = torch.nn.functional.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=-1)
    n = vectors.shape[0]
    source_code = torch.as_tensor(np.unique(np.asarray(source), return_inverse=True)[1])
    class_code = None
    if morphology is not None:
        class_code = torch.as_tensor(np.unique(np.asarray(morphology), return_inverse=True)[1])
    first_ranks, average_precisions, class_precisions = [], [], []
    for start in range(0, n, block_size):
        queries = torch.arange(start, min(n, start + block_size))
        similarity = pairwise_similarity(vectors[queries], vectors)
        similarity[torch.arange(len(queries)), queries] = -torch.inf
        # Stable sort: ties keep catalogue order, so scores are reproducible.
        order = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, : n - 1]
        relevant = source_code[order] == source_code[queries, None]
        n_relevant = relevant.sum(1)
        has_relevant = n_relevant > 0
        ranks = torch.arange(1, n, dtype=torch.float64)
        first_ranks.append((relevant.float().argmax(1) + 1)[has_relevant])
        precision_at_hit = relevant.cumsum(1) / ranks * relevant
        ap = precision_at_hit.sum(1) / n_relevant.clamp_min(1)
        average_precisions.append(ap[has_relevant])
        if class_code is not None:
            top = order[:, :10]
            class_precisions.append((class_code[top] == class_code[queries, None]).double().mean(1))
    first = torch.cat(first_ranks).double() if first_ranks else torch.empty(0)
    n_queries = len(first)
    if n_queries == 0:
        curve = (float("nan"),) * MAX_K
        nan = float("nan")
        return RetrievalScores(nan, nan, nan, nan, nan, None, curve, 0)
    curve = tuple(float((first <= k).double().mean()) for k in range(1, MAX_K + 1))
    class_precision = float(torch.cat(class_precisions).mean()) if class_precisions else None
    return RetrievalScores(
        recall_at_1=curve[0],
        recall_at_10=curve[9],
        recall_at_100=curve[MAX_K - 1],
        mean_average_precision=float(torch.cat(average_precisions).mean()),
        median_first_rank=float(np.median(first.numpy())),
        class_precision_at_10=class_precision,
        recall_curve=curve,
        n_queries=n_queries,
    )


def self_retrieval_rate(originals: Tensor, transformed: Tensor, k: int = 10) -> float:
    """Fraction of transformed images whose original is among their ``k`` nearest originals.

    Parameters
    ----------
    originals
        ``(N, D)`` vectors of the images as stored.
    transformed
        ``(N, D)`` vectors of the same images after a random rotation, shear
        and rescaling, in the same order.
    k
        Length of the neighbour list searched.
    """
    return copy_scores(originals, transformed, k).recall_at_10
