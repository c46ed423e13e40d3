"""Where TAP queries run: a read-only session with a time limit, on SQLite or PostgreSQL.

Whatever a query says, it must never change or leak the catalogue (TAP 1.1
leaves this to the service). The translator only emits SELECTs; this module
makes the database itself refuse anything else, as a second wall:

- PostgreSQL: every query runs in a transaction made ``READ ONLY`` after the
  upload tables are filled, with ``SET LOCAL statement_timeout``;
- SQLite: the connection is switched to ``PRAGMA query_only`` and an
  authorizer that allows reading only, and a progress handler interrupts the
  statement when its time is up or the job is aborted.

Upload tables are created inside the same transaction and vanish with its
rollback, so nothing a query brings stays behind.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import sqlalchemy as sa
from psycopg.types.string import TextLoader
from sqlalchemy import event

from tap_schema import create_catalogue_engine
from tap_schema.release import utc_now
from vo_service.adql import TranslatedQuery, UploadedTable, postgres_setup, sqlite_functions
from vo_service.adql.catalog import TapSchema, TapTable
from vo_service.adql.ranked_scores import cut_statement
from vo_service.adql.similarity_scores import ScoreSource
from vo_service.cancellation import CancelToken
from vo_service.votable.columns import ResultColumn
from vo_service.votable.values import column_shape

from .errors import ExecutionError, QueryAbortedError, QueryTimeoutError
from .public_copies import PublicCopies
from .score_tables import RankedLevels, ScoreTables
from .table_upload import UploadTable

__all__ = ["QueryDatabase", "QuerySession"]

_SCHEMA_TTL_S = 30.0
_PROGRESS_STEPS = 200_000
"""SQLite steps between two checks of a query's deadline and abort (about 1-2 ms of work).

