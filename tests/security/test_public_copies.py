"""The public rows a query reads are those of its own instant and snapshot, query after query.

SQLite keeps its copies of the public rows on each connection between
queries (`vo_service.tap.public_copies`); whatever it keeps, every query must
see exactly the images released at its instant in the catalogue as it is
now: an image appears at its release date (not a microsecond before), a
release date moved later hides it again at once, and a query at an earlier
instant does not see what a later one did. Run on one pooled connection, so
that each query finds what the previous one left.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tap_schema import Settings, open_catalogue
from tap_schema.database import Catalogue
from tests.tap import catalogue as small
from vo_service.adql import translate_adql
from vo_service.dali import DaliParameters, InlineContent
from vo_service.tap.query_database import QueryDatabase
from vo_service.tap.table_upload import parse_upload_parameter, read_upload

RELEASE = datetime(2031, 6, 7, 8, 9, 10, 500_000)
LATE = small.did(7)  # proprietary in the fixture; released at RELEASE here
QUERIES = {
    "image": "SELECT obs_publisher_did AS did FROM similarity.image",
    "embedding": "SELECT obs_publisher_did AS did FROM similarity.embedding",
    "neighbour": "SELECT neighbour_did AS did FROM similarity.neighbour",
    "similarity": (
        "SELECT o.obs_publisher_did AS did FROM ivoa.obscore AS o "
        "WHERE vosim_similarity(o.obs_publisher_did, o.obs_publisher_did) IS NOT NULL"
    ),
}


@pytest.fixture
def archive(any_settings: Settings) -> Iterator[tuple[Catalogue, QueryDatabase]]:
    catalogue = open_catalogue(any_settings)
    small.fill(catalogue)
    _set_release(catalogue, LATE, RELEASE)
    database = QueryDatabase(any_settings.db_url, pool_size=1)
    database.prepare()
    try:
        yield catalogue, database
    finally:
        database.dispose()
        catalogue.dispose()


def _set_release(catalogue: Catalogue, did: str, moment: datetime | None) -> None:
    obscore = catalogue.table("ivoa.obscore")
    with catalogue.begin() as conn:
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == did)
            .values(obs_release_date=moment)
        )


def _seen(database: QueryDatabase, adql: str, now: datetime) -> set[str]:
    query = translate_adql(adql, schema=database.schema(), dialect=database.dialect, now=now)
    with database.session(timeout_s=30) as session:
        return {row[0] for batch in session.rows(query, limit=1000) for row in batch}


@pytest.mark.parametrize("table", QUERIES)
def test_an_image_appears_at_its_release_date_and_not_before(archive, table: str) -> None:
    _catalogue, database = archive
    adql = QUERIES[table]
    before = RELEASE - timedelta(microseconds=1)
    assert LATE not in _seen(database, adql, before - timedelta(days=1))
    assert LATE not in _seen(database, adql, before)
    assert LATE in _seen(database, adql, RELEASE)
    assert LATE in _seen(database, adql, RELEASE + timedelta(seconds=1))
    # an earlier instant after a later one: the later one's rows are not reused
    assert LATE not in _seen(database, adql, before)


@pytest.mark.parametrize("table", QUERIES)
def test_a_release_date_moved_by_another_connection_counts_at_once(archive, table: str) -> None:
    catalogue, database = archive
    adql = QUERIES[table]
    now = RELEASE + timedelta(days=1)
    assert LATE in _seen(database, adql, now)
    _set_release(catalogue, LATE, now + timedelta(days=1))
    assert LATE not in _seen(database, adql, now)
    _set_release(catalogue, LATE, None)
    assert LATE not in _seen(database, adql, now)
    _set_release(catalogue, LATE, now)
    assert LATE in _seen(database, adql, now)


def test_rows_deleted_by_another_connection_are_gone_at_once(archive) -> None:
    catalogue, database = archive
    now = RELEASE + timedelta(days=1)
    gone = small.did(1)
    assert gone in _seen(database, QUERIES["neighbour"], now)
    neighbour = catalogue.table("similarity.neighbour")
    with catalogue.begin() as conn:
        conn.execute(neighbour.delete().where(neighbour.c.neighbour_did == gone))
    assert gone not in _seen(database, QUERIES["neighbour"], now)


def test_uploads_do_not_outlive_their_query(archive) -> None:
    """A session that keeps its public copies still drops its upload tables."""
    _catalogue, database = archive
    params = DaliParameters(
        inline={"mine": InlineContent("mine", f"did\n{small.did(1)}\n".encode())}
    )
    [reference] = parse_upload_parameter(["mine,param:mine"])
    upload = read_upload(reference, params, max_bytes=10_000)
    with database.session(timeout_s=30) as session:
        uploaded = session.load_upload(upload)
        query = translate_adql(
            "SELECT u.did FROM TAP_UPLOAD.mine AS u JOIN similarity.image AS i "
            "ON i.obs_publisher_did = u.did",
            schema=database.schema(),
            dialect=database.dialect,
            uploads={"mine": uploaded},
        )
        assert [row for batch in session.rows(query, limit=10) for row in batch] == [
            (small.did(1),)
        ]
    with database.engine.connect() as conn:
        names = conn.execute(
            sa.text(
                "SELECT name FROM temp.sqlite_master"
                if database.dialect == "sqlite"
                else "SELECT tablename FROM pg_tables WHERE schemaname LIKE 'pg_temp%'"
            )
        ).scalars()
        assert not [name for name in names if name.startswith("tap_upload")]
