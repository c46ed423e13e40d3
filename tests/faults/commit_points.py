"""Kill a multi-threaded process at its n-th commit point, counted over all its threads.

strace counts a syscall's calls per thread (``inject=…:when=N`` fires at a
thread's N-th call), which numbers the points of a single-threaded stage
but not those of a server, whose request and job threads each commit. This
hook counts in the process itself, in the order the points happen: just
before and just after each commit that wrote something (SQLite, on one
engine), and just before and after each rename of a finished file over its
name (``os.replace``, ``Path.replace``). At the chosen point it SIGKILLs
the whole process, as a crash would. Install it only in a forked child.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

__all__ = ["CommitPoints"]


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
        self._changes: dict[int, int] = {}

    def point(self) -> None:
        """One more point passed: die here if it is the chosen one."""
        with self._lock:
            self.count += 1
            if self.count == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def install(self, engine: Engine) -> None:
        """Count around the writing commits of ``engine`` and around every rename over a file."""
        dialect = engine.dialect
        commit = dialect.do_commit

        def do_commit(dbapi_connection: sqlite3.Connection) -> None:
            wrote = self._wrote(dbapi_connection)
            if wrote:
                self.point()
            commit(dbapi_connection)
            if wrote:
                self.point()

        dialect.do_commit = do_commit  # type: ignore[method-assign]
        os.replace = self._around(os.replace)  # type: ignore[assignment]
        Path.replace = self._around(Path.replace)  # type: ignore[method-assign]

    def _wrote(self, dbapi_connection: Any) -> bool:
        """Whether the connection changed rows since its last commit seen here."""
        changes = dbapi_connection.total_changes
        with self._lock:
            wrote = changes != self._changes.get(id(dbapi_connection), 0)
            self._changes[id(dbapi_connection)] = changes
        return wrote

    def _around(self, rename: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.point()
            result = rename(*args, **kwargs)
            self.point()
            return result

        return counted
