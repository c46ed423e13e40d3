"""The neighbours stage: the exact most similar public images of every public image.

The paper (Stoehr et al. 2024, "Results" and "Interface") precomputes, for
each image, the 1000 most similar images by the cosine similarity of their
vectors, only among images of the same kind (continuum with continuum,
peak flux with peak flux) and of scientifically compatible categories, and
only among public images; as images become public the matrix is rebuilt.
This stage does that for the current model of each kind and writes
``similarity.neighbour``:

* **Who takes part.** An image with a vector of the model, of the model's
  kind, whose ``obs_release_date`` has passed (NULL means never released).
  Nothing else appears, neither as a query nor as a neighbour.
* **Order.** Rank 1 is the most similar image; equal similarities are
  ordered by DID (code-point order), so the lists are a deterministic
  function of the vectors.
* **Categories.** See `model_training.categories`: a list holds only
  images of compatible categories (uncategorised images are compatible with
  all), and still has k entries whenever k compatible images exist.
* **Incremental.** The images each model's lists were computed over are
  kept in ``vosim.neighbour_member``. On the next run, images that are new,
  newly public, re-embedded or re-categorised are searched against all;
  each stored list is offered only the new images (it was complete over
  the rest). An image that left (made proprietary again, or removed) takes
  its own list with it, and every list that contained it is searched again
  from scratch: its (k+1)-th image was never stored, so the gap cannot be
  filled otherwise. A change of k or of the category compatibility, or
  ``full=True``, recomputes everything.
* **Transactions.** Each model is written in one transaction, so a run that
  is interrupted leaves the previous lists in place and running it again
  finishes the job (restartable); a run with nothing to do changes nothing
  (idempotent). On SQLite a crash inside that commit can leave the lists
  (``similarity``) committed and the bookkeeping (``vosim``) not; the commit
  is stamped in both files, and a run that finds the stamps differ
  recomputes that model's lists in full and says so (``repaired``).
  Beside a busy server (UWS jobs write ``vosim`` every second) the
  transaction holds ``similarity`` from its start and writes ``vosim`` only
  at its end, so it waits for other writers instead of being refused.
* **Cluster.** With ``cluster`` (``local[:N]`` or a Dask scheduler's
  address) the search runs as Dask tasks (`cluster_search`), which form the
  same products as this process would, so the lists are the same to the
  bit on the same kind of device; this process still reads the vectors and
  writes every list, in the same one transaction per model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
import torch
from sqlalchemy import Connection
from tqdm import tqdm

from model_training.categories import CategoryCompatibility, load_compatibility
from model_training.cluster import client_for
from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.release import released, utc_now

from .backends import backend_top_k
from .cluster_search import cluster_all_pairs_top_k, cluster_update_top_k
from .exact_top_k import VectorSpace, all_pairs_top_k, default_block_size, merge_best, update_top_k
from .store import (
    Member,
    NeighbourWriter,
    bulk_load,
    delete_lists,
    delete_members,
    delete_models,
    lists_containing,
    read_lists,
    read_members,
    read_run,
    vector_digest,
    write_members,
    write_run,
)

__all__ = [
    "NeighbourReport",
    "NoCurrentModelError",
    "PublicVectors",
    "compute_neighbours",
    "load_public_vectors",
    "vector_space",
]

DEFAULT_K = 1000
_WRITTEN_SCHEMAS = ("similarity", "vosim")
"""The schema files one model's commit writes: lists, then their bookkeeping."""

logger = logging.getLogger(__name__)


class NoCurrentModelError(ValueError):
    """There is no model to compute neighbours with."""


@dataclass(frozen=True)
class NeighbourReport:
    """What one run of the stage did for one model."""

    model_id: int
    image_kind: str
    mode: str
    """``full``, ``incremental`` or ``unchanged``."""
    n_images: int
    n_lists_written: int
    n_rows_written: int
    n_new: int
    n_removed: int
    n_researched: int
    """Old lists searched again from scratch because they lost a neighbour."""
    seconds: float
    repaired: bool = False
    """The previous commit of this model was torn (SQLite): every list was recomputed."""

    def __str__(self) -> str:
        line = (
            f"model {self.model_id} ({self.image_kind}): {self.mode}, {self.n_images} public"
            f" images, {self.n_lists_written} lists ({self.n_rows_written} rows) written"
        )
        if self.mode == "incremental":
            line += (
                f"; {self.n_new} new, {self.n_removed} gone,"
                f" {self.n_researched} lists searched again"
            )
        line = f"{line} in {self.seconds:.1f} s"
        if self.repaired:
            line += (
                f"\nrepaired: the last commit of model {self.model_id}'s lists was cut short"
                " (lists and bookkeeping disagreed); all its lists were recomputed"
            )
        return line


