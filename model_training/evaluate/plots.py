"""Pictures of an evaluation: sample queries with their neighbours, and recall curves.

A score says how often the same source comes back; only a look at the
neighbours says whether the rest of the list is what an astronomer would
call similar. The mosaic shows, for a few random queries, the query and its
10 nearest images, framed green where the neighbour shows the same source
and blue where it has the same morphology class. Written with matplotlib's
Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import torch
from torch import Tensor

from model_training.learn.image_set import SourceLabels
from model_training.learn.retrieval import MAX_K

from .scores import Evaluation

mpl.use("Agg")
from matplotlib import pyplot as plt  # after mpl.use: the backend must be chosen first

__all__ = ["write_mosaic", "write_recall_curves"]

SAME_SOURCE = "#2ca02c"
SAME_CLASS = "#1f77b4"
OTHER = "#bbbbbb"


def write_mosaic(
    path: Path,
    cutouts: np.ndarray,
    vectors: Tensor,
    labels: SourceLabels,
    *,
    n_queries: int = 8,
    k: int = 10,
    seed: int = 0,
) -> None:
    """Draw random queries (that have another image of their source) and their k neighbours.

    Parameters
    ----------
    path
        PNG file to write.
    cutouts
        ``(N, 64, 64)`` cut-outs, drawn with an asinh stretch.
    vectors
        Unit vectors of the cut-outs.
    labels
        Sources (and morphology classes) for the frame colours and captions.
    n_queries, k
        Rows and neighbours per row.
    seed
        Which queries are drawn.
    """
    source = np.asarray(labels.source)
    _, counts = np.unique(source, return_counts=True)
    has_partner = np.isin(source, np.unique(source)[counts > 1])
    candidates = np.flatnonzero(has_partner) if has_partner.any() else np.arange(len(source))
    rng = np.random.default_rng(seed)
    queries = rng.choice(candidates, size=min(n_queries, len(candidates)), replace=False)
    similarity = vectors[torch.as_tensor(queries)] @ vectors.T
    similarity[torch.arange(len(queries)), torch.as_tensor(queries)] = -torch.inf
    neighbours = similarity.topk(min(k, len(source) - 1), dim=1)
    figure, axes = plt.subplots(
        len(queries), k + 1, figsize=(1.3 * (k + 1), 1.45 * len(queries)), squeeze=False
    )
    for row, query in enumerate(queries):
        _draw(axes[row, 0], cutouts[query], _caption(labels, query), "black")
        for column in range(k):
            ax = axes[row, column + 1]
            if column >= neighbours.indices.shape[1]:
                ax.axis("off")
                continue
            index = int(neighbours.indices[row, column])
            colour = OTHER
            if source[index] == source[query]:
                colour = SAME_SOURCE
            elif labels.morphology is not None and (
                labels.morphology[index] == labels.morphology[query]
            ):
                colour = SAME_CLASS
            caption = f"{float(neighbours.values[row, column]):.2f} {_caption(labels, index)}"
            _draw(ax, cutouts[index], caption, colour)
    figure.suptitle(
        "query (left) and its nearest images; green frame: same source, blue: same class",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _caption(labels: SourceLabels, index: int) -> str:
    if labels.morphology is not None:
        return str(labels.morphology[index]).replace("_", " ")[:14]
    return str(labels.source[index])[:14]


def _draw(ax: plt.Axes, cutout: np.ndarray, caption: str, colour: str) -> None:
    ax.imshow(np.arcsinh(cutout), cmap="inferno", origin="lower")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    ax.set_title(caption, fontsize=6)


def write_recall_curves(path: Path, evaluation: Evaluation) -> None:
    """Plot recall@k (k = 1 … 100) of the model, its variants and the baselines."""
    figure, ax = plt.subplots(figsize=(6, 4))
    k = np.arange(1, MAX_K + 1)
    for row in evaluation.rows:
        style = {"model": "-", "variant": ":", "baseline": "--"}[row.role]
        width = 2.5 if row.role == "model" else 1.2
        ax.plot(k, row.scores.recall_curve, style, linewidth=width, label=row.name.strip())
    ax.set_xscale("log")
    ax.set_xlabel("k (neighbours looked at)")
    ax.set_ylabel("recall@k (same source found)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"same-source retrieval, {evaluation.image_kind} images", fontsize=10)
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
