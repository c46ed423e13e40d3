"""The exact search of `exact_top_k`, split into Dask tasks, with the same lists to the bit.

A matrix product's entries depend on the shapes it is computed in (BLAS
blocks them differently), so a distributed search that formed other
products than the single-process one would find similarities that differ
in the last bit, and then and again another neighbour at a tie. The tasks
here form exactly the products of the single-process search and keep its
order of decisions:

* **Full run** (`cluster_all_pairs_top_k`). One task per row block
  estimates the rows' floors; one task per block pair ``I <= J`` forms
  ``X[I] @ X[J].T`` as `all_pairs_top_k` does and returns, for the rows of
  both blocks, the candidates at or above those floors (at most k per row);
  the partial lists of a row block merge in a tree of tasks (exact: the
  column sets are disjoint, and codes order by similarity, then by tie
  key); a last task per row block searches again the rows whose floor was
  too high, as `_recheck` does for that block.
* **Incremental run** (`cluster_update_top_k`). One task per (block of
  rows to recompute, block of columns) forms the products of
  `update_top_k` and offers the new vectors to the kept lists of the
  column block as well; the rows whose floor was too high are searched
  again together in one task, as `update_top_k` does.

Vectors are scattered once to every worker (``broadcast``) and turned into
a `VectorSpace` once per worker process; tasks carry only block numbers.
Memory per task: one block pair of products plus ``2 k`` codes per row of
the pair. Dask runs the tasks of a lost worker again elsewhere, and the
tasks are pure functions of their inputs, so the lists stay exact.
The driver gets the lists of each row block as its last task finishes and
writes them (`stage`).

"The same" holds on the same kind of device with one BLAS thread per
process on both sides: OpenBLAS's multi-threaded products differ from its
single-threaded ones in the last bit (the workers of `model_training.cluster`
run one thread; a single-process reference runs under ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .exact_top_k import (
    EMPTY,
    CandidateLists,
    VectorSpace,
    _allowed,
    _estimate_floors,
    _exclude,
    _exclude_self,
    _offer_block_pair,
    _offer_rows,
    _products,
    _recheck,
    decode_numpy,
    default_block_size,
    exact_float32_matmul,
)

__all__ = ["cluster_all_pairs_top_k", "cluster_update_top_k"]

MERGE_FAN_IN = 8
"""Partial lists merged by one task (memory: this many times k codes per row of a block)."""

Partial = tuple[np.ndarray, np.ndarray]
"""Candidates of some rows: ``(r, w)`` codes best first (``EMPTY`` past the end), counts."""

_SPACES: dict[str, VectorSpace] = {}
"""The vector space of this worker process, made once from the scattered vectors."""
_SCRATCH = threading.local()
"""Candidate lists and a product buffer reused by a worker thread's tasks: fresh
memory of that size (100-200 MB) costs its page faults every task."""


def cluster_all_pairs_top_k(
    client: Any,
    space: VectorSpace,
    k: int,
    block_size: int | None = None,
    progress=None,
    device: str | None = None,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield what `all_pairs_top_k` yields, computed on a Dask cluster, block by block.

    Parameters
    ----------
    client
        A `distributed.Client`.
    space
        The vectors, in search order (on any device; they are copied to the CPU).
    k, block_size
        As for `all_pairs_top_k`; the block size defaults to the driver's device's.
    progress
        Optional tqdm-like object; ``update(1)`` when a block-pair task finishes.
    device
        Where workers search (default: a GPU of the worker if it has one).

    Yields
    ------
    tuple
        ``(rows, values, keys)`` per row block, in the order the blocks finish.
    """
    n = len(space)
    block_size = block_size or default_block_size(space.device)
    shared = _scatter(client, space, block_size, device)
    n_blocks = -(-n // block_size)
    floors = [client.submit(_block_floors, shared, i, k, pure=False) for i in range(n_blocks)]
    pairs = {
        (i, j): client.submit(_block_pair, shared, i, j, k, floors[i], floors[j], pure=False)
        for i in range(n_blocks)
        for j in range(i, n_blocks)
    }
    finals = {}
    for i in range(n_blocks):
        parts = [(pairs[i, j], 0) for j in range(i, n_blocks)]
        parts += [(pairs[j, i], 1) for j in range(i)]
        merged = _merge_tree(client, k, parts)
        finals[client.submit(_finish_block, shared, i, k, merged, floors[i], pure=False)] = i
    pair_futures = list(pairs.values())
    pairs.clear()  # held only until counted: the cluster frees each partial once merged
    for future, done in _completed(client, pair_futures, list(finals), progress):
        if done:
            i = finals.pop(future)
            values, keys = future.result()
            yield slice(i * block_size, min((i + 1) * block_size, n)), values, keys


def cluster_update_top_k(
    client: Any,
    space: VectorSpace,
    k: int,
    recompute: torch.Tensor,
    new: torch.Tensor,
    kept: torch.Tensor,
    kept_floors: torch.Tensor,
    block_size: int | None = None,
    progress=None,
    device: str | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Yield what `update_top_k` yields, computed on a Dask cluster.

    Parameters are those of `update_top_k`, plus ``client`` and ``device``
    as for `cluster_all_pairs_top_k`.
    """
    n = len(space)
    block_size = block_size or default_block_size(space.device)
    shared = _scatter(client, space, block_size, device)
    n_blocks = -(-n // block_size)
    is_new = np.zeros(n, dtype=bool)
    is_new[new.numpy()] = True
    is_kept = np.zeros(n, dtype=bool)
    is_kept[kept.numpy()] = True
    floor_of = np.full(n, -np.inf, dtype=np.float32)
    floor_of[kept.numpy()] = kept_floors.numpy()
    recompute_np = recompute.numpy()
    chunks = [recompute_np[s : s + block_size] for s in range(0, recompute_np.size, block_size)]
    floors = [client.submit(_rows_floors, shared, rows, k, True, pure=False) for rows in chunks]
    pairs = {}
    for c, rows in enumerate(chunks):
        for j in range(n_blocks):
            cols = slice(j * block_size, min((j + 1) * block_size, n))
            pairs[c, j] = client.submit(
                _rows_against_block,
                shared,
                rows,
                j,
                k,
                floors[c],
                is_new[rows],
                is_kept[cols],
                floor_of[cols],
                pure=False,
            )
    row_lists = {
        client.submit(
            _finish_rows,
            k,
            _merge_tree(client, k, [(pairs[c, j], 0) for j in range(n_blocks)]),
            floors[c],
            pure=False,
        ): c
        for c in range(len(chunks))
    }
    kept_lists = {}
    if kept.numel() and is_new.any():
        for j in range(n_blocks):
            merged = _merge_tree(client, k, [(pairs[c, j], 1) for c in range(len(chunks))])
            kept_lists[client.submit(_finish_kept, k, merged, pure=False)] = j
    redo: list[np.ndarray] = []
    finals = [*row_lists, *kept_lists]
    pair_futures = list(pairs.values())
    pairs.clear()  # held only until counted: the cluster frees each partial once merged
    for future, done in _completed(client, pair_futures, finals, progress):
        if not done:
            continue
        if future in row_lists:
            rows = chunks[row_lists.pop(future)]
            values, keys, again = future.result()
            redo.append(rows[again])
            keep = ~again
            yield rows[keep], values[keep], keys[keep], True
        else:
            j = kept_lists.pop(future)
            received, values, keys = future.result()
            positions = j * block_size + received
            positions_kept = is_kept[positions]
            if positions_kept.any():
                yield (
                    positions[positions_kept],
                    values[positions_kept],
                    keys[positions_kept],
                    False,
                )
    again = np.concatenate(redo) if redo else np.zeros(0, dtype=np.int64)
    if again.size:
        again.sort()
        values, keys = client.submit(_recheck_rows, shared, again, k, pure=False).result()
        yield again, values, keys, True


def _scatter(client: Any, space: VectorSpace, block_size: int, device: str | None) -> Any:
    """Send the vectors to every worker once; tasks refer to them by this future."""
    payload = {
        "token": uuid.uuid4().hex,
        "vectors": space.vectors.cpu().numpy(),
        "categories": space.categories.numpy(),
        "tie_keys": space.tie_keys.cpu().numpy(),
        "compatible": space.compatible.numpy(),
        "block_size": block_size,
        "device": device,
    }
    return client.scatter(payload, broadcast=True, hash=False)


def _completed(client: Any, pairs: list, finals: list, progress) -> Iterator[tuple[Any, bool]]:
    """Yield ``(future, is_final)`` as tasks finish, counting the pair tasks on ``progress``."""
    from distributed import as_completed

    final_keys = {future.key for future in finals}
    remaining = as_completed([*pairs, *finals])
    pairs.clear()
    finals.clear()
    for future in remaining:
        if future.status == "error":
            future.result()  # raises the task's exception here
        is_final = future.key in final_keys
        if not is_final and progress is not None:
            progress.update(1)
        yield future, is_final


def _merge_tree(client: Any, k: int, parts: list[tuple[Any, int]]) -> Any:
    """Merge partial lists in a tree of tasks of `MERGE_FAN_IN` inputs; return the root's future."""
    if not parts:
        raise ValueError("nothing to merge")
    items = parts
    while True:
        level = [
            client.submit(_merge, k, items[start : start + MERGE_FAN_IN], pure=False)
            for start in range(0, len(items), MERGE_FAN_IN)
        ]
        if len(level) == 1:
            return level[0]
        items = [(future, -1) for future in level]


# Worker side.


def _space_of(shared: dict) -> VectorSpace:
    """Return this worker's `VectorSpace` of the scattered vectors (built on first use)."""
    space = _SPACES.get(shared["token"])
    if space is None:
        wanted = shared["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(wanted)
        # Copies: the arrays arrive in message frames at any byte offset, and
        # numpy leaves a misaligned array to its own loops instead of BLAS
        # (other products, other last bits).
        space = VectorSpace(
            vectors=torch.from_numpy(shared["vectors"].copy()).to(device),
            categories=torch.from_numpy(shared["categories"].copy()),
            tie_keys=torch.from_numpy(shared["tie_keys"].copy()).to(device),
            compatible=torch.from_numpy(shared["compatible"].copy()),
        )
        _SPACES.clear()
        _SPACES[shared["token"]] = space
    return space


def _blocks(shared: dict, n: int) -> list[slice]:
    size = shared["block_size"]
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _block_floors(shared: dict, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Floors of the rows of block ``i``, and which are estimates (`_estimate_floors`).

    A floor is raised to the row's k-th best entry in its diagonal block,
    formed as the task of block pair ``(i, i)`` forms it (the same values):
    no list can end below that, and a task that starts from the floor
    instead of ``-inf`` does not offer its lists every entry of its block.
    """
    space = _space_of(shared)
    rows = _blocks(shared, len(space))[i]
    floors, guessed = _rows_floors(shared, np.arange(rows.start, rows.stop), k)
    if guessed.all():
        return floors, guessed
    runs = space.runs(rows)
    with exact_float32_matmul(space.device):
        scores = _products(space.vectors[rows], space.vectors[rows])
    scores.fill_diagonal_(float("-inf"))
    _exclude(scores, runs, runs, _allowed(space.compatible, runs, runs))
    return np.maximum(floors, _kth_best(scores, k)), guessed


def _rows_floors(
    shared: dict, rows: np.ndarray, k: int, first_block: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Floors of some rows, and which are estimates (`_estimate_floors`).

    With ``first_block``, raised to the rows' k-th best entry in column
    block 0, formed as the task of that block forms it (`_rows_against_block`).
    """
    space = _space_of(shared)
    lists = CandidateLists(rows.size, k, space.device)
    positions = torch.from_numpy(rows)
    targets = torch.arange(rows.size)
    with exact_float32_matmul(space.device):
        _estimate_floors(space, lists, positions, shared["block_size"], None, targets)
    floors, guessed = lists.floor.cpu().numpy(), lists.guessed.cpu().numpy()
    if not first_block or guessed.all():
        return floors, guessed
    cols = _blocks(shared, len(space))[0]
    row_runs, col_runs = space.runs(positions), space.runs(cols)
    with exact_float32_matmul(space.device):
        scores = _products(space.vectors[positions.to(space.device)], space.vectors[cols])
    _exclude_self(scores, positions, torch.arange(cols.start, cols.stop))
    _exclude(scores, row_runs, col_runs, _allowed(space.compatible, row_runs, col_runs))
    return np.maximum(floors, _kth_best(scores, k)), guessed


def _kth_best(scores: torch.Tensor, k: int) -> np.ndarray:
    """Each row's k-th best entry (``-inf`` where a row has fewer than k finite entries)."""
    if scores.shape[1] < k:
        return np.full(scores.shape[0], -np.inf, dtype=np.float32)
    kth = torch.topk(scores, k, dim=1, sorted=False).values.amin(1)
    return kth.cpu().numpy()


def _block_pair(
    shared: dict,
    i: int,
    j: int,
    k: int,
    row_floors: tuple[np.ndarray, np.ndarray],
    col_floors: tuple[np.ndarray, np.ndarray],
) -> tuple[Partial, Partial | None]:
    """Candidates from the products of block pair ``(i, j)``, for the rows of both blocks."""
    space = _space_of(shared)
    blocks = _blocks(shared, len(space))
    rows, cols = blocks[i], blocks[j]
    n_rows, n_cols = rows.stop - rows.start, cols.stop - cols.start
    both_sides = i != j
    lists = _lists(n_rows + (n_cols if both_sides else 0), k, space.device)
    lists.floor[:n_rows] = torch.from_numpy(row_floors[0]).to(space.device)
    if both_sides:
        lists.floor[n_rows:] = torch.from_numpy(col_floors[0]).to(space.device)
    buffer = _buffer(n_rows * n_cols, space.device)
    with exact_float32_matmul(space.device):
        _offer_block_pair(
            space,
            lists,
            rows,
            space.runs(rows),
            cols,
            space.runs(cols),
            buffer,
            (0, n_rows if both_sides else 0),
        )
    found = _partial(lists, k)
    if not both_sides:
        return found, None
    return _rows_of(found, slice(0, n_rows)), _rows_of(found, slice(n_rows, None))


def _rows_against_block(
    shared: dict,
    rows: np.ndarray,
    j: int,
    k: int,
    row_floors: tuple[np.ndarray, np.ndarray],
    feeding: np.ndarray,
    fed: np.ndarray,
    fed_floors: np.ndarray,
) -> tuple[Partial, Partial]:
    """Candidates from ``X[rows] @ X[block j].T`` (`update_top_k`): for the rows, for the kept."""
    space = _space_of(shared)
    cols = _blocks(shared, len(space))[j]
    n_rows = rows.size
    lists = _lists(n_rows + cols.stop - cols.start, k, space.device)
    lists.floor[:n_rows] = torch.from_numpy(row_floors[0]).to(space.device)
    lists.floor[n_rows:] = torch.from_numpy(fed_floors).to(space.device)
    positions = torch.from_numpy(rows)
    with exact_float32_matmul(space.device):
        _offer_rows(
            space,
            lists,
            positions,
            space.runs(positions),
            cols,
            space.runs(cols),
            torch.from_numpy(feeding),
            torch.from_numpy(fed),
            targets=torch.arange(n_rows),
            column_target=n_rows,
        )
    found = _partial(lists, k)
    return _rows_of(found, slice(0, n_rows)), _rows_of(found, slice(n_rows, None))


def _lists(n_rows: int, k: int, device: torch.device) -> CandidateLists:
    """Return empty candidate lists, those of this thread's last task when they fit."""
    lists = getattr(_SCRATCH, "lists", None)
    if (
        lists is None
        or lists.k != k
        or lists.codes.shape[0] != n_rows
        or (lists.codes.device != device)
    ):
        lists = _SCRATCH.lists = CandidateLists(n_rows, k, device)
        return lists
    lists.codes.fill_(EMPTY)
    lists.count.zero_()
    lists.floor.fill_(float("-inf"))
    lists.guessed.zero_()
    return lists


def _buffer(size: int, device: torch.device) -> torch.Tensor:
    """Return a float32 buffer of at least ``size`` entries, this thread's last when it fits."""
    buffer = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.numel() < size or buffer.device != device:
        buffer = _SCRATCH.buffer = torch.empty(size, dtype=torch.float32, device=device)
    return buffer


def _partial(lists: CandidateLists, k: int) -> Partial:
    """Return the candidates of every row of some lists, best first, at most k per row."""
    counts = lists.count.cpu().numpy()
    used = int(counts.max(initial=0))  # a list's candidates fill its first places
    codes = np.array(lists.codes[:, :used].cpu().numpy())
    codes.sort(axis=1)
    return np.ascontiguousarray(codes[:, : min(k, used)]), counts.astype(np.int64)


def _rows_of(found: Partial, rows: slice) -> Partial:
    codes, counts = found[0][rows], found[1][rows]
    width = int(min(codes.shape[1], (codes != EMPTY).sum(1).max(initial=0)))
    return np.ascontiguousarray(codes[:, :width]), counts


def _merge(k: int, parts: list[tuple[Any, int]]) -> Partial:
    """Merge the partial lists of the same rows over disjoint columns: the best k, counts added."""
    chosen = [result if side < 0 else result[side] for result, side in parts]
    codes = np.concatenate([part[0] for part in chosen], axis=1)
    codes.sort(axis=1)
    width = int(min(k, (codes != EMPTY).sum(1).max(initial=0)))
    counts = np.sum([part[1] for part in chosen], axis=0)
    return np.ascontiguousarray(codes[:, :width]), counts


def _best_first(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode lists padded to k places, as `CandidateLists.best_first` returns them."""
    full = np.full((codes.shape[0], k), EMPTY, dtype=np.int64)
    full[:, : codes.shape[1]] = codes[:, :k]
    return decode_numpy(full)


def _finish_block(
    shared: dict, i: int, k: int, merged: Partial, floors: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the final lists of row block ``i``: merged, rows with a bad floor redone."""
    space = _space_of(shared)
    rows = _blocks(shared, len(space))[i]
    codes, counts = merged
    full = np.full((rows.stop - rows.start, k), EMPTY, dtype=np.int64)
    full[:, : codes.shape[1]] = codes
    again = np.nonzero(floors[1] & (counts < k))[0]
    if again.size:
        full[again] = _researched(space, shared, rows.start + again, k)
    return decode_numpy(full)


def _finish_rows(
    k: int, merged: Partial, floors: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the lists of some recomputed rows, and which of them must be searched again."""
    values, keys = _best_first(merged[0], k)
    return values, keys, floors[1] & (merged[1] < k)


def _finish_kept(k: int, merged: Partial) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the new candidates of the kept lists of a column block that received any."""
    received = np.nonzero(merged[1] > 0)[0]
    values, keys = _best_first(merged[0][received], k)
    return received, values, keys


def _recheck_rows(shared: dict, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Search some rows again as `_recheck` does (all together: the same products)."""
    return decode_numpy(_researched(_space_of(shared), shared, rows, k))


def _researched(space: VectorSpace, shared: dict, rows: np.ndarray, k: int) -> np.ndarray:
    """Codes ``(r, k)`` best first of rows whose estimated floor let fewer than k through."""
    blocks = _blocks(shared, len(space))
    lists = CandidateLists(rows.size, k, space.device)
    lists.guessed[:] = True
    with exact_float32_matmul(space.device):
        _recheck(
            space,
            lists,
            torch.from_numpy(rows),
            blocks,
            [space.runs(block) for block in blocks],
            shared["block_size"],
            torch.arange(rows.size),
        )
    codes = lists.codes.cpu().numpy()
    codes.sort(axis=1)
    return codes[:, :k]
