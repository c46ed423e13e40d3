"""Exact k most similar vectors of every vector: blockwise matrix products and candidate lists.

The paper (Stoehr et al. 2024, "Results") finds the 1000 most similar images
of each of about 260,000 images with a GPU kd-tree. With L2-normalised
vectors the cosine similarity is a dot product, so the exact answer is the
top-k of each row of ``X @ X.T``. This module computes it without holding
that matrix and without a full top-k over each of its rows, which is what
dominates a plain blockwise search at small d:

1. **A floor per row.** The product of every vector with an evenly spaced
   sample of the vectors gives each row a similarity that about 1.5 k of its
   entries exceed (the sample's order statistic). Only entries at or above
   the floor can be among the row's best k, so the main pass keeps just those.
2. **Block pairs, used twice.** ``S = X[I] @ X[J].T`` is formed for ``I <= J``
   only: one block serves the rows of ``I`` and, read by columns, the rows of
   ``J``, which halves the arithmetic. Entries at or above the floors are
   picked out with one comparison per entry and appended to per-row candidate
   lists; a list that fills up is cut back to its best k, raising its floor.
3. **Check.** A row that ends with at least k candidates is exact (everything
   dropped lay below a floor that k candidates reach). The rare row whose
   floor came out too high is searched again without a floor.
4. **Categories inside the search.** Vectors are ordered by (category, DID),
   so the pairs of incompatible scientific categories form rectangles of a
   block, set to -inf before selection; block pairs without any compatible
   pair are skipped. A row still gets k compatible neighbours when k exist.
5. **Ties.** A candidate is stored as one int64 code that orders by
   similarity (descending), then by the rank of the neighbour's DID (the
   *tie key*), so equal similarities are always resolved the same way.

Memory: the vectors, ``2 k`` int64 codes per row (16 kB at k = 1000) and one
float32 ``block x block`` matrix (plus small per-chunk temporaries); for
260,000 x 2048 vectors that is about 2.1 + 4.2 + 0.07 GB at the default CPU
block size (4096), or 2.1 + 4.2 + 4.3 GB on a GPU (32768).

On CPU the comparisons and the extraction of the entries above the floors
use numpy (faster than torch's ``>=`` and ``nonzero`` there), and
the rows of each side of a block pair are harvested by two single-threaded
workers (`_side_by_side`).

Everything is plain torch and runs unchanged on CPU or CUDA. On CUDA the
products are formed in full float32 (TF32 off) so that the neighbour sets
are exact; see `exact_float32_matmul`.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import OpenBLASController, ThreadpoolController

__all__ = [
    "CandidateLists",
    "VectorSpace",
    "all_pairs_top_k",
    "decode",
    "default_block_size",
    "encode",
    "exact_float32_matmul",
    "merge_best",
    "update_top_k",
]

NEG_INF = float("-inf")
_FINITE_FLOOR = torch.finfo(torch.float32).min
_CAPACITY_FACTOR = 2
"""Candidate places per row, in units of k."""
_FLOOR_EXPECTED = 1.5
"""The floor is set so that about this many times k entries of a row reach it."""
_FLOOR_RANK = 64
"""Sample order statistic used for the floor; its relative spread is 1/sqrt(64)."""


def encode(values: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Pack similarities and tie keys into int64 codes that sort best first.

    Ascending codes are descending similarities, equal similarities by
    ascending tie key: the IEEE bits of a float32 are mapped to an int32 of
    the same order, negated, and placed above the key.

    Parameters
    ----------
    values
        float32 similarities (``-inf`` allowed).
    keys
        Non-negative int tie keys below 2**31.
    """
    bits = (values + 0.0).view(torch.int32)  # + 0.0 makes -0.0 equal to 0.0
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return (~ordered).to(torch.int64) << 32 | keys.to(torch.int64)


