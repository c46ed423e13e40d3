"""The scores of a query's constant similarity arguments, made in its transaction before it runs.

`vo_service.adql.similarity_scores` says what a query reads: a SQLite
function or a PostgreSQL temporary table per constant DID or vector. This
module makes them from the scores the service's in-memory index gives
(`ScoreSource`), leaving out, in the query's own snapshot of the
catalogue, every image ObsCore does not list as public at the query's
instant (`vo_service.adql.proprietary.hidden_images_sql`), and refusing
scores of a model that is no longer the current one of its kind.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
import sqlalchemy as sa

from vo_service.adql.proprietary import hidden_images_sql
from vo_service.adql.ranked_scores import RankedScores
from vo_service.adql.similarity_scores import (
    KindScores,
    ScoreRequest,
    ScoreSource,
    function_name,
    parse_vector,
    relation_name,
)

from .errors import ExecutionError

__all__ = ["RankedLevels", "ScoreTables"]

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_SCORE_BYTES = 8


@dataclass(frozen=True)
class _CopyTemplate:
    """Binary COPY rows ``(did, score)`` of every image of an index, scores left blank.

    Built once per index: a query then only writes its scores into the
    blanks (and leaves out the rows it must not hold), with numpy.
    """

    dids: Sequence[str]
    rows: np.ndarray
    """The rows' bytes, uint8."""
    starts: np.ndarray
    sizes: np.ndarray
    score_at: np.ndarray
    """Offset of each row's score within the row."""

    @classmethod
    def build(cls, dids: Sequence[str]) -> _CopyTemplate:
        encoded = [did.encode() for did in dids]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        blank = struct.pack("!i", _SCORE_BYTES) + bytes(_SCORE_BYTES)
        rows = b"".join(struct.pack("!hi", 2, len(b)) + b + blank for b in encoded)
        sizes = lengths + 6 + 4 + _SCORE_BYTES
        return cls(
            dids,
            np.frombuffer(rows, dtype=np.uint8),
            np.cumsum(sizes) - sizes,
            sizes,
            lengths + 6 + 4,
        )

    def data(self, scores: np.ndarray) -> bytes:
        """Return the COPY rows of the images whose score is not NaN (no header, no trailer)."""
        keep = np.flatnonzero(~np.isnan(scores))
        values = scores[keep].astype(">f8").view(np.uint8).reshape(-1, _SCORE_BYTES)
        size = int(self.sizes[0]) if len(self.sizes) else 0
        if len(self.sizes) and (self.sizes == size).all():
            # DIDs of one length (the usual case): rows are a table, scores a column of it
            table = self.rows.reshape(-1, size)[keep]
            at = int(self.score_at[0])
            table[:, at : at + _SCORE_BYTES] = values
            return table.tobytes()
        if keep.size == len(scores):
            body, starts = self.rows.copy(), self.starts
        else:
            sizes = self.sizes[keep]
            starts = np.cumsum(sizes) - sizes
            gather = np.repeat(self.starts[keep] - starts, sizes) + np.arange(sizes.sum())
            body = self.rows[gather]
        at = (starts + self.score_at[keep])[:, np.newaxis] + np.arange(_SCORE_BYTES)
        body[at] = values
        return body.tobytes()


