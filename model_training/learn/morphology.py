"""Morphology scores: how well a ranking brings one class together, at any orientation.

Astronomers search by morphology (a disc at any position angle should find
discs), so besides same-source retrieval (`model_training.learn.retrieval`)
a way of making vectors is scored by

- class precision@10 and class mAP: for every image, all others ranked by
  cosine similarity; the fraction of the first 10 with its morphology
  class, and the average precision over all images of its class; per class,
  overall, and on the high-S/N subset (estimated peak S/N >= 20);
- copy retrieval: copies of every image (rotated by a random angle and
  flipped; or zoomed out by 0.5 at the same beam in pixels) are ranked
  against the originals; the fraction whose original is in their first 10,
  and the mean cosine between an image and its copy;
- the morphology score combining them (`morphology_score`).

Vectors are ``(N, D)``; a method that compares an image under several
transforms (the rotation-aligned pixel baseline) gives ``(N, G, D)``, the
first of the ``G`` being the image as it is: the similarity of a query to a
gallery image is then the best over the query's ``G`` versions
(`pairwise_similarity`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from .augment import AffineAugmentation

__all__ = [
    "HIGH_SNR",
    "ROTATED_COPY",
    "ZOOMED_COPY",
    "ClassScores",
    "CopyScores",
    "MorphologyScores",
    "class_scores",
    "copy_scores",
    "dihedral_views",
    "morphology_score",
    "pairwise_similarity",
    "peak_snr",
    "score_morphology",
]

HIGH_SNR = 20.0
"""Peak S/N from which an image counts as high-S/N (classes are then clear by eye)."""

MORPHOLOGY_WEIGHTS = {
    "class_precision_at_10": 0.4,
    "class_map": 0.2,
    "rotated_recall_at_10": 0.2,
    "zoomed_recall_at_10": 0.1,
    "same_source_map": 0.1,
}
"""Weights of `morphology_score`; they add up to 1."""

ROTATED_COPY = AffineAugmentation(
    crop_size=64, scale_range=(1.0, 1.0), max_shear_deg=0.0, flip=True
)
"""A rotation by any angle, and a mirror image for half of them: the rotated copies."""

ZOOMED_COPY = AffineAugmentation(
    crop_size=64,
    scale_range=(0.5, 0.5),
    max_shear_deg=0.0,
    max_rotation_deg=0.0,
    flip=False,
    fill="noise",
    beam_pixels=5.0,
)
"""The source at half its size, smoothed back to the 5-pixel beam of ALMA's pipeline grid.

