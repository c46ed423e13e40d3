"""Whether the service can write: a full disk or a read-only data folder, told, not hidden.

Sync queries only read, so they go on whatever the storage does. Async jobs
write (their row in the catalogue, their folder and result): when the
storage refuses, the request that tried gets a DALI error document with
503, and VOSI availability says that async jobs are refused and why, until
a write succeeds again. The reasons name the condition, never a path of
the server.
"""

from __future__ import annotations

import errno
import sqlite3
import threading

import psycopg
import sqlalchemy as sa

__all__ = ["FULL", "READ_ONLY", "WriteHealth", "write_failure"]

FULL = "the disk of the service's data is full"
"""The reason given when the storage has no room left."""
READ_ONLY = "the service's data folder or database is read-only"
"""The reason given when the storage may not be written."""
_OS_REASONS = {
    errno.ENOSPC: FULL,
    errno.EDQUOT: FULL,
    errno.EROFS: READ_ONLY,
    errno.EACCES: READ_ONLY,
    errno.EPERM: READ_ONLY,
}
_SQLITE_REASONS = (
    ("disk is full", FULL),
    ("readonly database", READ_ONLY),
    ("unable to open database file", READ_ONLY),
    ("read-only", READ_ONLY),
)
_POSTGRES_REASONS = {
    "53100": FULL,  # disk_full
    "25006": READ_ONLY,  # read_only_sql_transaction
}


def write_failure(error: BaseException) -> str | None:
    """Why a write failed when the storage refused it (full, read-only); None for other errors."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = _reason(current)
        if reason is not None:
            return reason
        if isinstance(current, sa.exc.DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__ or current.__context__
    return None


def _reason(error: BaseException) -> str | None:
    if isinstance(error, OSError) and error.errno in _OS_REASONS:
        return _OS_REASONS[error.errno]
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return next((reason for text, reason in _SQLITE_REASONS if text in message), None)
    if isinstance(error, psycopg.Error):
        return _POSTGRES_REASONS.get(error.sqlstate or "")
    return None


class WriteHealth:
    """The last refused write of the service, until one succeeds again (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failure: str | None = None

    @property
    def failure(self) -> str | None:
        """Why writes fail now, or None when the last one succeeded."""
        with self._lock:
            return self._failure

    def failed(self, reason: str) -> None:
        """Record that a write was refused, and why."""
        with self._lock:
            self._failure = reason

    def succeeded(self) -> None:
        """Record that a write went through: the storage takes writes again."""
        with self._lock:
            self._failure = None
