"""Serving from a read-only catalogue: opening an unchanged one writes nothing."""

from __future__ import annotations

from sqlalchemy import event, select

from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.database import create_catalogue_engine


def test_opening_an_unchanged_catalogue_writes_nothing(sqlite_settings: Settings) -> None:
    """A read-only replica (here: every connection query-only) opens, and TAP_SCHEMA is kept."""
    open_catalogue(sqlite_settings).dispose()
    engine = create_catalogue_engine(sqlite_settings.db_url)
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only = ON"))
    catalogue = Catalogue(engine)
    try:
        catalogue.create_all()
        with catalogue.begin() as conn:
            names = conn.execute(select(catalogue.tap_schema["schemas"].c.schema_name)).scalars()
            assert {"ivoa", "similarity"} <= set(names)
    finally:
        catalogue.dispose()
