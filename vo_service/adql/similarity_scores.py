"""``vosim_similarity`` with a constant argument: the scores of every public image, once per query.

A call whose DID argument (or vector) is a constant (``vosim_similarity(o.obs_publisher_did,
'ivo://…')``, the usual form) does not need a database lookup per row: the
service's in-memory vectors (the similarity service's index) score every
public image of the kind against the constant once, before the query runs,
and the call becomes a lookup of the row's DID in those scores:

- SQLite: a function registered on the query's connection for this query
  (``vosim_score_<slot>(did)``, a dictionary lookup);
- PostgreSQL: a temporary table ``pg_temp.vosim_scores_<slot>`` (``did``,
  ``score``), filled by one binary ``COPY``; the call becomes a column of a
  ``LEFT JOIN`` added to the FROM clause of its query (a hash join), or a
  scalar subquery where a join would change the query's meaning (grouped
  queries, ON conditions, arguments of an enclosing query).

A DID absent from the scores gives NULL: unknown, not public, another kind,
or no vector. The scores hold only images public at the query's instant, by
the index's release dates and by the catalogue's, read in the query's own
transaction (`vo_service.tap.query_database`), so a proprietary image is
never in them and answers exactly as an unknown DID does; the constant DID
itself must be public too, or the scores are empty. Calls whose arguments
are both columns keep the per-row subquery of `similarity_udf`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from sqlglot import exp

from .similarity_udf import vector_from_text

__all__ = [
    "KindScores",
    "ScoreRequest",
    "ScoreSource",
    "function_name",
    "relation_name",
]


@dataclass(frozen=True)
class ScoreRequest:
    """One constant a query's calls are scored against: an image's DID, or a vector's text."""

    slot: int
    """Number of the scores within the query (names the function or the table)."""
    did: str | None = None
    vector: str | None = None
    indexed: bool = False
    """PostgreSQL: a scalar subquery reads the table, which then needs a primary key."""


@dataclass(frozen=True)
class KindScores:
    """The scores of the images of one kind against a request's constant."""

    image_kind: str
    model_id: int
    dids: Sequence[str]
    """Each image's DID (the index's, sorted)."""
    positions: Mapping[str, int]
    """Position of each DID in ``dids``."""
    scores: np.ndarray
    """float64 score of each image; NaN where the image is not public.

    With `complete`, only the best-scored images have theirs (NaN elsewhere).
    """
    complete: Callable[[], np.ndarray] | None = None
    """When set, returns every image's score (the same ones where `scores` has them).

    Then `scores` holds the score of every public image whose score is at
    least the ``best``-th best (`ScoreSource.similarity_scores`), ties
    included, and perhaps of a few more.
    """

    def completed(self) -> KindScores:
        """Return these scores with every image's."""
        if self.complete is None:
            return self
        every = self.complete()
        return KindScores(self.image_kind, self.model_id, self.dids, self.positions, every)


class ScoreSource(Protocol):
    """What scores a constant against every image (the similarity service's index)."""

    def similarity_scores(
        self, did: str | None, vector: np.ndarray | None, now: datetime, best: int | None = None
    ) -> list[KindScores]:
        """Score the image ``did`` (of its kind) or ``vector`` (of every kind of its length).

        Empty when the image is unknown, not public by the index, or has no
        vector, or when no model has the vector's length. With ``best``, the
        scores may hold only those of the ``best`` best images of each kind
        (`KindScores.complete`).
        """
        ...


def function_name(slot: int) -> str:
    """Name of the SQLite function of scores ``slot``."""
    return f"vosim_score_{slot}"


def relation_name(slot: int) -> str:
    """Name of the PostgreSQL temporary table of scores ``slot``."""
    return f"vosim_scores_{slot}"


def relation(slot: int) -> exp.Table:
    """Return the temporary table of scores ``slot``, as the translated SQL names it."""
    return exp.Table(
        this=exp.to_identifier(relation_name(slot), quoted=True),
        db=exp.to_identifier("pg_temp", quoted=True),
    )


def scalar_lookup(slot: int, key: exp.Expr, alias: str) -> exp.Subquery:
    """``(SELECT score FROM <scores> WHERE did = key)``: NULL when the DID is absent."""
    column = exp.column("score", alias, quoted=True)
    select = (
        exp.select(column)
        .from_(relation(slot).as_(alias, quoted=True))
        .where(exp.EQ(this=exp.column("did", alias, quoted=True), expression=key))
    )
    return exp.Subquery(this=select)


def lookup_join(slot: int, key: exp.Expr, alias: str) -> exp.Join:
    """``LEFT JOIN <scores> AS alias ON alias.did = key``: at most one row per DID."""
    return exp.Join(
        this=relation(slot).as_(alias, quoted=True),
        side="LEFT",
        on=exp.EQ(this=exp.column("did", alias, quoted=True), expression=key),
    )


def parse_vector(text: str) -> np.ndarray | None:
    """Read a constant vector's text as `similarity_udf.dot` does; None if it is not numbers."""
    try:
        vector = vector_from_text(text)
    except ValueError:
        return None
    return vector if vector.size else None
