"""Hostile ADQL is refused as ADQL, before any database sees it, on both backends.

Each query of the issue's attack (deep nesting, nested IN subqueries, a
60k-term OR, a 600-fold UNION, 70 joins, a table-valued function, the
parser's own error texts) must be answered as a TAP error should be: HTTP
400, a DALI error document (a VOTable with QUERY_STATUS ERROR), in a
fraction of a second, with a message a user can act on, in ADQL's words:
no Python, sqlglot, SQLite or PostgreSQL internals.
"""

from __future__ import annotations

import time

import pytest

from tests.tap import catalogue as small
from tests.tap.helpers import http, query_status, votable
from tests.tap.server import RunningServer


def _or_chain(terms: int) -> str:
    return " OR ".join(f"s_ra = {i}" for i in range(terms))


def _nested_in(levels: int) -> str:
    inner = "('a')"
    for _ in range(levels):
        inner = f"(SELECT obs_id FROM ivoa.obscore WHERE obs_id IN {inner})"
    return f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE obs_id IN {inner}"


# name: (query, words the message must contain)
HOSTILE = {
    "parentheses-500": ("SELECT " + "(" * 500 + "1" + ")" * 500 + " AS x FROM ivoa.obscore", "25"),
    "parentheses-5000": (
        "SELECT " + "(" * 5000 + "1" + ")" * 5000 + " AS x FROM ivoa.obscore",
        "parentheses",
    ),
    "nested-in-200": (_nested_in(200), "nested"),
    "or-60000": (f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE {_or_chain(60_000)}", "TAP_UPLOAD"),
    "or-1000": (f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE {_or_chain(1000)}", "IN ("),
    "in-list-6000": (
        "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE s_ra IN ("
        + ",".join(str(i) for i in range(6000))
        + ")",
        "IN list",
    ),
    "union-600": (" UNION ".join(["SELECT obs_id FROM ivoa.obscore"] * 600), "SELECT"),
    "joins-70": (
        "SELECT COUNT(*) AS n FROM ivoa.obscore AS t0 "
        + " ".join(f"JOIN ivoa.obscore AS t{i} ON t{i}.obs_id = t0.obs_id" for i in range(1, 70)),
        "tables",
    ),
    "arithmetic-2000": ("SELECT " + " + ".join(["1"] * 2000) + " AS x FROM ivoa.obscore", "deep"),
    "generate-series": ("SELECT * FROM generate_series(1, 10)", "not a table"),
    "missing-table": ("SELECT * FROM WHERE x = 1", "a table name is expected after FROM"),
    "missing-condition": ("SELECT obs_id FROM ivoa.obscore WHERE", "condition"),
    "missing-parenthesis": ("SELECT obs_id FROM ivoa.obscore WHERE (s_ra = 1", "')'"),
    "stray-parenthesis": ("SELECT obs_id FROM ivoa.obscore WHERE s_ra = 1)", "')'"),
    "unclosed-string": ("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 'abc", "not closed"),
    "unclosed-name": ('SELECT "obs_id FROM ivoa.obscore', "not closed"),
    "missing-top": ("SELECT TOP FROM ivoa.obscore", "TOP"),
    "cte-without-query": ("WITH x AS (SELECT obs_id FROM ivoa.obscore)", "WITH"),
    "cast-without-type": ("SELECT CAST(s_ra AS) FROM ivoa.obscore", "CAST"),
}
INTERNALS = (
    "sqlglot",
    "Token",
    "TokenType",
    "<class",
    "Traceback",
    "sqlite",
    "psycopg",
    "RecursionError",
    "internal error",
    "Required keyword",
    "Expecting",
)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_query_is_an_adql_error(tap_server: RunningServer, name: str) -> None:
    query, words = HOSTILE[name]
    started = time.monotonic()
    response = http.post(
        f"{tap_server.tap_url}/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query},
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 400, response.text[:500]
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    [(status, message)] = query_status(response.content)
    assert status == "ERROR"
    assert words in message, message
    assert not [word for word in INTERNALS if word in message], message


def test_a_limit_is_not_hit_by_an_ordinary_query(tap_server: RunningServer) -> None:
    """Twenty nested parentheses, 100 ORs, 20 SELECTs and a 1000-value IN list still run."""
    condition = "(" * 20 + _or_chain(100) + ")" * 20
    values = ",".join(str(i) for i in range(1000))
    union = " UNION ".join(["SELECT obs_id FROM ivoa.obscore"] * 20)
    for query in (
        f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE {condition}",
        f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE s_ra IN ({values})",
        union,
    ):
        response = http.post(f"{tap_server.tap_url}/sync", data={"LANG": "ADQL", "QUERY": query})
        assert response.status_code == 200, response.text[:500]


def test_a_name_with_a_colon_is_a_name(tap_server: RunningServer) -> None:
    """``":foo"`` is a delimited ADQL name, not a bind parameter of the SQL behind it."""
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params={
            "LANG": "ADQL",
            "QUERY": 'SELECT t.obs_publisher_did AS ":foo" FROM ivoa.obscore AS t '
            f"WHERE t.obs_publisher_did = '{small.PUBLIC[0]}'",
            "RESPONSEFORMAT": "csv",
        },
    )
    assert response.status_code == 200, response.text[:500]
    assert response.text.split() == [":foo", small.PUBLIC[0]]


def test_a_table_alias_with_a_colon_is_a_name(tap_server: RunningServer) -> None:
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params={
            "LANG": "ADQL",
            "QUERY": 'WITH "w:1" AS (SELECT obs_publisher_did AS ":d" FROM ivoa.obscore) '
            'SELECT COUNT(*) AS n FROM "w:1" AS "a:b" WHERE "a:b".":d" IS NOT NULL',
        },
    )
    assert response.status_code == 200, response.text[:500]
    assert int(votable(response.content).get_first_table().array["n"][0]) == 8


def test_a_huge_target_search_on_the_page_is_refused_clearly(tap_server: RunningServer) -> None:
    response = http.get(f"{tap_server.url}/", params={"target": "x" * 60_000})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "at most 200 characters" in response.text
    assert len(response.content) < 200_000
