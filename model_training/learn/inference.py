"""Running a network on cut-outs: the device, the input it expects, the vectors it gives.

Training scores its checkpoints and the embedding stage stores vectors with
the same code, so that a vector evaluated during training is the vector the
service later ranks by.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional
from tqdm import tqdm

from .augment import (
    FWHM_PER_SIGMA,
    apply_affine,
    canonical_zoom,
    gaussian_blur,
    normalise_views,
    robust_noise,
)
from .morphology import dihedral_views
from .presets import TrainingConfig
from .simclr import SimCLR

__all__ = [
    "centre_crop",
    "compute_vectors",
    "fit_whitening",
    "group_views",
    "network_input",
    "pick_device",
    "zoom_views",
]

EMBED_GROUPS = ("none", "d4", "d8")
"""Symmetry groups an embedding can be averaged over (`group_views`)."""

GROUP_SIZES = {"none": 1, "d4": 8, "d8": 16}


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
    coarser one (``view_size`` smaller than ``crop_size``), after the zoom
    to the source's canonical size that the views had (``scale_target``)
    and, with ``embed_renormalise``, normalised to median 0 and standard
    deviation 1 as each view was (``renormalise``): a network that only ever saw views so normalised
    takes a fainter-looking input (a zoomed-out copy, whose source fills
    less of the field) for another morphology.
    """
    side = cutouts.shape[-1]
    if embed_input == "centre":
        cutouts, side = centre_crop(cutouts, config.crop_size), config.crop_size
    if config.scale_target > 0:
        cutouts = canonical_zoom(cutouts, config.scale_target, config.scale_zoom_max)
    if config.renormalise and config.embed_renormalise:
        cutouts = normalise_views(cutouts)
    view = config.view_size or config.crop_size
    if view == config.crop_size:
        return cutouts
    size = round(side * view / config.crop_size)
    mode = "area" if size < side else "bilinear"
    return functional.interpolate(cutouts, size=(size, size), mode=mode)


def _rotated(images: Tensor, angle: float) -> Tensor:
    """Rotate images ``(N, 1, H, W)`` by ``angle`` radians about their centre (bilinear)."""
    c, s = math.cos(angle), math.sin(angle)
    theta = images.new_tensor([[c, -s, 0.0], [s, c, 0.0]]).expand(len(images), 2, 3)
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    return functional.grid_sample(images, grid, mode="bilinear", align_corners=False)


def _fill_pattern(size: int, device: torch.device) -> Tensor:
    """Return the fixed unit noise ``(1, 1, size, size)`` beyond a zoomed-out field (D4-symmetric).

    Fixed, so that an image gets the same vector in any batch (embedding
    and uploads); symmetric under the right-angle rotations and mirrors, so
    that zooming commutes with them and the D4 average stays exact.
    """
    white = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    return (torch.stack(dihedral_views(white)).mean(0) * math.sqrt(8)).to(device)


def zoom_views(images: Tensor, zooms: tuple[float, ...], beam_pixels: float) -> list[Tensor]:
    """Return images ``(N, 1, S, S)`` magnified about their centre by each of ``zooms``.

    A zoom below 1 shows the source smaller, as a coarser observation
    would: beyond the original field the view gets noise at the image's own
    level (`_fill_pattern`), and it is smoothed back to the restoring beam
    of ``beam_pixels`` (FWHM, pixels; 0 for none), as the training views
    zoomed out are (`model_training.learn.augment.AffineAugmentation`). A
    zoom above 1 shows the centre larger. Averaging a network's unit vectors
    over such a pyramid lets a copy of an image zoomed out by one of the
    pyramid's steps share most levels with the image.
    """
    views = []
    n, _, size, _ = images.shape
    for zoom in zooms:
        if zoom == 1:
            views.append(images)
            continue
        theta = images.new_zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
        sampled = apply_affine(images, theta, size, with_coverage=True)
        view, coverage = sampled[:, :1], sampled[:, 1:]
        fill = _fill_pattern(size, images.device) * robust_noise(images)
        view = view + (1 - coverage) * fill
        if zoom < 1 and beam_pixels > 0:
            sigma = beam_pixels / FWHM_PER_SIGMA
            restore = torch.full((n,), sigma * math.sqrt(1 - zoom**2), device=images.device)
            view = gaussian_blur(view, restore, math.ceil(2.5 * sigma))
        views.append(view)
    return views


