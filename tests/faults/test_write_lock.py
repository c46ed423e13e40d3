"""A writer beside other writers on SQLite: it waits for a schema file, boundedly and logged.

`Catalogue.begin_writing` takes the write lock of the files a transaction
writes before it reads them, so a commit by another connection in between
(a UWS job every second) can no longer refuse its write. The busy timeout
is shortened here so that the waits are short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

import tap_schema.database as database
from tap_schema import Catalogue, Settings, WriteLockTimeoutError, open_catalogue


@pytest.fixture
def catalogue(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalogue]:
    monkeypatch.setattr(database, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    opened = open_catalogue(sqlite_settings)
    yield opened
    opened.dispose()


def _setting(conn: sa.Connection, name: str, value: str) -> None:
    conn.execute(
        sa.text("INSERT OR REPLACE INTO vosim.setting (name, value) VALUES (:name, :value)"),
        {"name": name, "value": value},
    )


def test_a_writer_waits_for_another_writer_then_writes(
    catalogue: Catalogue, caplog: pytest.LogCaptureFixture
) -> None:
    holder = catalogue.engine.connect()
    holder.begin()
    _setting(holder, "held", "yes")  # the other writer holds vosim's file
    release = threading.Timer(0.5, holder.commit)
    release.start()
    with caplog.at_level(logging.WARNING), catalogue.begin_writing(("vosim",)) as conn:
        _setting(conn, "after", "yes")
    release.join()
    holder.close()
    assert "another writer has held its database file" in caplog.text
    with catalogue.begin() as conn:
        values = dict(conn.execute(sa.text("SELECT name, value FROM vosim.setting")).all())
    assert values["held"] == values["after"] == "yes"


def test_a_writer_gives_up_after_its_bounded_wait(
    catalogue: Catalogue, caplog: pytest.LogCaptureFixture
) -> None:
    holder = catalogue.engine.connect()
    holder.begin()
    _setting(holder, "held", "forever")
    try:
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(WriteLockTimeoutError, match="schema vosim: another writer held"),
            catalogue.begin_writing(("vosim",)),
        ):
            pass
    finally:
        holder.rollback()
        holder.close()
    assert caplog.text.count("waiting again") == database._WRITE_LOCK_WAITS - 1


def test_a_reader_beside_the_writer_is_never_blocked(catalogue: Catalogue) -> None:
    with catalogue.begin_writing(("vosim",)) as conn:
        _setting(conn, "pending", "yes")
        with catalogue.engine.connect() as reader:
            names = reader.execute(sa.text("SELECT name FROM vosim.setting")).scalars().all()
    assert "pending" not in names


def test_a_file_read_first_is_refused_at_once_not_waited_for(catalogue: Catalogue) -> None:
    """Why the lock is taken first: a snapshot older than another commit cannot write."""
    with catalogue.begin() as conn:
        conn.execute(sa.text("SELECT COUNT(*) FROM vosim.setting")).scalar()
        with catalogue.begin() as other:
            _setting(other, "meanwhile", "yes")
        with pytest.raises(OperationalError, match="database is locked"):
            catalogue.lock_for_writing(conn, ("vosim",))
