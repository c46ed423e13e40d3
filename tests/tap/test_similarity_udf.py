"""vosim_similarity and vosim_similarity_vector in ADQL, on both backends, over HTTP."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io.votable import from_table
from astropy.table import Table

from tap_schema import open_catalogue
from vo_service.tap.query_database import QuerySession
from vo_service.tap.score_tables import RankedLevels

from . import catalogue as small
from .helpers import http, query_status, sync, votable
from .server import RunningServer

CONTINUUM = [small.did(i) for i in (1, 3, 5)]
UNKNOWN = f"ivo://{small.AUTHORITY}/alma?image-999"


def _rows(server: RunningServer, query: str) -> list[tuple]:
    response = sync(server.tap_url, query)
    assert response.status_code == 200, response.text
    assert query_status(response.content) == [("OK", "")], response.text
    table = votable(response.content).get_first_table().array
    return [tuple(None if np.ma.is_masked(v) else v for v in row) for row in table.tolist()]


def _error(server: RunningServer, query: str) -> str:
    response = sync(server.tap_url, query)
    status = query_status(response.content)
    assert status and status[0][0] == "ERROR", response.text
    return status[0][1]


def _similarity(server: RunningServer, a: str, b: str) -> float | None:
    rows = _rows(server, f"SELECT vosim_similarity('{a}', '{b}') AS s FROM ivoa.obscore")
    values = {row[0] for row in rows}
    assert len(values) == 1
    value = values.pop()
    return None if value is None or np.isnan(value) else float(value)


def test_similarity_of_two_images_is_their_vectors_dot_product(tap_server: RunningServer) -> None:
    got = _similarity(tap_server, small.did(1), small.did(3))
    assert got == pytest.approx(float(small.vector(1) @ small.vector(3)), abs=1e-6)
    assert _similarity(tap_server, small.did(5), small.did(5)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (small.did(1), small.did(2)),  # continuum against peak_flux
        (small.did(1), UNKNOWN),
        (UNKNOWN, small.did(1)),
        (small.did(1), small.did(7)),  # released in the future
        (small.did(7), small.did(1)),
        (small.did(8), small.did(2)),  # no release date
    ],
    ids=["kinds-differ", "unknown-b", "unknown-a", "future-b", "future-a", "no-date"],
)
def test_null_for_other_kinds_unknown_and_proprietary_images(
    tap_server: RunningServer, a: str, b: str
) -> None:
    assert _similarity(tap_server, a, b) is None


def test_ranking_over_every_public_image_is_the_neighbour_list(tap_server: RunningServer) -> None:
    query = small.did(1)
    ranked = _rows(
        tap_server,
        "SELECT o.obs_publisher_did, vosim_similarity(o.obs_publisher_did, "
        f"'{query}') AS sim FROM ivoa.obscore AS o "
        f"WHERE o.obs_publisher_did <> '{query}' AND vosim_similarity(o.obs_publisher_did, "
        f"'{query}') IS NOT NULL ORDER BY sim DESC",
    )
    neighbours = _rows(
        tap_server,
        "SELECT n.neighbour_did, n.cosine_similarity FROM similarity.neighbour AS n "
        f"WHERE n.obs_publisher_did = '{query}' ORDER BY n.rank",
    )
    assert [row[0] for row in ranked] == [row[0] for row in neighbours]
    assert [row[1] for row in ranked] == pytest.approx([row[1] for row in neighbours], abs=1e-6)


def test_combined_with_constraints_top_joins_group_by_and_subqueries(
    tap_server: RunningServer,
) -> None:
    query = small.did(1)
    top = _rows(
        tap_server,
        f"SELECT TOP 1 o.obs_publisher_did, vosim_similarity(o.obs_publisher_did, '{query}') "
        "AS sim FROM ivoa.obscore AS o JOIN similarity.image AS i "
        "ON i.obs_publisher_did = o.obs_publisher_did "
        f"WHERE o.band_list = '7' AND o.obs_publisher_did <> '{query}' "
        "AND i.image_kind = 'continuum' ORDER BY sim DESC",
    )
    scores = {d: float(small.vector(1) @ small.vector(int(d[-3:]))) for d in CONTINUUM[1:]}
    band7 = [d for d in scores if int(d[-3:]) % 3]
    assert top[0][0] == max(band7, key=scores.get)
    grouped = _rows(
        tap_server,
        f"SELECT o.target_name, MAX(vosim_similarity(o.obs_publisher_did, '{query}')) AS best "
        f"FROM ivoa.obscore AS o WHERE o.obs_publisher_did <> '{query}' "
        "GROUP BY o.target_name ORDER BY o.target_name",
    )
    assert grouped[0][0] == "HH212"
    assert grouped[0][1] == pytest.approx(scores[small.did(3)], abs=1e-6)
    nested = _rows(
        tap_server,
        "SELECT COUNT(*) AS n FROM (SELECT o.obs_publisher_did, "
        f"vosim_similarity(o.obs_publisher_did, '{query}') AS sim FROM ivoa.obscore AS o) AS s "
        "WHERE s.sim > -2",
    )
    assert nested == [(3,)]


def test_constant_arguments_in_every_clause_give_the_dot_product(
    tap_server: RunningServer,
) -> None:
    """ON conditions, correlated subqueries, grouped queries and two constants: same scores."""
    query = small.did(1)
    scores = {d: float(small.vector(1) @ small.vector(int(d[-3:]))) for d in CONTINUUM}
    on = _rows(
        tap_server,
        "SELECT o.obs_publisher_did FROM ivoa.obscore AS o JOIN similarity.image AS i "
        "ON i.obs_publisher_did = o.obs_publisher_did "
        f"AND vosim_similarity(o.obs_publisher_did, '{query}') > {scores[small.did(5)] - 1e-4} "
        "ORDER BY o.obs_publisher_did",
    )
    assert [row[0] for row in on] == sorted(
        d for d in CONTINUUM if scores[d] > scores[small.did(5)] - 1e-4
    )
    for argument in ("o", "i"):  # of the enclosing query, and of the subquery's own table
        correlated = _rows(
            tap_server,
            f"SELECT o.obs_publisher_did, (SELECT vosim_similarity({argument}.obs_publisher_did, "
            f"'{query}') FROM similarity.image AS i WHERE i.obs_publisher_did = "
            "o.obs_publisher_did) AS sim FROM ivoa.obscore AS o ORDER BY o.obs_publisher_did",
        )
        got = {d: s for d, s in correlated if s is not None and not np.isnan(s)}
        assert got == pytest.approx(scores, abs=1e-6)
    grouped = _rows(
        tap_server,
        f"SELECT o.obs_publisher_did, vosim_similarity('{query}', o.obs_publisher_did) AS sim, "
        "COUNT(*) AS n FROM ivoa.obscore AS o GROUP BY o.obs_publisher_did "
        "ORDER BY o.obs_publisher_did",
    )
    got = {d: s for d, s, _ in grouped if s is not None and not np.isnan(s)}
    assert got == pytest.approx(scores, abs=1e-6)
    both = _rows(
        tap_server,
        f"SELECT TOP 1 vosim_similarity('{small.did(3)}', '{query}') AS a, "
        f"vosim_similarity('{query}', '{small.did(3)}') AS b FROM ivoa.obscore",
    )
    assert both[0] == pytest.approx((scores[small.did(3)], scores[small.did(3)]), abs=1e-6)


def test_an_image_no_longer_public_has_no_score_at_once(tap_server: RunningServer) -> None:
    """A release date moved into the future hides the image before the index reloads."""
    catalogue = open_catalogue(tap_server.settings)
    obscore = catalogue.table("ivoa.obscore")
    moved = small.did(3)
    where = obscore.c.obs_publisher_did == moved
    with catalogue.engine.connect() as connection:
        released = connection.execute(sa.select(obscore.c.obs_release_date).where(where)).scalar()
    try:
        with catalogue.begin() as connection:
            connection.execute(
                obscore.update().where(where).values(obs_release_date=datetime(2999, 1, 1))
            )
        assert _similarity(tap_server, moved, small.did(1)) is None
        assert _similarity(tap_server, small.did(1), moved) is None
        assert _similarity(tap_server, small.did(5), small.did(1)) is not None
    finally:
        with catalogue.begin() as connection:
            connection.execute(obscore.update().where(where).values(obs_release_date=released))
        catalogue.dispose()


def test_proprietary_images_answer_as_unknown_ones(tap_server: RunningServer) -> None:
    """No predicate, error or count tells a proprietary image from a DID that does not exist."""
    predicates = [
        "SELECT COUNT(*) AS n FROM ivoa.obscore AS o WHERE vosim_similarity(o.obs_publisher_did,"
        " '{d}') > -2",
        "SELECT COUNT(*) AS n FROM ivoa.obscore AS o WHERE vosim_similarity('{d}', "
        "o.obs_publisher_did) IS NULL",
        "SELECT TOP 1 1 / vosim_similarity('{d}', '{d}') AS x FROM ivoa.obscore",
        "SELECT TOP 1 CASE WHEN vosim_similarity('{d}', '" + small.did(1) + "') IS NULL "
        "THEN 'none' ELSE 'some' END AS x FROM ivoa.obscore",
        "SELECT COUNT(*) AS n FROM similarity.embedding AS e WHERE "
        "vosim_similarity_vector('{d}', e.vector) IS NOT NULL",
        "SELECT TOP 1 SQRT(vosim_similarity('{d}', '{d}') - 2) AS x FROM ivoa.obscore",
    ]
    for predicate in predicates:
        reference = sync(tap_server.tap_url, predicate.format(d=UNKNOWN))
        for hidden in small.PROPRIETARY:
            response = sync(tap_server.tap_url, predicate.format(d=hidden))
            assert response.status_code == reference.status_code
            assert response.content.replace(hidden.encode(), UNKNOWN.encode()) == (
                reference.content
            ), predicate


def test_vector_of_an_uploaded_table(tap_server: RunningServer) -> None:
    mine = small.vector(42)
    table = Table({"label": ["mine"], "vector": [mine]})
    buffer = io.BytesIO()
    from_table(table).to_xml(buffer)
    response = http.post(
        f"{tap_server.tap_url}/sync",
        data={
            "LANG": "ADQL",
            "UPLOAD": "mine,param:mine",
            "QUERY": "SELECT o.obs_publisher_did, vosim_similarity_vector(o.obs_publisher_did, "
            "m.vector) AS sim FROM ivoa.obscore AS o CROSS JOIN TAP_UPLOAD.mine AS m "
            "WHERE vosim_similarity_vector(o.obs_publisher_did, m.vector) IS NOT NULL "
            "ORDER BY sim DESC",
        },
        files={"mine": ("mine.xml", buffer.getvalue())},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    rows = votable(response.content).get_first_table().array
    public = {d: float(small.vector(int(d[-3:])) @ mine) for d in small.PUBLIC}
    expected = sorted(public, key=public.get, reverse=True)
    assert list(rows["obs_publisher_did"]) == expected
    assert [float(s) for s in rows["sim"]] == pytest.approx([public[d] for d in expected], abs=1e-5)


def test_vector_of_the_catalogue_and_of_the_wrong_length(tap_server: RunningServer) -> None:
    rows = _rows(
        tap_server,
        "SELECT vosim_similarity_vector(e.obs_publisher_did, e.vector) AS self_sim, "
        f"vosim_similarity_vector(e.obs_publisher_did, '1 0 0') AS short, "
        "vosim_similarity_vector(e.obs_publisher_did, '1 0 0 0 0 0 0 1..2') AS bad, "
        "vosim_similarity_vector(e.obs_publisher_did, ' 1 0 0 0 0 0 0 0 ') AS text "
        f"FROM similarity.embedding AS e WHERE e.obs_publisher_did = '{small.did(3)}'",
    )
    assert rows[0][0] == pytest.approx(1.0, abs=1e-6)
    assert rows[0][1] is None or np.isnan(rows[0][1])
    assert rows[0][2] is None or np.isnan(rows[0][2])
    assert rows[0][3] == pytest.approx(float(small.vector(3)[0]), abs=1e-6)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT vosim_similarity('a') FROM ivoa.obscore", "takes 2 arguments, not 1"),
        ("SELECT vosim_similarity('a', 'b', 'c') FROM ivoa.obscore", "takes 2 arguments, not 3"),
        ("SELECT vosim_similarity(s_ra, 'b') FROM ivoa.obscore", "obs_publisher_did (text)"),
        ("SELECT vosim_similarity('a', 1) FROM ivoa.obscore", "vosim_similarity_vector takes"),
        ("SELECT vosim_similarity_vector('a', 1.5) FROM ivoa.obscore", "is a vector"),
        (
            "SELECT vosim_similarity_vector('a', POINT('ICRS', 1, 2)) FROM ivoa.obscore",
            "is a vector",
        ),
    ],
)
def test_wrong_arguments_are_clear_errors(
    tap_server: RunningServer, query: str, message: str
) -> None:
    assert message in _error(tap_server, query)


def test_capabilities_declare_the_functions(tap_server: RunningServer) -> None:
    text = http.get(f"{tap_server.tap_url}/capabilities").text
    assert "ivo://ivoa.net/std/TAPRegExt#features-udf" in text
    assert "vosim_similarity(did_a VARCHAR, did_b VARCHAR) -&gt; DOUBLE" in text
    assert "vosim_similarity_vector(" in text


def _readme_queries() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Similarity in ADQL", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [part.strip() for part in block.split("\n\n") if part.strip()]
    return [
        "\n".join(line for line in s.splitlines() if not line.startswith("--")) for s in statements
    ]


def test_the_readme_queries_run(tap_server: RunningServer) -> None:
    queries = _readme_queries()
    assert len(queries) == 3
    first, grouped, uploaded = (q.replace("ivo://…", small.did(1)) for q in queries)
    assert _rows(tap_server, first)
    _rows(tap_server, grouped)
    buffer = io.BytesIO()
    from_table(Table({"label": ["mine"], "vector": [small.vector(42)]})).to_xml(buffer)
    response = http.post(
        f"{tap_server.tap_url}/sync",
        data={"LANG": "ADQL", "UPLOAD": "mine,param:mine", "QUERY": uploaded},
        files={"mine": ("mine.xml", buffer.getvalue())},
        timeout=60,
    )
    assert query_status(response.content) == [("OK", "")], response.text
    assert len(votable(response.content).get_first_table().array) == len(small.PUBLIC)


@pytest.fixture
def small_levels(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Cut rankings at the best image, then 2, 4, …; note whether each ranking was cut."""
    monkeypatch.setattr(RankedLevels, "FIRST_FACTOR", 1)
    monkeypatch.setattr(RankedLevels, "FIRST_IMAGES", 1)
    monkeypatch.setattr(RankedLevels, "GROWTH", 2)
    cut: list[bool] = []
    ranked_rows = QuerySession._ranked_rows

    def noted(self: QuerySession, *args: object) -> list | None:
        found = ranked_rows(self, *args)
        cut.append(found is not None)
        return found

    monkeypatch.setattr(QuerySession, "_ranked_rows", noted)
    return cut


