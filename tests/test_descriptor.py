"""The polar Fourier descriptor baseline ignores orientation and tells shapes apart."""

from __future__ import annotations

import torch

from model_training.learn.augment import AffineAugmentation
from model_training.learn.descriptor import PolarFourierDescriptor

SIZE = 64


def _shapes() -> torch.Tensor:
    """An elongated disc, a ring and two clumps, off-axis, ``(3, 1, 64, 64)``."""
    offsets = torch.arange(SIZE, dtype=torch.float32) - (SIZE - 1) / 2
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    u, v = 0.8 * x + 0.6 * y, -0.6 * x + 0.8 * y
    disc = torch.exp(-((u / 9) ** 2 + (v / 3) ** 2) / 2)
    ring = torch.exp(-((torch.hypot(u, v / 0.7) - 12) ** 2) / (2 * 2.0**2))
    clumps = torch.exp(-((u - 8) ** 2 + v**2) / 8) + torch.exp(-((u + 6) ** 2 + (v - 9) ** 2) / 8)
    return torch.stack([disc, ring, clumps])[:, None] * 10


def test_descriptor_is_the_same_at_any_orientation_and_mirrored() -> None:
    images = _shapes()
    descriptor = PolarFourierDescriptor()
    descriptor.fit(images[:, 0])
    turned = AffineAugmentation(
        crop_size=SIZE, scale_range=(1.0, 1.0), max_shear_deg=0.0, flip=True
    )(images, torch.Generator().manual_seed(0))
    original, copy = descriptor(images), descriptor(turned)
    assert (original * copy).sum(1).min() > 0.97
    cross = original @ original.T
    assert cross[~torch.eye(3, dtype=bool)].max() < 0.9, "the three shapes stay apart"
