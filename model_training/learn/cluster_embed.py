"""The embedding stage's forward passes on a Dask cluster, vectors gathered in order.

The network is scattered once to every worker; the cut-outs go out in
blocks of whole batches, so every forward pass sees the batch it would see
in one process (the same vectors, on the same kind of device and thread
count), and each block's vectors come back to its place in the result. A
task of a lost worker runs again on another one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .inference import compute_vectors
from .presets import TrainingConfig
from .simclr import SimCLR

__all__ = ["BATCHES_PER_TASK", "cluster_vectors"]

BATCHES_PER_TASK = 16
"""Forward passes per task: 16 x 256 cut-outs of 64 x 64 are 67 MB to ship."""


def cluster_vectors(
    client: Any,
    method: SimCLR,
    cutouts: np.ndarray,
    config: TrainingConfig,
    *,
    device: str | None = None,
    batch_size: int = 256,
    progress=None,
) -> torch.Tensor:
    """Return what `compute_vectors` returns, the batches computed by the cluster's workers.

    Parameters
    ----------
    client
        A `distributed.Client`.
    method, cutouts, config, batch_size
        As for `compute_vectors`.
    device
        Where workers run the network (default: a GPU of the worker if it has one).
    progress
        A progress bar advanced by the cut-outs of each finished task.
    """
    from distributed import as_completed

    network = client.scatter(method.cpu(), broadcast=True, hash=False)
    step = batch_size * BATCHES_PER_TASK
    starts = {}
    for start in range(0, len(cutouts), step):
        block = np.ascontiguousarray(cutouts[start : start + step])
        future = client.submit(_embed_block, network, block, config, device, batch_size, pure=False)
        starts[future] = start
    parts: dict[int, torch.Tensor] = {}
    for future in as_completed(list(starts)):
        vectors = future.result()
        parts[starts.pop(future)] = vectors
        if progress is not None:
            progress.update(len(vectors))
    if not parts:
        return torch.empty(0, 0)
    return torch.cat([parts[start] for start in sorted(parts)])


def _embed_block(
    method: SimCLR,
    cutouts: np.ndarray,
    config: TrainingConfig,
    device: str | None,
    batch_size: int,
) -> torch.Tensor:
    wanted = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # A copy: the array may arrive misaligned in its message frame.
    return compute_vectors(method, cutouts.copy(), config, device=wanted, batch_size=batch_size)