@pytest.mark.parametrize("band", [None, "7", "3"])
@pytest.mark.parametrize("top", [1, 2, 3])
def test_a_ranking_cut_to_the_best_scores_is_the_full_ranking(
    tap_server: RunningServer, small_levels: list[bool], band: str | None, top: int
) -> None:
    """TOP n by similarity, with or without a constraint: the n best public images, exactly."""
    _assert_the_best_public_images(tap_server, band, top)
    if band is None:  # the n best are the first level's; 3 of 3 images are not cut at all
        assert small_levels == ([True] * len(CONTINUUM) if top < 3 else [])


def test_a_cut_ranking_never_holds_a_proprietary_image(
    tap_server: RunningServer, small_levels: list[bool]
) -> None:
    """The proprietary continuum image closest to a public one is not ranked, nor counted."""
    hidden = small.did(7)
    closest = max(CONTINUUM, key=lambda d: float(small.vector(7) @ small.vector(int(d[-3:]))))
    rows = _rows(
        tap_server,
        f"SELECT TOP 2 o.obs_publisher_did, vosim_similarity(o.obs_publisher_did, '{closest}') "
        "AS sim FROM ivoa.obscore AS o WHERE vosim_similarity(o.obs_publisher_did, "
        f"'{closest}') IS NOT NULL ORDER BY sim DESC",
    )
    assert len(rows) == 2
    assert hidden not in {row[0] for row in rows}
    assert (
        _rows(
            tap_server,
            f"SELECT TOP 1 o.obs_publisher_did, vosim_similarity(o.obs_publisher_did, '{hidden}') "
            "AS sim FROM ivoa.obscore AS o WHERE vosim_similarity(o.obs_publisher_did, "
            f"'{hidden}') IS NOT NULL ORDER BY sim DESC",
        )
        == []
    )


