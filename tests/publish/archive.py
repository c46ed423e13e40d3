"""A stand-in for an archive's PostgreSQL database that runs a TAP service of its own.

Its own ``ivoa.obscore`` (with the columns the mapping names), and a
TAP_SCHEMA that already describes it: upper-case ``TAP_SCHEMA`` as Felis
and Rubin write it, or lower-case ``tap_schema`` with a column of its own,
as CADC's and DaCHS' have.
"""

from __future__ import annotations

import sqlalchemy as sa
from felis.tap_schema import TableManager

from model_training.publish.archive_rows import ArchiveMapping
from tap_schema import load_schema
from tap_schema.registration import insert_tap_schema_records, tap_schema_records

from . import catalogue as cat

MAPPING = ArchiveMapping(
    table="ivoa.obscore",
    publisher_did="obs_publisher_did",
    release_date="obs_release_date",
    category="scientific_category",
    kind="dataproduct_type",
    kinds={"image": "continuum", "cube": "peak_flux"},
)


def make_archive(
    url: str, *, tap_schema: str = "TAP_SCHEMA", owner_column: str | None = None
) -> None:
    """Create the archive's obscore and TAP_SCHEMA in an empty database.

    Parameters
    ----------
    owner_column
        None, or ``optional`` or ``required``: add a column of the service's
        own to ``tables`` (``owner_id``), as services that extend TAP_SCHEMA
        have, NULL allowed or not.
    """
    engine = sa.create_engine(url)
    manager = TableManager(engine_url=url, schema_name=tap_schema)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA ivoa"))
        conn.execute(
            sa.text(
                "CREATE TABLE ivoa.obscore (obs_publisher_did text PRIMARY KEY, "
                "dataproduct_type text, obs_release_date timestamp, scientific_category text)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO ivoa.obscore VALUES (:did, :dataproduct_type, :release, :category)"
            ),
            [
                {
                    "did": row.did,
                    "dataproduct_type": row.dataproduct_type,
                    "release": row.release,
                    "category": row.category,
                }
                for row in cat.archive_rows()
            ],
        )
        conn.execute(sa.text(f'CREATE SCHEMA "{tap_schema}"'))
        manager.metadata.create_all(conn)
        tables = {
            name: sa.Table(name, sa.MetaData(), schema=tap_schema, autoload_with=conn)
            for name in ("schemas", "tables", "columns", "keys", "key_columns")
        }
        insert_tap_schema_records(conn, tables, tap_schema_records(load_schema("ivoa"), 0))
        if owner_column:
            table = f'"{tap_schema}".tables'
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN owner_id text DEFAULT 'ops'"))
            if owner_column == "required":
                conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN owner_id SET NOT NULL"))
                conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN owner_id DROP DEFAULT"))
            else:
                conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN owner_id DROP DEFAULT"))
    engine.dispose()


def set_release(url: str, index: int, release: object) -> None:
    """Change an image's release date in the archive."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE ivoa.obscore SET obs_release_date = :release WHERE obs_publisher_did = :did"
            ),
            {"release": release, "did": cat.did(index)},
        )
    engine.dispose()


def dump(url: str) -> dict[str, list[dict]]:
    """Every row of every table in the database, and the list of its schemas and tables."""
    engine = sa.create_engine(url)
    state: dict[str, list[dict]] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        names = [
            (schema, table)
            for schema in inspector.get_schema_names()
            if schema not in ("information_schema", "pg_catalog")
            for table in inspector.get_table_names(schema=schema)
        ]
        state["(tables)"] = [{"name": f"{schema}.{table}"} for schema, table in sorted(names)]
        for schema, table in names:
            reflected = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
            state[f"{schema}.{table}"] = cat.select_all(conn, reflected)
    engine.dispose()
    return state
