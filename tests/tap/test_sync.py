"""/tap/sync over HTTP: parameters, formats, MAXREC, metadata and errors (TAP 1.1, DALI 1.1)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from astropy.io import fits

from . import catalogue as small
from .conftest import TEST_LIMITS
from .helpers import http, query_status, sync, tap_schema_columns, votable
from .server import RunningServer


def test_simple_query_returns_rows_and_ok_status(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "SELECT obs_publisher_did FROM ivoa.obscore")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    table = votable(response.content).get_first_table()
    assert len(table.array) == 8
    assert query_status(response.content) == [("OK", "")]


def test_parameter_names_are_case_insensitive_and_unknown_ones_ignored(
    tap_server: RunningServer,
) -> None:
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params={
            "lang": "ADQL",
            "Query": "SELECT TOP 3 obs_id FROM ivoa.obscore",
            "maxREC": "2",
            "DUMMY": "ignore-me",
            "request": "doQuery",
        },
    )
    assert response.status_code == 200, response.text
    assert len(votable(response.content).get_first_table().array) == 2


@pytest.mark.parametrize("lang", ["ADQL", "ADQL-2.0", "ADQL-2.1", "adql"])
def test_accepted_languages(tap_server: RunningServer, lang: str) -> None:
    response = sync(tap_server.tap_url, "SELECT TOP 1 obs_id FROM ivoa.obscore", LANG=lang)
    assert response.status_code == 200


@pytest.mark.parametrize("lang", ["PQL", "ADQL-3.0", "SQL"])
def test_other_languages_are_refused(tap_server: RunningServer, lang: str) -> None:
    response = sync(tap_server.tap_url, "SELECT TOP 1 obs_id FROM ivoa.obscore", LANG=lang)
    assert response.status_code == 400
    [(status, message)] = query_status(response.content)
    assert status == "ERROR" and "LANG" in message


def test_duff_query_is_an_error_document(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "DUFF QUERY")
    assert response.status_code == 400
    [(status, message)] = query_status(response.content)
    assert status == "ERROR" and message


def test_missing_query_and_bad_maxrec_are_errors(tap_server: RunningServer) -> None:
    response = http.get(f"{tap_server.tap_url}/sync", params={"LANG": "ADQL"})
    assert response.status_code == 400
    assert "QUERY" in query_status(response.content)[0][1]
    response = sync(tap_server.tap_url, "SELECT obs_id FROM ivoa.obscore", MAXREC="many")
    assert response.status_code == 400
    response = sync(tap_server.tap_url, "SELECT obs_id FROM ivoa.obscore", MAXREC="-1")
    assert response.status_code == 400


def test_post_urlencoded_and_multipart(tap_server: RunningServer) -> None:
    form = {"LANG": "ADQL", "QUERY": "SELECT TOP 2 obs_id FROM ivoa.obscore"}
    urlencoded = http.post(f"{tap_server.tap_url}/sync", data=form)
    multipart = http.post(
        f"{tap_server.tap_url}/sync", data=form, files={"unused": ("x.txt", b"nothing")}
    )
    for response in (urlencoded, multipart):
        assert response.status_code == 200, response.text
        assert len(votable(response.content).get_first_table().array) == 2


def test_maxrec_truncates_with_trailing_overflow_info(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "SELECT obs_id FROM ivoa.obscore", MAXREC=3)
    assert len(votable(response.content).get_first_table().array) == 3
    statuses = [status for status, _ in query_status(response.content)]
    assert statuses == ["OK", "OVERFLOW"]
    # the OVERFLOW INFO comes after the TABLE
    text = response.text
    assert text.index('value="OVERFLOW"') > text.index("</TABLE>")


def test_no_overflow_when_top_is_smaller_than_maxrec(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "SELECT TOP 2 obs_id FROM ivoa.obscore", MAXREC=5)
    assert [status for status, _ in query_status(response.content)] == ["OK"]
    response = sync(tap_server.tap_url, "SELECT obs_id FROM ivoa.obscore", MAXREC=8)
    assert [status for status, _ in query_status(response.content)] == ["OK"]


def test_maxrec_zero_gives_metadata_only(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "SELECT obs_id, s_ra FROM ivoa.obscore", MAXREC=0)
    assert response.status_code == 200
    table = votable(response.content).get_first_table()
    assert [field.name for field in table.fields] == ["obs_id", "s_ra"]
    assert len(table.array) == 0
    assert [status for status, _ in query_status(response.content)] == ["OK", "OVERFLOW"]


def test_huge_maxrec_is_capped_not_refused(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "SELECT obs_id FROM ivoa.obscore", MAXREC=10**12)
    assert response.status_code == 200
    assert len(votable(response.content).get_first_table().array) == 8


def test_default_maxrec_applies(new_server) -> None:
    with new_server(default_maxrec=5) as server:
        response = sync(server.tap_url, "SELECT obs_id FROM ivoa.obscore")
        assert len(votable(response.content).get_first_table().array) == 5
        assert [s for s, _ in query_status(response.content)] == ["OK", "OVERFLOW"]


def test_fields_carry_the_tap_schema_metadata(tap_server: RunningServer) -> None:
    response = sync(tap_server.tap_url, "SELECT TOP 1 * FROM ivoa.obscore")
    fields = votable(response.content).get_first_table().fields
    published = tap_schema_columns(tap_server.catalogue, "ivoa.obscore")
    assert [f.name for f in fields] == sorted(published, key=lambda n: published[n]["column_index"])
    for field in fields:
        row = published[field.name]
        assert field.datatype == row["datatype"]
        assert field.arraysize == row["arraysize"]
        assert (field.ucd or None) == row["ucd"]
        assert (field.utype or None) == row["utype"]
        assert (field.xtype or None) == row["xtype"]
        assert (str(field.unit) if field.unit is not None else None) == row["unit"]


def test_vectors_and_timestamps_are_written_the_dali_way(tap_server: RunningServer) -> None:
    did = small.did(1)
    response = sync(
        tap_server.tap_url,
        "SELECT e.vector, m.trained_at FROM similarity.embedding AS e "
        "JOIN similarity.model AS m ON m.model_id = e.model_id "
        f"WHERE e.obs_publisher_did = '{did}'",
    )
    table = votable(response.content).get_first_table()
    vector = np.asarray(table.array["vector"][0], dtype=np.float32)
    np.testing.assert_allclose(vector, small.vector(1), rtol=1e-6)
    assert "<TD>2021-03-04T05:06:07" in response.text


def test_proprietary_images_have_no_similarity_rows(tap_server: RunningServer) -> None:
    response = sync(
        tap_server.tap_url,
        "SELECT obs_publisher_did FROM similarity.image UNION "
        "SELECT neighbour_did FROM similarity.neighbour",
    )
    dids = {str(v) for v in votable(response.content).get_first_table().array["obs_publisher_did"]}
    assert dids == set(small.PUBLIC)


SERIALIZATIONS = {
    "votable": "TABLEDATA",
    "votable/td": "TABLEDATA",
    "votable/b": "BINARY",
    "votable/b2": "BINARY2",
    "application/x-votable+xml;serialization=BINARY2": "BINARY2",
    "application/x-votable+xml": "TABLEDATA",
    "text/xml": "TABLEDATA",
}


@pytest.mark.parametrize("name", sorted(SERIALIZATIONS))
def test_votable_serializations_give_the_same_table(tap_server: RunningServer, name: str) -> None:
    query = (
        "SELECT o.obs_publisher_did, o.calib_level, o.s_ra, o.em_res_power, o.obs_release_date, "
        "o.access_estsize, e.vector FROM ivoa.obscore AS o "
        "LEFT OUTER JOIN similarity.embedding AS e ON e.obs_publisher_did = o.obs_publisher_did "
        "ORDER BY o.obs_publisher_did"
    )
    reference = votable(sync(tap_server.tap_url, query).content).get_first_table()
    response = sync(tap_server.tap_url, query, RESPONSEFORMAT=name)
    assert response.status_code == 200
    if "/" in name and not name.startswith("votable/"):
        assert response.headers["content-type"].startswith(name)
    assert f"<{SERIALIZATIONS[name]}" in response.text
    table = votable(response.content).get_first_table()
    assert len(table.array) == len(reference.array) == 8
    for column in ("obs_publisher_did", "calib_level", "s_ra", "access_estsize"):
        assert list(table.array[column]) == list(reference.array[column])
    proprietary = [
        i for i, d in enumerate(reference.array["obs_publisher_did"]) if d in small.PROPRIETARY
    ]
    for i in range(8):
        if i in proprietary:
            assert np.ma.is_masked(table.array["vector"][i]) or len(table.array["vector"][i]) == 0
        else:
            np.testing.assert_allclose(table.array["vector"][i], reference.array["vector"][i])


def test_csv_and_tsv(tap_server: RunningServer) -> None:
    query = (
        "SELECT TOP 3 obs_publisher_did, s_ra, obs_release_date FROM ivoa.obscore "
        "ORDER BY obs_publisher_did"
    )
    response = sync(tap_server.tap_url, query, RESPONSEFORMAT="csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["obs_publisher_did", "s_ra", "obs_release_date"]
    assert rows[1][0] == small.did(1) and rows[1][2].startswith("2021-03-04T05:06:07")
    response = sync(tap_server.tap_url, query, RESPONSEFORMAT="text/tab-separated-values")
    assert response.headers["content-type"].startswith("text/tab-separated-values")
    lines = response.text.splitlines()
    assert lines[0].split("\t") == ["obs_publisher_did", "s_ra", "obs_release_date"]
    assert len(lines) == 4


def test_fits_and_json(tap_server: RunningServer) -> None:
    query = (
        "SELECT obs_publisher_did, calib_level, s_ra FROM ivoa.obscore ORDER BY obs_publisher_did"
    )
    response = sync(tap_server.tap_url, query, RESPONSEFORMAT="fits", MAXREC=4)
    with fits.open(io.BytesIO(response.content)) as hdus:
        data = hdus[1].data
        assert len(data) == 4 and data["obs_publisher_did"][0] == small.did(1)
    response = sync(tap_server.tap_url, query, RESPONSEFORMAT="application/json", MAXREC=4)
    document = json.loads(response.text)
    assert [c["name"] for c in document["metadata"]] == ["obs_publisher_did", "calib_level", "s_ra"]
    assert len(document["data"]) == 4 and document["overflow"] is True


def test_unknown_response_format_is_an_error(tap_server: RunningServer) -> None:
    response = sync(
        tap_server.tap_url, "SELECT TOP 1 obs_id FROM ivoa.obscore", RESPONSEFORMAT="xlsx"
    )
    assert response.status_code == 400
    assert "RESPONSEFORMAT" in query_status(response.content)[0][1]


def test_repeated_single_valued_parameter_is_an_error(tap_server: RunningServer) -> None:
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params=[
            ("LANG", "ADQL"),
            ("QUERY", "SELECT TOP 1 obs_id FROM ivoa.obscore"),
            ("MAXREC", "1"),
            ("maxrec", "2"),
        ],
    )
    assert response.status_code == 400


def test_large_results_stream(tap_server: RunningServer) -> None:
    # A cross join makes a result larger than the first megabyte kept before streaming.
    query = (
        "SELECT a.obs_publisher_did, b.s_region, c.s_region AS footprint, d.access_url "
        "FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c, ivoa.obscore AS d"
    )
    response = sync(tap_server.tap_url, query, MAXREC=TEST_LIMITS.hard_maxrec)
    assert response.status_code == 200
    assert "content-length" not in response.headers  # streamed
    assert len(response.content) > 1 << 20
    assert len(votable(response.content).get_first_table().array) == 8**4
