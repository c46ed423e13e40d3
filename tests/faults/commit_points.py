"""Kill a process at its n-th commit point, counted over all its threads and engines.

strace counts a syscall's calls per thread (``inject=…:when=N`` fires at a
thread's N-th call), which numbers the points of a single-threaded stage
but not those of a server, whose request and job threads each commit; and
a PostgreSQL client's messages vary in number from run to run (pipelined
flushes), so "the call after the COMMIT" has no fixed number either. This
hook counts in the process itself, in the order the points happen: just
before and just after each commit of a transaction that wrote (any
engine), and just before and after each rename of a finished file over its
name (``os.replace``, which ``Path.replace`` calls). At the chosen point it
SIGKILLs the whole process, as a crash would: before a commit the database
rolls the transaction back, after it the commit stands. Install it only in
a forked child: it patches SQLAlchemy's classes and the ``os`` module.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine.default import DefaultDialect

from tests.faults.strace_faults import fork_and_wait

__all__ = ["CommitPoints", "kill_at_point"]

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "TRUNCATE", "CREATE", "DROP", "ALTER")


class CommitPoints:
    """Count the commit points of this process; SIGKILL it on point ``kill_at`` (1 = first).

    Parameters
    ----------
    kill_at
        The point to die at; None to only count them (`count`).
    """

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.count = 0
        self._lock = threading.Lock()
        self._writing: set[int] = set()
        """The DBAPI connections whose open transaction has sent a write statement."""

    def point(self) -> None:
        """One more point passed: die here if it is the chosen one."""
        with self._lock:
            self.count += 1
            if self.count == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def install(self, *, renames: bool = True) -> None:
        """Count around every writing commit of every engine, and around every rename."""
        commit, rollback = DefaultDialect.do_commit, DefaultDialect.do_rollback

        def do_commit(dialect: DefaultDialect, connection: Any) -> None:
            wrote = self._wrote(connection)
            if wrote:
                self.point()
            commit(dialect, connection)
            if wrote:
                self.point()

        def do_rollback(dialect: DefaultDialect, connection: Any) -> None:
            self._forget(connection)
            rollback(dialect, connection)

        event.listen(Engine, "before_cursor_execute", self._note_write)
        DefaultDialect.do_commit = do_commit  # type: ignore[method-assign]
        DefaultDialect.do_rollback = do_rollback  # type: ignore[method-assign]
        if renames:  # Path.replace calls os.replace
            os.replace = self._around(os.replace)  # type: ignore[assignment]

    def _note_write(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[:8].upper().startswith(_WRITES):
            with self._lock:
                self._writing.add(id(conn.connection.dbapi_connection))

    def _wrote(self, connection: Any) -> bool:
        """Whether the transaction about to commit on this (pooled) connection wrote.

        PostgreSQL says so itself (a transaction id is assigned at its first
        write, COPY included); elsewhere, whether it sent a write statement.
        """
        raw = getattr(connection, "dbapi_connection", connection)
        noted = self._forget(connection)
        if isinstance(raw, psycopg.Connection):
            with raw.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id_if_assigned()")
                row = cursor.fetchone()
            return row is not None and row[0] is not None
        return noted

    def _forget(self, connection: Any) -> bool:
        """End the transaction's note: whether it had sent a write statement."""
        key = id(getattr(connection, "dbapi_connection", connection))
        with self._lock:
            noted = key in self._writing
            self._writing.discard(key)
        return noted

    def _around(self, rename: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.point()
            result = rename(*args, **kwargs)
            self.point()
            return result

        return counted


def kill_at_point(target: Callable[[], object], when: int, *, renames: bool = True) -> int | None:
    """Run ``target`` in a forked child, SIGKILLed at its ``when``-th point (1 = first).

    Returns
    -------
    int or None
        ``signal.SIGKILL`` when the point was reached, None when ``target``
        returned before it (every point of the run was passed).
    """

    def killed() -> None:
        CommitPoints(when).install(renames=renames)
        target()

    return fork_and_wait(killed)
