"""Open the catalogue database and create its tables from the Felis files.

One code path for SQLite and PostgreSQL. PostgreSQL has schemas, so
``ivoa.obscore`` is simply a table in schema ``ivoa``. SQLite has none; each
schema becomes a database file ATTACHed under the schema's name to every
connection, so that the very same SQL (``SELECT … FROM ivoa.obscore``) works
on both backends and the ADQL translator needs no table renaming.

In WAL mode SQLite commits a transaction over several attached files one
file after the other, in the order they were attached, each fsynced before
the next (``synchronous = FULL``); it is atomic per file, not across them.
A crash inside a commit therefore leaves a prefix of `ALL_SCHEMAS`
committed. The order puts the bookkeeping schema ``vosim`` after the data
schemas, so bookkeeping never records work whose rows are missing, and each
stage repairs what a torn commit left on its next run (ingest:
``ProductCatalogue.remove_uncommitted``). Where rows alone cannot tell, a
stage stamps its commit in every file it writes (`Catalogue.stamp_commit`)
and its next run compares the stamps (`Catalogue.torn_commit`). WAL is kept because a rollback
journal, atomic across files, would block every reader during each commit
and every commit behind the longest-running query. PostgreSQL commits all
schemas atomically.

A catalogue in a folder this process may not write (a read-only replica,
read-only media) is opened read-only and immutable: SQLite then takes no
locks and makes no WAL or shared-memory files, which it could not create
there; whatever changes the files must restart the service.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from felis.datamodel import Schema
from felis.metadata import MetaDataBuilder
from felis.tap_schema import DataLoader, TableManager
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from .config import Settings
from .felis_files import (
    INTERNAL_SCHEMAS,
    PUBLISHED_SCHEMAS,
    TAP_SCHEMA_NAME,
    load_schema,
)
from .registration import delete_tap_schema_rows
from .sqltypes import FloatArray

__all__ = ["Catalogue", "CatalogueUpgradeError", "WriteLockTimeoutError", "open_catalogue"]

ALL_SCHEMAS: tuple[str, ...] = ("ivoa", "similarity", "vosim", TAP_SCHEMA_NAME)
"""Every schema, in the order SQLite attaches (and so commits) them: data, bookkeeping, TAP."""
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_LOCK_WAITS = 4
"""Busy timeouts a writer waits in all for a schema file's write lock, each one logged."""
_TAP_SCHEMA_DIGEST = "tap_schema_digest"
"""``vosim.setting`` row: digest of the TAP_SCHEMA rows last written."""
_STAMP_TABLE = "vosim_commit_stamp"
"""On SQLite, a table in each schema file (not in any Felis file, so never published)
holding the last token each stamping commit wrote into that file."""

logger = logging.getLogger(__name__)


class WriteLockTimeoutError(SQLAlchemyError):
    """A schema file stayed locked by another writer for every wait a writer is allowed."""


