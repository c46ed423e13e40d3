"""Embed single cut-outs with the current model of their kind, for searches by image.

The similarity service compares an uploaded image with the archive's vectors,
so the upload must go through the very network that made them. This keeps
that network loaded per image kind and reloads it when another model becomes
current (after ``vosim train``), so a long-running server follows the
catalogue without a restart. PyTorch is imported at the first upload, not
when the web application starts.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from tap_schema import Catalogue

if TYPE_CHECKING:
    from .checkpoints import TrainedModel

__all__ = ["CurrentModelEmbedder"]


class CurrentModelEmbedder:
    """Computes unit vectors of cut-outs with the current model of an image kind.

    Parameters
    ----------
    catalogue
        The catalogue whose ``similarity.model`` rows say which model is current.
    device
        Where the network runs; the CPU by default, since one cut-out per
        request does not repay a transfer to a GPU shared with training.
    """

    def __init__(self, catalogue: Catalogue, device: str = "cpu") -> None:
        self.catalogue = catalogue
        self.device = device
        self._loaded: dict[str, TrainedModel] = {}
        self._lock = threading.Lock()

    def embed(self, image_kind: str, cutout: np.ndarray) -> tuple[int, np.ndarray]:
        """Return the current model's id and the unit vector (float32) of a 64×64 cut-out.

        Raises
        ------
        model_training.learn.checkpoints.ModelNotFoundError
            When no model has been trained for the kind yet.
        """
        from .inference import compute_vectors

        model = self._current(image_kind)
        with self._lock:
            vector = compute_vectors(
                model.method, cutout[np.newaxis], model.config, device=self.device
            )
        return model.model_id, vector[0].numpy().astype(np.float32, copy=False)

    def _current(self, image_kind: str) -> TrainedModel:
        from .checkpoints import current_model_id, load_model

        with self.catalogue.begin() as connection:
            model_id = current_model_id(connection, image_kind)
        with self._lock:
            loaded = self._loaded.get(image_kind)
            if loaded is None or loaded.model_id != model_id:
                loaded = load_model(self.catalogue, image_kind=image_kind, device=self.device)
                self._loaded[image_kind] = loaded
            return loaded
