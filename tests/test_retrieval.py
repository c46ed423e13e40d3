"""Same-source retrieval scores on hand-made cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model_training.learn.retrieval import retrieval_scores, self_retrieval_rate


def _on_circle(*degrees: float) -> torch.Tensor:
    radians = torch.tensor([math.radians(d) for d in degrees], dtype=torch.float64)
    return torch.stack([torch.cos(radians), torch.sin(radians)], 1)


def test_scores_of_single_relevant_images() -> None:
    # Ranks worked out by hand from the angles (no ties among relevant images):
    # first same-source ranks 2, 5, 2, 1, 1, 4; average precisions 1/2, 1/5, 1/2, 1, 1, 1/4.
    vectors = _on_circle(0, 10, 25, 90, 100, 180)
    source = np.array(["A", "B", "A", "C", "C", "B"])
    morphology = np.array(["disc", "point", "disc", "disc", "disc", "point"])
    scores = retrieval_scores(vectors, source, morphology)
    assert scores.n_queries == 6
    assert scores.recall_at_1 == pytest.approx(2 / 6)
    assert scores.recall_curve[3] == pytest.approx(5 / 6)  # recall@4
    assert scores.recall_at_10 == 1.0
    assert scores.mean_average_precision == pytest.approx((0.5 + 0.2 + 0.5 + 1 + 1 + 0.25) / 6)
    assert scores.median_first_rank == 2.0
    # Each image's neighbours are the 5 others (fewer than 10): a disc image has 3 discs
    # among them (3/5), a point image 1 point (1/5); four discs, two points.
    assert scores.class_precision_at_10 == pytest.approx((4 * 3 / 5 + 2 * 1 / 5) / 6)


def test_average_precision_with_several_relevant_images() -> None:
    # Source A seen three times; X and Y once (they are candidates, never queries).
    # Query 0: A at ranks 1 and 4 -> AP (1 + 2/4)/2 = 0.75; query 1 the same;
    # query 4: A at ranks 3 and 4 -> AP (1/3 + 2/4)/2.
    vectors = _on_circle(0, 10, 22, 35, 45)
    source = np.array(["A", "A", "X", "Y", "A"])
    scores = retrieval_scores(vectors, source)
    assert scores.n_queries == 3
    assert scores.mean_average_precision == pytest.approx((0.75 + 0.75 + (1 / 3 + 0.5) / 2) / 3)
    assert scores.recall_at_1 == pytest.approx(2 / 3)
    assert scores.median_first_rank == 1.0
    assert scores.class_precision_at_10 is None


def test_blocks_do_not_change_the_scores() -> None:
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(50, 8, generator=generator)
    source = np.repeat(np.arange(10), 5)
    whole = retrieval_scores(vectors, source, block_size=512)
    blocked = retrieval_scores(vectors, source, block_size=7)
    assert whole == blocked


def test_self_retrieval_rate() -> None:
    originals = torch.eye(4)
    transformed = torch.tensor([[1.0, 0.1, 0, 0], [0, 0, 1.0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    assert self_retrieval_rate(originals, transformed, k=1) == 0.75
