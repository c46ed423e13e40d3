"""Throw-away PostgreSQL databases for tests: created empty, dropped with everything in them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

__all__ = ["fresh_database", "sessions_ended"]


@contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create an empty database named ``{prefix}_{random}`` and yield its URL; drop it after.

    ``WITH (FORCE)`` ends connections a failed test left open, so a failure
    never leaves a database behind to collide with the next run.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sessions_ended(url: str, seconds: float = 30) -> None:
    """Wait until every other session of the database of ``url`` is idle, outside a transaction.

    A client killed right after sending COMMIT leaves its server process to
    read and finish that commit: what the killed run wrote is known only
    once its session has ended (idle pooled connections of the test count
    as ended).
    """
    engine = sa.create_engine(url)
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND coalesce(state, '') <> 'idle'"
    )
    deadline = time.monotonic() + seconds
    try:
        while True:
            with engine.connect() as conn:
                if conn.execute(query).scalar() == 0:
                    return
            assert time.monotonic() < deadline, (
                f"sessions still connected to {url} after {seconds} s"
            )
            time.sleep(0.02)
    finally:
        engine.dispose()
