"""`translate_adql`: validate an ADQL query and write it as SQL of one backend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

import numpy as np

from tap_schema import decode_float_array

from .backends import BACKENDS
from .catalog import TapSchema
from .dialect import parse_adql
from .proprietary import NOW_PARAMETER
from .translated import Decoder, TranslatedQuery, UploadedTable
from .translator import Translator

__all__ = ["Dialect", "translate_adql"]

Dialect = Literal["sqlite", "postgresql"]


def translate_adql(
    adql: str,
    *,
    schema: TapSchema,
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
    schema
        The published tables (`TapSchema.load`, cached by the caller).
    dialect
        Target database.
    uploads
        TAP_UPLOAD tables by (case-insensitive) name.
    max_rows
        Upper bound on rows to return (the service passes MAXREC + 1 to detect
        overflow); combined with the query's own TOP (the smaller wins).
    now
        The moment against which release dates are compared (defaults to the
        current UTC time); rows of ``similarity`` tables that belong to
        images whose release date is later are invisible. It is a bind
        parameter, so translations are cached whatever its value.

    Raises
    ------
    AdqlError
        For anything that is not a valid, permitted ADQL query.
    """
    if dialect not in BACKENDS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    if max_rows is not None and max_rows < 0:
        raise ValueError("max_rows must not be negative")
    upload_key = tuple(sorted((key.lower(), table) for key, table in (uploads or {}).items()))
    translated = _translate(adql, schema, dialect, upload_key, max_rows)
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    parameters = {NOW_PARAMETER: BACKENDS[dialect].now_parameter(moment)}
    return TranslatedQuery(
        sql=translated.sql,
        parameters=parameters,
        columns=translated.columns,
        decoders=translated.decoders,
    )


@lru_cache(maxsize=512)
def _translate(
    adql: str,
    schema: TapSchema,
    dialect: Dialect,
    uploads: tuple[tuple[str, UploadedTable], ...],
    max_rows: int | None,
) -> TranslatedQuery:
    backend = BACKENDS[dialect]
    tree = parse_adql(adql)
    translator = Translator(adql, schema, backend, dict(uploads))
    sql, columns = translator.query(tree, None, output=True, limit=max_rows)
    text = sql.sql(dialect=backend.sql_dialect, comments=False)
    result_columns = tuple(column.meta for column in columns)
    decoders = tuple(
        _decoder(column.meta.datatype, column.meta.arraysize, column.meta.xtype, dialect)
        for column in columns
    )
    return TranslatedQuery(sql=text, columns=result_columns, decoders=decoders)


def _decoder(
    datatype: str, arraysize: str | None, xtype: str | None, dialect: str
) -> Decoder | None:
    if arraysize is None or datatype not in ("float", "double"):
        return None
    if xtype in ("point", "circle", "polygon"):
        if dialect == "sqlite":
            return _dali_text
        return _float64_array
    if dialect == "sqlite":
        return decode_float_array
    return _float32_array


def _dali_text(value: str) -> np.ndarray:
    return np.array(value.split(), dtype=np.float64)


def _float64_array(value: list[float]) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _float32_array(value: list[float]) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)