@dataclass(frozen=True)
class PublicVectors:
    """The public images of one model with their vectors, in DID order.

    The index of an image in these arrays is its *tie key*: equal
    similarities are ordered by it.
    """

    dids: list[str]
    categories: list[str | None]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.dids)


def compute_neighbours(
    settings: Settings,
    *,
    k: int = DEFAULT_K,
    model_id: int | None = None,
    full: bool = False,
    device: str | None = None,
    block_size: int | None = None,
    backend: str = "torch",
    now: datetime | None = None,
    progress: bool = True,
    cluster: Any = None,
) -> list[NeighbourReport]:
    """Compute and store the neighbour lists of the current model of each image kind.

    This is the ``vosim neighbours`` stage.

    Parameters
    ----------
    settings
        The installation.
    k
        Neighbours per image.
    model_id
        Compute for this model only (default: the current model of each kind).
    full
        Recompute every list instead of updating the stored ones.
    device
        ``cpu`` or ``cuda``; the first GPU when there is one, by default.
    block_size
        Vectors per block of the search (memory); a device default when omitted.
    backend
        ``torch`` (exact search of `model_training.neighbours.exact_top_k`), or ``faiss``
        or ``cuml`` for full recomputations when installed
        (`model_training.neighbours.backends`).
    now
        The moment that decides what is public (naive UTC; default: now).
    progress
        Show a progress bar (fed by finished tasks on a cluster).
    cluster
        Search on a Dask cluster: ``local``, ``local:N`` (N worker processes
        here) or a scheduler address (``tcp://scheduler:8786``); needs the
        ``cluster`` extra; or a connected `distributed.Client`. ``device`` is
        then the workers' device (default: their GPU if they have one) and
        the block size defaults to the CPU's.

    Returns
    -------
    list of NeighbourReport
        One per model.
    """
    if cluster is not None and backend != "torch":
        raise ValueError(f"--cluster runs the torch search, not --backend {backend}")
    if isinstance(cluster, str):
        from model_training.cluster import require

        require(cluster)
    catalogue = open_catalogue(settings)
    try:
        models = _models(catalogue, model_id)
        compatibility = load_compatibility(catalogue)
        when = now or utc_now()
        search_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        with client_for(cluster) as client:
            if client is not None:
                block_size = block_size or default_block_size(device or "cpu")
                search_device = torch.device("cpu")
            return _update_models(
                catalogue,
                models,
                compatibility,
                k=k,
                full=full,
                device=search_device,
                block_size=block_size,
                backend=backend,
                now=when,
                progress=progress,
                search=_Search(client, device),
            )
    finally:
        catalogue.dispose()


@dataclass(frozen=True)
class _Search:
    """Where the search runs: here (no client) or on a Dask cluster, on the workers' device."""

    client: Any = None
    device: str | None = None


def _update_models(
    catalogue: Catalogue,
    models: list[tuple[int, str, list[int]]],
    compatibility: CategoryCompatibility,
    **options,
) -> list[NeighbourReport]:
    return [
        _update_model(catalogue, model, kind, stale, compatibility, **options)
        for model, kind, stale in models
    ]


