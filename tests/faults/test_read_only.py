"""Read-only data and a full disk: sync queries go on, async jobs are refused and say why.

A read-only folder is simulated by having `folder_writable` answer no (the
tests may run as a user who can write anywhere); the catalogue is then
opened read-only for real, so SQLite itself refuses the job's row. A full
disk is the error SQLite or the system raises at the write, injected.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event, select

from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.database import create_catalogue_engine
from tests.tap import catalogue as small
from tests.tap.helpers import query_status, votable
from tests.tap.server import RunningServer, running_server
from vo_service.cli import main
from vo_service.tap.query_database import QueryDatabase

COUNT = {"LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM ivoa.obscore", "RESPONSEFORMAT": "csv"}
JOB = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}
VOTABLE = "application/x-votable+xml"


def test_opening_an_unchanged_catalogue_writes_nothing(sqlite_settings: Settings) -> None:
    """A read-only replica (here: every connection query-only) opens, and TAP_SCHEMA is kept."""
    open_catalogue(sqlite_settings).dispose()
    engine = create_catalogue_engine(sqlite_settings.db_url)
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only = ON"))
    catalogue = Catalogue(engine)
    try:
        catalogue.create_all()
        with catalogue.begin() as conn:
            names = conn.execute(select(catalogue.tap_schema["schemas"].c.schema_name)).scalars()
            assert {"ivoa", "similarity"} <= set(names)
    finally:
        catalogue.dispose()


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_mtime_ns, path.stat().st_size) for path in folder.iterdir()}


def _availability(server: RunningServer) -> str:
    return httpx.get(f"{server.tap_url}/availability").text


def _refused(response: httpx.Response, reason: str) -> None:
    """A 503 with a DALI error document that says why."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(VOTABLE)
    [(status, message)] = query_status(response.content)
    assert status == "ERROR" and reason in message and "/tap/sync" in message
    votable(response.content)


@pytest.fixture
def filled(sqlite_settings: Settings) -> Iterator[Settings]:
    catalogue = open_catalogue(sqlite_settings)
    small.fill(catalogue)
    catalogue.dispose()
    sqlite_settings.job_dir.mkdir(parents=True, exist_ok=True)
    yield sqlite_settings


def test_a_read_only_folder_is_served_and_nothing_is_written(
    filled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _files(filled.data_dir)
    monkeypatch.setattr("tap_schema.database.folder_writable", lambda folder: False)
    monkeypatch.setattr("vo_service.uws.service.folder_writable", lambda folder: False)
    with running_server(filled) as server:
        answer = httpx.get(f"{server.tap_url}/sync", params=COUNT)
        assert answer.status_code == 200 and answer.text.split() == ["n", "8"]
        available = _availability(server)
        assert "<vosi:available>true</vosi:available>" in available
        assert "async jobs are refused" in available and "read-only" in available
        _refused(httpx.post(f"{server.tap_url}/async", data=JOB), "read-only")
    assert _files(filled.data_dir) == before  # no WAL, no shared memory, no job


def _disk_full(*args: object) -> None:
    raise sa.exc.OperationalError(
        "INSERT INTO vosim.uws_job", {}, sqlite3.OperationalError("database or disk is full")
    )


def _no_space(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("refuse", [_disk_full, _no_space], ids=["sqlite", "system"])
def test_a_full_disk_refuses_jobs_until_writes_succeed_again(
    filled: Settings, monkeypatch: pytest.MonkeyPatch, refuse
) -> None:
    with running_server(filled) as server:
        store = server.app.state.tap.jobs.store
        with monkeypatch.context() as full:
            full.setattr(store, "add", refuse)
            _refused(httpx.post(f"{server.tap_url}/async", data=JOB), "disk")
            available = _availability(server)
            assert "async jobs are refused" in available and "full" in available
            assert httpx.get(f"{server.tap_url}/sync", params=COUNT).status_code == 200
        created = httpx.post(f"{server.tap_url}/async", data=JOB)  # room again
        assert created.status_code == 303
        assert "the service is accepting queries" in _availability(server)


class _FullFile(io.RawIOBase):
    """A file on a full disk: opened, but every write refused (ENOSPC)."""

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _results_on_a_full_disk(real_open):
    def opened(path: Path, mode: str = "r", *args: object, **kwargs: object):
        if path.name == "result.part":
            return _FullFile()
        return real_open(path, mode, *args, **kwargs)

    return opened


def _job_phase(server: RunningServer, job_url: str) -> str:
    deadline = time.monotonic() + 30
    while (phase := httpx.get(f"{job_url}/phase").text) not in ("COMPLETED", "ERROR"):
        assert time.monotonic() < deadline, phase
        time.sleep(0.02)
    return phase


def test_a_job_whose_result_fills_the_disk_says_so_and_so_does_availability(
    filled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = {**JOB, "PHASE": "RUN"}
    with running_server(filled) as server:
        with monkeypatch.context() as full:
            full.setattr(Path, "open", _results_on_a_full_disk(Path.open))
            job_url = httpx.post(f"{server.tap_url}/async", data=run).headers["location"]
            assert _job_phase(server, job_url) == "ERROR"
            error = httpx.get(f"{job_url}/error").text
            assert "could not be written" in error and "full" in error
            available = _availability(server)
            assert "<vosi:available>true</vosi:available>" in available
            assert "async jobs are refused" in available and "full" in available
            assert httpx.get(f"{server.tap_url}/sync", params=COUNT).status_code == 200
        job_url = httpx.post(f"{server.tap_url}/async", data=run).headers["location"]  # room
        assert _job_phase(server, job_url) == "COMPLETED"
        assert "the service is accepting queries" in _availability(server)
        assert not list(filled.job_dir.rglob("*.part"))


def test_an_unexpected_failure_of_a_job_request_is_a_dali_document(
    filled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(filled) as server:
        monkeypatch.setattr(server.app.state.tap.jobs.store, "add", _broken)
        response = httpx.post(f"{server.tap_url}/async", data=JOB)
        assert response.status_code == 500
        assert response.headers["content-type"].startswith(VOTABLE)
        [(status, message)] = query_status(response.content)
        assert status == "ERROR" and "internal error" in message
        assert "the service is accepting queries" in _availability(server)


def _broken(*args: object) -> None:
    raise RuntimeError("a bug")


def test_serve_says_why_the_catalogue_cannot_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """No catalogue yet in a read-only folder: one clear message and status 1, no traceback."""
    monkeypatch.setenv("VOSIM_DATA_DIR", str(tmp_path / "read-only"))
    monkeypatch.setattr("vo_service.server.create_app", _read_only_open)
    assert main(["serve", "--port", "0"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("vosim serve: error: the catalogue") and "read-only" in error
    assert "Traceback" not in error


def _read_only_open(*args: object, **kwargs: object) -> None:
    raise sa.exc.OperationalError(
        "ATTACH DATABASE", {}, sqlite3.OperationalError("unable to open database file")
    )


def test_a_read_only_postgresql_catalogue_starts(pg_settings: Settings) -> None:
    """Once installed, a role or replica that may not write opens it and prepares its queries."""
    open_catalogue(pg_settings).dispose()
    QueryDatabase(pg_settings.db_url, pool_size=1).prepare()  # the helpers, installed once
    read_only = (
        sa.engine.make_url(pg_settings.db_url)
        .update_query_dict({"options": "-c default_transaction_read_only=on"})
        .render_as_string(hide_password=False)
    )
    open_catalogue(pg_settings.with_changes(db_url=read_only)).dispose()
    database = QueryDatabase(read_only, pool_size=1)
    try:
        database.prepare()
    finally:
        database.dispose()
