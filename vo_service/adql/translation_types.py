"""What the translation passes around: typed values, geometry, output columns, names."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from vo_service.votable.columns import ResultColumn

from .scope import Name

__all__ = [
    "BOOLEAN",
    "INTEGER_TYPES",
    "NULL",
    "NUMERIC_TYPES",
    "Geom",
    "OutputColumn",
    "Value",
    "computed_meta",
    "name_of",
    "needs_no_cast",
    "quoted",
]

INTEGER_TYPES = ("short", "int", "long")
NUMERIC_TYPES = ("short", "int", "long", "float", "double", "unsignedByte")
BOOLEAN = "boolean"
NULL = "null"


def computed_meta(datatype: str, **fields: str | None) -> ResultColumn:
    """Return the metadata of a computed value (text gets ``arraysize="*"``)."""
    if datatype == "char" and "arraysize" not in fields:
        fields["arraysize"] = "*"
    return ResultColumn(name="", datatype=datatype, **fields)


@dataclass
class Value:
    """A translated value: its SQL, its metadata and, for geometry, its symbolic form."""

    sql: exp.Expr | None
    meta: ResultColumn
    geom: Geom | None = None

    @property
    def datatype(self) -> str:
        """The VOTable datatype."""
        return self.meta.datatype

    @property
    def is_numeric(self) -> bool:
        """A single number."""
        return self.meta.datatype in NUMERIC_TYPES and self.meta.arraysize is None

    @property
    def is_integer(self) -> bool:
        """A single integer."""
        return self.meta.datatype in INTEGER_TYPES and self.meta.arraysize is None

    @property
    def is_array(self) -> bool:
        """An array that is not text, such as a similarity vector."""
        return self.meta.arraysize is not None and self.meta.datatype not in ("char", "unicodeChar")

    @property
    def is_timestamp(self) -> bool:
        """A timestamp (ISO-8601 text with xtype timestamp)."""
        return self.meta.xtype == "timestamp"

    @property
    def is_string(self) -> bool:
        """Text that is not a timestamp."""
        return self.meta.datatype in ("char", "unicodeChar") and not self.is_timestamp


@dataclass(frozen=True)
class OutputColumn:
    """One column of a (sub)query's result: ADQL name, SQL alias, metadata, geometry kind."""

    name: str
    sql_name: str
    meta: ResultColumn
    generated: bool = False


def needs_no_cast(sql: exp.Expr, meta: ResultColumn) -> bool:
    """Whether a value already is what its output column declares (no CAST needed)."""
    if isinstance(sql, exp.Column):
        return True
    return (
        meta.datatype == "double"
        and isinstance(sql, exp.Cast)
        and sql.args["to"].this == exp.DataType.Type.DOUBLE
    )


def name_of(identifier: exp.Identifier | str | None) -> Name | None:
    """Return an identifier as a name and whether it was quoted."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return identifier, False
    return identifier.this, bool(identifier.quoted)


def quoted(name: str) -> exp.Identifier:
    """Return a quoted SQL identifier."""
    return exp.to_identifier(name, quoted=True)


@dataclass(frozen=True)
class Geom:
    """A geometry value during translation.

    Parameters
    ----------
    kind
        ``point``, ``circle``, ``polygon`` or ``region`` (STC-S text such as
        ``ivoa.obscore.s_region``).
    coords
        Its DALI coordinates in degrees as SQL expressions, when known.
    packed
        Otherwise the SQL value that holds it: a packed DALI value read from a
        derived table, or the STC-S text of a region.
    """

    kind: str
    coords: tuple[exp.Expr, ...] | None = None
    packed: exp.Expr | None = None