def group_views(images: Tensor, group: str) -> list[Tensor]:
    """Return images ``(N, 1, H, W)`` under every transform of a symmetry group, identity first.

    ``none``: the images alone; ``d4``: the 4 right-angle rotations and
    their mirror images (exact, no resampling); ``d8``: those and the same
    turned by 45 degrees more (bilinear). Averaging a network's unit vectors
    over a group makes the embedding invariant to the group by construction,
    and nearly invariant to the angles between.
    """
    if group not in EMBED_GROUPS:
        raise ValueError(f"embed group must be one of {EMBED_GROUPS}, got {group!r}")
    if group == "none":
        return [images]
    views = dihedral_views(images)
    if group == "d8":
        turned = _rotated(images, math.pi / 4)
        views += dihedral_views(turned)
    return views


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
    group: str | None = None,
    whiten: bool = True,
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
    group
        Override ``config.embed_group``: the unit vectors of the cut-out under
        every transform of the group (`group_views`), each at every zoom of
        ``config.embed_zooms`` (`zoom_views`), are averaged, then normalised
        again.
    whiten
        Apply the network's whitening (``config.embed_whitening``, fitted by
        `fit_whitening`) to the served vectors, then normalise again; False
        gives the vectors before it (evaluation compares both). Other
        outputs or inputs than the served ones are never whitened.
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
    group = group or config.embed_group
    if group not in EMBED_GROUPS:
        raise ValueError(f"embed group must be one of {EMBED_GROUPS}, got {group!r}")
    method = method.to(device).eval()
    output = method.representation if representation == "backbone" else method.projection
    whitening = getattr(method, "whitening", None)
    served = (representation, embed_input) == (config.representation, config.embed_input)
    if not (whiten and served):
        whitening = None
    vectors = []
    zooms = config.embed_zooms
    # The forward pass sees every view of the group: keep it at batch_size images.
    step = max(1, batch_size // (GROUP_SIZES[group] * len(zooms)))
    for start in range(0, len(cutouts), step):
        batch = torch.as_tensor(np.asarray(cutouts[start : start + step]))
        batch = batch.to(device, torch.float32).unsqueeze(1)
        views = [
            view
            for zoomed in zoom_views(batch, zooms, config.beam_pixels)
            for view in group_views(zoomed, group)
        ]
        inputs = network_input(torch.cat(views), config, embed_input)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            unit = functional.normalize(output(inputs).float(), dim=1)
        pooled = functional.normalize(unit.view(len(views), len(batch), -1).mean(0), dim=1)
        if whitening is not None:
            pooled = functional.normalize(whitening(pooled), dim=1)
        vectors.append(pooled.cpu())
        if progress is not None:
            progress.update(len(batch))
    if not vectors:
        return torch.empty(0, 0)
    return torch.cat(vectors)


def fit_whitening(
    method: SimCLR,
    cutouts: np.ndarray | Tensor,
    config: TrainingConfig,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
) -> None:
    """Fit the network's whitening on the served vectors of its training cut-outs.

    Does nothing for a configuration without whitening (``embed_whitening``
    None). The vectors are those the embedding stage would store before
    whitening (group-averaged, normalised), so the map is fitted on what it
    is applied to.
    """
    if config.embed_whitening is None or method.whitening is None:
        return
    vectors = compute_vectors(
        method, cutouts, config, device=device, batch_size=batch_size, whiten=False
    )
    method.whitening.fit(vectors, config.embed_whitening)
