"""The published tables and columns, as TAP_SCHEMA describes them.

Only what TAP_SCHEMA lists can be queried: the translator resolves every table
and column against a `TapSchema`, so vosim's own ``vosim.*`` tables, the job
tables and anything else unpublished are unreachable from ADQL. It is loaded
once (`TapSchema.load`) and cached by the service; translation never reflects
the database.

ADQL 2.1 (section 2.1.3) makes regular identifiers case-insensitive and
delimited (double-quoted) identifiers case-sensitive. Lookups here follow
that, and always return the exact stored name, which the SQL then quotes: on
PostgreSQL that is ``"TAP_SCHEMA"`` (upper case, quoted); on SQLite each
schema is an ATTACHed database whose name is case-insensitive anyway.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from vo_service.votable.columns import ResultColumn

from .errors import AdqlError

__all__ = ["TapSchema", "TapTable", "names_match", "suggestion"]

_COLUMNS_SQL = sa.text(
    "SELECT c.table_name, c.column_name, c.datatype, c.arraysize, c.xtype, c.unit, c.ucd, "
    'c.utype, c.description, c.column_index FROM "TAP_SCHEMA"."columns" AS c'
)
_TABLES_SQL = sa.text('SELECT t.schema_name, t.table_name FROM "TAP_SCHEMA"."tables" AS t')


@dataclass(frozen=True)
class TapTable:
    """One published table: its exact schema and table names and its columns in order."""

    schema_name: str
    table_name: str
    columns: tuple[ResultColumn, ...]

    @property
    def qualified_name(self) -> str:
        """The name as in ``TAP_SCHEMA.tables.table_name``, e.g. ``ivoa.obscore``."""
        return f"{self.schema_name}.{self.table_name}"


@dataclass(frozen=True, eq=False)
class TapSchema:
    """The tables that ADQL may reach, looked up with ADQL's identifier rules.

    Parameters
    ----------
    tables
        Every published table.

    Compared and hashed by identity: the translator caches its work per
    `TapSchema` object, so reload it (a new object) when TAP_SCHEMA changes.
    """

    tables: tuple[TapTable, ...]

    @classmethod
    def load(cls, connection: sa.Connection) -> TapSchema:
        """Read TAP_SCHEMA.tables and TAP_SCHEMA.columns (TAP 1.1, section 4).

        Parameters
        ----------
        connection
            An open SQLAlchemy connection to the catalogue (SQLite or PostgreSQL).
        """
        schema_of = {
            table_name: schema_name for schema_name, table_name in connection.execute(_TABLES_SQL)
        }
        columns: dict[str, list[tuple[float, str, ResultColumn]]] = {}
        for row in connection.execute(_COLUMNS_SQL):
            (table_name, name, datatype, arraysize, xtype, unit, ucd, utype, description, index) = (
                row
            )
            column = ResultColumn(
                name=_undelimited(name),
                datatype=datatype,
                arraysize=arraysize,
                xtype=xtype,
                unit=unit,
                ucd=ucd,
                utype=utype,
                description=description,
            )
            order = float("inf") if index is None else float(index)
            columns.setdefault(table_name, []).append((order, column.name, column))
        tables = []
        for qualified, schema_name in schema_of.items():
            prefix = f"{schema_name}."
            bare = qualified[len(prefix) :] if qualified.startswith(prefix) else qualified
            ordered = tuple(column for _, _, column in sorted(columns.get(qualified, [])))
            tables.append(TapTable(schema_name, bare, ordered))
        return cls(tuple(tables))

    def schema_names(self) -> list[str]:
        """Return the exact names of the published schemas."""
        return sorted({table.schema_name for table in self.tables})

    def find(self, schema: tuple[str, bool] | None, table: tuple[str, bool]) -> TapTable:
        """Find a table by its (possibly unqualified) ADQL name.

        Parameters
        ----------
        schema, table
            Each an ``(identifier, quoted)`` pair; ``schema`` may be omitted
            when the table name is unique among the published schemas.

        Raises
        ------
        AdqlError
            When no published table (or more than one) has that name; the
            message suggests the closest published names.
        """
        if schema is None:
            candidates = list(self.tables)
        else:
            candidates = [t for t in self.tables if names_match(t.schema_name, schema)]
            if not candidates:
                raise AdqlError(
                    f"unknown schema {schema[0]!r}"
                    + suggestion(schema[0], self.schema_names())
                    + "; TAP_SCHEMA.tables lists what can be queried"
                )
        matches = [t for t in candidates if names_match(t.table_name, table)]
        if len(matches) == 1:
            return matches[0]
        shown = f"{schema[0]}.{table[0]}" if schema else table[0]
        if not matches:
            raise AdqlError(
                f"unknown table {shown!r}"
                + suggestion(shown, [t.qualified_name for t in self.tables])
                + "; TAP_SCHEMA.tables lists what can be queried"
            )
        raise AdqlError(
            f"table name {shown!r} is ambiguous: qualify it, e.g. "
            + " or ".join(repr(t.qualified_name) for t in matches)
        )


def names_match(stored: str, name: tuple[str, bool]) -> bool:
    """Whether an ADQL identifier names a stored name (ADQL 2.1, section 2.1.3)."""
    text, quoted = name
    return stored == text if quoted else stored.lower() == text.lower()


def suggestion(name: str, known: Iterable[str]) -> str:
    """Return a ``"; did you mean …?"`` hint for a misspelt name, or an empty string."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"


def _undelimited(name: str) -> str:
    """Return the database name of a column that TAP_SCHEMA may list delimited.

    TAP 1.1 (section 4.3) has TAP_SCHEMA name the column ``"size"`` with its
    quotes, as SIZE is an ADQL reserved word; the database column is
    ``size``, which is what a query's ``"size"`` must resolve to.
    """
    if len(name) > 1 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name
