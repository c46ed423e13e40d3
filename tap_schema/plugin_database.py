"""vosim's ``similarity`` tables inside an archive's own PostgreSQL database (plugin mode).

An archive that already runs a TAP service (GAVO DaCHS, CADC, ESA, Rubin)
gets vosim's similarity tables in its own database, next to its own
``ivoa.obscore``, instead of running a second TAP server. This module is the
floor-1 part of that: it creates the tables from the same Felis file as
vosim's catalogue, checks that tables found there still match it, and adds
or removes their rows in the archive's TAP_SCHEMA. It never touches another
schema's table or TAP_SCHEMA row; what it adds, `ArchiveDatabase.drop` and
`ArchiveDatabase.unregister` take away again.

Which rows go into the tables, and in which transaction, is the publication
stage's business (``model_training.publish.stage``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import sqlalchemy as sa
from felis.datamodel import Schema
from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.engine import make_url

from .database import build_metadata
from .felis_files import load_schema
from .registration import (
    TAP_SCHEMA_TABLES,
    delete_tap_schema_rows,
    insert_tap_schema_records,
    tap_schema_records,
)
from .sqltypes import FloatArray

__all__ = ["PLUGIN_SCHEMA", "ArchiveDatabase", "ArchiveDatabaseError"]

PLUGIN_SCHEMA = "similarity"
"""The schema vosim publishes into an archive; ``ivoa`` stays the archive's own."""

_CREATED_MARK = "Created by vosim publish; vosim unpublish drops it again once it is empty."


class ArchiveDatabaseError(ValueError):
    """The archive's database is not one vosim can publish into as asked."""