def load_public_vectors(
    conn: Connection, catalogue: Catalogue, model_id: int, image_kind: str, now: datetime
) -> PublicVectors:
    """Read the vectors of the public images of a model's kind, in DID order."""
    embedding = catalogue.table("similarity.embedding")
    image = catalogue.table("similarity.image")
    obscore = catalogue.table("ivoa.obscore")
    rows = conn.execute(
        sa.select(embedding.c.obs_publisher_did, obscore.c.scientific_category, embedding.c.vector)
        .join(image, image.c.obs_publisher_did == embedding.c.obs_publisher_did)
        .join(obscore, obscore.c.obs_publisher_did == embedding.c.obs_publisher_did)
        .where(
            (embedding.c.model_id == model_id)
            & (image.c.image_kind == image_kind)
            & released(obscore.c.obs_release_date, now)
        )
    ).all()
    rows.sort(key=lambda row: row[0])
    dimension = len(rows[0][2]) if rows else 0
    vectors = np.empty((len(rows), dimension), dtype=np.float32)
    for i, row in enumerate(rows):
        vectors[i] = row[2]
    return PublicVectors([row[0] for row in rows], [row[1] or None for row in rows], vectors)


def vector_space(
    images: PublicVectors, compatibility: CategoryCompatibility, device: torch.device
) -> tuple[VectorSpace, np.ndarray]:
    """Arrange vectors for the search: by category, then DID.

    Returns
    -------
    tuple
        The `VectorSpace` and ``order``: the tie key (index in ``images``)
        of each position of the space.
    """
    names = sorted({name for name in images.categories if name is not None})
    code = {name: i for i, name in enumerate(names)}
    codes = np.array([code.get(name, len(names)) for name in images.categories], dtype=np.int64)
    order = np.lexsort((np.arange(len(images)), codes))
    compatible = torch.from_numpy(compatibility.matrix([*names, None]))
    space = VectorSpace(
        vectors=torch.from_numpy(np.ascontiguousarray(images.vectors[order])).to(device),
        categories=torch.from_numpy(codes[order]),
        tie_keys=torch.from_numpy(order.astype(np.int32)).to(device),
        compatible=compatible,
    )
    return space, order


def _update_model(
    catalogue: Catalogue,
    model_id: int,
    image_kind: str,
    stale: list[int],
    compatibility: CategoryCompatibility,
    *,
    k: int,
    full: bool,
    device: torch.device,
    block_size: int | None,
    backend: str,
    now: datetime,
    progress: bool,
    search: _Search,
) -> NeighbourReport:
    """Bring one model's lists up to date, in one transaction.

    The transaction holds the lists' file from its start and writes the
    bookkeeping (``vosim``, which UWS jobs write too) only at its end, having
    read it on another connection: it never reads a file that others write
    before writing that file itself (`Catalogue.lock_for_writing`).
    """
    started = time.perf_counter()
    commit_name = f"neighbours of model {model_id}"
    with catalogue.begin_writing(("similarity",)) as conn:
        # read after the lock: another run of this stage has committed all its files by now
        with catalogue.reading_committed(conn) as committed:
            run = read_run(committed, catalogue, model_id)
            stored = read_members(committed, catalogue, model_id) if run else {}
            repaired = catalogue.torn_commit(committed, commit_name, _WRITTEN_SCHEMAS)
        images = load_public_vectors(conn, catalogue, model_id, image_kind, now)
        digests = [vector_digest(vector) for vector in images.vectors]
        current = {
            did: Member(category, digest, 0, None)
            for did, category, digest in zip(images.dids, images.categories, digests, strict=True)
        }
        space, order = vector_space(images, compatibility, device)
        if repaired:
            logger.warning("model %d: the last commit of its lists was torn; recomputing", model_id)
        if full or repaired or run != (k, compatibility.digest()) or backend != "torch":
            job = _FullRun(conn, catalogue, model_id, images, current, k)
            job.run(space, order, stale, block_size, backend, progress, search)
        else:
            job = _IncrementalRun(conn, catalogue, model_id, images, current, k)
            job.run(space, order, stored, block_size, progress, search)
        catalogue.lock_for_writing(conn, ("vosim",))
        job.write_members()
        write_run(conn, catalogue, model_id, k, compatibility.digest(), len(images))
        catalogue.stamp_commit(conn, commit_name, _WRITTEN_SCHEMAS)
    return NeighbourReport(
        model_id,
        image_kind,
        job.mode,
        len(images),
        job.lists_written,
        job.writer.rows_written,
        job.n_new,
        job.n_removed,
        job.n_researched,
        time.perf_counter() - started,
        repaired,
    )