Each check takes the interpreter's lock: every 2,000 steps, a slow query
took it some 100,000 times a second, and three of them (a heavy slot and two
tries) slowed every other query of the service past its short try.
"""
# SQLite authorizer actions a read-only query may perform (sqlite.org/c3ref/c_alter_table.html)
_SQLITE_READ_ACTIONS = frozenset({20, 21, 31, 33})  # READ, SELECT, FUNCTION, RECURSIVE


class QueryDatabase:
    """The catalogue as TAP queries see it.

    Parameters
    ----------
    db_url
        SQLAlchemy URL of the catalogue (the same as ``Settings.db_url``).
    pool_size
        Connections kept open for queries.
    """

    def __init__(self, db_url: str, *, pool_size: int = 4) -> None:
        url = sa.engine.make_url(db_url)
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        options = {} if in_memory else {"pool_size": pool_size, "max_overflow": pool_size}
        self.engine = create_catalogue_engine(db_url, **options)
        self.dialect: str = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _register_sqlite_functions)
        self._schema: TapSchema | None = None
        self._schema_loaded_at = 0.0
        self._schema_lock = threading.Lock()
        self.scores: ScoreTables | None = None
        """Scores constant similarity arguments from the service's in-memory index
        (`set_score_source`); None: every call is a per-row subquery."""

    def set_score_source(self, source: ScoreSource) -> None:
        """Score ``vosim_similarity``'s constant arguments with ``source`` (the index)."""
        self.scores = ScoreTables(source)

    def prepare(self) -> None:
        """Install what the translator's SQL needs at start-up (pgsphere on PostgreSQL)."""
        if self.dialect == "postgresql":
            with self.engine.connect() as connection:
                if postgres_setup.installed(connection):
                    return  # nothing written: a read-only replica starts
            with self.engine.begin() as connection:
                postgres_setup.install(connection)

    def schema(self) -> TapSchema:
        """TAP_SCHEMA as the translator needs it, re-read at most every 30 s."""
        with self._schema_lock:
            now = time.monotonic()
            if self._schema is None or now - self._schema_loaded_at > _SCHEMA_TTL_S:
                with self.engine.connect() as connection:
                    self._schema = TapSchema.load(connection)
                self._schema_loaded_at = now
            return self._schema

    @contextmanager
    def session(
        self, *, timeout_s: float | None, cancel: CancelToken | None = None
    ) -> Iterator[QuerySession]:
        """Open a read-only query session; everything in it is rolled back at the end.

        Parameters
        ----------
        timeout_s
            Wall-clock limit of the statement and its fetches; None for none.
        cancel
            Set from another thread to stop the query (UWS abort).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self.engine.connect() as connection:
            session = QuerySession(
                connection, self.dialect, deadline, cancel or CancelToken(), self.scores
            )
            try:
                session.begin()
                yield session
            finally:
                session.close()

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()


def _register_sqlite_functions(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    sqlite_functions.register(dbapi_connection)


@dataclass
class QuerySession:
    """One transaction in which uploads are loaded and one query runs."""

    connection: sa.Connection
    dialect: str
    deadline: float | None
    cancel: CancelToken
    scores: ScoreTables | None = None
    _read_only: bool = False
    _functions: list[str] = field(default_factory=list)
    _uploads: list[str] = field(default_factory=list)
    _copies: PublicCopies | None = None

    @property
    def dbapi(self) -> object:
        """The driver's own connection (sqlite3 or psycopg)."""
        return self.connection.connection.dbapi_connection

    def begin(self) -> None:
        """Start the transaction and, on PostgreSQL, its statement timeout."""
        if self.dialect == "postgresql":
            # extra_float_digits > 0: floats as their shortest exact text (PostgreSQL 12+),
            # whatever the server's configuration says; see _floats_as_text. No JIT: a
            # plan of per-row subqueries (vosim_similarity) passes jit_above_cost and
            # compiling it took a quarter of the query's time (benchmarks/README.md). A
            # work_mem of 32 MB: the hash join of a constant-argument vosim_similarity's
            # scores with ObsCore fits in one batch at 260,000 images (4 MB took two)
            remaining = self._remaining_ms()
            self.connection.exec_driver_sql(
                f"SELECT set_config('statement_timeout', '{remaining}', true), "
                "set_config('extra_float_digits', '1', true), set_config('jit', 'off', true), "
                "set_config('work_mem', '32MB', true)"
            )
        else:
            self.connection.exec_driver_sql("SELECT 1")  # opens the transaction (BEGIN)

    def load_upload(self, upload: UploadTable) -> UploadedTable:
        """Create a temporary table holding an uploaded table, for this transaction only."""
        if self._read_only:
            raise RuntimeError("uploads must be loaded before the query runs")
        prefix = "pg_temp" if self.dialect == "postgresql" else "temp"
        table = f"tap_upload_{upload.name.lower()}"
        sql_name = f'{prefix}."{table}"'
        definitions = ", ".join(
            f"{_quote(column.name)} {_sql_type(column, self.dialect)}" for column in upload.columns
        )
        suffix = " ON COMMIT DROP" if self.dialect == "postgresql" else ""
        self.connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {_quote(table)} ({definitions}){suffix}"
        )
        self._uploads.append(sql_name)
        if upload.rows:
            keys = [f"c{index}" for index in range(len(upload.columns))]
            insert = sa.text(
                f"INSERT INTO {sql_name} VALUES ({', '.join(':' + key for key in keys)})"
            )
            self.connection.execute(
                insert, [dict(zip(keys, row, strict=True)) for row in upload.rows]
            )
        return UploadedTable(adql_name=upload.name, sql_name=sql_name, columns=upload.columns)

    def rows(
        self,
        query: TranslatedQuery,
        *,
        limit: int,
        batch_size: int = 1_000,
        now: datetime | None = None,
    ) -> Iterator[Sequence[tuple[object, ...]]]:
        """Execute a translated query read-only and yield its rows in batches.

        Parameters
        ----------
        query
            SQL from the translator (``:name`` bind parameters).
        limit
            Stop after this many rows (the service asks MAXREC + 1 to see overflow).
        batch_size
            Rows per batch.
        now
            The instant the query was translated for (naive UTC; now by default):
            the scores of its constant similarity arguments hold the images
            public then.

        Raises
        ------
        QueryTimeoutError, QueryAbortedError, ExecutionError
            When the database stops or refuses the query.
        """
        self._make_public_rows(query)
        ranked = self._make_scores(query, utc_now() if now is None else now)
        self._make_read_only()
        sql, parameters = self._driver_statement(query.sql, query.parameters)
        raw = self.dbapi
        interrupt = raw.cancel_safe if self.dialect == "postgresql" else raw.interrupt
        fetched = 0
        with self.cancel.interrupting(interrupt), self._translate_errors():
            if ranked is not None:
                found = self._ranked_rows(query, ranked, sql, parameters)
                if found is not None:
                    for start in range(0, min(len(found), limit), batch_size):
                        self._check_time()
                        yield list(query.decode(found[start : min(start + batch_size, limit)]))
                    return
            cursor = self._cursor(query)
            if self.dialect == "postgresql":
                # stream() always uses the extended query protocol, which runs one
                # statement only, and fetches in chunks whatever the result's size
                stream = cursor.stream(sql, parameters, size=batch_size)

                def fetch(count: int) -> list:
                    return list(itertools.islice(stream, count))

            else:
                stream = None
                cursor.execute(sql, parameters)  # sqlite3 runs one statement only
                fetch = cursor.fetchmany
            try:
                while fetched < limit:
                    self._check_time()
                    batch = fetch(min(batch_size, limit - fetched))
                    if not batch:
                        break
                    fetched += len(batch)
                    yield list(query.decode(batch))
            finally:
                if stream is not None:
                    # a stream left half-read holds the connection's lock: the
                    # cursor's close and the session's rollback would wait for ever
                    stream.close()
                cursor.close()

    def _ranked_rows(
        self, query: TranslatedQuery, ranked: RankedLevels, sql: str, parameters: object
    ) -> list | None:
        """Run a ranking cut to the best-scored images, level by level (`ranked_scores`).

        Return its rows as soon as a level gives the query's LIMIT of them (the
        answer is then exact); None when only the last level, every image, can
        (the caller runs the query as it is, after PostgreSQL's table got them all).
        """
        ranking = query.ranking
        assert ranking is not None
        for level in itertools.count():
            if level and self.dialect == "postgresql":
                self.scores.extend_postgres(self.dbapi, ranked, level)  # type: ignore[union-attr]
            last = ranked.is_last(level)
            if level and self.dialect == "sqlite" and ranked.completed and not last:
                ranked.completed = False  # its function had the best scores only
                self.scores.widen_sqlite(self.dbapi, ranked)  # type: ignore[union-attr]
            if last:
                if self.dialect == "sqlite":
                    self.scores.widen_sqlite(self.dbapi, ranked)  # type: ignore[union-attr]
                return None
            self._check_time()
            statement, values = sql, parameters
            if self.dialect == "sqlite":
                cut, values = self._driver_statement(ranking.cut_sql or "", query.parameters)
                statement = cut_statement(cut, ranked.dids(level))
            cursor = self._cursor(query)
            try:
                cursor.execute(statement, values)
                found = cursor.fetchall()
            finally:
                cursor.close()
            if len(found) >= ranking.rows:
                return found
        return None

    def _cursor(self, query: TranslatedQuery) -> sqlite3.Cursor | psycopg.Cursor:
        """Open a cursor of the driver's; PostgreSQL's takes floats as text where it can."""
        cursor = self.dbapi.cursor()
        if self.dialect == "postgresql" and _floats_as_text(query, self.dbapi):
            for name in ("float4", "float8"):
                cursor.adapters.register_loader(name, TextLoader)
        return cursor

    def _driver_statement(self, sql: str, parameters: Mapping[str, object]) -> tuple[str, object]:
        """Compile the translator's ``sqlalchemy.text`` SQL for the driver's own cursor.

        The driver's cursor is used directly: its rows are plain tuples, several
        times cheaper than SQLAlchemy rows for the thousands of rows of a result.
        """
        compiled = _compile(sql, self.connection.dialect)
        values = compiled.construct_params(dict(parameters))
        if compiled.positional:
            return compiled.string, tuple(values[name] for name in compiled.positiontup or ())
        return compiled.string, values

    def close(self) -> None:
        """Roll everything back (uploads included) and restore the connection.

        A transaction that made SQLite public copies (`PublicCopies`) drops
        its uploads and commits instead, so that the copies stay for the
        next queries; nothing else in it can have changed (it was read-only).
        """
        if self.dialect == "sqlite":
            raw = self.dbapi
            raw.set_progress_handler(None, 0)
            raw.set_authorizer(None)
            for name in self._functions:
                raw.create_function(name, 1, None)
            self._functions.clear()
            if self._read_only:
                raw.execute("PRAGMA query_only = 0")
        if self._copies is not None and self._copies.made_any:
            try:
                for upload in self._uploads:
                    self.connection.exec_driver_sql(f"DROP TABLE {upload}")
                self.connection.commit()
            except (sa.exc.DBAPIError, sqlite3.Error):
                self.connection.rollback()
            else:
                self._copies.committed()
                return
        self.connection.rollback()

    # -- helpers --------------------------------------------------------------------------

    def _make_public_rows(self, query: TranslatedQuery) -> None:
        """Create the public rows of the image tables the query reads, before it runs.

        `vo_service.adql.proprietary`: the query reads these copies (SQLite) or
        barrier views (PostgreSQL), never the stored tables, so none of its
        expressions is ever evaluated on a proprietary row.
        """
        if self._read_only:
            raise RuntimeError("the public rows must be made before the query runs")
        if self.dialect == "sqlite":
            self.dbapi.set_progress_handler(self._sqlite_progress, _PROGRESS_STEPS)
        with self._translate_errors():
            if self.dialect == "sqlite" and query.instant is not None:
                self._copies = self._copies or PublicCopies(self.connection)
                self._prepare_copies(self._copies, query.public_tables, query.instant)
                return
            for statement in query.setup:
                self.connection.exec_driver_sql(statement)

    def _prepare_copies(
        self, copies: PublicCopies, tables: Sequence[TapTable], instant: datetime
    ) -> None:
        """Check or make SQLite's public copies, outside the query's time limit.

        A copy is the service's own work, made once per connection until the
        catalogue or the release dates change, and shared by the queries
        after it: its time (about a second for 200,000 neighbour rows) is not
        the query's, and counting it would fail the short try of a heavy query
        (`vo_service.tap.sync`) on every fresh connection, and throw the copy
        away with it. The deadline moves by the time it took; an abort still
        stops it.
        """
        started = time.monotonic()
        deadline, self.deadline = self.deadline, None
        try:
            copies.prepare(tables, instant)
        finally:
            if deadline is not None:
                self.deadline = deadline + (time.monotonic() - started)

    def _make_scores(self, query: TranslatedQuery, now: datetime) -> RankedLevels | None:
        """Make the scores of the query's constant similarity arguments (`score_tables`).

        Return the levels of the scores the query ranks by, if it does and
        they can be cut (`vo_service.adql.ranked_scores`).
        """
        if not query.scores:
            return None
        if self.scores is None:
            raise RuntimeError("the query was translated for scores this database cannot make")
        with self._translate_errors():
            found = self.scores.public_scores(self.connection, query.scores, now, query.ranking)
            ranked = self._levels(query, found)
            if ranked is None:  # not cut: every image's score, even of a ranking
                found = [[scores.completed() for scores in kinds] for kinds in found]
            if self.dialect == "sqlite":
                self._functions = self.scores.register_sqlite(
                    self.dbapi, query.scores, found, ranked
                )
            else:
                self.scores.fill_postgres(self.dbapi, query.scores, found, ranked)
        return ranked

    @staticmethod
    def _levels(query: TranslatedQuery, found: list) -> RankedLevels | None:
        if query.ranking is None:
            return None
        slots = [request.slot for request in query.scores]
        ranked = RankedLevels(query.ranking, found[slots.index(query.ranking.slot)])
        return None if ranked.is_last(0) else ranked

    def _make_read_only(self) -> None:
        if self._read_only:
            return
        if self.dialect == "postgresql":
            self.connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            # a first snapshot: from now on not even SET TRANSACTION READ WRITE is allowed
            self.connection.exec_driver_sql("SELECT 1")
        else:
            raw = self.dbapi
            raw.execute("PRAGMA query_only = 1")
            raw.set_authorizer(_sqlite_read_only)
            raw.set_progress_handler(self._sqlite_progress, _PROGRESS_STEPS)
        self._read_only = True

    def _sqlite_progress(self) -> int:
        """Tell SQLite, every few thousand steps, whether to interrupt the statement (nonzero)."""
        if self.cancel.cancelled:
            return 1
        return 1 if self.deadline is not None and time.monotonic() > self.deadline else 0

    def _remaining_ms(self) -> int:
        if self.deadline is None:
            return 0  # PostgreSQL: no limit
        return max(1, int((self.deadline - time.monotonic()) * 1000))

    def _check_time(self) -> None:
        if self.cancel.cancelled:
            raise QueryAbortedError("the query was aborted")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryTimeoutError(self._timeout_message())

    def _timeout_message(self) -> str:
        return (
            "the query ran longer than the execution time it was allowed and was stopped; "
            "make it more selective, or run it as an async job with a longer executionduration"
        )

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except (sa.exc.DBAPIError, sqlite3.Error, psycopg.Error) as error:
            if self.cancel.cancelled:
                raise QueryAbortedError("the query was aborted") from error
            original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
            if _is_interruption(original):
                raise QueryTimeoutError(self._timeout_message()) from error
            raise ExecutionError(
                f"the database could not run the query: {_message(original)}"
            ) from error


