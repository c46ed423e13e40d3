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

A vector must be finite: a cut-out with NaN or infinite pixels (a corrupted
store row), or a network that yields a non-finite vector for it, gets no
vector; the report names each such image and the stage fails (exit 1), so
no NaN ever reaches the neighbours or a JSON answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
import torch
from sqlalchemy import Connection
from tqdm import tqdm

from model_training.cluster import client_for
from tap_schema import Catalogue, Settings, open_catalogue

from .checkpoints import ModelNotFoundError, TrainedModel, current_model_id, load_model
from .cluster_embed import cluster_vectors
from .image_set import IMAGE_KINDS, load_image_set
from .inference import compute_vectors, pick_device
from .threads import ThreadBudget

__all__ = ["EmbedReport", "embed_images"]


@dataclass(frozen=True)
class EmbedReport:
    """What one run of the embedding stage did, per model."""

    embedded: dict[int, int]
    already_done: dict[int, int]
    refused: list[str] = field(default_factory=list)
    """One line per image that got no vector because its cut-out or vector is not finite."""

    @property
    def exit_status(self) -> int:
        """0 if every image has its vector, 1 if some were refused."""
        return 1 if self.refused else 0

    def __str__(self) -> str:
        summary = "; ".join(
            f"model {model_id}: {count} new vectors, {self.already_done[model_id]} already there"
            for model_id, count in self.embedded.items()
        )
        return "\n".join([summary, *(f"refused: {line}" for line in self.refused)])


def embed_images(
    settings: Settings,
    model_id: int | None = None,
    *,
    device: str | None = None,
    batch_size: int = 256,
    progress: bool = True,
    cluster: Any = None,
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
    cluster
        Run the forward passes on a Dask cluster: ``local``, ``local:N`` or a
        scheduler address (`model_training.cluster`), or a connected
        `distributed.Client`; ``device`` is then the workers' device.
    threads
        CPU threads (``--threads``); None for this process's fair share of
        the cores (`model_training.learn.threads`).

    Returns
    -------
    EmbedReport
        Vectors written and vectors that were already there, per model.
    """
    if isinstance(cluster, str):
        from model_training.cluster import require

        require(cluster)
    catalogue = open_catalogue(settings)
    try:
        torch_device = pick_device(device)
        budget = ThreadBudget(threads)
        if model_id is None:
            with catalogue.begin() as conn:
                model_ids = [i for kind in IMAGE_KINDS if (i := current_model_id(conn, kind))]
            if not model_ids:
                raise ModelNotFoundError("no current model for any image kind: run 'vosim train'")
        else:
            model_ids = [model_id]
        report = EmbedReport({}, {})
        with client_for(cluster) as client:
            for mid in model_ids:
                model = load_model(catalogue, mid, device="cpu" if client else torch_device)
                report.embedded[mid], report.already_done[mid] = _embed_with(
                    settings,
                    catalogue,
                    model,
                    torch_device,
                    batch_size,
                    progress,
                    budget.choice.count,
                    report.refused,
                    (client, device),
                )
    finally:
        catalogue.dispose()  # its connections: a PostgreSQL backend each
    return report


def _embed_with(
    settings: Settings,
    catalogue: Catalogue,
    model: TrainedModel,
    device: torch.device,
    batch_size: int,
    progress: bool,
    threads: str,
    refused: list[str],
    cluster: tuple[Any, str | None] = (None, None),
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
    cutouts = todo.cutouts(settings)
    finite_input = np.nan_to_num(cutouts, nan=0.0, posinf=0.0, neginf=0.0)
    client, worker_device = cluster
    with bar:
        if client is not None:
            vectors = cluster_vectors(
                client,
                model.method,
                finite_input,
                model.config,
                device=worker_device,
                batch_size=batch_size,
                progress=bar,
            )
        else:
            vectors = compute_vectors(
                model.method,
                finite_input,
                model.config,
                device=device,
                batch_size=batch_size,
                progress=bar,
            )
    vectors = vectors.numpy()
    finite = _finite_rows(model.model_id, todo.obs_publisher_did, cutouts, vectors, refused)
    rows = zip(todo.obs_publisher_did[finite], vectors[finite], strict=True)
    with catalogue.begin_writing(("similarity",)) as conn:  # waits for another writer
        _insert_vectors(conn, catalogue, model.model_id, rows)
    return int(finite.sum()), len(done)


def _finite_rows(
    model_id: int, dids: np.ndarray, cutouts: np.ndarray, vectors: np.ndarray, refused: list[str]
) -> np.ndarray:
    """Mask of the images whose cut-out and vector are finite; a line for each other one."""
    good_input = np.isfinite(cutouts.reshape(len(cutouts), -1)).all(axis=1)
    good_vector = np.isfinite(vectors).all(axis=1)
    for did in dids[~good_input]:
        refused.append(
            f"{did} (model {model_id}): its cut-out has NaN or infinite pixels; re-ingest its"
            " file (vosim ingest --reprocess) to rewrite the cut-out"
        )
    for did in dids[good_input & ~good_vector]:
        refused.append(f"{did} (model {model_id}): the network gave a vector that is not finite")
    return good_input & good_vector


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
