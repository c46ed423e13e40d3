"""Proprietary images are invisible to ADQL: the similarity tables as copies of their public rows.

The proprietary rule: nothing of an image whose release date is in the future (or
unknown) is ever served — not its vector, not its neighbours, not its
presence in anyone's neighbour list, and not through an error either. The
tables hold every image's rows (the neighbour lists are recomputed as images
become public, but the release date of an image can also move), so the
filter is applied when the query runs, and by construction: the user's SQL
never reads the stored tables at all. Every reference to a table below reads
instead a per-query object that holds only the rows whose images (all the
listed identifier columns) have an ObsCore row released at ``now``
(`tap_schema.release.released_sql`), and that the database fills before
the user's predicates can run:

- SQLite: a temporary table, filled by its own statement before the query
  (SQLite flattens subqueries and pushes WHERE terms into materialised
  ones, so nothing short of a separate statement orders the evaluation);
- PostgreSQL: a temporary ``security_barrier`` view, whose own conditions
  the planner guarantees to evaluate before any of the query's that is not
  ``LEAKPROOF`` (and a leakproof function raises no error that depends on
  its arguments).

So an error-raising predicate (overflow, division by zero, a failed CAST,
``LOG(0)``, a subquery of several rows, ...) never sees a hidden row: a
query answers on a database with proprietary images exactly as it would on
the same database without them. Both objects live in the query's own
transaction and vanish with its rollback. ObsCore rows themselves stay
visible, as in every archive.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from sqlglot import exp

from tap_schema.release import RELEASE_DATE, released_sql, unreleased_sql

from .backends import SQLITE_TIMESTAMP_FORMAT
from .catalog import TapTable

__all__ = [
    "PROPRIETARY_TABLES",
    "hidden_images_sql",
    "next_release_statement",
    "public_copy_statements",
    "public_rows",
    "public_rows_statements",
    "public_source",
    "release_literal",
]

PROPRIETARY_TABLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("similarity", "image"): ("obs_publisher_did",),
    ("similarity", "embedding"): ("obs_publisher_did",),
    ("similarity", "neighbour"): ("obs_publisher_did", "neighbour_did"),
}
"""Tables of image data, and the columns that name the images each row belongs to."""

_RELEASE = ("ivoa", "obscore", "obs_publisher_did")
_TEMPORARY_SCHEMA = {"sqlite": "temp", "postgres": "pg_temp"}
_NOW = "vosim_now_instant_placeholder"


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _public_name(table: TapTable) -> str:
    return f"vosim_public_{table.schema_name}_{table.table_name}".lower()


def public_source(table: TapTable, sql_dialect: str) -> exp.Table:
    """Return the per-query object of ``table``'s public rows, as the translated SQL names it."""
    return exp.Table(this=_quoted(_public_name(table)), db=_quoted(_TEMPORARY_SCHEMA[sql_dialect]))


def _released(alias: str) -> exp.Expr:
    """Return `tap_schema.release.released_sql` for ``alias``'s release date and `_NOW`."""
    column = exp.column(RELEASE_DATE, alias, quoted=True).sql()
    return exp.condition(released_sql(column, _NOW))


def public_rows(table: TapTable, did_columns: tuple[str, ...]) -> exp.Select:
    """``SELECT <columns> FROM <table> WHERE <every image of the row is public>``.

    The instant is the placeholder column `_NOW`, replaced by a literal
    in `public_rows_statements`.
    """
    row = "vosim_row"
    schema, obscore, did = _RELEASE
    select = exp.select(*(exp.column(c.name, row, quoted=True) for c in table.columns)).from_(
        exp.Table(this=_quoted(table.table_name), db=_quoted(table.schema_name)).as_(
            row, quoted=True
        )
    )
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
        select = select.where(exp.Exists(this=check))
    return select


