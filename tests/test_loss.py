"""NT-Xent equals a direct, loop-by-loop computation of Chen et al.'s equation 1."""

from __future__ import annotations

import math

import pytest
import torch

from model_training.learn.loss import nt_xent_loss


def _direct_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    views = torch.cat([z1, z2]).double()
    n2 = views.shape[0]
    n = n2 // 2

    def sim(a: int, b: int) -> float:
        u, v = views[a], views[b]
        return float(u @ v / (u.norm() * v.norm()))

    total = 0.0
    for i in range(n2):
        partner = (i + n) % n2
        denominator = sum(math.exp(sim(i, k) / temperature) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim(i, partner) / temperature) / denominator)
    return total / n2


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_direct_computation(temperature: float) -> None:
    generator = torch.Generator().manual_seed(3)
    z1 = torch.randn(6, 5, generator=generator)
    z2 = torch.randn(6, 5, generator=generator)
    loss = nt_xent_loss(z1, z2, temperature)
    assert float(loss) == pytest.approx(_direct_nt_xent(z1, z2, temperature), rel=1e-5)


def test_identical_views_far_apart_give_a_small_loss() -> None:
    z = torch.eye(8) * 10
    assert float(nt_xent_loss(z, z, 0.1)) < 1e-3
