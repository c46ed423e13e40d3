"""A GAVO DaCHS resource descriptor for vosim's published tables, generated from Felis.

DaCHS does not serve a table because it has TAP_SCHEMA rows: its ADQL
engine, its ``/tables`` endpoint and its TAP_SCHEMA all come from resource
descriptors (RDs), and a table is found through ``dc.tablemeta``, which
points to the RD that declares it. Rows written into DaCHS' TAP_SCHEMA
alone appear in TAP_SCHEMA queries, but DaCHS answers every ADQL query on
such a table with "Could not locate table" and leaves it out of ``/tables``
(tried on DaCHS 2.7). So in a DaCHS archive vosim writes the tables and an
RD that declares them as existing (``onDisk``) tables; ``dachs imp -m`` then
registers them exactly as DaCHS registers its own, and ``dachs drop``
unregisters them.

The RD is written from the same Felis file as everything else (the
template ``templates/dachs/resource.rd``); nothing in it is typed by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from felis.datamodel import Column, DataType, ForeignKeyConstraint, Schema, Table
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .felis_files import load_schema

__all__ = [
    "DachsColumn",
    "dachs_type",
    "partial_resource_descriptor",
    "render_resource_descriptor",
    "write_resource_descriptor",
]

TITLE = "Morphological image similarity (vosim)"

_SCALAR_TYPES: dict[DataType, str] = {
    DataType.boolean: "boolean",
    DataType.byte: "smallint",
    DataType.short: "smallint",
    DataType.int: "integer",
    DataType.long: "bigint",
    DataType.float: "real",
    DataType.double: "double precision",
    DataType.char: "text",
    DataType.string: "text",
    DataType.text: "text",
    DataType.unicode: "unicode",
    DataType.timestamp: "timestamp",
    DataType.binary: "bytea",
}
"""DaCHS' type for each Felis datatype (DaCHS types are SQL names, strings are text)."""

_PRINCIPAL_VERB_LEVEL, _OTHER_VERB_LEVEL = 10, 30
"""DaCHS sets TAP_SCHEMA ``principal`` for columns of verbLevel 20 and below."""


def dachs_type(column: Column) -> str:
    """Return the DaCHS type of a Felis column; numeric columns with an arraysize are arrays."""
    base = _SCALAR_TYPES[column.datatype]
    if column.votable_arraysize and column.datatype in (DataType.float, DataType.double):
        return f"{base}[]"
    return base


@dataclass(frozen=True)
class DachsColumn:
    """What the RD says of one column."""

    name: str
    type: str
    unit: str | None
    ucd: str | None
    utype: str | None
    required: str
    verb_level: int
    description: str


def _column(column: Column) -> DachsColumn:
    return DachsColumn(
        name=column.name,
        type=dachs_type(column),
        unit=column.ivoa_unit or column.fits_tunit,
        ucd=column.ivoa_ucd,
        utype=column.votable_utype,
        required="False" if column.nullable else "True",
        verb_level=_PRINCIPAL_VERB_LEVEL if column.tap_principal else _OTHER_VERB_LEVEL,
        description=" ".join((column.description or "").split()),
    )


def _table(schema: Schema, table: Table) -> dict[str, object]:
    def name_of(column_id: str) -> str:
        return schema.find_object_by_id(column_id, Column).name

    primary = table.primary_key or []
    primary_ids = [primary] if isinstance(primary, str) else list(primary)
    foreign_keys = []
    for constraint in table.constraints:
        if isinstance(constraint, ForeignKeyConstraint):
            target = schema.get_table_by_column(
                schema.find_object_by_id(constraint.referenced_columns[0], Column)
            )
            foreign_keys.append(
                {
                    "source": ",".join(name_of(c) for c in constraint.columns),
                    "dest": ",".join(name_of(c) for c in constraint.referenced_columns),
                    "target": target.name,
                }
            )
    return {
        "name": table.name,
        "description": " ".join((table.description or "").split()),
        "primary": ",".join(name_of(c) for c in primary_ids),
        "foreign_keys": foreign_keys,
        "indexes": [",".join(name_of(c) for c in index.columns or []) for index in table.indexes],
        "columns": [_column(column) for column in table.columns],
    }


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(resources.files("templates").joinpath("dachs"))),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_resource_descriptor(schema: Schema, *, path: Path) -> str:
    """Return the text of the RD that declares the tables of a Felis schema.

    Parameters
    ----------
    schema
        The Felis description of the published schema.
    path
        Where the RD will lie, below DaCHS' inputs directory: its folder is
        the RD's resource directory, and its path what ``dachs imp`` and
        ``dachs drop`` are given.
    """
    return (
        _environment()
        .get_template("resource.rd")
        .render(
            schema=schema,
            title=TITLE,
            resdir=str(path.parent),
            rd_path=str(path),
            tables=[_table(schema, table) for table in schema.tables],
        )
    )


def write_resource_descriptor(path: Path, schema_name: str) -> bool:
    """Write the RD of a published schema to ``path``, atomically and durably.

    The text goes to a hidden ``.partial`` file beside it, fsynced, then
    renamed over ``path`` and the folder fsynced: a crash leaves the old RD
    or the new one, never a part of one, which ``dachs imp`` would refuse.
    The file is replaced only when its text changes, so publishing twice
    leaves it as it was.

    Returns
    -------
    bool
        Whether the file was written (False when it already said the same).
    """
    path = path.resolve()
    text = render_resource_descriptor(load_schema(schema_name), path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text("utf-8") == text:
        partial_resource_descriptor(path).unlink(missing_ok=True)
        return False
    partial = partial_resource_descriptor(path)
    with partial.open("w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    partial.chmod(0o644)
    partial.replace(path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return True


def partial_resource_descriptor(path: Path) -> Path:
    """Return the file `write_resource_descriptor` writes before renaming it to ``path``."""
    return path.with_name(f".{path.name}.partial")