class _Run:
    """Shared state of a full or incremental run: the writer and the member rows."""

    mode = ""

    def __init__(
        self,
        conn: Connection,
        catalogue: Catalogue,
        model_id: int,
        images: PublicVectors,
        current: dict[str, Member],
        k: int,
    ) -> None:
        self.conn, self.catalogue, self.model_id = conn, catalogue, model_id
        self.images, self.current, self.k = images, current, k
        self.writer = NeighbourWriter(conn, catalogue, model_id, images.dids)
        self.members: dict[str, Member] = {}
        self.gone: list[tuple[int, list[str] | None]] = []
        """Bookkeeping rows to delete at the end: (model, DIDs or None for all)."""
        self.lists_written = self.n_new = self.n_removed = self.n_researched = 0

    def forget_members(self, model_id: int, dids: list[str] | None = None) -> None:
        """Note bookkeeping rows to delete (`write_members` deletes them, then writes)."""
        self.gone.append((model_id, dids))

    def write_members(self) -> None:
        """Delete the forgotten bookkeeping rows and write those of the lists written."""
        for model_id, dids in self.gone:
            delete_members(self.conn, self.catalogue, model_id, dids)
        write_members(self.conn, self.catalogue, self.model_id, self.members)

    def write(self, queries: np.ndarray, values: np.ndarray, keys: np.ndarray) -> None:
        """Write complete lists (query tie keys, best-first similarities and neighbour keys)."""
        self.writer.write(queries, values, keys)
        lengths = np.isfinite(values).sum(1)
        for key, length, row in zip(queries.tolist(), lengths.tolist(), values, strict=True):
            did = self.images.dids[key]
            last = float(row[length - 1]) if length else None
            self.members[did] = Member(
                self.current[did].scientific_category,
                self.current[did].vector_digest,
                length,
                last,
            )
        self.lists_written += len(queries)

    def bar(self, total: int, progress: bool) -> tqdm:
        """Make a progress bar over block pairs."""
        return tqdm(
            total=total,
            unit="block",
            desc=f"neighbours of model {self.model_id}",
            disable=not progress,
        )


