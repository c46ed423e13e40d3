"""Kill a multi-threaded process at its n-th commit point, counted over all its threads.

strace counts a syscall's calls per thread (``inject=…:when=N`` fires at a
thread's N-th call), which numbers the points of a single-threaded stage
but not those of a server, whose request and job threads each commit. This
hook counts in the process itself, in the order the points happen: just
before and just after each commit of a transaction that sent a write (on
one engine), and just before and after each rename of a finished file over
its name (``os.replace``, ``Path.replace``). At the chosen point it
SIGKILLs the whole process, as a crash would. Install it only in a forked
child.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

__all__ = ["CommitPoints"]

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


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

    def install(self, engine: Engine, *, renames: bool = True) -> None:
        """Count around the writing commits of ``engine``, and around every rename over a file."""
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(connection: Any) -> None:
            wrote = self._ended(connection)
            if wrote:
                self.point()
            commit(connection)
            if wrote:
                self.point()

        def do_rollback(connection: Any) -> None:
            self._ended(connection)
            rollback(connection)

        event.listen(engine, "before_cursor_execute", self._note_write)
        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]
        if renames:
            os.replace = self._around(os.replace)  # type: ignore[assignment]
            Path.replace = self._around(Path.replace)  # type: ignore[method-assign]

    def _note_write(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[:7].upper().startswith(_WRITES):
            with self._lock:
                self._writing.add(id(conn.connection.dbapi_connection))

    def _ended(self, connection: Any) -> bool:
        """Whether the transaction ending on this (pooled) connection sent a write statement."""
        key = id(getattr(connection, "dbapi_connection", connection))
        with self._lock:
            wrote = key in self._writing
            self._writing.discard(key)
        return wrote

    def _around(self, rename: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.point()
            result = rename(*args, **kwargs)
            self.point()
            return result

        return counted
