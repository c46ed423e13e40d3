"""The embedding stage: one L2-normalised vector per public image and model.

After training, the network's representation of every image is inferred
once and stored in ``similarity.embedding``; neighbours, the similarity
service and ADQL users read it from there (the paper's "Results"). The
vector is the backbone output ``f(x)`` by default, as SimCLR recommends
(Chen et al. 2020, section 4.2); `vosim evaluate` reports the projection
output too, and a configuration may choose it (``representation``).

The stage is incremental: it embeds only the public images of the model's
kind that have no vector for that model yet, so re-running it after new
images were ingested or became public costs only the new ones. Images whose
release date has not passed get no vector at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
import torch
from sqlalchemy import Connection
from tqdm import tqdm

from tap_schema import Catalogue, Settings, open_catalogue

from .checkpoints import ModelNotFoundError, TrainedModel, current_model_id, load_model
from .image_set import IMAGE_KINDS, load_image_set
from .inference import compute_vectors, pick_device
from .threads import ThreadBudget

__all__ = ["EmbedReport", "embed_images"]


@dataclass(frozen=True)
class EmbedReport:
    """What one run of the embedding stage did, per model."""

    embedded: dict[int, int]
    already_done: dict[int, int]

    def __str__(self) -> str:
        return "; ".join(
            f"model {model_id}: {count} new vectors, {self.already_done[model_id]} already there"
            for model_id, count in self.embedded.items()
        )


def embed_images(
    settings: Settings,
    model_id: int | None = None,
    *,
    device: str | None = None,
    batch_size: int = 256,
    progress: bool = True,
    threads: int | None = None,
) -> EmbedReport:
    """Embed every public image that has no vector yet, for one model or the current ones.

    Parameters
    ----------
    settings
        The installation.
    model_id
        The model to embed with; by default the current model of each image
        kind that has one.
    device
        ``cuda``, ``cpu``, …; the first GPU when there is one.
    batch_size
        Cut-outs per forward pass.
    progress
        Show a progress bar.
    threads
        CPU threads (``--threads``); None for this process's fair share of
        the cores (`model_training.learn.threads`).

    Returns
    -------
    EmbedReport
        Vectors written and vectors that were already there, per model.
    """
    catalogue = open_catalogue(settings)
    torch_device = pick_device(device)
    budget = ThreadBudget(threads)
    if model_id is None:
        with catalogue.begin() as conn:
            model_ids = [i for kind in IMAGE_KINDS if (i := current_model_id(conn, kind))]
        if not model_ids:
            raise ModelNotFoundError("no current model for any image kind: run 'vosim train'")
    else:
        model_ids = [model_id]
    embedded, already = {}, {}
    for mid in model_ids:
        model = load_model(catalogue, mid, device=torch_device)
        embedded[mid], already[mid] = _embed_with(
            settings, catalogue, model, torch_device, batch_size, progress, budget.choice.count
        )
    return EmbedReport(embedded, already)


def _embed_with(
    settings: Settings,
    catalogue: Catalogue,
    model: TrainedModel,
    device: torch.device,
    batch_size: int,
    progress: bool,
    threads: str,
) -> tuple[int, int]:
    images = load_image_set(catalogue, model.image_kind, public_only=True)
    embedding = catalogue.table("similarity.embedding")
    with catalogue.begin() as conn:
        done = set(
            conn.execute(
                sa.select(embedding.c.obs_publisher_did).where(
                    embedding.c.model_id == model.model_id
                )
            ).scalars()
        )
    todo = images.subset(np.array([did not in done for did in images.obs_publisher_did], bool))
    if len(todo) == 0:
        return 0, len(done)
    bar = tqdm(
        total=len(todo),
        desc=f"embed model {model.model_id} ({model.image_kind}, {threads})",
        unit="img",
        disable=not progress,
    )
    with bar:
        vectors = compute_vectors(
            model.method,
            todo.cutouts(settings),
            model.config,
            device=device,
            batch_size=batch_size,
            progress=bar,
        )
    rows = zip(todo.obs_publisher_did, vectors.numpy(), strict=True)
    with catalogue.begin() as conn:
        _insert_vectors(conn, catalogue, model.model_id, rows)
    return len(todo), len(done)


def _insert_vectors(
    conn: Connection,
    catalogue: Catalogue,
    model_id: int,
    rows: Iterator[tuple[str, np.ndarray]],
) -> None:
    """Bulk insert: COPY on PostgreSQL, one executemany on SQLite, in the caller's transaction."""
    if catalogue.dialect == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        copy_sql = "COPY similarity.embedding (obs_publisher_did, model_id, vector) FROM STDIN"
        with cursor.copy(copy_sql + " (FORMAT BINARY)") as copy:
            copy.set_types(["varchar", "int4", "float4[]"])
            for did, vector in rows:
                copy.write_row((did, model_id, vector.tolist()))
        return
    conn.execute(
        catalogue.table("similarity.embedding").insert(),
        [
            {"obs_publisher_did": did, "model_id": model_id, "vector": vector}
            for did, vector in rows
        ],
    )