Beyond the original field (the outer half of the copy) it has noise of the
cut-out's level, as a coarser observation of the source would: a flat zero
border would tell every method that the image is a copy."""


def dihedral_views(images: Tensor) -> list[Tensor]:
    """Return the 8 images of the dihedral group D4: right-angle rotations and mirrors.

    ``images`` is ``(..., H, W)`` with ``H == W``; the identity comes first.
    """
    turns = [torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
    return turns + [torch.flip(turn, dims=(-1,)) for turn in turns]


def pairwise_similarity(queries: Tensor, gallery: Tensor) -> Tensor:
    """Cosine similarity ``(B, N)`` of unit query vectors to unit gallery vectors.

    ``(B, D)`` queries against ``(N, D)``; ``(B, G, D)`` queries (G versions
    of each) against the first version of ``(N, G, D)`` or ``(N, D)``,
    keeping the best of the G.
    """
    if gallery.ndim == 3:
        gallery = gallery[:, 0]
    if queries.ndim == 2:
        return queries @ gallery.T
    return torch.einsum("bgd,nd->bgn", queries, gallery).amax(dim=1)


def _unit(vectors: Tensor) -> Tensor:
    return functional.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=-1)


def peak_snr(cutouts: np.ndarray | Tensor, centre: int = 24) -> np.ndarray:
    """Estimated peak S/N of each cut-out: its central maximum over its robust noise.

    General on purpose (no truth file needed): the maximum of the central
    ``centre`` x ``centre`` pixels, less the median, over 1.4826 x the median
    absolute deviation of all non-blank pixels.
    """
    images = torch.as_tensor(np.asarray(cutouts), dtype=torch.float32)
    flat = images.flatten(1).masked_fill(images.flatten(1) == 0, float("nan"))
    median = flat.nanmedian(dim=1).values.nan_to_num(0.0)
    mad = (flat - median[:, None]).abs().nanmedian(dim=1).values.nan_to_num(1.0)
    side = images.shape[-1]
    lo = (side - centre) // 2
    peak = images[:, lo : lo + centre, lo : lo + centre].flatten(1).amax(dim=1)
    return ((peak - median) / (1.4826 * mad).clamp_min(1e-6)).numpy()


@dataclass(frozen=True)
class ClassScores:
    """Class retrieval of one set of vectors.

    Attributes
    ----------
    precision_at_10, mean_average_precision
        Over all queries.
    per_class
        Class name -> (precision@10, mAP) over that class's queries.
    high_snr_precision_at_10, high_snr_map
        Over the queries with peak S/N >= `HIGH_SNR` (NaN where none).
    n_queries, n_high_snr
        Queries scored, and those of high S/N.
    """

    precision_at_10: float
    mean_average_precision: float
    per_class: dict[str, tuple[float, float]]
    high_snr_precision_at_10: float
    high_snr_map: float
    n_queries: int
    n_high_snr: int


def class_scores(
    vectors: Tensor,
    classes: np.ndarray,
    high_snr: np.ndarray | None = None,
    *,
    k: int = 10,
    block_size: int = 256,
) -> ClassScores:
    """Score how well ``vectors`` rank images of the query's morphology class first.

    Parameters
    ----------
    vectors
        ``(N, D)`` or ``(N, G, D)`` (see `pairwise_similarity`); normalised here.
    classes
        Morphology class of each image.
    high_snr
        Boolean mask of the high-S/N images (queries of the subset; all
        images remain in the gallery), or None.
    k
        Length of the neighbour list of the precision.
    block_size
        Queries ranked at once.
    """
    vectors = _unit(vectors)
    n = len(vectors)
    names, codes = np.unique(np.asarray(classes).astype(str), return_inverse=True)
    code = torch.as_tensor(codes)
    precision, average = [], []
    for start in range(0, n, block_size):
        queries = torch.arange(start, min(n, start + block_size))
        similarity = pairwise_similarity(vectors[queries], vectors)
        similarity[torch.arange(len(queries)), queries] = -torch.inf
        order = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, : n - 1]
        relevant = (code[order] == code[queries, None]).double()
        precision.append(relevant[:, :k].mean(1))
        hits = relevant.sum(1)
        ranks = torch.arange(1, n, dtype=torch.float64)
        ap = (relevant.cumsum(1) / ranks * relevant).sum(1) / hits.clamp_min(1)
        average.append(torch.where(hits > 0, ap, torch.nan))
    p10 = torch.cat(precision).numpy() if precision else np.empty(0)
    ap = torch.cat(average).numpy() if average else np.empty(0)
    per_class = {
        str(name): (_mean(p10[codes == i]), _mean(ap[codes == i])) for i, name in enumerate(names)
    }
    mask = np.zeros(n, bool) if high_snr is None else np.asarray(high_snr, bool)
    return ClassScores(
        precision_at_10=_mean(p10),
        mean_average_precision=_mean(ap),
        per_class=per_class,
        high_snr_precision_at_10=_mean(p10[mask]),
        high_snr_map=_mean(ap[mask]),
        n_queries=n,
        n_high_snr=int(mask.sum()),
    )


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


@dataclass(frozen=True)
class CopyScores:
    """How well transformed copies find their originals.

    Attributes
    ----------
    recall_at_10
        Fraction of copies whose original is among their 10 nearest originals.
    mean_cosine
        Mean cosine similarity between an image and its copy.
    """

    recall_at_10: float
    mean_cosine: float


def copy_scores(originals: Tensor, copies: Tensor, k: int = 10) -> CopyScores:
    """Rank every copy against all originals (same order: copy i is of original i)."""
    originals, copies = _unit(originals), _unit(copies)
    hits, cosines = 0, []
    for start in range(0, len(copies), 256):
        similarity = pairwise_similarity(copies[start : start + 256], originals)
        own = torch.arange(start, start + len(similarity))
        cosines.append(similarity[torch.arange(len(similarity)), own])
        top = similarity.topk(min(k, len(originals)), dim=1).indices
        hits += int((top == own[:, None]).any(1).sum())
    mean_cosine = float(torch.cat(cosines).mean()) if cosines else float("nan")
    return CopyScores(hits / max(1, len(copies)), mean_cosine)


def morphology_score(
    classes: ClassScores, rotated: CopyScores, zoomed: CopyScores, same_source_map: float
) -> float:
    """Combine the scores into the one `vosim tune` maximises and ``similarity.model`` stores.

    ``0.4 class P@10 + 0.2 class mAP + 0.2 rotated-copy recall@10 + 0.1
    zoomed-copy recall@10 + 0.1 same-source mAP`` (each in 0-1): class
    retrieval first, since that is what a search by morphology is for;
    invariance to orientation next, as the classes carry none; scale and
    same-source retrieval as checks. A missing same-source score (no source
    seen twice) counts 0.
    """
    parts = {
        "class_precision_at_10": classes.precision_at_10,
        "class_map": classes.mean_average_precision,
        "rotated_recall_at_10": rotated.recall_at_10,
        "zoomed_recall_at_10": zoomed.recall_at_10,
        "same_source_map": same_source_map,
    }
    return float(
        sum(
            w * (0.0 if np.isnan(parts[name]) else parts[name])
            for name, w in MORPHOLOGY_WEIGHTS.items()
        )
    )


@dataclass(frozen=True)
class MorphologyScores:
    """All morphology scores of one way of making vectors (see the module description)."""

    classes: ClassScores
    rotated: CopyScores
    zoomed: CopyScores
    score: float


def score_morphology(
    embed: Callable[[Tensor], Tensor],
    cutouts: np.ndarray | Tensor,
    classes: np.ndarray,
    same_source_map: float,
    *,
    vectors: Tensor | None = None,
    seed: int = 0,
) -> MorphologyScores:
    """Score ``embed`` (cut-outs ``(N, 64, 64)`` -> vectors) on labelled cut-outs.

    The copies are made here (`ROTATED_COPY`, `ZOOMED_COPY`, seeded) and
    embedded by ``embed``, which should be the function uploads go through.
    ``vectors`` are the originals' vectors if already computed.
    """
    images = torch.as_tensor(np.asarray(cutouts), dtype=torch.float32)
    if vectors is None:
        vectors = embed(images)
    rotated = ROTATED_COPY(images.unsqueeze(1), torch.Generator().manual_seed(seed + 2))
    zoomed = ZOOMED_COPY(images.unsqueeze(1), torch.Generator().manual_seed(seed + 3))
    class_part = class_scores(vectors, classes, peak_snr(images) >= HIGH_SNR)
    rotated_part = copy_scores(vectors, embed(rotated.squeeze(1)))
    zoomed_part = copy_scores(vectors, embed(zoomed.squeeze(1)))
    score = morphology_score(class_part, rotated_part, zoomed_part, same_source_map)
    return MorphologyScores(class_part, rotated_part, zoomed_part, score)
