"""ADQL 2.1 → SQL for SQLite and PostgreSQL (pgsphere), with a validator.

This is the contract between the ADQL translator and the TAP service; the
translator behind it is built in ``vo_service/adql/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "AdqlError",
    "ResultColumn",
    "TranslatedQuery",
    "UploadedTable",
    "translate_adql",
]

Dialect = Literal["sqlite", "postgresql"]


class AdqlError(ValueError):
    """A query the service refuses, with a message that tells the user what to fix.

    Parameters
    ----------
    message
        What is wrong and, where possible, how to fix it.
    line, column
        One-based position in the ADQL text, when known.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.line = line
        self.column = column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")


@dataclass(frozen=True)
class ResultColumn:
    """Metadata of one output column, for the VOTable FIELD (as in TAP_SCHEMA.columns)."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class UploadedTable:
    """A TAP_UPLOAD table the service has already loaded into the database."""

    adql_name: str
    """Name the user gave it, used in ADQL as ``TAP_UPLOAD.<adql_name>``."""
    sql_name: str
    """Name of the (temporary) table in the database, already quoted as needed."""
    columns: tuple[ResultColumn, ...] = ()


@dataclass(frozen=True)
class TranslatedQuery:
    """SQL ready to execute, with its bind parameters and the output columns' metadata."""

    sql: str
    parameters: Mapping[str, object] = field(default_factory=dict)
    columns: tuple[ResultColumn, ...] = ()


def translate_adql(
    adql: str,
    *,
    dialect: Dialect,
    uploads: Mapping[str, UploadedTable] | None = None,
    max_rows: int | None = None,
    now: datetime | None = None,
) -> TranslatedQuery:
    """Validate an ADQL query and translate it to SQL of one backend.

    Parameters
    ----------
    adql
        The query text (ADQL 2.0 or 2.1).
    dialect
        Target database.
    uploads
        TAP_UPLOAD tables by (case-insensitive) name.
    max_rows
        Upper bound on rows to return (the service passes MAXREC + 1 to detect
        overflow); combined with the query's own TOP.
    now
        The moment against which release dates are compared (defaults to the
        current UTC time); rows of ``similarity`` tables that belong to
        images whose release date is later are invisible.

    Raises
    ------
    AdqlError
        For anything that is not a valid, permitted ADQL query.
    """
    raise NotImplementedError("the ADQL translator is being written")
