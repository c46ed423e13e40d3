"""Throw-away PostgreSQL databases for tests: created empty, dropped with everything in them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

__all__ = ["fresh_database"]


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
