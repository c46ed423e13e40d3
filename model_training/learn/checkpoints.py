"""Trained models: their files, their rows in ``similarity.model``, and which one is current.

Every finished training run is a row of ``similarity.model`` (published: its
hyperparameters and scores) and a row of ``vosim.model_file`` (unpublished:
where its weights lie). For each image kind exactly one row is current: the
model whose vectors and neighbours are served for that kind. When one
network serves both kinds, it gets one row per kind, both pointing at the
same file, so `current_model_id` needs no special case.

On SQLite the two rows are in two files, and a crash inside their commit can
leave the ``similarity.model`` row (perhaps current) without its file row;
the next `register_model` removes such a row and, if it was current, makes
the latest model of its kind that has weights current again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import torch
from sqlalchemy import Connection

from tap_schema import Catalogue

from .presets import TrainingConfig
from .simclr import SimCLR, build_method

__all__ = [
    "ModelNotFoundError",
    "TrainedModel",
    "current_model_id",
    "load_model",
    "load_network",
    "make_current",
    "model_row",
    "register_model",
    "remove_unregistered_models",
    "save_network",
]

logger = logging.getLogger(__name__)


class ModelNotFoundError(LookupError):
    """No such model, or no current model for an image kind: train one first."""


@dataclass(frozen=True)
class TrainedModel:
    """A network ready to embed images, with what it was trained as."""

    model_id: int | None  # None: read from a network file, not from the catalogue
    image_kind: str
    method: SimCLR
    config: TrainingConfig


def save_network(path: Path, method: SimCLR, config: TrainingConfig, **extra: Any) -> None:
    """Write a network's configuration and weights atomically (temporary file, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save({"config": config.to_dict(), "state_dict": method.state_dict(), **extra}, temporary)
    os.replace(temporary, path)


def load_network(path: Path, device: str | torch.device = "cpu") -> tuple[SimCLR, TrainingConfig]:
    """Rebuild a network saved by `save_network`, in evaluation mode."""
    saved = torch.load(path, map_location=device, weights_only=True)
    config = TrainingConfig.from_dict(saved["config"])
    method = build_method(config)
    method.load_state_dict(saved["state_dict"])
    return method.to(device).eval(), config


def current_model_id(connection: Connection, image_kind: str) -> int | None:
    """Return the model whose vectors are served for an image kind (None before training).

    Parameters
    ----------
    connection
        Open connection to the catalogue.
    image_kind
        ``continuum`` or ``peak_flux``.
    """
    query = sa.text(
        "SELECT model_id FROM similarity.model WHERE image_kind = :kind AND is_current = 1"
        " ORDER BY model_id DESC"
    )
    return connection.execute(query, {"kind": image_kind}).scalars().first()


def model_row(
    name: str,
    image_kind: str,
    preset_name: str,
    method: SimCLR,
    config: TrainingConfig,
    trained_on: str,
) -> dict[str, Any]:
    """Return the ``similarity.model`` columns that say what a network is and how it was built.

    Training runs and tuning trials both become rows; the scores and timings
    they add are theirs.
    """
    dim = (
        method.backbone.representation_dim
        if config.representation == "backbone"
        else config.projector_output_dim
    )
    return {
        "model_name": name,
        "image_kind": image_kind,
        "preset": preset_name[:32],
        "backbone": f"{config.backbone} w{config.width}, stride-1 stem",
        "embedding_dim": dim,
        "n_epochs": config.epochs,
        "hyperparameters": config.to_json(),
        "trained_on": trained_on,
    }


def register_model(
    connection: Connection,
    catalogue: Catalogue,
    row: dict[str, Any],
    checkpoint_path: Path,
    *,
    current: bool,
) -> int:
    """Insert a ``similarity.model`` row and its file; optionally make it current.

    Parameters
    ----------
    connection
        Connection inside the caller's transaction.
    catalogue
        The catalogue (for its tables).
    row
        Column values of ``similarity.model`` except ``model_id`` and ``is_current``.
    checkpoint_path
        The saved network.
    current
        Serve this model for its image kind from now on.

    Returns
    -------
    int
        The new ``model_id``.
    """
    model = catalogue.table("similarity.model")
    remove_unregistered_models(connection, catalogue)
    model_id = connection.execute(sa.select(sa.func.max(model.c.model_id))).scalar() or 0
    model_id += 1
    connection.execute(model.insert().values(model_id=model_id, is_current=0, **row))
    connection.execute(
        catalogue.table("vosim.model_file")
        .insert()
        .values(model_id=model_id, checkpoint_path=str(Path(checkpoint_path).resolve()))
    )
    if current:
        make_current(connection, catalogue, model_id)
    return model_id