class _FullRun(_Run):
    """Recompute every list of a model."""

    mode = "full"

    def run(
        self,
        space: VectorSpace,
        order: np.ndarray,
        stale: list[int],
        block_size: int | None,
        backend: str,
        progress: bool,
        search: _Search,
    ) -> None:
        """Delete the old lists (and those of superseded models), write the new ones."""
        delete_models(self.conn, self.catalogue, [self.model_id, *stale])
        for model in [self.model_id, *stale]:
            self.forget_members(model)
        n = len(space)
        blocks = _n_blocks(n, block_size, space.device)
        with (
            bulk_load(self.conn, self.catalogue, n * min(self.k, max(n - 1, 0))),
            self.bar(blocks * (blocks + 1) // 2, progress) as bar,
        ):
            if search.client is not None:
                found = cluster_all_pairs_top_k(
                    search.client, space, self.k, block_size, bar, search.device
                )
            elif backend == "torch":
                found = all_pairs_top_k(space, self.k, block_size, bar)
            else:
                found = backend_top_k(backend, space, self.k)
            for rows, values, keys in found:
                positions = np.arange(len(space))[rows] if isinstance(rows, slice) else rows
                self.write(order[positions], values, keys)
                bar.set_postfix(rows=self.writer.rows_written, refresh=False)
        self.n_new = len(self.images)


class _IncrementalRun(_Run):
    """Update stored lists for images that arrived, left or changed."""

    mode = "incremental"

    def run(
        self,
        space: VectorSpace,
        order: np.ndarray,
        stored: dict[str, Member],
        block_size: int | None,
        progress: bool,
        search: _Search,
    ) -> None:
        """Search the new and the damaged lists, merge new images into the others."""
        current, dids = self.current, self.images.dids
        changed = {
            did
            for did, member in stored.items()
            if did not in current
            or member.vector_digest != current[did].vector_digest
            or member.scientific_category != current[did].scientific_category
        }
        new = [did for did in dids if did not in stored or did in changed]
        if not new and not changed:
            self.mode = "unchanged"
            return
        damaged = lists_containing(self.conn, self.catalogue, self.model_id, changed)
        damaged = {did for did in damaged if did in current and did not in changed}
        self.n_new, self.n_removed, self.n_researched = (
            len(new),
            len(changed - set(new)),
            len(damaged),
        )
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        key = {did: i for i, did in enumerate(dids)}
        recompute = np.sort(position[[key[did] for did in [*new, *damaged]]])
        kept_dids = [did for did in dids if did in stored and did not in changed | damaged]
        kept = np.sort(position[[key[did] for did in kept_dids]]).astype(np.int64)
        floors = np.array(
            [_floor(stored[dids[order[p]]], self.k) for p in kept.tolist()], dtype=np.float32
        )
        delete_lists(self.conn, self.catalogue, self.model_id, [*changed, *damaged])
        self.forget_members(self.model_id, [*changed, *damaged])
        self.members = {}
        blocks = _n_blocks(len(space), block_size, space.device)
        rows_blocks = -(-len(recompute) // (block_size or default_block_size(space.device)))
        with self.bar(blocks * rows_blocks, progress) as bar:
            arguments = (
                space,
                self.k,
                torch.from_numpy(recompute),
                torch.from_numpy(np.sort(position[[key[did] for did in new]])),
                torch.from_numpy(kept),
                torch.from_numpy(floors),
                block_size,
                bar,
            )
            if search.client is not None:
                found = cluster_update_top_k(search.client, *arguments, search.device)
            else:
                found = update_top_k(*arguments)
            for positions, values, keys, complete in found:
                if complete:
                    self.write(order[positions], values, keys)
                else:
                    self._merge_into_stored(order[positions], values, keys)
                bar.set_postfix(rows=self.writer.rows_written, refresh=False)

    def _merge_into_stored(self, queries: np.ndarray, values: np.ndarray, keys: np.ndarray) -> None:
        """Merge new candidates into stored lists and rewrite those lists."""
        dids = self.images.dids
        key = {did: i for i, did in enumerate(dids)}
        query_dids = [dids[q] for q in queries.tolist()]
        old_values = np.full((len(queries), self.k), -np.inf, dtype=np.float32)
        old_keys = np.zeros((len(queries), self.k), dtype=np.int32)
        row = {did: i for i, did in enumerate(query_dids)}
        for did, similarities, neighbours in read_lists(
            self.conn, self.catalogue, self.model_id, query_dids
        ):
            i = row[did]
            old_values[i, : len(similarities)] = similarities
            old_keys[i, : len(neighbours)] = [key[n] for n in neighbours]
        merged_values, merged_keys = merge_best(old_values, old_keys, values, keys, self.k)
        delete_lists(self.conn, self.catalogue, self.model_id, query_dids)
        self.forget_members(self.model_id, query_dids)
        self.write(queries, merged_values, merged_keys)


def _floor(member: Member, k: int) -> float:
    """Return what a new image must reach to enter a stored list (its last similarity, if full)."""
    if member.n_neighbours >= k and member.last_similarity is not None:
        return member.last_similarity
    return -np.inf


def _n_blocks(n: int, block_size: int | None, device: torch.device) -> int:
    size = block_size or default_block_size(device)
    return max(1, -(-n // size))


def _models(catalogue: Catalogue, model_id: int | None) -> list[tuple[int, str, list[int]]]:
    """Return the models to run: ``(model, kind, superseded models of that kind)``."""
    table = catalogue.table("similarity.model")
    with catalogue.begin() as conn:
        rows = conn.execute(
            sa.select(table.c.model_id, table.c.image_kind, table.c.is_current)
        ).all()
    if model_id is not None:
        kinds = [kind for mid, kind, _ in rows if mid == model_id]
        if not kinds:
            raise NoCurrentModelError(f"no model {model_id} in similarity.model")
        return [(model_id, kinds[0], [])]
    current = [(mid, kind) for mid, kind, is_current in rows if is_current]
    if not current:
        raise NoCurrentModelError(
            "no current model (similarity.model.is_current = 1): run 'vosim train' first"
        )
    return [
        (mid, kind, [other for other, other_kind, _ in rows if other_kind == kind and other != mid])
        for mid, kind in sorted(current)
    ]
