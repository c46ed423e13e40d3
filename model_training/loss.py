"""SimCLR's contrastive loss, NT-Xent, across every process of a distributed run.

Chen et al. (2020), section 2.1, equation 1: for a batch of N images seen
twice, each of the 2N views must pick out its partner among the other
2N − 1 views by cosine similarity divided by a temperature τ; the loss is
the cross-entropy of that choice, averaged over all 2N views. The negatives
are every other view in the batch, so in a multi-GPU run each process must
see the projections of all processes: they are gathered with their gradients
(``torch.distributed.nn.functional.all_gather``), which keeps the loss the
same as on one device with the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.nn.functional import all_gather
from torch.nn import functional

__all__ = ["nt_xent_loss"]


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
        everyone = torch.cat(all_gather(local))
    logits = local @ everyone.T / temperature
    # Layout of `everyone`: rank r holds rows [2nr, 2nr + 2n): its n first
    # views, then its n second views. Local view i's own row and partner:
    own = torch.arange(2 * n, device=local.device) + 2 * n * rank
    partner = own + torch.cat(
        [torch.full((n,), n, device=local.device), torch.full((n,), -n, device=local.device)]
    )
    is_self = functional.one_hot(own, everyone.shape[0]).bool()
    return functional.cross_entropy(logits.masked_fill(is_self, float("-inf")), partner)