def remove_unregistered_models(connection: Connection, catalogue: Catalogue) -> list[int]:
    """Delete model rows a torn commit left without their weights file row; log each.

    Only rows nothing else refers to (no vectors, no neighbour lists) are
    removed: a row inserted by hand or by an older vosim is left alone. When
    a removed row was current, the latest model of that kind that has
    weights becomes current again (the torn commit had demoted it).

    Returns
    -------
    list of int
        The removed model ids.
    """
    model, model_file = catalogue.table("similarity.model"), catalogue.table("vosim.model_file")
    referenced = [
        sa.select(table.c.model_id)
        for table in (
            model_file,
            catalogue.table("similarity.embedding"),
            catalogue.table("similarity.neighbour"),
        )
    ]
    orphans = connection.execute(
        sa.select(model.c.model_id, model.c.image_kind, model.c.is_current).where(
            *(model.c.model_id.not_in(select) for select in referenced)
        )
    ).all()
    for model_id, kind, is_current in orphans:
        connection.execute(model.delete().where(model.c.model_id == model_id))
        logger.warning(
            "repaired: removed model %d (%s), whose commit was cut short before its weights"
            " were recorded",
            model_id,
            kind,
        )
        if is_current:
            latest = connection.execute(
                sa.select(sa.func.max(model.c.model_id))
                .join(model_file, model_file.c.model_id == model.c.model_id)
                .where(model.c.image_kind == kind)
            ).scalar()
            if latest is not None:
                make_current(connection, catalogue, latest)
                logger.warning("repaired: model %d is current for %s again", latest, kind)
    return [model_id for model_id, _, _ in orphans]


def make_current(connection: Connection, catalogue: Catalogue, model_id: int) -> None:
    """Serve a model for its image kind: it becomes the only current one of that kind."""
    model = catalogue.table("similarity.model")
    kind = connection.execute(
        sa.select(model.c.image_kind).where(model.c.model_id == model_id)
    ).scalar()
    if kind is None:
        raise ModelNotFoundError(f"no model {model_id} in similarity.model")
    connection.execute(
        model.update()
        .where(model.c.image_kind == kind)
        .values(is_current=sa.case((model.c.model_id == model_id, 1), else_=0))
    )


def load_model(
    catalogue: Catalogue,
    model_id: int | None = None,
    image_kind: str | None = None,
    device: str | torch.device = "cpu",
) -> TrainedModel:
    """Load a model by id, or the current model of an image kind.

    Raises
    ------
    ModelNotFoundError
        If the model (or a current model for the kind) does not exist, or its
        file is gone.
    """
    model = catalogue.table("similarity.model")
    model_file = catalogue.table("vosim.model_file")
    with catalogue.begin() as conn:
        if model_id is None:
            if image_kind is None:
                raise ValueError("give a model id or an image kind")
            model_id = current_model_id(conn, image_kind)
            if model_id is None:
                raise ModelNotFoundError(
                    f"no current model for {image_kind} images: run 'vosim train' first"
                )
        found = conn.execute(
            sa.select(model.c.image_kind, model_file.c.checkpoint_path)
            .join(model_file, model_file.c.model_id == model.c.model_id)
            .where(model.c.model_id == model_id)
        ).first()
    if found is None:
        raise ModelNotFoundError(f"no model {model_id} in similarity.model")
    path = Path(found.checkpoint_path)
    if not path.is_file():
        raise ModelNotFoundError(f"the weights of model {model_id} are missing: {path}")
    method, config = load_network(path, device)
    return TrainedModel(model_id, found.image_kind, method, config)