def test_a_cut_ranking_through_a_join_is_the_full_ranking(
    tap_server: RunningServer, small_levels: list[bool]
) -> None:
    """Ranked by the DIDs of a joined table (SQLite: an IN list, not a join to ObsCore first)."""
    query = small.did(1)
    scores = {d: float(small.vector(1) @ small.vector(int(d[-3:]))) for d in CONTINUUM}
    for top in (1, 2):
        rows = _rows(
            tap_server,
            f"SELECT TOP {top} i.obs_publisher_did, o.band_list, vosim_similarity("
            f"i.obs_publisher_did, '{query}') AS sim FROM ivoa.obscore AS o "
            "JOIN similarity.image AS i ON i.obs_publisher_did = o.obs_publisher_did "
            f"WHERE vosim_similarity(i.obs_publisher_did, '{query}') > -2 ORDER BY sim DESC",
        )
        assert [row[0] for row in rows] == sorted(CONTINUUM, key=scores.get, reverse=True)[:top]
    assert small_levels == [True, True]


@pytest.fixture
def quantized(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Give every index an int8 copy (`QuantizedVectors`); note when a ranking used it."""
    from vo_service.similarity import service
    from vo_service.similarity.quantized import QuantizedVectors

    used: list[bool] = []
    kind_scores = service._kind_scores

    def with_copy(index, query, public, best=None):  # type: ignore[no-untyped-def]
        if index.quantized is None:
            index.quantized = QuantizedVectors.fit(index.vectors)
        scores = kind_scores(index, query, public, best)
        used.append(scores.complete is not None)
        return scores

    monkeypatch.setattr(service, "_kind_scores", with_copy)
    return used


@pytest.mark.parametrize("band", [None, "7"])
@pytest.mark.parametrize("top", [1, 2])
def test_a_ranking_scored_from_the_int8_copy_is_the_full_ranking(
    tap_server: RunningServer,
    small_levels: list[bool],
    quantized: list[bool],
    band: str | None,
    top: int,
) -> None:
    """Only the images that may be among the best are scored exactly: the same answer."""
    _assert_the_best_public_images(tap_server, band, top)
    assert any(quantized)


def _assert_the_best_public_images(tap_server: RunningServer, band: str | None, top: int) -> None:
    """Each continuum image's TOP ``top`` by similarity (in ``band``) is its best public ones."""
    hidden = small.did(7)
    for query in CONTINUUM:
        scores = {
            d: float(small.vector(int(query[-3:])) @ small.vector(int(d[-3:]))) for d in CONTINUUM
        }
        kept = [
            d for d in CONTINUUM if band is None or ("3" if int(d[-3:]) % 3 == 0 else "7") == band
        ]
        expected = sorted(kept, key=scores.get, reverse=True)[:top]
        condition = "" if band is None else f"o.band_list = '{band}' AND "
        rows = _rows(
            tap_server,
            f"SELECT TOP {top} o.obs_publisher_did, vosim_similarity(o.obs_publisher_did, "
            f"'{query}') AS sim FROM ivoa.obscore AS o WHERE {condition}"
            f"vosim_similarity(o.obs_publisher_did, '{query}') IS NOT NULL ORDER BY sim DESC",
        )
        assert [row[0] for row in rows] == expected
        assert hidden not in {row[0] for row in rows}
        assert [row[1] for row in rows] == pytest.approx([scores[d] for d in expected], abs=1e-6)
