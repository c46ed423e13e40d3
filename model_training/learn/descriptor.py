"""A polar Fourier descriptor: what a cut-out looks like at each radius, whatever its orientation.

The cut-out is resampled on circles about its centre (the brightest pixel),
and on each circle the amplitudes of the first angular harmonics are kept:
``m = 0`` is the mean brightness at that radius (a disc's profile, a ring's
radius), ``m = 1`` a one-sided excess (an arc, an offset clump), ``m = 2``
an elongation or two lobes (an inclined disc, a bipolar outflow), higher
``m`` arms and clumps. A rotation about the centre only shifts the phases
and a mirror image conjugates them, so the amplitudes are rotation- and
flip-invariant by construction. Square roots compress bright peaks, and the
mean descriptor of the training cut-outs is subtracted (stored with the
network) so that cosine similarity compares what differs between images.

Hand-made, no training: `vosim evaluate` scores it as a baseline (fitted,
like the PCA, on the evaluated cut-outs without labels), the strongest one
on class retrieval of the demo archive's held-out scoring archive; a
learned representation has to beat it to be worth its training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

__all__ = ["PolarFourierDescriptor"]


class PolarFourierDescriptor(nn.Module):
    """Unit-length descriptors ``(N, n_radii * (harmonics + 1))`` of cut-outs ``(N, 1, S, S)``.

    Parameters
    ----------
    n_radii, n_angles
        The polar grid: radii from half a pixel to ``max_radius``, angles
        evenly spaced.
    max_radius
        Outermost circle, in cut-out pixels (24: the 48-pixel centre the
        network sees).
    harmonics
        Highest angular harmonic kept.
    """

    def __init__(
        self, n_radii: int = 24, n_angles: int = 32, max_radius: float = 24.0, harmonics: int = 8
    ) -> None:
        super().__init__()
        radius = torch.linspace(0.5, max_radius, n_radii)
        angle = torch.arange(n_angles) * (2 * math.pi / n_angles)
        self.register_buffer(
            "offsets",
            torch.stack(
                [radius[:, None] * torch.cos(angle), radius[:, None] * torch.sin(angle)], -1
            ),
            persistent=False,
        )
        self.harmonics = harmonics
        self.dim = n_radii * (harmonics + 1)
        self.register_buffer("mean", torch.zeros(self.dim))

    def raw(self, cutouts: Tensor) -> Tensor:
        """Descriptors before centring and normalisation."""
        size = cutouts.shape[-1]
        grid = (self.offsets / (size / 2)).to(cutouts.dtype)
        grid = grid[None].expand(len(cutouts), -1, -1, -1)
        circles = functional.grid_sample(cutouts, grid, mode="bilinear", align_corners=False)
        spectrum = torch.fft.rfft(circles[:, 0].clamp_min(0), dim=-1).abs()
        return spectrum[..., : self.harmonics + 1].sqrt().flatten(1)

    @torch.no_grad()
    def fit(self, cutouts: Tensor, batch_size: int = 1024) -> None:
        """Store the mean descriptor of ``cutouts`` ``(N, 64, 64)`` (the training images)."""
        total = torch.zeros(self.dim, dtype=torch.float64)
        for start in range(0, len(cutouts), batch_size):
            batch = cutouts[start : start + batch_size].float().unsqueeze(1).to(self.mean.device)
            total += self.raw(batch).double().sum(0).cpu()
        self.mean.copy_((total / max(1, len(cutouts))).to(self.mean))

    def forward(self, cutouts: Tensor) -> Tensor:
        """Centred, unit-length descriptors."""
        return functional.normalize(self.raw(cutouts) - self.mean, dim=1)
