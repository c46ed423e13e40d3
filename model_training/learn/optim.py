"""Optimisers and the learning-rate schedule of SimCLR training.

SimCLR (Chen et al. 2020, appendix B.1) trains with LARS (You et al. 2017,
"Large Batch Training of Convolutional Networks", algorithm 1): SGD with
momentum in which each weight tensor's step is scaled by the ratio of its
norm to its gradient's norm (the "trust ratio"), so that large batches and
learning rates do not blow up layers with small weights. Biases and
normalisation parameters are excluded from the adaptation and from weight
decay, as in SimCLR. The learning rate rises linearly during a warm-up and
then follows a cosine to zero, per step.

PyTorch has no LARS; the libraries that ship one (lightly, solo-learn,
timm) would be a large dependency for thirty lines, and their variants
differ in where momentum and the trust ratio are applied. The version here
is the one of SimCLR's reference code (trust ratio with η = 0.001 on the
decayed gradient, then momentum), written out so that its state is plain tensors that a
checkpoint restores exactly. AdamW (PyTorch's) is offered as well, because
on the small batches of a CPU demo the evaluation decides between them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["LARS", "build_optimizer", "warmup_cosine_schedule"]


class LARS(Optimizer):
    """Layer-wise adaptive rate scaling on top of SGD with momentum.

    Parameters
    ----------
    params
        Parameters or parameter groups; a group with ``lars_adaptation=False``
        (biases, normalisation) takes plain SGD steps.
    lr
        Learning rate.
    momentum
        Momentum of the update.
    weight_decay
        L2 penalty, added to the gradient before the trust ratio.
    trust_coefficient
        η of You et al.: the step of a tensor is ``η ‖w‖ / ‖g‖`` times the rate.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "lars_adaptation": True,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Take one optimisation step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                update = param.grad.add(param, alpha=group["weight_decay"])
                if group["lars_adaptation"]:
                    param_norm = torch.linalg.vector_norm(param)
                    update_norm = torch.linalg.vector_norm(update)
                    ratio = group["trust_coefficient"] * param_norm / update_norm
                    trusted = (param_norm > 0) & (update_norm > 0)
                    update = update * torch.where(trusted, ratio, torch.ones_like(ratio))
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param)
                buffer = state["momentum_buffer"]
                buffer.mul_(group["momentum"]).add_(update)
                param.add_(buffer, alpha=-group["lr"])
        return loss


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split parameters: weights are decayed and adapted, biases and norms are not."""
    decayed, plain = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (plain if parameter.ndim <= 1 else decayed).append(parameter)
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0, "lars_adaptation": False},
    ]


def build_optimizer(
    name: str, model: nn.Module, learning_rate: float, weight_decay: float, momentum: float = 0.9
) -> Optimizer:
    """Build the named optimiser for a model.

    Parameters
    ----------
    name
        ``lars`` or ``adamw``.
    model
        The network being trained (backbone and projection head).
    learning_rate
        Peak learning rate (reached at the end of the warm-up).
    weight_decay
        Decay of the weight tensors; biases and normalisation are never decayed.
    momentum
        Momentum of LARS (β1 of AdamW stays at PyTorch's 0.9).
    """
    groups = _parameter_groups(model, weight_decay)
    if name == "lars":
        return LARS(groups, lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        for group in groups:
            group.pop("lars_adaptation", None)
        return torch.optim.AdamW(groups, lr=learning_rate, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; use 'lars' or 'adamw'")


def warmup_cosine_schedule(optimizer: Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Linear warm-up to the peak rate, then a cosine decay to zero, stepped per batch.

    Parameters
    ----------
    optimizer
        Optimiser whose groups' ``lr`` is the peak rate.
    warmup_steps
        Steps of linear increase (SimCLR: 10 epochs' worth).
    total_steps
        Steps of the whole run.
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return LambdaLR(optimizer, factor)