def _floats_as_text(query: TranslatedQuery, connection: psycopg.Connection) -> bool:
    """Whether to take PostgreSQL's text of ``real`` and ``double precision`` values as is.

    Since PostgreSQL 12, with ``extra_float_digits`` above 0 (`QuerySession.begin`
    sets it), the server writes a float as the shortest text that reads back as
    the same value (its ``float8out``, in C); that text is what TABLEDATA and
    CSV need, so parsing it into a Python float only for `repr` to write it
    again would cost two conversions per value (most of a large result's
    time). The other writers convert the text with ``float()``. Float arrays
    (vectors, geometry) are read through the same loaders, and are wanted as
    numbers: a result with one keeps the driver's floats.
    """
    if connection.info.server_version < 120000:
        return False
    return not any(column_shape(column).kind == "array" for column in query.columns)


@functools.lru_cache(maxsize=512)
def _compile(sql: str, dialect: sa.Dialect) -> sa.Compiled:
    """Compile ``sqlalchemy.text`` once per SQL text (the translator repeats it for a query)."""
    return sa.text(sql).compile(dialect=dialect)


def _sqlite_read_only(action: int, *_args: object) -> int:
    return sqlite3.SQLITE_OK if action in _SQLITE_READ_ACTIONS else sqlite3.SQLITE_DENY


def _is_interruption(error: BaseException | None) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        return "interrupted" in str(error)
    return type(error).__name__ == "QueryCanceled"


def _message(error: BaseException | None) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or str(error).strip().splitlines()[0]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_PG_TYPES = {
    "boolean": "BOOLEAN",
    "unsignedByte": "SMALLINT",
    "short": "SMALLINT",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE PRECISION",
}


def _sql_type(column: ResultColumn, dialect: str) -> str:
    """Database type of an uploaded column (TAP 1.1 section 5.5: keep timestamps as timestamps)."""
    is_array = bool(column.arraysize) and column.datatype not in ("char", "unicodeChar")
    if column.datatype in ("char", "unicodeChar") or is_array:
        if (column.xtype or "").lower() == "timestamp" and dialect == "postgresql":
            return "TIMESTAMP"
        return "TEXT"
    if dialect == "postgresql":
        return _PG_TYPES.get(column.datatype, "DOUBLE PRECISION")
    return (
        "INTEGER"
        if column.datatype in ("boolean", "unsignedByte", "short", "int", "long")
        else "REAL"
    )