def decode(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpack codes made by `encode` into (float32 similarities, int32 tie keys)."""
    ordered = ~(codes >> 32).to(torch.int32)
    bits = ordered ^ ((ordered >> 31) & 0x7FFFFFFF)
    return bits.view(torch.float32), (codes & 0xFFFFFFFF).to(torch.int32)


def decode_numpy(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`decode` for numpy arrays (the lists handed to the writers)."""
    codes = np.ascontiguousarray(codes)
    keys = codes.astype(np.int32)  # the low 32 bits
    ordered = (codes >> 32).astype(np.int32)
    np.invert(ordered, out=ordered)
    flip = ordered >> 31
    flip &= 0x7FFFFFFF
    ordered ^= flip
    return ordered.view(np.float32), keys


EMPTY = int(encode(torch.tensor([NEG_INF]), torch.tensor([2**31 - 1]))[0])
"""Code of an unused place: worse than every candidate, decodes to -inf."""


@dataclass(frozen=True)
class VectorSpace:
    """The vectors of one image kind, in search order.

    Parameters
    ----------
    vectors
        ``(n, d)`` float32, L2-normalised, on the search device; rows ordered
        by category code, then by DID.
    categories
        ``(n,)`` int64 category codes on the CPU, non-decreasing.
    tie_keys
        ``(n,)`` int32 on the search device: the rank of each row's DID in DID
        order, which breaks exact ties (lower rank first).
    compatible
        ``(c, c)`` bool on the CPU: ``compatible[a, b]`` when images of
        category ``b`` may be listed as similar to an image of category ``a``.
    """

    vectors: torch.Tensor
    categories: torch.Tensor
    tie_keys: torch.Tensor
    compatible: torch.Tensor

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def device(self) -> torch.device:
        """Device the products are computed on."""
        return self.vectors.device

    def runs(self, positions: slice | torch.Tensor) -> list[tuple[int, int, int]]:
        """Return ``(category, first, stop)`` for each run of one category among some rows.

        ``first`` and ``stop`` index into the selected rows, not into the space.
        """
        codes = self.categories[_cpu(positions)]
        values, counts = torch.unique_consecutive(codes, return_counts=True)
        stops = torch.cumsum(counts, 0).tolist()
        return list(zip(values.tolist(), [0, *stops[:-1]], stops, strict=True))

    def n_compatible(self) -> torch.Tensor:
        """Count the vectors each vector may be compared with, itself excluded."""
        sizes = torch.bincount(self.categories, minlength=self.compatible.shape[0])
        per_category = self.compatible.long() @ sizes - self.compatible.diagonal().long()
        return per_category[self.categories]


class CandidateLists:
    """Per-row lists of candidate neighbours, each with a floor below which nothing is kept.

    Parameters
    ----------
    n_rows
        Number of rows (query vectors).
    k
        Number of neighbours wanted per row.
    device
        Where the lists live (the search device).
    """

    def __init__(self, n_rows: int, k: int, device: torch.device | str = "cpu") -> None:
        self.k = k
        self.capacity = _CAPACITY_FACTOR * k
        self.codes = torch.full((n_rows, self.capacity), EMPTY, dtype=torch.int64, device=device)
        self.count = torch.zeros(n_rows, dtype=torch.int64, device=device)
        self.floor = torch.full((n_rows,), NEG_INF, dtype=torch.float32, device=device)
        self.guessed = torch.zeros(n_rows, dtype=torch.bool, device=device)
        """Rows whose floor was estimated rather than reached by k candidates."""

    def set_floors(self, rows: torch.Tensor, floors: torch.Tensor) -> None:
        """Give rows known floors (incremental updates: the last similarity of a full list)."""
        self.floor[rows] = floors.to(self.floor)

    def offer(self, rows: torch.Tensor, values: torch.Tensor, keys: torch.Tensor) -> None:
        """Append candidates to their rows' lists, cutting lists that overflow back to k.

        Parameters
        ----------
        rows
            Row of each candidate, non-decreasing.
        values, keys
            Similarity and tie key of each candidate.
        """
        if rows.numel() == 0:
            return
        codes = encode(values, keys)
        unique_rows, counts = torch.unique_consecutive(rows, return_counts=True)
        filled = self.count.index_select(0, unique_rows)
        totals = filled + counts
        first = torch.cumsum(counts, 0) - counts
        overflow = totals > self.capacity
        if bool(overflow.any()):
            # Rare: cut those lists back to k together with their new candidates.
            group = torch.repeat_interleave(
                torch.arange(counts.numel(), device=rows.device), counts
            )
            slot = torch.arange(rows.numel(), device=rows.device) - first.index_select(0, group)
            spills = overflow.index_select(0, group)
            local = (torch.cumsum(overflow, 0) - 1).index_select(0, group[spills])
            self._cut_back(unique_rows[overflow], local, slot[spills], codes[spills])
            keep = ~overflow
            codes = codes[~spills]
            unique_rows, counts, filled, totals = (
                unique_rows[keep],
                counts[keep],
                filled[keep],
                totals[keep],
            )
            first = torch.cumsum(counts, 0) - counts
        # Candidate i of a row goes to place filled + i of that row's list.
        shift = unique_rows * self.capacity + filled - first
        places = torch.repeat_interleave(shift, counts)
        places += torch.arange(codes.numel(), device=codes.device)
        self.codes.view(-1).scatter_(0, places, codes)
        self.count.scatter_(0, unique_rows, totals)

    def _cut_back(
        self, rows: torch.Tensor, local: torch.Tensor, slot: torch.Tensor, codes: torch.Tensor
    ) -> None:
        """Merge new candidates into overflowing lists, keeping the best k (raises the floors)."""
        extra = torch.full(
            (rows.numel(), int(slot.max()) + 1), EMPTY, dtype=torch.int64, device=codes.device
        )
        extra[local, slot] = codes
        merged = torch.cat([self.codes[rows], extra], 1)
        best = torch.topk(merged, self.k, dim=1, largest=False, sorted=False).values
        kept = torch.full(
            (rows.numel(), self.capacity), EMPTY, dtype=torch.int64, device=best.device
        )
        kept[:, : self.k] = best
        self.codes[rows] = kept
        self.count[rows] = self.k
        self.floor[rows] = decode(best.amax(1))[0]

    def best_first(self, rows: slice | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Return the final lists of some rows, best first (sorts those lists in place).

        Returns
        -------
        tuple of numpy.ndarray
            ``(n, k)`` float32 similarities (``-inf`` past the end of a short
            list) and int32 tie keys.
        """
        codes = self.codes[rows]
        if _host_path(codes.device):
            # numpy's SIMD sort is several times faster than torch's on CPU.
            ordered = codes.numpy()
            ordered.sort(axis=1)
            ordered = ordered[:, : self.k]
            return decode_numpy(ordered)
        values, keys = decode(torch.sort(codes, dim=1).values[:, : self.k])
        return values.cpu().numpy(), keys.cpu().numpy()

    def needs_recheck(self, rows: slice | torch.Tensor) -> torch.Tensor:
        """Which rows had an estimated floor yet ended with fewer than k candidates."""
        return self.guessed[rows] & (self.count[rows] < self.k)

    def reset(self, rows: torch.Tensor) -> None:
        """Empty some lists and drop their floors (before searching them again)."""
        self.codes[rows] = EMPTY
        self.count[rows] = 0
        self.floor[rows] = NEG_INF
        self.guessed[rows] = False


Runs = list[tuple[int, int, int]]


def all_pairs_top_k(
    space: VectorSpace, k: int, block_size: int | None = None, progress=None
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield the exact k most similar compatible vectors of every vector, block by block.

    Parameters
    ----------
    space
        The vectors, categories and tie keys.
    k
        Number of neighbours per vector (fewer where fewer are compatible).
    block_size
        Rows per block; `default_block_size` when omitted.
    progress
        Optional tqdm-like object; ``update(1)`` is called per block pair.

    Yields
    ------
    tuple
        ``(rows, values, keys)``: a slice of positions whose lists are final,
        their similarities ``(rows, k)`` best first (``-inf`` past the end of
        a short list) and the tie keys of the neighbours, as numpy arrays.
    """
    n = len(space)
    block_size = block_size or default_block_size(space.device)
    lists = CandidateLists(n, k, space.device)
    blocks = [slice(start, min(start + block_size, n)) for start in range(0, n, block_size)]
    runs = [space.runs(block) for block in blocks]
    # One block of products, reused: a fresh 64-256 MB tensor per block pair
    # costs its page faults every time.
    buffer = torch.empty(min(block_size, n) ** 2, dtype=torch.float32, device=space.device)
    with exact_float32_matmul(space.device):
        _estimate_floors(space, lists, torch.arange(n), block_size)
        for i, rows in enumerate(blocks):
            for j in range(i, len(blocks)):
                _offer_block_pair(space, lists, rows, runs[i], blocks[j], runs[j], buffer)
                if progress is not None:
                    progress.update(1)
            _recheck(space, lists, torch.arange(rows.start, rows.stop), blocks, runs, block_size)
            yield rows, *lists.best_first(rows)


def update_top_k(
    space: VectorSpace,
    k: int,
    recompute: torch.Tensor,
    new: torch.Tensor,
    kept: torch.Tensor,
    kept_floors: torch.Tensor,
    block_size: int | None = None,
    progress=None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Search some rows from scratch and find what new vectors add to the other lists.

    The incremental form of `all_pairs_top_k`. The rows ``recompute`` (the
    new vectors, and the rows whose stored list lost a neighbour) are
    searched against every vector. Every other row with a stored list
    (``kept``) can only change by new vectors entering it, so it is offered
    just the ``new`` vectors, and only those at or above its floor (the last
    similarity of its stored list, when that list is full). Its final list
    is its stored list merged with the candidates yielded here
    (`merge_best`); that is exact because the stored list was complete over
    every other vector still present.

    Parameters
    ----------
    space
        All current vectors.
    k
        Number of neighbours per vector.
    recompute
        Sorted CPU positions whose lists are built from scratch.
    new
        Sorted CPU positions of the vectors in no stored list (within ``recompute``).
    kept
        Sorted CPU positions of the rows whose stored lists stay valid.
    kept_floors
        Their floors: the last stored similarity of a full list, else -inf.
    block_size
        Rows and columns per block; `default_block_size` when omitted.
    progress
        Optional tqdm-like object; ``update(1)`` is called per block pair.

    Yields
    ------
    tuple
        ``(positions, values, keys, complete)`` as numpy arrays: complete
        lists of rows in ``recompute`` (``complete`` True), or the new
        candidates of kept rows that have any (``complete`` False), best
        first, ``-inf`` past the end.
    """
    n = len(space)
    block_size = block_size or default_block_size(space.device)
    lists = CandidateLists(n, k, space.device)
    if kept.numel():
        lists.set_floors(kept.to(space.device), kept_floors)
    is_new = torch.zeros(n, dtype=torch.bool)
    is_new[new] = True
    is_kept = torch.zeros(n, dtype=torch.bool)
    is_kept[kept] = True
    received = torch.zeros(n, dtype=torch.bool)
    blocks = [slice(start, min(start + block_size, n)) for start in range(0, n, block_size)]
    runs = [space.runs(block) for block in blocks]
    with exact_float32_matmul(space.device):
        _estimate_floors(space, lists, recompute, block_size)
        for start in range(0, recompute.numel(), block_size):
            rows = recompute[start : start + block_size]
            row_runs = space.runs(rows)
            for cols, col_runs in zip(blocks, runs, strict=True):
                received[cols] |= _offer_rows(
                    space, lists, rows, row_runs, cols, col_runs, is_new[rows], is_kept[cols]
                )
                if progress is not None:
                    progress.update(1)
        _recheck(space, lists, recompute, blocks, runs, block_size)
    for positions, complete in ((recompute, True), (torch.nonzero(received).squeeze(1), False)):
        for start in range(0, positions.numel(), block_size):
            part = positions[start : start + block_size]
            yield part.numpy(), *lists.best_first(part.to(space.device)), complete


def merge_best(
    values: np.ndarray,
    keys: np.ndarray,
    more_values: np.ndarray,
    more_keys: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sets of lists of each row and keep the best k, best first.

    Parameters
    ----------
    values, keys
        ``(r, a)`` similarities (``-inf`` past the end) and tie keys.
    more_values, more_keys
        ``(r, b)`` more candidates of the same rows, none already in the first set.
    k
        Length of the result.
    """
    codes = encode(
        torch.from_numpy(np.concatenate([values, more_values], 1).astype(np.float32)),
        torch.from_numpy(np.concatenate([keys, more_keys], 1).clip(min=0)),
    ).numpy()
    codes[~np.isfinite(np.concatenate([values, more_values], 1))] = EMPTY
    codes.sort(axis=1)
    return decode_numpy(codes[:, :k])


def _estimate_floors(
    space: VectorSpace,
    lists: CandidateLists,
    rows: torch.Tensor,
    block_size: int,
    expected: float | None = None,
    targets: torch.Tensor | None = None,
) -> None:
    """Give rows a floor from their similarities to an evenly spaced sample of vectors.

    If a row may be compared with ``N`` vectors, ``m`` of them in the sample,
    the ``j``-th best sampled similarity with ``j = 1.5 k m / N`` is reached
    by about 1.5 k of the row's entries, with a relative spread of
    ``1 / sqrt(j)``; ``j`` must be at least 64, else the row gets no floor
    and its list is cut back as it fills. A floor that turns out too high
    leaves fewer than k candidates, which `_recheck` catches.

    ``targets`` are the rows of ``lists`` that hold the lists of ``rows``
    (default: the positions themselves); a cluster task keeps lists for its
    own rows only.
    """
    n, k = len(space), lists.k
    targets = rows if targets is None else targets
    expected = expected or _FLOOR_EXPECTED
    size = math.ceil(1.25 * _FLOOR_RANK * n / (_FLOOR_EXPECTED * k))
    if 2 * size > n or rows.numel() == 0:
        return
    sample = torch.arange(size) * n // size
    sample_vectors = space.vectors[sample.to(space.device)]
    sample_runs = space.runs(sample)
    reachable = space.n_compatible()
    sample_sizes = torch.bincount(space.categories[sample], minlength=space.compatible.shape[0])
    sample_compatible = space.compatible.long() @ sample_sizes
    where = torch.searchsorted(sample, rows).clamp(max=size - 1)
    in_sample_self = (
        (sample[where] == rows) & space.compatible.diagonal()[space.categories[rows]]
    ).long()
    for start in range(0, rows.numel(), block_size):
        part = rows[start : start + block_size]
        scores = _products(space.vectors[part.to(space.device)], sample_vectors)
        part_runs = space.runs(part)
        _exclude(scores, part_runs, sample_runs, _allowed(space.compatible, part_runs, sample_runs))
        _exclude_self(scores, part, sample)
        in_sample = (
            sample_compatible[space.categories[part]] - in_sample_self[start : start + block_size]
        )
        rank = torch.ceil(expected * k * in_sample / reachable[part].clamp(min=1)).long()
        usable = (rank >= _FLOOR_RANK) & (rank <= in_sample)
        if not bool(usable.any()):
            continue
        deepest = int(rank[usable].max())
        top = torch.topk(scores[usable.to(scores.device)], deepest, dim=1).values
        floors = torch.gather(top, 1, (rank[usable] - 1).to(top.device)[:, None]).squeeze(1)
        chosen = targets[start : start + block_size][usable].to(space.device)
        lists.floor[chosen] = floors
        lists.guessed[chosen] = True


def _offer_block_pair(
    space: VectorSpace,
    lists: CandidateLists,
    rows: slice,
    row_runs: Runs,
    cols: slice,
    col_runs: Runs,
    buffer: torch.Tensor,
    targets: tuple[int, int] | None = None,
) -> None:
    """Score one block pair once (into ``buffer``) and offer it to the rows on both sides.

    ``targets``: the rows of ``lists`` holding the lists of the first row and
    of the first column (default: their positions), for lists kept by a
    cluster task for the rows of its block pair only.
    """
    first_row, first_col = targets or (rows.start, cols.start)
    n_rows, n_cols = rows.stop - rows.start, cols.stop - cols.start
    row_ok = _allowed(space.compatible, row_runs, col_runs)
    col_ok = _allowed(space.compatible, col_runs, row_runs).T
    both_sides = rows != cols  # a diagonal block already holds both directions
    if not bool(row_ok.any() or (both_sides and col_ok.any())):
        return
    shape = (n_rows, n_cols)
    scores = buffer[: shape[0] * shape[1]].view(shape)
    _products(space.vectors[rows], space.vectors[cols], out=scores)
    if not both_sides:
        scores.fill_diagonal_(NEG_INF)
    by_column = None
    if both_sides:
        by_column = scores
        if not torch.equal(row_ok, col_ok):
            by_column = scores.clone()
            _exclude(by_column, row_runs, col_runs, col_ok)
    _exclude(scores, row_runs, col_runs, row_ok)
    device = space.device
    row_keys, col_keys = space.tie_keys[rows], space.tie_keys[cols]
    row_floor = lists.floor[first_row : first_row + n_rows]
    half = (n_rows + 1) // 2
    tasks = [
        lambda: _harvest(lists, scores[:half], first_row, col_keys, row_floor[:half]),
        lambda: _harvest(lists, scores[half:], first_row + half, col_keys, row_floor[half:]),
    ]
    if by_column is not None:
        col_floor = lists.floor[first_col : first_col + n_cols]
        middle = (n_cols + 1) // 2
        for part in (slice(0, middle), slice(middle, n_cols)):
            tasks.append(
                lambda part=part: _harvest_by_column(
                    lists, by_column, first_col, row_keys, col_floor, part
                )
            )
    _side_by_side(tasks, device)


def _side_by_side(tasks: list, device: torch.device) -> None:
    """Run tasks that write disjoint rows of the lists, on every core at once on CPU.

    The harvesting is many small tensor operations; split over cores by
    torch's intra-op threads they spend their time waiting for each other
    (badly so on a shared machine). Single-threaded workers, each on its own
    rows of the lists, keep the cores busy instead.
    """
    threads = torch.get_num_threads()
    if not _host_path(device) or threads < 2:
        for task in tasks:
            task()
        return
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=min(threads, len(tasks))) as pool:
            for future in [pool.submit(task) for task in tasks]:
                future.result()
    finally:
        torch.set_num_threads(threads)


def _offer_rows(
    space: VectorSpace,
    lists: CandidateLists,
    rows: torch.Tensor,
    row_runs: Runs,
    cols: slice,
    col_runs: Runs,
    feeding: torch.Tensor | None = None,
    fed: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    column_target: int | None = None,
) -> torch.Tensor:
    """Offer a block of columns to some rows, and optionally some rows to some columns.

    Parameters
    ----------
    rows
        Sorted CPU positions of the rows.
    feeding, fed
        Boolean masks over ``rows`` and over ``cols``: the rows ``feeding``
        are also offered, as candidates, to the lists of the columns ``fed``
        (incremental updates: new vectors offered to the kept lists).
    targets, column_target
        Rows of ``lists`` holding the lists of ``rows``, and the row holding
        the list of the block's first column (default: the positions
        themselves), for lists kept by a cluster task for its own rows.

    Returns
    -------
    torch.Tensor
        Boolean CPU mask over ``cols``: which columns received candidates.
    """
    device = space.device
    received = torch.zeros(cols.stop - cols.start, dtype=torch.bool)
    row_ok = _allowed(space.compatible, row_runs, col_runs)
    feeds = feeding is not None and fed is not None and bool(feeding.any() and fed.any())
    if not bool(row_ok.any()) and not feeds:
        return received
    device_rows = rows.to(device)
    list_rows = device_rows if targets is None else targets.to(device)
    first_column = cols.start if column_target is None else column_target
    scores = _products(space.vectors[device_rows], space.vectors[cols])
    _exclude_self(scores, rows, torch.arange(cols.start, cols.stop))
    by_column = None
    if feeds:
        feeding_runs = space.runs(rows[feeding])
        by_column = scores[feeding.to(device)]
        col_ok = _allowed(space.compatible, col_runs, feeding_runs).T
        _exclude(by_column, feeding_runs, col_runs, col_ok)
    _exclude(scores, row_runs, col_runs, row_ok)
    _harvest(lists, scores, list_rows, space.tie_keys[cols], lists.floor[list_rows])
    if by_column is not None:
        width = cols.stop - cols.start
        floor = torch.where(
            fed.to(device), lists.floor[first_column : first_column + width], torch.inf
        )
        offered = _harvest_by_column(
            lists, by_column, first_column, space.tie_keys[device_rows[feeding.to(device)]], floor
        )
        received[offered.cpu() - first_column] = True
    return received


def _chunk_rows(width: int, device: torch.device) -> int:
    """Rows of a block handled at once: about 2 M entries on CPU (stays in cache)."""
    if not _host_path(device):
        return 1 << 30
    return max(1, (1 << 21) // max(width, 1))


def _harvest(
    lists: CandidateLists,
    scores: torch.Tensor,
    positions: int | torch.Tensor,
    keys: torch.Tensor,
    floor: torch.Tensor,
) -> None:
    """Offer each row of a block the entries at or above its floor.

    Parameters
    ----------
    scores
        ``(r, c)`` contiguous block, ``-inf`` where a pair is excluded.
    positions
        Position of the block's first row (rows contiguous), or ``(r,)``
        positions of its rows.
    keys
        ``(c,)`` tie keys of the block's columns.
    floor
        ``(r,)`` floors of the rows (``-inf``: keep every finite entry).
    """
    width = scores.shape[1]
    floor = floor.clamp(min=_FINITE_FLOOR)
    step = _chunk_rows(width, scores.device)
    for start in range(0, scores.shape[0], step):
        part = scores[start : start + step]
        at = _flat_positions_at_or_above(part, floor[start : start + step, None])
        row = torch.div(at, width, rounding_mode="floor")
        values = part.reshape(-1).index_select(0, at)
        at -= row * width  # now the column
        row += start
        rows = row + positions if isinstance(positions, int) else positions.index_select(0, row)
        lists.offer(rows, values, keys.index_select(0, at))


def _harvest_by_column(
    lists: CandidateLists,
    scores: torch.Tensor,
    first_position: int,
    keys: torch.Tensor,
    floor: torch.Tensor,
    columns: slice | None = None,
) -> torch.Tensor:
    """Offer each column of a block (a row of its transpose) the entries at or above its floor.

    Parameters
    ----------
    scores
        ``(r, c)`` contiguous block.
    first_position
        Position of the block's first column; its columns are contiguous.
    keys
        ``(r,)`` tie keys of the block's rows.
    floor
        ``(c,)`` floors of the columns.
    columns
        Only these columns of the block (default: all), so that workers can
        share a block without writing to the same lists.

    Returns
    -------
    torch.Tensor
        Positions that received candidates.
    """
    width = scores.shape[1]
    first, stop = (0, width) if columns is None else (columns.start, columns.stop)
    span = stop - first
    floor = floor[first:stop].clamp(min=_FINITE_FLOOR)
    flat = scores.view(-1)
    step = _chunk_rows(span, scores.device)
    received = []
    for start in range(0, scores.shape[0], step):
        part = scores[start : start + step, first:stop]
        at = _flat_positions_at_or_above(part, floor[None, :])
        col = at % span
        order = _stable_order(col, span)
        at, col = at.index_select(0, order), col.index_select(0, order)
        at -= col
        at //= span
        at += start  # now the row
        values = flat.index_select(0, at * width + first + col)
        col += first_position + first  # now the receiving position
        lists.offer(col, values, keys.index_select(0, at))
        received.append(torch.unique_consecutive(col))
    return torch.cat(received) if received else torch.zeros(0, dtype=torch.int64)


def _flat_positions_at_or_above(block: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Flat (row-major) positions of the entries of a block at or above a broadcast floor.

    On CPU numpy does it: its comparison and ``flatnonzero`` took 2 ms for a
    256 x 8192 block where torch's ``>=`` and ``nonzero`` took 10 ms.
    """
    if not _host_path(block.device):
        return torch.nonzero((block >= floor).reshape(-1)).squeeze(1)
    mask = np.greater_equal(block.numpy(), floor.numpy())
    return torch.from_numpy(np.flatnonzero(mask))


def _stable_order(values: torch.Tensor, bound: int) -> torch.Tensor:
    """Stable sorting permutation of small non-negative ints (a radix sort on CPU)."""
    if _host_path(values.device) and bound <= np.iinfo(np.uint16).max:
        # numpy sorts 16-bit ints stably with a radix sort, in linear time.
        return torch.from_numpy(np.argsort(values.numpy().astype(np.uint16), kind="stable"))
    return torch.sort(values, stable=True).indices


def _recheck(
    space: VectorSpace,
    lists: CandidateLists,
    rows: torch.Tensor,
    blocks: list[slice],
    runs: list[Runs],
    block_size: int,
    targets: torch.Tensor | None = None,
) -> None:
    """Search again the rows whose estimated floor was too high, each time with a lower floor.

    Each round doubles the number of entries the floor is meant to let
    through; once that exceeds the sample, rows are searched without a floor.
    ``targets``: the rows of ``lists`` holding the lists of ``rows`` (default:
    the positions themselves).
    """
    expected = _FLOOR_EXPECTED
    targets = rows if targets is None else targets
    while True:
        again = lists.needs_recheck(targets.to(space.device)).cpu()
        redo, redo_targets = rows[again], targets[again]
        if redo.numel() == 0:
            return
        lists.reset(redo_targets.to(space.device))
        expected *= 2
        _estimate_floors(space, lists, redo, block_size, expected, redo_targets)
        redo_runs = space.runs(redo)
        for cols, col_runs in zip(blocks, runs, strict=True):
            _offer_rows(space, lists, redo, redo_runs, cols, col_runs, targets=redo_targets)


def _allowed(compatible: torch.Tensor, row_runs: Runs, col_runs: Runs) -> torch.Tensor:
    """Which (row run, column run) pairs of a block are compatible."""
    row_codes = torch.tensor([run[0] for run in row_runs], dtype=torch.long)
    col_codes = torch.tensor([run[0] for run in col_runs], dtype=torch.long)
    return compatible[row_codes][:, col_codes]


def _exclude(scores: torch.Tensor, row_runs: Runs, col_runs: Runs, allowed: torch.Tensor) -> None:
    """Set the rectangles of incompatible category pairs of a block to -inf, in place."""
    if bool(allowed.all()):
        return
    for a, (_, r0, r1) in enumerate(row_runs):
        for b, (_, c0, c1) in enumerate(col_runs):
            if not allowed[a, b]:
                scores[r0:r1, c0:c1] = NEG_INF


def _exclude_self(scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> None:
    """Set to -inf the entries that pair a vector with itself (sorted CPU positions)."""
    where = torch.searchsorted(cols, rows).clamp(max=cols.numel() - 1)
    same = cols[where] == rows
    if bool(same.any()):
        at = torch.nonzero(same).squeeze(1)
        scores[at.to(scores.device), where[same].to(scores.device)] = NEG_INF


def _products(
    rows: torch.Tensor, cols: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Return ``rows @ cols.T``, the dot products of two sets of vectors (float32).

    On CPU through numpy's BLAS (OpenBLAS): on the AMD EPYC cores this was
    measured on, its sgemm ran at 42-45 GFLOP/s where torch's (MKL) ran at
    25-29, alternating on the same 4096 x 4096 x 2048 product. A threaded
    sgemm splits the product by the thread count, and on some kernels
    (OpenBLAS's Haswell/Zen ones) the split changes the last bit; so each
    fixed slice of `_PRODUCT_ROWS` rows is formed on one BLAS thread, slices
    side by side on torch's thread count. The bytes are then the same for
    any thread count, one process or a cluster's single-threaded workers.
    """
    if rows.device.type != "cpu":
        return torch.mm(rows, cols.T, out=out)
    if out is None:
        out = torch.empty((rows.shape[0], cols.shape[0]), dtype=torch.float32)
    left, right, product = rows.numpy(), cols.numpy().T, out.numpy()
    slices = [
        slice(start, min(start + _PRODUCT_ROWS, len(left)))
        for start in range(0, len(left), _PRODUCT_ROWS)
    ]

    def form(part: slice) -> None:
        np.matmul(left[part], right, out=product[part])

    with _ONE_BLAS_THREAD:
        workers = min(torch.get_num_threads(), len(slices))
        if workers < 2:
            for part in slices:
                form(part)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(form, slices))
    return out


_PRODUCT_ROWS = 512
"""Rows of a product formed by one BLAS call (its bytes depend on this, not on threads)."""


class _OneBlasThread:
    """Hold the BLAS libraries at one thread while any product is being formed.

    threadpoolctl's limits are process-wide; a count of the holders keeps
    concurrent searches (threads of one Dask worker) from restoring the
    threads under each other. threadpoolctl (3.8) lets only one Python thread
    change OpenBLAS's pool and silently skips the others' limits, so the
    holder that changes it takes that role first, and the limit is checked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._limit = None
        self._controller = None

    def __enter__(self) -> None:
        with self._lock:
            if self._holders == 0:
                if self._controller is None:
                    self._controller = ThreadpoolController().select(user_api="blas")
                _take_openblas_control()
                self._limit = self._controller.limit(limits=1)
                threads = {pool["num_threads"] for pool in self._controller.info()}
                if threads - {1}:
                    warnings.warn(
                        f"BLAS kept {sorted(threads)} threads: similarities may differ in"
                        " the last bit from one thread count to another",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            self._holders += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                _take_openblas_control()
                self._limit.restore_original_limits()
                self._limit = None


def _take_openblas_control() -> None:
    """Make this Python thread the one threadpoolctl lets change OpenBLAS's threads."""
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


_ONE_BLAS_THREAD = _OneBlasThread()


def _host_path(device: torch.device) -> bool:
    """Whether to take the CPU code paths (numpy helpers, two workers) rather than the GPU ones.

    Tests switch it off to run the GPU paths' logic on the CPU.
    """
    return device.type == "cpu"


def _cpu(positions: slice | torch.Tensor) -> slice | torch.Tensor:
    return positions if isinstance(positions, slice) else positions.cpu()


def default_block_size(device: torch.device | str) -> int:
    """Rows per block: 4096 on CPU (a 64 MB block), 32768 on CUDA (a 4 GB block).

    Blocks on the diagonal are computed whole, so smaller blocks waste less
    of the symmetry (at N = 20,000: 12 % fewer products than with 8192).
    """
    return 32768 if torch.device(device).type == "cuda" else 4096


@contextlib.contextmanager
def exact_float32_matmul(device: torch.device) -> Iterator[None]:
    """Form float32 products in full float32 on CUDA while searching.

    TF32 keeps 10 mantissa bits: similarities would be off by about 1e-3,
    enough to swap neighbours near the k-th place. PyTorch leaves TF32 off
    for matrix products by default; this makes sure of it.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