@dataclass
class ArchiveDatabase:
    """The archive's PostgreSQL database, seen from vosim's published schema.

    Parameters
    ----------
    engine
        Engine on the archive's database (psycopg 3).
    """

    engine: Engine

    @classmethod
    def connect(cls, engine_url: str) -> ArchiveDatabase:
        """Open the archive's database from a SQLAlchemy URL.

        Publishing uses PostgreSQL's COPY through psycopg 3, so
        ``postgresql://`` (whose default driver is psycopg2) is switched to
        ``postgresql+psycopg://``; any other backend is refused.
        """
        url = make_url(engine_url)
        if url.get_backend_name() != "postgresql":
            raise ArchiveDatabaseError(
                f"vosim publishes into PostgreSQL only, not {url.get_backend_name()!r} "
                "(give --engine-url postgresql+psycopg://user:password@host/database)"
            )
        url = url.set(drivername="postgresql+psycopg")
        return cls(sa.create_engine(url, pool_pre_ping=True))

    @cached_property
    def schema(self) -> Schema:
        """The Felis description of the published schema."""
        return load_schema(PLUGIN_SCHEMA)

    @cached_property
    def metadata(self) -> MetaData:
        """SQLAlchemy tables of the published schema."""
        return build_metadata(self.schema)

    def table(self, name: str) -> Table:
        """One published table by its bare name, e.g. ``neighbour``."""
        return self.metadata.tables[f"{PLUGIN_SCHEMA}.{name}"]

    def existing_tables(self, conn: Connection) -> list[str]:
        """Names of the published tables that exist in the archive's database."""
        present = set(sa.inspect(conn).get_table_names(schema=PLUGIN_SCHEMA))
        return [table.name for table in self.metadata.sorted_tables if table.name in present]

    def is_dachs(self, conn: Connection) -> bool:
        """Whether the database is a GAVO DaCHS one (it has DaCHS' table registry)."""
        return conn.execute(sa.text("SELECT to_regclass('dc.tablemeta')")).scalar() is not None

    def create(self, conn: Connection) -> list[str]:
        """Create the schema and whichever published tables are missing; check the others.

        A schema created here is marked with a comment, so that `drop` removes
        it again but never a ``similarity`` schema the archive had before.
        Vector columns are stored uncompressed: float vectors do not compress,
        and skipping PostgreSQL's attempt roughly doubles the COPY rate.

        Returns
        -------
        list of str
            The tables created.

        Raises
        ------
        ArchiveDatabaseError
            If a table exists with other columns than the Felis file gives.
        """
        inspector = sa.inspect(conn)
        if PLUGIN_SCHEMA not in inspector.get_schema_names():
            conn.execute(sa.text(f'CREATE SCHEMA "{PLUGIN_SCHEMA}"'))
            conn.execute(sa.text(f"COMMENT ON SCHEMA \"{PLUGIN_SCHEMA}\" IS '{_CREATED_MARK}'"))
        existing = set(self.existing_tables(conn))
        for name in existing:
            self._check_columns(conn, self.table(name))
        created = []
        for table in self.metadata.sorted_tables:
            if table.name in existing:
                continue
            table.create(conn)
            for column in table.columns:
                if isinstance(column.type, FloatArray):
                    conn.execute(
                        sa.text(
                            f'ALTER TABLE "{PLUGIN_SCHEMA}"."{table.name}" '
                            f'ALTER COLUMN "{column.name}" SET STORAGE EXTERNAL'
                        )
                    )
            created.append(table.name)
        return created

    def check_published(self, conn: Connection) -> None:
        """Check that every published table is there, with the columns of the Felis file.

        Raises
        ------
        ArchiveDatabaseError
            If a table is missing (nothing published yet) or differs.
        """
        present = self.existing_tables(conn)
        missing = [table.name for table in self.metadata.sorted_tables if table.name not in present]
        if missing:
            raise ArchiveDatabaseError(
                f"the archive has no {PLUGIN_SCHEMA}.{missing[0]} table: nothing has been "
                "published into it yet (run vosim publish without --refresh first)"
            )
        for name in present:
            self._check_columns(conn, self.table(name))

    def _check_columns(self, conn: Connection, table: Table) -> None:
        found = [c["name"] for c in sa.inspect(conn).get_columns(table.name, schema=PLUGIN_SCHEMA)]
        wanted = [column.name for column in table.columns]
        if sorted(found) != sorted(wanted):
            raise ArchiveDatabaseError(
                f"{table.fullname} in the archive has columns {found}, but vosim's description "
                f"has {wanted}; run vosim unpublish, then vosim publish again"
            )

    def empty(self, conn: Connection) -> None:
        """Remove every row of the published tables, in one statement (foreign keys)."""
        names = ", ".join(f'"{PLUGIN_SCHEMA}"."{name}"' for name in self.existing_tables(conn))
        if names:
            conn.execute(sa.text(f"TRUNCATE {names}"))

    @contextmanager
    def keys_and_indexes_rebuilt(self, conn: Connection) -> Iterator[None]:
        """Drop the tables' keys and indexes for a bulk load, and build them again after it.

        PostgreSQL's advice for populating a database (manual, section 14.4):
        checking a foreign key row by row and growing an index row by row
        cost far more than checking and building them once over the loaded
        table. Only the keys and indexes the Felis file defines are dropped
        and rebuilt; all of it happens in the caller's transaction, which
        already holds the tables exclusively (``TRUNCATE``).
        """
        inspector = sa.inspect(conn)
        tables = self.metadata.sorted_tables
        for table in reversed(tables):
            present = {key["name"] for key in inspector.get_foreign_keys(table.name, PLUGIN_SCHEMA)}
            for key in table.foreign_key_constraints:
                if key.name in present:
                    conn.execute(sa.schema.DropConstraint(key))
        for table in tables:
            present = {index["name"] for index in inspector.get_indexes(table.name, PLUGIN_SCHEMA)}
            for index in table.indexes:
                if index.name in present:
                    conn.execute(sa.schema.DropIndex(index))
            primary = inspector.get_pk_constraint(table.name, PLUGIN_SCHEMA).get("name")
            if primary:
                conn.execute(
                    sa.text(
                        f'ALTER TABLE "{PLUGIN_SCHEMA}"."{table.name}" DROP CONSTRAINT "{primary}"'
                    )
                )
        yield
        for table in tables:
            conn.execute(sa.schema.AddConstraint(table.primary_key))
            for index in table.indexes:
                conn.execute(sa.schema.CreateIndex(index))
        for table in tables:
            for key in table.foreign_key_constraints:
                conn.execute(sa.schema.AddConstraint(key))

    def drop(self, conn: Connection) -> list[str]:
        """Drop the published tables, and the schema if `create` made it and it is empty.

        Tables are dropped without CASCADE: if the archive built a view on one
        of them, PostgreSQL refuses and nothing is dropped, rather than vosim
        removing an object it did not create.

        Returns
        -------
        list of str
            What was dropped, as ``schema.table`` names (and the schema name).
        """
        dropped = []
        present = set(self.existing_tables(conn))
        for table in reversed(self.metadata.sorted_tables):
            if table.name in present:
                table.drop(conn)
                dropped.append(table.fullname)
        mark = conn.execute(
            sa.text(
                "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                "WHERE nspname = :name"
            ),
            {"name": PLUGIN_SCHEMA},
        ).scalar()
        remaining = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :name"
            ),
            {"name": PLUGIN_SCHEMA},
        ).scalar()
        if mark == _CREATED_MARK and remaining == 0:
            conn.execute(sa.text(f'DROP SCHEMA "{PLUGIN_SCHEMA}"'))
            dropped.append(PLUGIN_SCHEMA)
        return dropped

    def find_tap_schema(self, conn: Connection, name: str | None) -> str:
        """Return the name the archive's TAP_SCHEMA has in its database.

        Parameters
        ----------
        name
            The name given by the operator; when None, the one schema whose
            name is ``TAP_SCHEMA`` in any case (DaCHS and CADC use lower case,
            Felis upper case).

        Raises
        ------
        ArchiveDatabaseError
            If there is no such schema, or it lacks a TAP_SCHEMA 1.1 table.
        """
        schemas = sa.inspect(conn).get_schema_names()
        if name is None:
            candidates = [schema for schema in schemas if schema.lower() == "tap_schema"]
            if len(candidates) != 1:
                raise ArchiveDatabaseError(
                    f"found {len(candidates)} schemas named TAP_SCHEMA in any case "
                    f"({', '.join(candidates) or 'none'}); name the archive's with "
                    "--tap-schema-name"
                )
            name = candidates[0]
        elif name not in schemas:
            raise ArchiveDatabaseError(f"the archive's database has no schema {name!r}")
        tables = set(sa.inspect(conn).get_table_names(schema=name))
        missing = [table for table in TAP_SCHEMA_TABLES if table not in tables]
        if missing:
            raise ArchiveDatabaseError(
                f"schema {name!r} lacks the TAP_SCHEMA table(s) {', '.join(missing)}"
            )
        return name

    def tap_schema_tables(self, conn: Connection, tap_schema_name: str) -> dict[str, Table]:
        """Reflect the archive's TAP_SCHEMA tables as they are (with any extra columns)."""
        metadata = MetaData(schema=tap_schema_name)
        return {
            name: Table(name, metadata, autoload_with=conn, schema=tap_schema_name)
            for name in TAP_SCHEMA_TABLES
        }

    def register(self, conn: Connection, tap_schema_name: str) -> None:
        """Describe the published schema in the archive's TAP_SCHEMA, replacing vosim's old rows.

        The schema is listed after the archive's own (``schema_index`` one
        above the highest other), so a second run writes the same rows.
        """
        tap_schema = self.tap_schema_tables(conn, tap_schema_name)
        delete_tap_schema_rows(conn, tap_schema, [PLUGIN_SCHEMA])
        schemas = tap_schema["schemas"]
        index = 0
        if "schema_index" in schemas.c:
            highest = conn.execute(sa.select(sa.func.max(schemas.c.schema_index))).scalar()
            index = 0 if highest is None else highest + 1
        insert_tap_schema_records(conn, tap_schema, tap_schema_records(self.schema, index))

    def unregister(self, conn: Connection, tap_schema_name: str) -> None:
        """Remove the published schema's rows from the archive's TAP_SCHEMA."""
        delete_tap_schema_rows(conn, self.tap_schema_tables(conn, tap_schema_name), [PLUGIN_SCHEMA])

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()