@dataclass
class Catalogue:
    """The catalogue database: an engine plus the tables described in Felis.

    Parameters
    ----------
    engine
        SQLAlchemy engine; on SQLite every connection has the schema files
        attached.
    """

    engine: Engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @cached_property
    def metadata(self) -> dict[str, MetaData]:
        """SQLAlchemy metadata of each vosim schema, built from its Felis file."""
        return {
            name: build_metadata(load_schema(name))
            for name in (*PUBLISHED_SCHEMAS, *INTERNAL_SCHEMAS)
        }

    @cached_property
    def tap_schema(self) -> TableManager:
        """Felis' manager of the TAP_SCHEMA 1.1 tables, always schema-qualified."""
        # Felis leaves the schema off on SQLite; we ATTACH a TAP_SCHEMA
        # database instead, so pretend to be a schema-aware backend.
        return TableManager(engine_url="postgresql://", schema_name=TAP_SCHEMA_NAME)

    def table(self, qualified_name: str) -> Table:
        """Return a table by its ``schema.table`` name, e.g. ``ivoa.obscore``."""
        schema, _, name = qualified_name.partition(".")
        if schema.upper() == TAP_SCHEMA_NAME:
            return self.tap_schema[name]
        return self.metadata[schema].tables[f"{schema}.{name}"]

    def create_all(self) -> None:
        """Create every missing schema, table, column and index; existing ones are kept.

        Also (re)writes the TAP_SCHEMA rows of the published schemas, so that
        TAP_SCHEMA always describes exactly what the Felis files say.
        """
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":  # only the missing: a read-only role opens it
                present = set(conn.execute(text("SELECT nspname FROM pg_namespace")).scalars())
                for name in ALL_SCHEMAS:
                    if name not in present:
                        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
            for metadata in self.metadata.values():
                metadata.create_all(conn)
                _add_missing_columns(conn, metadata)
            self.tap_schema.metadata.create_all(conn)
            if self.dialect == "sqlite":
                for name in ALL_SCHEMAS:
                    conn.execute(
                        text(
                            f'CREATE TABLE IF NOT EXISTS "{name}".{_STAMP_TABLE}'
                            " (commit_name TEXT PRIMARY KEY, token TEXT NOT NULL)"
                        )
                    )
        self.load_tap_schema()

    def stamp_commit(self, conn: Connection, name: str, schemas: Sequence[str]) -> None:
        """Mark the caller's transaction in each schema file it writes (SQLite only).

        Parameters
        ----------
        conn
            The connection, inside the transaction to mark.
        name
            What commits, e.g. ``neighbours of model 3``; one stamp per name.
        schemas
            The schemas the transaction writes. Only these are stamped, so
            that the transaction takes no write lock on other files.
        """
        if self.dialect != "sqlite":
            return  # PostgreSQL commits every schema at once
        token = uuid.uuid4().hex
        for schema in schemas:
            conn.execute(
                text(f'INSERT OR REPLACE INTO "{schema}".{_STAMP_TABLE} VALUES (:name, :token)'),
                {"name": name, "token": token},
            )

    def torn_commit(self, conn: Connection, name: str, schemas: Sequence[str]) -> bool:
        """Whether the last commit stamped ``name`` reached some of ``schemas`` but not all.

        Always false on PostgreSQL, and for a name never stamped.
        """
        if self.dialect != "sqlite":
            return False
        tokens = {
            conn.execute(
                text(f'SELECT token FROM "{schema}".{_STAMP_TABLE} WHERE commit_name = :name'),
                {"name": name},
            ).scalar()
            for schema in schemas
        }
        return len(tokens) > 1

    def load_tap_schema(self) -> None:
        """Replace the TAP_SCHEMA rows with the description in the Felis files.

        TAP_SCHEMA describes the published schemas and itself (TAP 1.1,
        section 4). It is rewritten in one transaction, so a TAP query never
        sees it half-filled, and only when the description changed (a digest
        of the rows is kept in ``vosim.setting``): opening an unchanged
        catalogue writes nothing, so it also opens on a read-only disk or
        replica, and takes no write lock beside a busy server.
        """
        loaders = [
            DataLoader(load_schema(name), self.tap_schema, _ContextShim(self.engine), index)
            for index, name in enumerate(PUBLISHED_SCHEMAS)
        ]
        loaders.append(
            DataLoader(self.tap_schema.schema, self.tap_schema, _ContextShim(self.engine), 100)
        )
        inserts = []
        for loader in loaders:
            # Felis only offers the rows with its own transaction per schema;
            # we want one transaction for all of TAP_SCHEMA.
            loader._generate_all_inserts()
            inserts.extend(loader.inserts)
        digest = _statements_digest(inserts)
        setting = self.table("vosim.setting")
        with self.engine.begin() as conn:
            recorded = conn.execute(
                select(setting.c.value).where(setting.c.name == _TAP_SCHEMA_DIGEST)
            ).scalar()
            if recorded == digest and self._tap_schema_filled(conn):
                return
            self._delete_tap_schema_rows(conn, [*PUBLISHED_SCHEMAS, TAP_SCHEMA_NAME])
            for insert in inserts:
                conn.execute(insert)
            self._follow_tap_11_self_description(conn)
            conn.execute(setting.delete().where(setting.c.name == _TAP_SCHEMA_DIGEST))
            conn.execute(setting.insert().values(name=_TAP_SCHEMA_DIGEST, value=digest))

    def _tap_schema_filled(self, conn: Connection) -> bool:
        """Whether TAP_SCHEMA lists every published schema (nobody deleted the rows)."""
        schemas = self.tap_schema["schemas"]
        listed = conn.execute(
            select(func.count()).where(schemas.c.schema_name.in_(PUBLISHED_SCHEMAS))
        ).scalar()
        return listed == len(PUBLISHED_SCHEMAS)

    def _follow_tap_11_self_description(self, conn: Connection) -> None:
        """Correct Felis' description of TAP_SCHEMA itself where it departs from TAP 1.1.

        TAP 1.1 (section 4.3) names the column ``"size"``, delimited, because
        SIZE is an ADQL reserved word, and every column of the five TAP_SCHEMA
        tables is a standard one (section 4); Felis writes the name bare and
        ``std = 0`` for ``keys`` and ``key_columns``. taplint reports both.
        """
        columns = self.tap_schema["columns"]
        ours = columns.c.table_name.like(f"{TAP_SCHEMA_NAME}.%")
        conn.execute(columns.update().where(ours).values(std=1))
        conn.execute(
            columns.update()
            .where(columns.c.table_name == f"{TAP_SCHEMA_NAME}.columns")
            .where(columns.c.column_name == "size")
            .values(column_name='"size"')
        )

    def _delete_tap_schema_rows(self, conn: Connection, schema_names: list[str]) -> None:
        """Delete the TAP_SCHEMA rows of some schemas, leaving any other schema's rows.

        An archive may describe its own tables in the same TAP_SCHEMA; only
        what vosim wrote is replaced.
        """
        delete_tap_schema_rows(conn, self.tap_schema, schema_names)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """Open a transaction (committed on success, rolled back on error)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def begin_writing(self, schemas: Sequence[str]) -> Iterator[Connection]:
        """Open a transaction that holds the write lock of each of ``schemas`` from its start.

        See `lock_for_writing`: the transaction may then read those files and
        write them later without ever being refused.
        """
        with self.engine.begin() as conn:
            self.lock_for_writing(conn, schemas)
            yield conn

    def lock_for_writing(self, conn: Connection, schemas: Sequence[str]) -> None:
        """Take the write lock of each schema file before the transaction reads it (SQLite).

        In WAL mode a transaction that has read a file and then writes it is
        refused at once (``SQLITE_BUSY_SNAPSHOT``, no busy timeout) when
        another connection committed to that file in between, which a busy
        server (UWS jobs write ``vosim``) does every second. A transaction's
        first access to a file that is a write instead waits for the other
        writer (the busy timeout), and this waits up to `_WRITE_LOCK_WAITS`
        such timeouts, logging each; then `WriteLockTimeoutError`. PostgreSQL
        locks rows, not files: nothing to do there.

        Parameters
        ----------
        conn
            A connection inside a transaction that has not read these schemas yet.
        schemas
            The schemas it will write.
        """
        if self.dialect != "sqlite":
            return
        for schema in schemas:
            _take_write_lock(conn, schema)

    @contextmanager
    def reading_committed(self, conn: Connection) -> Iterator[Connection]:
        """Yield a connection reading what is committed, for a writer that writes those files later.

        On a SQLite file a second connection, in its own short transaction,
        so that ``conn`` takes no snapshot of the files it writes after others
        (see `lock_for_writing`); ``conn`` itself on PostgreSQL and in memory.
        """
        if self.dialect != "sqlite" or isinstance(self.engine.pool, StaticPool):
            yield conn
            return
        with self.engine.begin() as other:
            yield other

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _take_write_lock(conn: Connection, schema: str) -> None:
    """Write nothing to a schema file, which takes its write lock; wait boundedly for it."""
    statement = text(f'DELETE FROM "{schema}".{_STAMP_TABLE} WHERE 0')
    for wait in range(1, _WRITE_LOCK_WAITS + 1):
        try:
            conn.execute(statement)
            return
        except OperationalError as error:
            name = getattr(error.orig, "sqlite_errorname", "")
            if name != "SQLITE_BUSY":
                raise  # BUSY_SNAPSHOT: the transaction read the file first; waiting cannot help
            seconds = wait * _SQLITE_BUSY_TIMEOUT_MS // 1000
            if wait == _WRITE_LOCK_WAITS:
                raise WriteLockTimeoutError(
                    f"schema {schema}: another writer held its database file for {seconds} s;"
                    " the write was given up"
                ) from error
            logger.warning(
                "schema %s: another writer has held its database file for %d s; waiting again"
                " (%d of %d)",
                schema,
                seconds,
                wait,
                _WRITE_LOCK_WAITS - 1,
            )


def _statements_digest(statements: list[Any]) -> str:
    """SHA-256 of SQL statements with their parameters, in order."""
    digest = hashlib.sha256()
    for statement in statements:
        compiled = statement.compile()
        digest.update(str(compiled).encode())
        digest.update(repr(sorted(compiled.params.items())).encode())
    return digest.hexdigest()


def build_metadata(schema: Schema) -> MetaData:
    """Build schema-qualified SQLAlchemy tables from a Felis schema.

    Felis creates a scalar ``FLOAT`` for ``datatype: float`` even when the
    column has ``votable:arraysize: "*"``; such vector columns are switched to
    `FloatArray` here.
    """
    metadata = MetaDataBuilder(schema, apply_schema_to_metadata=True).build()
    for felis_table in schema.tables:
        table = metadata.tables[f"{schema.name}.{felis_table.name}"]
        for felis_column in felis_table.columns:
            if felis_column.votable_arraysize and felis_column.datatype in ("float", "double"):
                table.c[felis_column.name].type = FloatArray()
    return metadata


class CatalogueUpgradeError(RuntimeError):
    """An existing catalogue lacks a column that cannot be added in place."""


def _add_missing_columns(conn: Connection, metadata: MetaData) -> None:
    """Add the nullable columns a newer Felis file gives a table that already exists.

    ``MetaData.create_all`` creates missing tables but never alters an
    existing one, so an installation upgraded to a version whose Felis files
    gained a column (``vosim.uws_job.base_url``, for instance) would fail on
    its first query of that table. A nullable column can be added in place
    on both backends (``ALTER TABLE ... ADD COLUMN``); any other change needs
    a real migration, and is reported instead of guessed. A migration tool
    (Alembic) is not used: every change so far has been additive.
    """
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name, schema=table.schema):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name, table.schema)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise CatalogueUpgradeError(
                    f"{table.fullname} lacks the column {column.name}, which cannot be NULL:"
                    " this catalogue was made by an older vosim; ingest into a new database"
                    " (VOSIM_DB_URL or VOSIM_DATA_DIR) instead"
                )
            name = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
            column_type = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE {name} ADD COLUMN "{column.name}" {column_type}'))


def open_catalogue(settings: Settings | None = None, *, create: bool = True) -> Catalogue:
    """Open (and by default create) the catalogue database of an installation.

    Parameters
    ----------
    settings
        Where the database is; `Settings.from_env` when omitted.
    create
        Create missing tables and refresh TAP_SCHEMA.

    Returns
    -------
    Catalogue
        The open catalogue.
    """
    settings = settings or Settings.from_env()
    engine = create_catalogue_engine(settings.db_url)
    catalogue = Catalogue(engine)
    if create:
        catalogue.create_all()
    return catalogue


def create_catalogue_engine(db_url: str, **engine_options: Any) -> Engine:
    """Create an engine; for SQLite, one that attaches a file per schema.

    Parameters
    ----------
    db_url
        SQLAlchemy URL. For ``sqlite:///path/catalogue.sqlite`` the schema
        files are ``path/catalogue.<schema>.sqlite``.
    **engine_options
        Passed on to `sqlalchemy.create_engine`.
    """
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **engine_options)
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    read_only = False
    if in_memory:
        engine_options.setdefault("poolclass", StaticPool)
        attach_paths = {name: ":memory:" for name in ALL_SCHEMAS}
    else:
        main = Path(database)
        main.parent.mkdir(parents=True, exist_ok=True)
        attach_paths = {
            name: str(main.with_suffix(f".{name.lower()}{main.suffix or '.sqlite'}"))
            for name in ALL_SCHEMAS
        }
        read_only = main.exists() and not folder_writable(main.parent)
    timeout_s = _SQLITE_BUSY_TIMEOUT_MS / 1000
    if read_only:
        attach_paths = {name: _immutable_uri(path) for name, path in attach_paths.items()}
        uri = _immutable_uri(str(main))
        engine_options["creator"] = lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False, timeout=timeout_s
        )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": timeout_s},
        **engine_options,
    )
    wal = not in_memory and not read_only
    event.listen(engine, "connect", _SqliteAttacher(attach_paths, wal=wal))
    # pysqlite's own transaction handling defers BEGIN; emit it ourselves so a
    # transaction really spans every statement (SQLAlchemy documents this).
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def folder_writable(folder: Path) -> bool:
    """Whether this process may create files in ``folder`` (not so on read-only media)."""
    return os.access(folder, os.W_OK)


def _immutable_uri(path: str) -> str:
    """Make the URI that opens a SQLite file read-only, as one that nothing else changes."""
    return Path(path).absolute().as_uri() + "?mode=ro&immutable=1"


class _SqliteAttacher:
    """Connection hook that attaches one database file per schema."""

    def __init__(self, attach_paths: dict[str, str], *, wal: bool) -> None:
        self.attach_paths = attach_paths
        self.wal = wal

    def __call__(self, dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        for name, path in self.attach_paths.items():
            cursor.execute("ATTACH DATABASE ? AS " + f'"{name}"', (path,))
            if self.wal:
                cursor.execute(f'PRAGMA "{name}".journal_mode = WAL')
                # each file's commit durable before the next file's begins (see module doc)
                cursor.execute(f'PRAGMA "{name}".synchronous = FULL')
        if self.wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


class _ContextShim:
    """The two attributes of a Felis ``DatabaseContext`` that `DataLoader` uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
