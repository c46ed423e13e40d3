"""The vectors the similarity service ranks, held in memory, one block per image kind.

A refinement must answer while the user waits (the paper's page "is
instantly updated" at each click), so the service does not read vectors
from the database per request: `KindIndex` holds the current model's
vectors of one image kind, sorted by publisher DID, with each image's
scientific category and release date, and ranks a query against all of
them.

**What may be ranked.** The index also holds the vectors of images that are
not public yet (if the embedding stage made any): their release dates are
compared with the request's instant at every query (`KindIndex.public_mask`),
so an image enters the rankings the moment it is released, and not a moment
earlier, without a reload. The mask is cached until the next release instant
in the index.

**How it ranks.** Small indexes are scanned exactly. Large ones (by default
from 50,000 images) also keep a `ReducedCopy` of the vectors: the query is
scored against all images there, a candidate set of ``candidate_factor``
times the requested depth (at least 1000) is taken, and the candidates are
re-ranked exactly with the full vectors. The factor is not guessed: after
building the copy, `KindIndex.calibrate` ranks sample queries (1, 3 and 10
images combined, as refinements and as arbitrary combinations) both ways
and picks the candidate count that finds at least 99.9 % of the exact top
1000 in every sample, with a 50 % margin; the recall measured with that
factor is kept (``measured_recall``). How large the set must be depends on
how much of the vectors' variance the leading axes hold, which is a
property of the trained model, hence measured on its vectors. If the
candidate set would have to be a large part of the archive anyway, the copy
is dropped and every query is an exact scan.

**Where each image is.** The index also holds each image's cut-out centre
(`separation.SkyPositions`), so that a query can leave out the images near
the selected ones (``MIN_SEPARATION``, `KindIndex.near`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from tap_schema.release import release_array, released_mask

from .quantized import QuantizedVectors
from .ranking import ReducedCopy, query_vector, rerank, top_positions
from .separation import SkyPositions

__all__ = ["CALIBRATION_DEPTH", "IndexOptions", "KindIndex", "Ranking", "allowed_categories"]

CALIBRATION_DEPTH = 1000
"""Depth whose recall the calibration measures: the page shows the top 1000."""

_NEVER = np.datetime64("9999-12-31T00:00:00", "us")


@dataclass(frozen=True)
class IndexOptions:
    """How an index ranks.

    Parameters
    ----------
    reduce_from
        Build a `ReducedCopy` from this many images on (below it, always scan exactly).
    reduced_dimensions
        Principal axes kept in the reduced copy.
    target_recall
        Fraction of the exact top 1000 the candidate set must hold in every
        calibration query.
    calibration_queries
        Sample queries ranked both ways to choose the candidate count.
    margin
        Factor applied to the candidate count the calibration found necessary.
    quantize_from_images, quantize_from_dimensions
        Also keep a `QuantizedVectors` copy when the index has at least this
        many images of at least this many dimensions: an ADQL ranking then
        scores exactly only the images that may be among its best
        (`vo_service.adql.ranked_scores`). Below, the exact scan is as fast.
    """

    reduce_from: int = 50_000
    reduced_dimensions: int = 384
    target_recall: float = 0.999
    calibration_queries: int = 12
    margin: float = 1.5
    quantize_from_images: int = 50_000
    quantize_from_dimensions: int = 512


@dataclass(frozen=True)
class Ranking:
    """The best-ranked eligible images of one query."""

    positions: np.ndarray
    """Index positions, best first."""
    scores: np.ndarray
    """Cosine similarity of each to the query."""
    total: int
    """How many images were eligible (the number ranked)."""


@dataclass
class KindIndex:
    """The current model's vectors of one image kind, and how to rank them.

    Parameters
    ----------
    image_kind
        ``continuum`` or ``peak_flux``.
    model_id
        The model whose vectors these are.
    dids
        Publisher DID of each vector, sorted.
    vectors
        ``(n, d)`` float32, unit rows.
    categories
        Scientific category of each image (None when unknown).
    release_dates
        Release instant of each image (naive UTC; None when unknown: never public).
    options
        How to rank.
    cutout_centres
        ICRS ``(ra, dec)`` in degrees of each image's cut-out centre (None
        where unknown); None when no position is known at all.
    """

    image_kind: str
    model_id: int
    dids: Sequence[str]
    vectors: np.ndarray
    categories: Sequence[str | None]
    release_dates: Sequence[datetime | None]
    options: IndexOptions = field(default_factory=IndexOptions)
    cutout_centres: Sequence[tuple[float | None, float | None]] | None = None
    reduced: ReducedCopy | None = field(init=False, default=None)
    candidate_factor: float = field(init=False, default=0.0)
    measured_recall: float | None = field(init=False, default=None)
    quantized: QuantizedVectors | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        self.positions: dict[str, int] = {did: i for i, did in enumerate(self.dids)}
        self._set_metadata(self.categories, self.release_dates, self.cutout_centres)
        if len(self.dids) >= self.options.reduce_from and len(self.dids) > CALIBRATION_DEPTH:
            self.reduced = ReducedCopy.fit(self.vectors, self.options.reduced_dimensions)
            self.calibrate()
            rerank(self.vectors, np.zeros(1, dtype=np.int64), self.vectors[0])  # compile it now
        rows, width = self.vectors.shape
        options = self.options
        if rows >= options.quantize_from_images and width >= options.quantize_from_dimensions:
            self.quantized = QuantizedVectors.fit(self.vectors)

    def with_metadata(
        self,
        categories: Sequence[str | None],
        release_dates: Sequence[datetime | None],
        cutout_centres: Sequence[tuple[float | None, float | None]] | None = None,
    ) -> KindIndex:
        """Return a copy with new categories, release dates and cut-out centres; same vectors.

        A re-ingest can change an image's category, release date or cut-out
        centre without changing any vector; this costs no vector reload,
        projection or calibration.
        """
        updated = copy.copy(self)
        updated._set_metadata(categories, release_dates, cutout_centres)
        return updated

    def _set_metadata(
        self,
        categories: Sequence[str | None],
        release_dates: Sequence[datetime | None],
        cutout_centres: Sequence[tuple[float | None, float | None]] | None,
    ) -> None:
        self.categories, self.release_dates = categories, release_dates
        self.cutout_centres = cutout_centres
        centres = cutout_centres or [(None, None)] * len(categories)
        self.sky = SkyPositions([ra for ra, _ in centres], [dec for _, dec in centres])
        names = sorted({c for c in categories if c is not None})
        self.category_names: tuple[str, ...] = tuple(names)
        code_of = {name: code for code, name in enumerate(names)}
        self.category_codes = np.array(
            [-1 if c is None else code_of[c] for c in categories], dtype=np.int32
        )
        self.release = release_array(release_dates)
        self._public: tuple[np.datetime64, np.datetime64, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.dids)

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors and their reduced and quantised copies."""
        copies = (self.reduced.nbytes if self.reduced else 0) + (
            self.quantized.nbytes if self.quantized else 0
        )
        return self.vectors.nbytes + copies

    def public_mask(self, now: datetime) -> np.ndarray:
        """Which images are public at ``now``; cached until the next release instant."""
        instant = np.datetime64(now, "us")
        cached = self._public
        if cached is not None and cached[0] <= instant < cached[1]:
            return cached[2]
        released = released_mask(self.release, instant)
        upcoming = self.release[self.release > instant]
        until = upcoming.min() if upcoming.size else _NEVER
        self._public = (instant, until, released)
        return released

    def near(
        self, selected: np.ndarray, min_separation_deg: float, others: np.ndarray | None = None
    ) -> np.ndarray:
        """Mark the images closer than ``min_separation_deg`` to a selected image's cut-out centre.

        Parameters
        ----------
        selected
            Index positions of the selected images.
        min_separation_deg
            The separation a kept image must at least have, in degrees.
        others
            ``(m, 3)`` unit vectors of further centres (an uploaded image's).
        """
        centres = self.sky.vectors[selected]
        if others is not None:
            centres = np.concatenate([centres, np.atleast_2d(others)])
        return self.sky.near(centres, min_separation_deg)

    def compatible_mask(self, allowed: frozenset[str] | None) -> np.ndarray:
        """Images whose category may be listed: in ``allowed``, or unknown; all for None."""
        if allowed is None:
            return np.ones(len(self), dtype=bool)
        codes = [code for code, name in enumerate(self.category_names) if name in allowed]
        return (self.category_codes < 0) | np.isin(self.category_codes, codes)

    def rank(self, query: np.ndarray, eligible: np.ndarray, depth: int) -> Ranking:
        """Rank the eligible images against a unit query vector; return the best ``depth``."""
        total = int(np.count_nonzero(eligible))
        depth = min(depth, total)
        candidates = math.ceil(self.candidate_factor * max(depth, CALIBRATION_DEPTH))
        if self.reduced is None or 2 * candidates >= total:
            positions = np.flatnonzero(eligible)
            scores = (self.vectors @ query)[positions]
        else:
            positions = self._candidates(query, eligible, candidates)
            scores = rerank(self.vectors, positions, query)
        best = top_positions(scores, positions, depth)
        return Ranking(positions[best], scores[best], total)

    def _candidates(self, query: np.ndarray, eligible: np.ndarray, count: int) -> np.ndarray:
        """Return the ``count`` eligible images with the best approximate scores, in index order."""
        assert self.reduced is not None
        approximate = self.reduced.scores(query)
        approximate[~eligible] = -np.inf
        chosen = np.argpartition(approximate, len(approximate) - count)[-count:]
        chosen = chosen[np.isfinite(approximate[chosen])]
        chosen.sort()  # reading the full vectors in memory order is faster
        return chosen

    def calibrate(self) -> None:
        """Choose the candidate count from sample queries ranked exactly and approximately.

        Half the samples are refinements as the page makes them (an image
        and images from the top of its own ranking), half are arbitrary
        combinations of unrelated images, whose diffuse queries are harder
        for the reduced copy; the candidate count must hold for both.
        """
        assert self.reduced is not None
        rng = np.random.default_rng(1)
        n = len(self)
        needed: list[int] = []
        samples = []
        for trial in range(self.options.calibration_queries):
            size = (1, 3, 10)[trial % 3]
            selected = self._sample_selection(rng, size, refinement=trial % 2 == 0)
            query = query_vector(self.vectors[selected])
            eligible = np.ones(n, dtype=bool)
            eligible[selected] = False
            exact = self.vectors @ query
            exact[~eligible] = -np.inf
            truth = np.argpartition(exact, n - CALIBRATION_DEPTH)[-CALIBRATION_DEPTH:]
            approximate = self.reduced.scores(query)
            approximate[~eligible] = -np.inf
            rank_of = np.empty(n, dtype=np.int64)
            rank_of[np.argsort(-approximate, kind="stable")] = np.arange(n)
            ranks = np.sort(rank_of[truth])
            keep = math.ceil(self.options.target_recall * CALIBRATION_DEPTH)
            needed.append(int(ranks[keep - 1]) + 1)
            samples.append((query, eligible, set(truth.tolist())))
        factor = self.options.margin * max(needed) / CALIBRATION_DEPTH
        if 2 * factor * CALIBRATION_DEPTH >= n:
            self.reduced = None  # the candidates would be most of the archive: scan it all
            return
        self.candidate_factor = factor
        count = math.ceil(factor * CALIBRATION_DEPTH)
        found = [
            len(truth.intersection(self._candidates(query, eligible, count).tolist()))
            for query, eligible, truth in samples
        ]
        self.measured_recall = float(np.mean(found)) / CALIBRATION_DEPTH

    def _sample_selection(
        self, rng: np.random.Generator, size: int, *, refinement: bool
    ) -> np.ndarray:
        """Pick a random image and ``size - 1`` more: from its 50 nearest, or from anywhere."""
        n = len(self)
        first = int(rng.integers(n))
        if size == 1:
            return np.array([first])
        if not refinement:
            others = rng.choice(np.delete(np.arange(n), first), size=size - 1, replace=False)
            return np.concatenate([[first], others])
        scores = self.vectors @ self.vectors[first]
        scores[first] = -np.inf
        nearest = np.argpartition(scores, n - 50)[-50:]
        return np.concatenate([[first], rng.choice(nearest, size=size - 1, replace=False)])


def allowed_categories(
    compatibility: Mapping[str, frozenset[str]], category: str | None
) -> frozenset[str] | None:
    """Categories that may be listed for an image of ``category`` (None: every category)."""
    if category is None:
        return None
    return frozenset({category}) | compatibility.get(category, frozenset())
