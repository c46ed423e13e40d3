"""TOP, OFFSET and MAXREC together, also around set operations (TAP 1.1 section 2.7.4)."""

from __future__ import annotations

import pytest

from tap_schema import Settings, open_catalogue
from vo_service.adql import postgres_setup

from .conftest import Archive, did
from .helpers import run

UNION = (
    "SELECT obs_publisher_did FROM ivoa.obscore WHERE band_list = '7' "
    "UNION SELECT obs_publisher_did FROM ivoa.obscore WHERE band_list = '3' "
    "ORDER BY obs_publisher_did DESC"
)


def test_max_rows_limits_a_union_after_its_order_by(archive: Archive) -> None:
    _, rows = run(archive, UNION, max_rows=2)
    assert rows == [(did(7),), (did(6),)]


def test_offset_applies_before_top_and_max_rows(archive: Archive) -> None:
    adql = "SELECT TOP 3 obs_publisher_did FROM ivoa.obscore ORDER BY obs_publisher_did OFFSET 2"
    _, rows = run(archive, adql)
    assert rows == [(did(3),), (did(4),), (did(5),)]
    _, rows = run(archive, adql, max_rows=1)
    assert rows == [(did(3),)]
    _, rows = run(archive, f"{UNION} OFFSET 1", max_rows=2)
    assert rows == [(did(6),), (did(5),)]


def test_top_inside_a_union_member_limits_that_member_only(archive: Archive) -> None:
    adql = (
        "SELECT TOP 1 obs_publisher_did FROM ivoa.obscore WHERE band_list = '7' "
        "UNION ALL SELECT obs_publisher_did FROM ivoa.obscore WHERE band_list = '3'"
    )
    _, rows = run(archive, adql)
    assert len(rows) == 2


def test_max_rows_zero_returns_the_columns_but_no_row(archive: Archive) -> None:
    query, rows = run(archive, "SELECT s_ra, s_dec FROM ivoa.obscore", max_rows=0)
    assert rows == []
    assert [c.name for c in query.columns] == ["s_ra", "s_dec"]


def test_order_by_alias_and_position(archive: Archive) -> None:
    _, rows = run(archive, "SELECT TOP 2 s_ra AS Ra FROM ivoa.obscore ORDER BY ra DESC")
    assert rows == [(359.99,), (200.01,)]
    _, rows = run(archive, "SELECT TOP 1 obs_id, s_dec FROM ivoa.obscore ORDER BY 2")
    assert rows[0][1] == -30.01


def test_postgres_setup_is_idempotent(pg_settings: Settings) -> None:
    catalogue = open_catalogue(pg_settings)
    try:
        for _ in range(2):
            with catalogue.begin() as conn:
                postgres_setup.install(conn)
        with catalogue.begin() as conn:
            overloads = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_proc WHERE proname = 'vosim_contains'"
            ).scalar_one()
            distance = conn.exec_driver_sql(
                "SELECT vosim_distance("
                "vosim_point(ARRAY[10.0, 0.0]), vosim_point(ARRAY[10.0, 1.5]))"
            ).scalar_one()
    finally:
        catalogue.dispose()
    assert overloads == 6  # a point, a circle, a polygon inside a circle or a polygon, once each
    assert distance == pytest.approx(1.5)
