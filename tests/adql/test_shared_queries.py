"""The same ADQL gives the same rows on SQLite and on PostgreSQL (pgsphere)."""

from __future__ import annotations

import pytest

from vo_service.adql import UploadedTable
from vo_service.votable.columns import ResultColumn

from .conftest import Archive, did
from .helpers import normalised, run
from .shared_queries import SHARED_QUERIES

_UPLOAD_COLUMNS = (
    ResultColumn(name="name", datatype="char", arraysize="*"),
    ResultColumn(name="did", datatype="char", arraysize="*"),
)


def _upload_setup(archive: Archive) -> tuple[dict[str, UploadedTable], str]:
    rows = ", ".join(
        f"('{name}', '{did(n)}')" for name, n in (("first", 1), ("secret", 6), ("x", 4))
    )
    temporary = "TEMPORARY TABLE" if archive.dialect == "postgresql" else "TEMP TABLE"
    setup = (
        f'CREATE {temporary} "upload_targets" (name TEXT, did TEXT);'
        f'INSERT INTO "upload_targets" VALUES {rows}'
    )
    sql_name = '"upload_targets"' if archive.dialect == "postgresql" else 'temp."upload_targets"'
    return {"targets": UploadedTable("targets", sql_name, _UPLOAD_COLUMNS)}, setup


def _results(archive: Archive, adql: str) -> tuple[list[ResultColumn], list[tuple]]:
    uploads, setup = _upload_setup(archive) if "TAP_UPLOAD" in adql else (None, None)
    query, rows = run(archive, adql, uploads=uploads, setup=setup)
    return list(query.columns), rows


@pytest.mark.parametrize(
    ("adql", "ordered", "expected_rows"),
    [pytest.param(adql, ordered, count, id=name) for name, adql, ordered, count in SHARED_QUERIES],
)
def test_backends_agree(
    sqlite_archive: Archive,
    pg_archive: Archive,
    adql: str,
    ordered: bool,
    expected_rows: int | None,
) -> None:
    sqlite_columns, sqlite_rows = _results(sqlite_archive, adql)
    pg_columns, pg_rows = _results(pg_archive, adql)
    assert sqlite_columns == pg_columns
    assert normalised(sqlite_rows, ordered) == normalised(pg_rows, ordered)
    if expected_rows is not None:
        assert len(sqlite_rows) == expected_rows
    assert sqlite_rows, "a shared query should return rows, or it tests nothing"


def test_there_are_enough_shared_queries() -> None:
    assert len(SHARED_QUERIES) >= 40