class ScoreTables:
    """Makes the scores of queries; keeps the COPY templates of the indexes it has seen.

    Parameters
    ----------
    source
        The service's in-memory index.
    """

    def __init__(self, source: ScoreSource) -> None:
        self.source = source
        self._templates: dict[str, _CopyTemplate] = {}

    def public_scores(
        self,
        connection: sa.Connection,
        requests: Sequence[ScoreRequest],
        now: datetime,
        ranking: RankedScores | None = None,
    ) -> list[list[KindScores]]:
        """Score each request; only images public in the query's snapshot keep a score.

        The scores a ``ranking`` orders by, when it reads them in one place
        only, may hold those of its first level only (`RankedLevels`), with
        room for the images hidden here.
        """
        sql_dialect = "postgres" if connection.dialect.name == "postgresql" else "sqlite"
        hidden = {row[0] for row in connection.exec_driver_sql(hidden_images_sql(sql_dialect, now))}
        models = dict(
            connection.exec_driver_sql(
                "SELECT image_kind, MAX(model_id) FROM similarity.model WHERE is_current = 1 "
                "GROUP BY image_kind"
            ).all()
        )
        best = None
        if ranking is not None and ranking.single:
            best = RankedLevels.first_size(ranking.rows) + len(hidden)
        ranked_slot = ranking.slot if ranking is not None else None
        return [
            self._scores(
                request, now, hidden, models, best if request.slot == ranked_slot else None
            )
            for request in requests
        ]

    def _scores(
        self,
        request: ScoreRequest,
        now: datetime,
        hidden: set[str],
        models: dict,
        best: int | None = None,
    ) -> list[KindScores]:
        if request.did is not None and request.did in hidden:
            return []  # as an unknown DID
        vector = None
        if request.vector is not None:
            vector = parse_vector(request.vector)
            if vector is None:
                return []
        if best is None:
            found = self.source.similarity_scores(request.did, vector, now)
        else:
            found = self.source.similarity_scores(request.did, vector, now, best=best)
        result = []
        for scores in found:
            if models.get(scores.image_kind) != scores.model_id:
                raise ExecutionError(
                    f"the similarity vectors of the current {scores.image_kind} model are being "
                    "loaded; run the query again in a minute"
                )
            hide = [scores.positions[did] for did in hidden if did in scores.positions]
            if hide:
                scores = _hidden(scores, hide)
            result.append(scores)
        return result

    def register_sqlite(
        self,
        raw: sqlite3.Connection,
        requests: Sequence[ScoreRequest],
        found: list,
        ranked: RankedLevels | None = None,
    ) -> list[str]:
        """Register one lookup function per request on the query's connection; return the names.

        The scores of a ranking (``ranked``) are read for a few rows only: their
        function reads the numpy array, not a list of every score made first.
        """
        names = []
        for request, kinds in zip(requests, found, strict=True):
            name = function_name(request.slot)
            few = ranked is not None and ranked.slot == request.slot
            raw.create_function(name, 1, _lookup(kinds, few), deterministic=True)
            names.append(name)
        return names

    def widen_sqlite(self, raw: sqlite3.Connection, ranked: RankedLevels) -> None:
        """Register a ranking's function again for every row, the query being run whole."""
        raw.create_function(
            function_name(ranked.slot), 1, _lookup(ranked.kinds), deterministic=True
        )

    def fill_postgres(
        self,
        raw: psycopg.Connection,
        requests: Sequence[ScoreRequest],
        found: list,
        ranked: RankedLevels | None = None,
    ) -> None:
        """Create and COPY one temporary table per request, dropped at the transaction's end.

        The table of a ranking's scores (``ranked``) gets only the images of its
        first level; `extend_postgres` adds the next ones.
        """
        for request, kinds in zip(requests, found, strict=True):
            name = f'pg_temp."{relation_name(request.slot)}"'
            raw.execute(
                f'CREATE TEMPORARY TABLE "{relation_name(request.slot)}" '
                "(did TEXT NOT NULL, score DOUBLE PRECISION NOT NULL) ON COMMIT DROP"
            )
            if ranked is not None and ranked.slot == request.slot:
                self.extend_postgres(raw, ranked, 0)
                # its true size (a few hundred rows), or the planner takes a new table for
                # ~1,000 and hashes every ObsCore row the query keeps instead of looking
                # these up in ObsCore's index (benchmarks/README.md)
                raw.execute(f"ANALYZE {name}")
            else:
                self._copy(raw, request.slot, [(scores, scores.scores) for scores in kinds])
            if request.indexed:
                raw.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (did)")

    def extend_postgres(self, raw: psycopg.Connection, ranked: RankedLevels, level: int) -> None:
        """COPY the images of a ranking's level ``level`` into its table.

        Those of the levels before are there already. Allowed in a read-only
        transaction, the table being temporary.
        """
        self._copy(raw, ranked.slot, ranked.band(level))

    def _copy(
        self, raw: psycopg.Connection, slot: int, parts: list[tuple[KindScores, np.ndarray]]
    ) -> None:
        name = f'pg_temp."{relation_name(slot)}"'
        with raw.cursor().copy(f"COPY {name} (did, score) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER)
            for scores, values in parts:
                copy.write(self._template(scores).data(values))
            copy.write(_COPY_TRAILER)

    def _template(self, scores: KindScores) -> _CopyTemplate:
        template = self._templates.get(scores.image_kind)
        if template is None or template.dids is not scores.dids:
            template = self._templates[scores.image_kind] = _CopyTemplate.build(scores.dids)
        return template


def _hidden(scores: KindScores, hide: list[int]) -> KindScores:
    """Return ``scores`` with NaN at the positions ``hide``, in its completed scores too."""
    values = scores.scores.copy()
    values[hide] = np.nan
    complete = None
    if scores.complete is not None:
        every = scores.complete

        def complete() -> np.ndarray:
            values = every()
            values[hide] = np.nan
            return values

    return KindScores(
        scores.image_kind, scores.model_id, scores.dids, scores.positions, values, complete
    )


class RankedLevels:
    """The public scores of a ranking's constant, cut at lower and lower thresholds.

    Level 0 keeps the images whose score is at least the `first_size`-th
    best, each next level `GROWTH` times as many, and the last one every
    image with a score (`vo_service.adql.ranked_scores`). Thresholds are
    found when needed (`numpy.partition`): most queries need only the first.
    Scores that hold only the best ones (`KindScores.complete`) are
    completed when a level after the first is asked for.

    Parameters
    ----------
    ranking
        What the query ranks by.
    kinds
        The scores of the ranking's constant, per kind (NaN: not public).
    """

    FIRST_FACTOR = 4
    FIRST_IMAGES = 256
    GROWTH = 16

    def __init__(self, ranking: RankedScores, kinds: list[KindScores]) -> None:
        self.slot = ranking.slot
        self._first = self.first_size(ranking.rows)
        self._thresholds: dict[int, float] = {}
        self._set_kinds(kinds)
        if self._partial and self._valid.size <= self._first:
            self._set_kinds([k.completed() for k in kinds])  # too few to cut: every score

    @classmethod
    def first_size(cls, rows: int) -> int:
        """How many of the best images the first level of a ranking of ``rows`` keeps."""
        return max(cls.FIRST_FACTOR * rows, cls.FIRST_IMAGES)

    def _set_kinds(self, kinds: list[KindScores]) -> None:
        self.kinds = kinds
        self._partial = any(k.complete is not None for k in kinds)
        self._valid = np.concatenate([k.scores[~np.isnan(k.scores)] for k in kinds] or [[]])
        sizes = []
        size = self._first
        while size < self._valid.size:
            sizes.append(size)
            size *= self.GROWTH
        if self._partial:
            sizes = sizes[:1]  # a level past the first completes them (`_complete`)
        self._sizes = sizes

    def _complete(self, level: int) -> None:
        """Make every score known before ``level`` (after the first) is cut."""
        if level and self._partial:
            self._set_kinds([k.completed() for k in self.kinds])
            self.completed = True

    completed = False
    """Whether the scores were completed after the query's functions were made from them."""

    def is_last(self, level: int) -> bool:
        """Whether ``level`` holds every image with a score (the query is not cut)."""
        self._complete(level)
        return level >= len(self._sizes)

    def threshold(self, level: int) -> float:
        """Return the lowest score of the images of ``level`` and the levels before it."""
        self._complete(level)
        if self.is_last(level):
            return -np.inf
        found = self._thresholds.get(level)
        if found is None:
            at = self._valid.size - self._sizes[level]
            found = self._thresholds[level] = float(np.partition(self._valid, at)[at])
        return found

    def dids(self, level: int) -> list[str]:
        """Return the DIDs of the images of ``level`` and the levels before it."""
        low = self.threshold(level)
        with np.errstate(invalid="ignore"):
            return [
                kind.dids[int(i)] for kind in self.kinds for i in np.flatnonzero(kind.scores >= low)
            ]

    def band(self, level: int) -> list[tuple[KindScores, np.ndarray]]:
        """Per kind, the scores of the images of ``level`` only, NaN elsewhere."""
        low = self.threshold(level)
        high = np.inf if level == 0 else self.threshold(level - 1)
        with np.errstate(invalid="ignore"):
            return [
                (k, np.where((k.scores >= low) & (k.scores < high), k.scores, np.nan))
                for k in self.kinds
            ]


def _lookup(kinds: list[KindScores], few: bool = False) -> Callable[[object], float | None]:
    """Return the function of one request's scores: a DID's score, NULL if it has none.

    A score left out is NaN, which SQLite makes NULL ("a NaN is a NULL").
    For ``few`` calls, the scores stay a numpy array (its items are floats).
    """
    tables = [(s.positions, s.scores if few else s.scores.tolist()) for s in kinds]
    if len(tables) == 1:
        positions, values = tables[0]

        def one(did: object) -> float | None:
            position = positions.get(did)  # type: ignore[call-overload]
            return None if position is None else values[position]

        return one

    def several(did: object) -> float | None:
        for positions, values in tables:
            position = positions.get(did)  # type: ignore[call-overload]
            if position is not None:
                return values[position]
        return None

    return several
