"""The TAP_SCHEMA rows of vosim's schemas, written into or removed from any TAP_SCHEMA.

A TAP service describes its tables in the five TAP_SCHEMA tables (TAP 1.1,
section 4). Felis generates those rows from the YAML; this module keeps them
as plain records rather than statements bound to Felis' own table objects, so
that the same rows can go into vosim's catalogue and into the TAP_SCHEMA of an
archive that already runs a TAP service (plugin mode), whose tables may have a
few columns more or less than Felis' (TAP 1.0 services lack ``arraysize`` and
``xtype``, CADC and DaCHS add their own). Deletion is by schema name, so the
rows that describe anybody else's tables are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Protocol

import sqlalchemy as sa
from felis.datamodel import Schema
from felis.tap_schema import DataLoader, TableManager
from sqlalchemy import Connection, Table

__all__ = [
    "TAP_SCHEMA_TABLES",
    "TapSchemaMismatchError",
    "TapSchemaTables",
    "delete_tap_schema_rows",
    "insert_tap_schema_records",
    "tap_schema_records",
]

TAP_SCHEMA_TABLES: tuple[str, ...] = ("schemas", "tables", "columns", "keys", "key_columns")
"""The TAP_SCHEMA 1.1 tables, in an order where every row's referenced rows come first."""


class TapSchemaTables(Protocol):
    """Anything that gives the SQLAlchemy table of a TAP_SCHEMA table by its bare name.

    Felis' `TableManager` and a plain ``dict`` of reflected tables both do.
    """

    def __getitem__(self, name: str) -> Table: ...


class TapSchemaMismatchError(ValueError):
    """A TAP_SCHEMA table lacks a column TAP needs, or needs one vosim cannot fill."""


@cache
def _felis_tap_schema() -> TableManager:
    return TableManager(engine_url="postgresql://")


class _RecordingLoader(DataLoader):
    """Felis' TAP_SCHEMA loader, keeping each row as a record instead of an INSERT."""

    def __init__(self, schema: Schema, schema_index: int) -> None:
        # The database context is only used by the loader's own execution,
        # which is never called here.
        super().__init__(schema, _felis_tap_schema(), None, schema_index)  # type: ignore[arg-type]
        self.records: dict[str, list[dict[str, Any]]] = {name: [] for name in TAP_SCHEMA_TABLES}

    def _insert(self, table_name: str, record: list[Any] | dict[str, Any]) -> None:
        self.records[table_name].append(dict(record))


def tap_schema_records(schema: Schema, schema_index: int) -> dict[str, list[dict[str, Any]]]:
    """Return the TAP_SCHEMA rows that describe one Felis schema, per TAP_SCHEMA table.

    Parameters
    ----------
    schema
        The Felis description of the schema.
    schema_index
        Its ``schema_index`` (TAP 1.1, section 4.1: the order clients list
        schemas in).

    Returns
    -------
    dict
        For each name of `TAP_SCHEMA_TABLES`, the rows as ``{column: value}``
        with Felis' column names (``size`` for ``"size"``).
    """
    loader = _RecordingLoader(schema, schema_index)
    loader._generate_all_inserts()
    return loader.records


def delete_tap_schema_rows(
    conn: Connection, tap_schema: TapSchemaTables, schema_names: Iterable[str]
) -> None:
    """Delete the TAP_SCHEMA rows of some schemas, leaving every other schema's rows.

    A TAP_SCHEMA may describe an archive's own tables next to vosim's; only
    the rows of the named schemas (their tables, columns and the keys that
    start or end at one of their tables) are removed.
    """
    names = list(schema_names)
    tables, columns = tap_schema["tables"], tap_schema["columns"]
    keys, key_columns = tap_schema["keys"], tap_schema["key_columns"]
    our_tables = sa.select(tables.c.table_name).where(tables.c.schema_name.in_(names))
    our_keys = sa.select(keys.c.key_id).where(
        keys.c.from_table.in_(our_tables) | keys.c.target_table.in_(our_tables)
    )
    conn.execute(key_columns.delete().where(key_columns.c.key_id.in_(our_keys)))
    conn.execute(keys.delete().where(keys.c.key_id.in_(our_keys)))
    conn.execute(columns.delete().where(columns.c.table_name.in_(our_tables)))
    conn.execute(tables.delete().where(tables.c.schema_name.in_(names)))
    schemas = tap_schema["schemas"]
    conn.execute(schemas.delete().where(schemas.c.schema_name.in_(names)))


def insert_tap_schema_records(
    conn: Connection,
    tap_schema: TapSchemaTables,
    records: Mapping[str, list[dict[str, Any]]],
) -> None:
    """Insert records made by `tap_schema_records` into a TAP_SCHEMA of any flavour.

    Each record is cut down to the columns the target table has (matched
    without regard to case, since TAP 1.1 names ``"size"`` delimited and
    TAP 1.0 services have no ``arraysize``). Before anything is written, every
    target table is checked for a required column that no record fills.

    Raises
    ------
    TapSchemaMismatchError
        If a target column is NOT NULL without a default and vosim has no
        value for it.
    """
    plans = {name: _column_plan(tap_schema[name], name) for name in TAP_SCHEMA_TABLES}
    for name in TAP_SCHEMA_TABLES:
        table, plan = tap_schema[name], plans[name]
        rows = [
            {plan[key]: value for key, value in row.items() if key in plan} for row in records[name]
        ]
        if rows:
            conn.execute(table.insert(), rows)


def _column_plan(table: Table, name: str) -> dict[str, str]:
    """Map Felis' column names to the target table's, and check nothing required is left out."""
    by_lower = {column.name.lower().strip('"'): column.name for column in table.columns}
    offered = {column.name for column in _felis_tap_schema()[name].columns}
    plan = {key: by_lower[key.lower()] for key in offered if key.lower() in by_lower}
    filled = set(plan.values())
    missing = [
        column.name
        for column in table.columns
        if column.name not in filled
        and not column.nullable
        and column.server_default is None
        and column.default is None
        and not (column.primary_key and column.autoincrement is True)
    ]
    if missing:
        raise TapSchemaMismatchError(
            f"{table.fullname} requires column(s) {', '.join(missing)} that a TAP_SCHEMA 1.1 "
            "description does not have; this TAP service needs its own way of registering "
            "tables (for GAVO DaCHS, publish with --dachs-rd)"
        )
    return plan
