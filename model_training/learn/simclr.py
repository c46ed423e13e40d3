"""SimCLR as a method: augmentation, backbone, projection head and loss in one module.

Chen et al. (2020), section 2.1: two random views of each image go through
the same backbone ``f`` and a small projection head ``g``; NT-Xent on
``g(f(x))`` pulls the views of one image together and pushes other images
away. After training, ``g`` is thrown away and the backbone's output ``f(x)``
is the representation (section 4.2 shows it is the better one downstream;
`vosim evaluate` checks that for our images too).

The module's ``forward`` is the training loss of a batch of cut-outs, so the
training loop (`model_training.learn.train`) only ever calls ``loss = method(images,
generator)`` and knows nothing of which method it runs.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn
from torch.nn import functional

from .augment import AffineAugmentation, robust_noise
from .backbone import build_backbone
from .loss import nt_xent_loss
from .presets import TrainingConfig
from .whitening import Whitening

__all__ = ["SimCLR", "Stretch", "build_method"]


class Stretch(nn.Module):
    """The intensity normalisation the network sees, part of the network.

    ``linear`` passes the cut-out as ingest stored it (median 0, standard
    deviation 1: the paper's normalisation). ``asinh`` compresses bright
    emission, ``asinh(x)``, which is linear near the noise and logarithmic
    for bright peaks, so faint structure next to a bright core is not lost.
    Being a layer, it is applied identically in training and embedding.
    """

    def __init__(self, kind: str = "linear") -> None:
        super().__init__()
        if kind not in ("linear", "asinh"):
            raise ValueError(f"normalisation must be 'linear' or 'asinh', got {kind!r}")
        self.kind = kind

    def forward(self, images: Tensor) -> Tensor:
        """Apply the stretch."""
        return torch.asinh(images) if self.kind == "asinh" else images


class SimCLR(nn.Module):
    """Backbone + projection head trained with NT-Xent on two affine views.

    Parameters
    ----------
    backbone
        Network from images to representations; needs ``representation_dim``.
    projector_hidden_dim, projector_output_dim
        Sizes of the two-layer projection head (Linear, BatchNorm, ReLU, Linear).
    temperature
        τ of NT-Xent.
    augmentation
        Draws the random views.
    stretch
        Intensity normalisation applied before the backbone.
    local_views
        Views of a smaller crop drawn besides the two whole views (multi-crop).
    local_crop_size
        Side of the smaller crop, in cut-out pixels.
    whitening
        The map applied to the served vectors (`model_training.learn.whitening`),
        or None; not used in training.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector_hidden_dim: int,
        projector_output_dim: int,
        temperature: float,
        augmentation: AffineAugmentation,
        stretch: Stretch,
        local_views: int = 0,
        local_crop_size: int = 24,
        whitening: Whitening | None = None,
    ) -> None:
        super().__init__()
        self.stretch = stretch
        self.backbone = backbone
        dim = backbone.representation_dim
        self.projector = nn.Sequential(
            nn.Linear(dim, projector_hidden_dim, bias=False),
            nn.BatchNorm1d(projector_hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(projector_hidden_dim, projector_output_dim),
        )
        self.temperature = temperature
        self.augmentation = augmentation
        self.local_views = local_views
        self.local_augmentation = local_augmentation(augmentation, local_crop_size)
        self.whitening = whitening

    def representation(self, images: Tensor) -> Tensor:
        """Backbone output ``f(x)`` of cut-outs or views ``(N, 1, H, W)``."""
        return self.backbone(self.stretch(images))

    def projection(self, images: Tensor) -> Tensor:
        """Projection-head output ``g(f(x))``."""
        return self.projector(self.representation(images))

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training loss of a batch: two views of each cut-out, one pass, NT-Xent.

        Both views go through the network as one batch, so batch-normalisation
        statistics are shared by the two views as in SimCLR's implementation.
        Multi-crop views (``local_views``) join the same pass, resampled to the
        whole views' size, and each is contrasted with both whole views.
        """
        noise = None
        if self.augmentation.needs_noise:
            noise = robust_noise(images)
        size = self.augmentation.view_size or self.augmentation.crop_size
        views = [self.augmentation(images, generator, noise) for _ in range(2)]
        for _ in range(self.local_views):
            local = self.local_augmentation(images, generator, noise)
            views.append(functional.interpolate(local, size=(size, size), mode="bilinear"))
        views = torch.cat(views)
        if images.is_cuda:
            views = views.contiguous(memory_format=torch.channels_last)
        z = self.projection(views).chunk(2 + self.local_views)
        loss = nt_xent_loss(z[0], z[1], self.temperature)
        for local in z[2:]:
            loss = loss + 0.5 * (
                nt_xent_loss(local, z[0], self.temperature)
                + nt_xent_loss(local, z[1], self.temperature)
            )
        return loss / (1 + self.local_views)


def local_augmentation(augmentation: AffineAugmentation, crop_size: int) -> AffineAugmentation:
    """Return the multi-crop augmentation: the same draws on a smaller central crop.

    The crop keeps the whole view's pixels per cut-out pixel (``view_size``
    scaled with the crop), so its noise is averaged down alike.
    """
    whole = augmentation.view_size or augmentation.crop_size
    view_size = max(1, round(whole * crop_size / augmentation.crop_size))
    return dataclasses.replace(augmentation, crop_size=crop_size, view_size=view_size)


def build_method(config: TrainingConfig) -> SimCLR:
    """Build an untrained SimCLR network from a training configuration."""
    augmentation = AffineAugmentation(
        crop_size=config.crop_size,
        scale_range=(config.scale_min, config.scale_max),
        max_shear_deg=config.max_shear_deg,
        max_rotation_deg=config.max_rotation_deg,
        flip=config.flip,
        fill=config.fill,
        noise_std=config.noise_std,
        gain_range=(config.gain_min, config.gain_max),
        max_blur=config.max_blur,
        blur_axis_ratio=config.blur_axis_ratio,
        max_offset=config.max_offset,
        snr_min=config.snr_min,
        renormalise=config.renormalise,
        view_size=config.view_size,
        beam_pixels=config.beam_pixels,
        scale_target=config.scale_target,
        scale_zoom_max=config.scale_zoom_max,
    )
    backbone = build_backbone(
        config.backbone,
        config.width,
        pooling_grid=config.pooling_grid,
        pooled_stages=config.pooled_stages,
        polar_radii=config.polar_radii,
        polar_inner=config.polar_inner,
        polar_harmonics=config.polar_harmonics,
    )
    served_dim = (
        backbone.representation_dim
        if config.representation == "backbone"
        else config.projector_output_dim
    )
    return SimCLR(
        backbone,
        config.projector_hidden_dim,
        config.projector_output_dim,
        config.temperature,
        augmentation,
        Stretch(config.normalisation),
        config.local_views,
        config.local_crop_size,
        None if config.embed_whitening is None else Whitening(served_dim),
    )
