"""Proprietary images are invisible to ADQL: the similarity tables seen through a filter.

The proprietary rule: nothing of an image whose release date is in the future (or
unknown) is ever served — not its vector, not its neighbours, not its
presence in anyone's neighbour list. The tables hold every image's rows (the
neighbour lists are recomputed as images become public, but the release date
of an image can also move), so the filter is applied when the query runs:
every reference to a table below becomes a derived table of the same name
that only keeps rows whose images (all the listed identifier columns) have an
ObsCore row released at or before ``:now``. The rewrite happens wherever the
table appears (joins, subqueries, WITH, set operations), so no query shape,
not even ``COUNT(*)``, can see the hidden rows. ObsCore rows themselves stay
visible, as in every archive.
"""

from __future__ import annotations

from functools import lru_cache

from sqlglot import exp

from tap_schema.release import RELEASE_DATE, released_sql

from .catalog import TapTable

__all__ = ["NOW_PARAMETER", "PROPRIETARY_TABLES", "public_rows", "public_rows_sql"]

NOW_PARAMETER = "now"

PROPRIETARY_TABLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("similarity", "image"): ("obs_publisher_did",),
    ("similarity", "embedding"): ("obs_publisher_did",),
    ("similarity", "neighbour"): ("obs_publisher_did", "neighbour_did"),
}
"""Tables of image data, and the columns that name the images each row belongs to."""

_RELEASE = ("ivoa", "obscore", "obs_publisher_did")


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _released(alias: str) -> exp.Expr:
    """Return `tap_schema.release.released_sql` for ``alias``'s release date and ``:now``.

    The bind parameter stays ``:now`` on every backend (a `sqlalchemy.text`
    parameter), as sqlglot would otherwise write it in the backend's own style.
    """
    column = exp.column(RELEASE_DATE, alias, quoted=True).sql()
    condition = exp.condition(released_sql(column, f":{NOW_PARAMETER}"))
    return condition.transform(
        lambda node: (
            exp.Var(this=f":{NOW_PARAMETER}") if isinstance(node, exp.Placeholder) else node
        )
    )


def public_rows(table: TapTable, did_columns: tuple[str, ...]) -> exp.Select:
    """``SELECT <columns> FROM <table> WHERE <every image of the row is public>``."""
    row = "vosim_row"
    schema, obscore, did = _RELEASE
    conditions: list[exp.Expr] = []
    for index, did_column in enumerate(did_columns):
        released = f"vosim_released_{index}"
        check = (
            exp.select(exp.Literal.number(1))
            .from_(exp.Table(this=_quoted(obscore), db=_quoted(schema)).as_(released, quoted=True))
            .where(
                exp.EQ(
                    this=exp.column(did, released, quoted=True),
                    expression=exp.column(did_column, row, quoted=True),
                )
            )
            .where(_released(released))
        )
        conditions.append(exp.Exists(this=check))
    select = exp.select(*(exp.column(c.name, row, quoted=True) for c in table.columns)).from_(
        exp.Table(this=_quoted(table.table_name), db=_quoted(table.schema_name)).as_(
            row, quoted=True
        )
    )
    for condition in conditions:
        select = select.where(condition)
    return select


@lru_cache(maxsize=64)
def public_rows_sql(table: TapTable, did_columns: tuple[str, ...], sql_dialect: str) -> str:
    """Return `public_rows` as SQL text, built once per table and backend.

    The filter is the same for every query, and building it with sqlglot's
    builders costs about as much as translating the rest of a typical query.
    """
    return public_rows(table, did_columns).sql(dialect=sql_dialect)