@lru_cache(maxsize=64)
def _statement_template(table: TapTable, sql_dialect: str) -> str:
    """Return the statement filling ``table``'s public rows, with `_NOW` for the instant."""
    select = public_rows(table, PROPRIETARY_TABLES[(table.schema_name, table.table_name)])
    name = public_source(table, sql_dialect).sql(dialect=sql_dialect)
    if sql_dialect == "postgres":
        head = f"CREATE TEMPORARY VIEW {name} WITH (security_barrier) AS "
    else:
        head = f"CREATE TEMPORARY TABLE {name} AS "
    return head + select.sql(dialect=sql_dialect)


def release_literal(now: datetime, sql_dialect: str) -> str:
    """Return ``now`` (naive UTC) as the SQL literal the public rows compare release dates with."""
    if sql_dialect == "postgres":
        return f"CAST('{now.isoformat(sep=' ', timespec='microseconds')}' AS TIMESTAMP)"
    return f"'{now.strftime(SQLITE_TIMESTAMP_FORMAT)}'"


def public_rows_statements(
    tables: Iterable[TapTable], sql_dialect: str, now: datetime
) -> tuple[str, ...]:
    """Return the statements that create the public rows of ``tables`` at ``now`` (naive UTC).

    Run them, in the query's transaction and before it, so that the query's
    `public_source` names exist. The instant is written as a literal (a
    PostgreSQL view takes no bind parameters); it is our own value, never
    the user's text. Built once per table and backend: building with
    sqlglot's builders costs about as much as translating a typical query.
    """
    literal = release_literal(now, sql_dialect)
    statements = []
    for table in tables:
        statements.append(_statement_template(table, sql_dialect).replace(_NOW, literal))
    return tuple(statements)


def hidden_images_sql(sql_dialect: str, now: datetime) -> str:
    """``SELECT`` the DIDs of the ObsCore images that are not public at ``now`` (naive UTC).

    The scores of constant similarity arguments (`similarity_scores`) leave
    them out, whatever the service's in-memory release dates say.
    """
    return _hidden_images_template(sql_dialect).replace(_NOW, release_literal(now, sql_dialect))


@lru_cache(maxsize=4)
def _hidden_images_template(sql_dialect: str) -> str:
    """`hidden_images_sql` with `_NOW` for the instant: built once, as sqlglot is slow."""
    schema, obscore, did = _RELEASE
    row = "vosim_row"
    select = (
        exp.select(exp.column(did, row, quoted=True))
        .from_(exp.Table(this=_quoted(obscore), db=_quoted(schema)).as_(row, quoted=True))
        .where(
            exp.condition(unreleased_sql(exp.column(RELEASE_DATE, row, quoted=True).sql(), _NOW))
        )
    )
    return select.sql(dialect=sql_dialect)


def public_copy_statements(table: TapTable, now: datetime) -> tuple[str, str]:
    """Return the SQLite statements that drop and refill ``table``'s public copy at ``now``.

    For a copy kept on its connection across queries (`vo_service.tap.public_copies`):
    the copy left by an earlier query, if any, is dropped first.
    """
    name = public_source(table, "sqlite").sql(dialect="sqlite")
    create = _statement_template(table, "sqlite").replace(_NOW, release_literal(now, "sqlite"))
    return f"DROP TABLE IF EXISTS {name}", create


def next_release_statement(now: datetime) -> str:
    """Return SQLite's ``SELECT`` of the first release date after ``now`` (NULL if none).

    A copy made at ``now`` holds the public rows of every instant up to,
    not including, that date: release dates are compared as the stored
    text, as `public_rows` compares them.
    """
    schema, obscore, _did = _RELEASE
    column = exp.column(RELEASE_DATE, quoted=True).sql()
    table = exp.Table(this=_quoted(obscore), db=_quoted(schema)).sql(dialect="sqlite")
    literal = release_literal(now, "sqlite")
    return f"SELECT MIN({column}) FROM {table} WHERE {column} > {literal}"
