"""How the similarity service gets the vector of an uploaded image's cut-out.

An uploaded image must be embedded by the very model whose vectors it is
compared with: the current model of its image kind. The service asks an
`Embedder` for the vector together with the model that made it, and refuses
to compare when that model is not the one its index holds (the model
changed between the index's last reload and the request).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["Embedder"]


class Embedder(Protocol):
    """Computes unit vectors of cut-outs with the current model of an image kind."""

    def embed(self, image_kind: str, cutout: np.ndarray) -> tuple[int, np.ndarray]:
        """Return the current model's id and the unit vector (float32) of a 64×64 cut-out."""
