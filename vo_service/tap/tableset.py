"""The tableset of the service, read from TAP_SCHEMA (TAP 1.1 section 4, VOSI 1.1 section 3.4).

``/tap/tables`` must say what TAP_SCHEMA says (taplint compares the two
column by column), so it is read from TAP_SCHEMA itself, which the Felis
files fill, rather than from the Felis files directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from tap_schema import Catalogue

__all__ = ["ColumnEntry", "ForeignKeyEntry", "SchemaEntry", "TableEntry", "read_tableset"]


@dataclass(frozen=True)
class ColumnEntry:
    """One row of TAP_SCHEMA.columns."""

    name: str
    datatype: str
    arraysize: str | None
    xtype: str | None
    unit: str | None
    ucd: str | None
    utype: str | None
    description: str | None
    principal: bool
    indexed: bool
    std: bool


@dataclass(frozen=True)
class ForeignKeyEntry:
    """One row of TAP_SCHEMA.keys with its TAP_SCHEMA.key_columns."""

    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str | None
    utype: str | None


@dataclass
class TableEntry:
    """One row of TAP_SCHEMA.tables with its columns and foreign keys."""

    name: str
    table_type: str
    description: str | None
    utype: str | None
    columns: list[ColumnEntry] = field(default_factory=list)
    foreign_keys: list[ForeignKeyEntry] = field(default_factory=list)


@dataclass
class SchemaEntry:
    """One row of TAP_SCHEMA.schemas with its tables."""

    name: str
    description: str | None
    utype: str | None
    tables: list[TableEntry] = field(default_factory=list)


def read_tableset(catalogue: Catalogue) -> list[SchemaEntry]:
    """Read the whole of TAP_SCHEMA, in its schema, table and column order."""
    schemas_t = catalogue.table("TAP_SCHEMA.schemas")
    tables_t = catalogue.table("TAP_SCHEMA.tables")
    columns_t = catalogue.table("TAP_SCHEMA.columns")
    keys_t = catalogue.table("TAP_SCHEMA.keys")
    key_columns_t = catalogue.table("TAP_SCHEMA.key_columns")
    with catalogue.begin() as conn:
        schema_rows = conn.execute(
            sa.select(schemas_t).order_by(schemas_t.c.schema_index, schemas_t.c.schema_name)
        ).all()
        table_rows = conn.execute(
            sa.select(tables_t).order_by(tables_t.c.table_index, tables_t.c.table_name)
        ).all()
        column_rows = conn.execute(
            sa.select(columns_t).order_by(columns_t.c.table_name, columns_t.c.column_index)
        ).all()
        key_rows = conn.execute(sa.select(keys_t).order_by(keys_t.c.key_id)).all()
        key_column_rows = conn.execute(sa.select(key_columns_t)).all()
    schemas = {
        row.schema_name: SchemaEntry(row.schema_name, row.description, row.utype)
        for row in schema_rows
    }
    tables: dict[str, TableEntry] = {}
    for row in table_rows:
        table = TableEntry(row.table_name, row.table_type or "table", row.description, row.utype)
        tables[row.table_name] = table
        if row.schema_name in schemas:
            schemas[row.schema_name].tables.append(table)
    for row in column_rows:
        if row.table_name in tables:
            tables[row.table_name].columns.append(
                ColumnEntry(
                    name=row.column_name,
                    datatype=row.datatype,
                    arraysize=row.arraysize,
                    xtype=row.xtype,
                    unit=row.unit,
                    ucd=row.ucd,
                    utype=row.utype,
                    description=row.description,
                    principal=bool(row.principal),
                    indexed=bool(row.indexed),
                    std=bool(row.std),
                )
            )
    pairs: dict[str, list[tuple[str, str]]] = {}
    for row in key_column_rows:
        pairs.setdefault(row.key_id, []).append((row.from_column, row.target_column))
    for row in key_rows:
        if row.from_table in tables:
            tables[row.from_table].foreign_keys.append(
                ForeignKeyEntry(
                    row.target_table, tuple(pairs.get(row.key_id, ())), row.description, row.utype
                )
            )
    return list(schemas.values())
