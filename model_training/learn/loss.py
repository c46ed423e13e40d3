"""SimCLR's contrastive loss, NT-Xent, across every process of a distributed run.

Chen et al. (2020), section 2.1, equation 1: for a batch of N images seen
twice, each of the 2N views must pick out its partner among the other
2N − 1 views by cosine similarity divided by a temperature τ; the loss is
the cross-entropy of that choice, averaged over all 2N views. The negatives
are every other view in the batch, so in a multi-GPU run each process must
see the projections of all processes: they are gathered with their gradients
(`gather_with_gradient`), which keeps the loss the same as on one device
with the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import functional

__all__ = ["gather_with_gradient", "nt_xent_loss"]


class _GatherWithGradient(torch.autograd.Function):
    """All-gather whose backward sends every process the gradient of its own rows.

    Each process's loss depends on every process's rows, so the gradient of
    the summed losses with respect to one process's rows is the sum over
    processes: an all-reduce, then this process's slice. (PyTorch's
    ``torch.distributed.nn.functional.all_gather`` does the same but is
    deprecated in favour of a private module.)
    """

    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:
        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        ctx.rows = local.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, gradient: Tensor) -> Tensor:
        gradient = gradient.contiguous()
        dist.all_reduce(gradient)
        start = dist.get_rank() * ctx.rows
        return gradient[start : start + ctx.rows]


def gather_with_gradient(local: Tensor) -> Tensor:
    """Concatenate every process's ``local`` rows (rank order), differentiably."""
    return _GatherWithGradient.apply(local)


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """Normalised temperature-scaled cross-entropy of two views of a batch.

    Parameters
    ----------
    z1, z2
        Projections ``(n, d)`` of the first and second view of the same ``n``
        images, in the same order. In a distributed run, the local share of
        the batch; the negatives come from all processes.
    temperature
        τ of equation 1: smaller values weigh the hardest negatives more.

    Returns
    -------
    Tensor
        Scalar loss: the mean over the local 2n views, so that the average
        over processes (what DistributedDataParallel applies to gradients) is
        the loss of the whole batch.
    """
    local = functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = z1.shape[0]
    rank = 0
    everyone = local
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        rank = dist.get_rank()
        everyone = gather_with_gradient(local)
    logits = local @ everyone.T / temperature
    # Layout of `everyone`: rank r holds rows [2nr, 2nr + 2n): its n first
    # views, then its n second views. Local view i's own row and partner:
    own = torch.arange(2 * n, device=local.device) + 2 * n * rank
    partner = own + torch.cat(
        [torch.full((n,), n, device=local.device), torch.full((n,), -n, device=local.device)]
    )
    is_self = functional.one_hot(own, everyone.shape[0]).bool()
    return functional.cross_entropy(logits.masked_fill(is_self, float("-inf")), partner)
