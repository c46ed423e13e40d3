"""Running translated ADQL against a test archive and comparing results across backends."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import sqlalchemy as sa

from vo_service.adql import TranslatedQuery, UploadedTable, translate_adql

from .conftest import NOW, Archive


def translate(archive: Archive, adql: str, **options: object) -> TranslatedQuery:
    options.setdefault("now", NOW)
    return translate_adql(adql, schema=archive.schema, dialect=archive.dialect, **options)


def run(
    archive: Archive,
    adql: str,
    uploads: Mapping[str, UploadedTable] | None = None,
    setup: str | None = None,
    **options: object,
) -> tuple[TranslatedQuery, list[tuple]]:
    query = translate(archive, adql, uploads=uploads, **options)
    with archive.connect() as conn:
        if setup:
            for statement in setup.split(";"):
                conn.exec_driver_sql(statement)
        for statement in query.setup:
            conn.exec_driver_sql(statement)
        rows = list(query.decode(conn.execute(sa.text(query.sql), dict(query.parameters))))
        conn.rollback()
    return query, rows


def comparable(value: object) -> object:
    """Floats to 9 significant digits, arrays to tuples of those: backends differ in last bits."""
    if isinstance(value, np.ndarray):
        return tuple(comparable(float(v)) for v in value)
    if isinstance(value, float):
        if value == 0 or math.isnan(value):
            return value
        return float(f"{value:.9g}")
    return value


def normalised(rows: list[tuple], ordered: bool) -> list[tuple]:
    result = [tuple(comparable(v) for v in row) for row in rows]
    return result if ordered else sorted(result, key=repr)
