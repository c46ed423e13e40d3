"""Running a network on cut-outs: the device, the input it expects, the vectors it gives.

Training scores its checkpoints and the embedding stage stores vectors with
the same code, so that a vector evaluated during training is the vector the
service later ranks by.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional
from tqdm import tqdm

from .presets import TrainingConfig
from .simclr import SimCLR

__all__ = ["centre_crop", "compute_vectors", "network_input", "pick_device"]


def pick_device(device: str | None = None) -> torch.device:
    """Return the requested device, else the first GPU, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def centre_crop(images: Tensor, size: int) -> Tensor:
    """Cut the central ``size`` x ``size`` pixels out of images ``(..., H, W)``."""
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]


def network_input(cutouts: Tensor, config: TrainingConfig, embed_input: str) -> Tensor:
    """Prepare cut-outs ``(N, 1, 64, 64)`` as the network saw its training views.

    ``full`` keeps the whole cut-out, ``centre`` its central crop; either is
    resampled to the resolution of the views when they were rendered at a
    coarser one (``view_size`` smaller than ``crop_size``).
    """
    side = cutouts.shape[-1]
    if embed_input == "centre":
        cutouts, side = centre_crop(cutouts, config.crop_size), config.crop_size
    view = config.view_size or config.crop_size
    if view == config.crop_size:
        return cutouts
    size = round(side * view / config.crop_size)
    mode = "area" if size < side else "bilinear"
    return functional.interpolate(cutouts, size=(size, size), mode=mode)


@torch.no_grad()
def compute_vectors(
    method: SimCLR,
    cutouts: np.ndarray | Tensor,
    config: TrainingConfig,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    representation: str | None = None,
    embed_input: str | None = None,
    progress: tqdm | None = None,
) -> Tensor:
    """L2-normalised vectors of cut-outs, computed in batches.

    Parameters
    ----------
    method
        The trained (or untrained) network.
    cutouts
        ``(N, 64, 64)`` cut-outs as stored by ingest.
    config
        The network's configuration: which output and which input it uses.
    device
        Where to run the network.
    batch_size
        Cut-outs per forward pass.
    representation, embed_input
        Override ``config.representation`` / ``config.embed_input`` (evaluation
        compares the alternatives).
    progress
        A progress bar to advance by each batch.

    Returns
    -------
    Tensor
        ``(N, D)`` float32 on the CPU, each row of unit length.
    """
    device = torch.device(device)
    representation = representation or config.representation
    embed_input = embed_input or config.embed_input
    method = method.to(device).eval()
    output = method.representation if representation == "backbone" else method.projection
    vectors = []
    for start in range(0, len(cutouts), batch_size):
        batch = torch.as_tensor(np.asarray(cutouts[start : start + batch_size]))
        batch = network_input(batch.to(device, torch.float32).unsqueeze(1), config, embed_input)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            vectors.append(functional.normalize(output(batch).float(), dim=1).cpu())
        if progress is not None:
            progress.update(len(batch))
    if not vectors:
        return torch.empty(0, 0)
    return torch.cat(vectors)
