"""A ranking by a constant-argument ``vosim_similarity``: the best-scored images first.

A query such as ``SELECT TOP 50 … vosim_similarity(o.obs_publisher_did,
'ivo://…') AS sim FROM ivoa.obscore AS o WHERE … AND sim IS NOT NULL ORDER
BY sim DESC`` keeps the N best-scored rows among those its conditions keep.
The scores are known before it runs (`similarity_scores`), so it need not
read every row: run with its rows cut to the images whose score is at least
a threshold (the K-th best of every public score), it gives the same answer
whenever it still returns N rows, since every row it leaves out scores below
those N. When fewer come back, the caller runs it again with a lower
threshold, and at last without one. `ranking` recognises such a query; the
cut is:

- SQLite: the DIDs above the threshold as a ``VALUES`` list
  (`cut_statement`), joined first to ObsCore or in an ``IN`` condition added
  to the query's WHERE;
- PostgreSQL: the scores' temporary table itself, filled with the images
  above the threshold only, then with the next ones; allowed only when the
  query reads these scores in this one place.

The query must drop the rows whose score is NULL (``… IS NOT NULL`` or a
comparison of the score), as NULL sorts first in a descending order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

__all__ = ["RANKED_ALIAS", "RANKED_DIDS", "RankedScores", "ScoreUse", "cut_statement", "ranking"]

RANKED_DIDS = "vosim_ranked_dids"
"""SQLite: the name standing for the DIDs a ranking is cut to, in its SQL (`cut_statement`)."""
RANKED_ALIAS = "vosim_ranked"
"""SQLite: the correlation name of those DIDs; a query that uses it is not cut."""
_VALUE = "column1"
"""The column of a ``VALUES`` list."""

_REJECTS_NULL = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ, exp.NEQ)


@dataclass(frozen=True)
class RankedScores:
    """How a query ranks by the scores of one constant."""

    slot: int
    """The scores (`ScoreRequest.slot`) the query orders by."""
    rows: int
    """The query's LIMIT: a cut answer is exact when it has this many rows."""
    cut_sql: str | None = None
    """SQLite: the query with its rows cut to the DIDs `RANKED_DIDS` stands for."""
    single: bool = True
    """Whether the query reads these scores in this one place only: then they need be
    known only for the images of the cut (`vo_service.tap.score_tables.RankedLevels`)."""


@dataclass(frozen=True)
class ScoreUse:
    """One place where a query reads the scores of a constant: their SQL and the row's DID."""

    slot: int
    key: exp.Expr
    """The DID column the scores are looked up by."""
    own: bool
    """Whether ``key`` is a column of the query the scores are read in."""


def ranking(
    select: exp.Select,
    uses: dict[str, ScoreUse],
    uses_of_slot: dict[int, int],
    sql_dialect: str,
) -> tuple[RankedScores, exp.Select | None] | None:
    """Return how ``select`` (the outermost query) ranks by constant scores, or None.

    Parameters
    ----------
    uses
        The places of this query's scores, by their SQL text.
    uses_of_slot
        How many places (DID keys and queries) read each scores in the whole query.

    Returns
    -------
    The ranking, and for SQLite the query with its rows cut (None on PostgreSQL).
    """
    limit = select.args.get("limit")
    if limit is None or select.args.get("offset") is not None:
        return None
    if any(select.args.get(part) for part in ("group", "having", "distinct")):
        return None
    if any(p.find(exp.AggFunc) is not None for p in select.expressions):
        return None
    score = _ordering_score(select)
    use = uses.get(score) if score is not None else None
    if use is None or not use.own or not isinstance(use.key, exp.Column):
        return None
    if not _drops_null(select, score):
        return None
    rows = int(limit.expression.this)
    if sql_dialect == "postgres":
        if uses_of_slot.get(use.slot) != 1:
            return None
        return RankedScores(use.slot, rows), None
    single = uses_of_slot.get(use.slot) == 1
    return RankedScores(use.slot, rows, single=single), _cut(select, use.key)


