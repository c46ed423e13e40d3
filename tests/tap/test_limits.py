"""Limits and safety: statement timeout, read-only execution, nothing left behind."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tap_schema import Settings, open_catalogue
from vo_service.adql import TranslatedQuery
from vo_service.tap.errors import ExecutionError
from vo_service.tap.query_database import QueryDatabase

from . import catalogue as small
from .helpers import query_status, sync, votable
from .server import RunningServer
from .test_uws import SLOW


def test_sync_statement_timeout(new_server) -> None:
    with new_server(sync_duration_s=0.5) as server:
        started = time.monotonic()
        response = sync(server.tap_url, SLOW)
        assert time.monotonic() - started < 10
        assert response.status_code == 400
        [(status, message)] = query_status(response.content)
        assert status == "ERROR" and "longer" in message
        # the interrupted connection went back to the pool in working order
        response = sync(server.tap_url, "SELECT COUNT(*) AS n FROM ivoa.obscore")
        assert int(votable(response.content).get_first_table().array["n"][0]) == 8


def _count(catalogue, table: str) -> int:
    with catalogue.begin() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(catalogue.table(table))).scalar()


def test_writing_adql_is_refused_and_changes_nothing(tap_server: RunningServer) -> None:
    for text in (
        "DELETE FROM ivoa.obscore",
        "DROP TABLE ivoa.obscore",
        "SELECT obs_id FROM ivoa.obscore; DELETE FROM ivoa.obscore",
        "INSERT INTO similarity.model (model_id) VALUES (99)",
        "SELECT * FROM vosim.uws_job",
    ):
        response = sync(tap_server.tap_url, text)
        assert response.status_code == 400, text
    assert _count(tap_server.catalogue, "ivoa.obscore") == 8
    assert _count(tap_server.catalogue, "similarity.model") == 2


WRITES = {
    "sqlite": [
        "DELETE FROM ivoa.obscore",
        "DROP TABLE ivoa.obscore",
        "INSERT INTO similarity.model (model_id, model_name, image_kind) VALUES (9, 'x', 'y')",
        "CREATE TABLE main.sneaky (a INTEGER)",
        "PRAGMA query_only = 0",
        "ATTACH DATABASE '/tmp/vosim-sneaky.sqlite' AS sneaky",
        "UPDATE ivoa.obscore SET target_name = 'x'",
    ],
    "postgresql": [
        "DELETE FROM ivoa.obscore",
        "DROP TABLE ivoa.obscore",
        "INSERT INTO similarity.model (model_id, model_name, image_kind) VALUES (9, 'x', 'y')",
        "CREATE TABLE public.sneaky (a INTEGER)",
        "SET TRANSACTION READ WRITE",
        "UPDATE ivoa.obscore SET target_name = 'x'",
    ],
}


def test_the_database_itself_refuses_writes(any_settings: Settings) -> None:
    """Even SQL that a translator bug let through cannot change the catalogue."""
    catalogue = open_catalogue(any_settings)
    small.fill(catalogue)
    database = QueryDatabase(any_settings.db_url, pool_size=1)
    database.prepare()
    try:
        for sql in WRITES[database.dialect]:
            with database.session(timeout_s=10) as session, pytest.raises(ExecutionError):
                list(session.rows(TranslatedQuery(sql=sql), limit=10))
        with database.session(timeout_s=10) as session:  # the same pooled connection, still fine
            rows = list(
                session.rows(TranslatedQuery(sql="SELECT COUNT(*) FROM ivoa.obscore"), limit=1)
            )
            assert rows == [[(8,)]]
    finally:
        database.dispose()
    assert _count(catalogue, "ivoa.obscore") == 8
    assert _count(catalogue, "similarity.model") == 2
    schema = "main" if catalogue.dialect == "sqlite" else "public"
    assert "sneaky" not in sa.inspect(catalogue.engine).get_table_names(schema=schema)
