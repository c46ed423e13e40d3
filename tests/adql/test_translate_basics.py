"""Simple queries on both backends: names, TOP, WHERE, ORDER BY, output metadata."""

from __future__ import annotations

import pytest

from tap_schema import load_schema
from vo_service.votable.columns import ResultColumn

from .conftest import Archive, did
from .helpers import run, translate


def test_tap_schema_loads_published_tables_only(archive: Archive) -> None:
    names = {table.qualified_name for table in archive.schema.tables}
    assert {"ivoa.obscore", "similarity.neighbour", "TAP_SCHEMA.columns"} <= names
    assert not any(name.startswith("vosim.") for name in names)
    obscore = next(t for t in archive.schema.tables if t.qualified_name == "ivoa.obscore")
    assert obscore.columns[0].name == "dataproduct_type"
    felis_obscore = load_schema("ivoa").tables[0]
    assert [c.name for c in obscore.columns] == [c.name for c in felis_obscore.columns]


def test_plain_columns_keep_their_tap_schema_metadata(archive: Archive) -> None:
    query = translate(archive, "SELECT s_ra, obs_release_date, s_region FROM ivoa.obscore")
    s_ra, release, region = query.columns
    assert s_ra == ResultColumn(
        name="s_ra",
        datatype="double",
        unit="deg",
        ucd="pos.eq.ra",
        utype="obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
        description="Right ascension (ICRS) of the image centre",
    )
    assert (release.datatype, release.arraysize, release.xtype) == ("char", "*", "timestamp")
    assert region.xtype == "adql:REGION"


def test_top_where_order_by(archive: Archive) -> None:
    _, rows = run(
        archive,
        "SELECT TOP 2 obs_publisher_did, s_ra FROM ivoa.obscore WHERE band_list = '7' "
        "ORDER BY s_ra DESC",
    )
    assert rows == [(did(5), 200.01), (did(7), 10.03)]


def test_max_rows_and_top_take_the_smaller(archive: Archive) -> None:
    _, rows = run(archive, "SELECT TOP 5 obs_id FROM ivoa.obscore", max_rows=3)
    assert len(rows) == 3
    _, rows = run(archive, "SELECT TOP 2 obs_id FROM ivoa.obscore", max_rows=3)
    assert len(rows) == 2


def test_mixed_case_and_quoted_names(archive: Archive) -> None:
    _, rows = run(
        archive,
        "SELECT TOP 1 \"size\", column_name FROM TAP_SCHEMA.columns WHERE column_name = 's_region'",
    )
    assert rows == [(512, "s_region")]
    _, rows = run(archive, "SELECT COUNT(*) AS n FROM ivoa.ObsCore")
    assert rows == [(8,)]


def test_timestamps_compare_with_iso_literals_and_come_out_iso(archive: Archive) -> None:
    _, rows = run(
        archive,
        "SELECT obs_release_date FROM ivoa.obscore WHERE obs_release_date >= '2020-01-01T00:00:00' "
        "AND obs_release_date < '2021-07-15T08:30:00' ORDER BY obs_release_date",
    )
    assert rows == [("2020-01-01T00:00:00.000",)]


@pytest.mark.parametrize(
    "table", ["similarity.image", "similarity.embedding", "similarity.neighbour"]
)
def test_proprietary_rows_are_invisible(archive: Archive, table: str) -> None:
    _, rows = run(archive, f"SELECT * FROM {table}")
    assert rows
    assert all(
        "img6" not in str(row) and "img7" not in str(row) and "img9" not in str(row) for row in rows
    )


def test_only_a_ranking_by_constant_scores_may_be_cut(archive: Archive) -> None:
    """A query may run on the best-scored images first only where that cannot change its answer."""
    sim = f"vosim_similarity(o.obs_publisher_did, '{did(1)}')"
    base = f"SELECT TOP 5 o.obs_publisher_did, {sim} AS sim FROM ivoa.obscore AS o"

    def ranking(adql: str, max_rows: int = 100) -> object:
        return translate(archive, adql, score_relations=True, max_rows=max_rows).ranking

    cut = ranking(f"{base} WHERE {sim} IS NOT NULL ORDER BY sim DESC")
    assert cut is not None and cut.rows == 5
    assert ranking(f"{base} WHERE {sim} IS NOT NULL ORDER BY sim DESC", max_rows=3).rows == 3
    assert ranking(f"{base} WHERE o.band_list = '7' AND {sim} > 0.5 ORDER BY 2 DESC") is not None
    for whole in [
        f"{base} ORDER BY sim DESC",  # NULL sorts first: every row may be in the answer
        f"{base} WHERE {sim} IS NOT NULL ORDER BY sim",
        f"{base} WHERE {sim} IS NOT NULL OR o.band_list = '7' ORDER BY sim DESC",
        f"{base} WHERE {sim} IS NOT NULL ORDER BY sim DESC OFFSET 2",
        f"{base} WHERE {sim} IS NOT NULL ORDER BY o.t_min DESC, sim DESC",
        f"SELECT DISTINCT TOP 5 o.band_list, {sim} AS sim FROM ivoa.obscore AS o "
        f"WHERE {sim} IS NOT NULL ORDER BY sim DESC",
        f"SELECT TOP 5 o.band_list, MAX({sim}) AS sim FROM ivoa.obscore AS o "
        f"WHERE {sim} IS NOT NULL GROUP BY o.band_list ORDER BY sim DESC",
        f"SELECT TOP 5 s.sim FROM ({base} WHERE {sim} IS NOT NULL) AS s ORDER BY s.sim DESC",
        f"SELECT TOP 5 vosim_ranked.obs_publisher_did, vosim_similarity("
        f"vosim_ranked.obs_publisher_did, '{did(1)}') AS sim FROM ivoa.obscore AS vosim_ranked "
        f"WHERE vosim_similarity(vosim_ranked.obs_publisher_did, '{did(1)}') IS NOT NULL "
        "ORDER BY sim DESC",
    ]:
        assert ranking(whole) is None, whole
    # the same scores read by a second key: PostgreSQL's one table of them must stay whole
    two_keys = ranking(
        f"{base} JOIN similarity.neighbour AS n ON n.neighbour_did = o.obs_publisher_did "
        f"WHERE {sim} IS NOT NULL AND vosim_similarity(n.obs_publisher_did, '{did(1)}') > 0 "
        "ORDER BY sim DESC"
    )
    assert (two_keys is None) == (archive.dialect == "postgresql")