def _cut(select: exp.Select, key: exp.Column) -> exp.Select:
    """Return the SQLite query with its rows cut to the DIDs `RANKED_DIDS` stands for.

    When the DIDs are those of its first table, ObsCore, the DIDs come first
    (``CROSS JOIN`` keeps SQLite's order), each a lookup in ObsCore's unique
    index of DIDs: otherwise SQLite may choose another index (``band_list``)
    and read most of the table. Elsewhere an ``IN`` condition.
    """
    cut = select.copy()
    first = cut.args["from_"].this
    dids = exp.Table(this=exp.to_identifier(RANKED_DIDS, quoted=True))
    if _is_obscore_did(first, key):
        cut.set("from_", exp.From(this=dids.as_(RANKED_ALIAS, quoted=True)))
        cut.set("joins", [exp.Join(this=first, kind="CROSS"), *(cut.args.get("joins") or [])])
        value = exp.column(_VALUE, RANKED_ALIAS, quoted=True)
        cut.where(exp.EQ(this=key.copy(), expression=value), copy=False)
        return cut
    listed = exp.select(exp.column(_VALUE, quoted=True)).from_(dids)
    listed_only = exp.In(this=key.copy(), query=exp.Subquery(this=listed))
    # first: SQLite tests the conditions of a row in their order, and the query's own
    # call the scores for every row
    where = cut.args["where"].this
    cut.set("where", exp.Where(this=exp.and_(listed_only, exp.Paren(this=where), copy=False)))
    return cut


def cut_statement(sql: str, dids: Sequence[str]) -> str:
    """Write ``dids`` as a ``VALUES`` list in place of `RANKED_DIDS` in a cut query's SQL.

    Literals, not bind parameters: the SQL can have no more than 32,766 of
    those, and SQLite's ``json_each`` (one parameter) is a virtual table,
    which the read-only authorizer refuses. The DIDs are the index's own.
    """
    rows = ",".join("('" + did.replace("'", "''") + "')" for did in dids)
    return sql.replace(f'"{RANKED_DIDS}"', f"(VALUES {rows})", 1)


def _is_obscore_did(source: exp.Expr, key: exp.Column) -> bool:
    """Whether ``key`` is the DID column of ``source``, the table ``ivoa.obscore``."""
    return (
        isinstance(source, exp.Table)
        and source.name == "obscore"
        and source.db == "ivoa"
        and key.name == "obs_publisher_did"
        and key.table == (source.alias or source.name)
    )


def _ordering_score(select: exp.Select) -> str | None:
    """Return the SQL of the first ORDER BY key if the order is descending, else None."""
    order = select.args.get("order")
    if order is None or not order.expressions:
        return None
    first = order.expressions[0]
    if not first.args.get("desc"):
        return None
    target = first.this
    if isinstance(target, exp.Column) and not target.table:
        target = _projection(select, target.name)
    elif isinstance(target, exp.Literal) and not target.is_string:
        index = int(target.this) - 1
        target = select.expressions[index].this if index < len(select.expressions) else None
    if target is None:
        return None
    return _bare(target).sql()


def _projection(select: exp.Select, name: str) -> exp.Expr | None:
    for projection in select.expressions:
        if isinstance(projection, exp.Alias) and projection.alias == name:
            return projection.this
    return None


def _bare(node: exp.Expr) -> exp.Expr:
    """Return the value under the output casts and parentheses the translator adds."""
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return node


def _drops_null(select: exp.Select, score: str) -> bool:
    """Whether a condition of the WHERE (AND-ed) is false or unknown when the score is NULL."""
    where = select.args.get("where")
    if where is None:
        return False
    for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        condition = _bare(condition)
        if isinstance(condition, exp.Not) and isinstance(_bare(condition.this), exp.Is):
            test = _bare(condition.this)
            if isinstance(test.expression, exp.Null) and _bare(test.this).sql() == score:
                return True
        if isinstance(condition, _REJECTS_NULL):
            sides = (_bare(condition.this).sql(), _bare(condition.expression).sql())
            if score in sides:
                return True
    return False
