"""Centring and whitening of the served vectors, fitted once on the training images.

A contrastive network's unit vectors share a common direction and spend
most of their variance in a few directions, so cosine similarity is
dominated by what every image has in common. Subtracting the training
images' mean vector and whitening by their (shrunk) covariance, then
normalising again, spreads the ranking over every direction the images
differ in: the post-processing image retrieval applies to learnt
descriptors (Jégou and Chum 2012, "Negative evidences and co-occurrences
in image retrieval").

The map is linear and applied to the vector averaged over the symmetry
group (`model_training.learn.inference.compute_vectors`), so an invariance
of that vector stays exact.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Whitening"]


class Whitening(nn.Module):
    """``x -> (x - mean) @ matrix`` on vectors ``(N, D)``: identity until fitted.

    Parameters
    ----------
    dim
        Length of the vectors.

    Attributes
    ----------
    mean, matrix
        Buffers (saved with the network's weights): the training vectors'
        mean and the symmetric inverse square root of their shrunk covariance.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("matrix", torch.eye(dim))

    def forward(self, vectors: Tensor) -> Tensor:
        """Centre and whiten vectors ``(N, D)`` (not normalised again: the caller does)."""
        return (vectors - self.mean) @ self.matrix

    @torch.no_grad()
    def fit(self, vectors: Tensor, shrinkage: float) -> None:
        """Fit on vectors ``(N, D)`` of the training images.

        Parameters
        ----------
        vectors
            The served vectors of the training images.
        shrinkage
            Weight in [0, 1] of the covariance's mean eigenvalue against the
            covariance itself (Ledoit-Wolf style shrinkage): 0 whitens fully,
            1 only centres. Directions of little variance are measured from
            few images and mostly noise, so full whitening amplifies noise.
        """
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"whitening shrinkage must be in [0, 1], got {shrinkage}")
        vectors = vectors.to(self.mean.device, torch.float64)
        mean = vectors.mean(0)
        centred = vectors - mean
        covariance = centred.T @ centred / max(1, len(vectors) - 1)
        dim = covariance.shape[0]
        level = torch.trace(covariance) / dim
        if level <= 0:
            self.mean.copy_(mean)
            self.matrix.copy_(torch.eye(dim))
            return
        shrunk = (1 - shrinkage) * covariance + shrinkage * level * torch.eye(
            dim, dtype=torch.float64, device=covariance.device
        )
        values, axes = torch.linalg.eigh(shrunk)
        # Scaled so that the map is the identity when the covariance is already isotropic.
        inverse_root = (axes * (values.clamp_min(level * 1e-6) / level) ** -0.5) @ axes.T
        self.mean.copy_(mean)
        self.matrix.copy_(inverse_root)
