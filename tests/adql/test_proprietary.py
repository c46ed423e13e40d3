"""No ADQL query reveals anything of an image that is not public (docs/architecture.md).

Images 6 (released in 2099), 7 (no release date) and 9 (no ObsCore row) have
rows in every similarity table; no query shape may see them, while their
ObsCore rows stay visible.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from vo_service.adql import UploadedTable
from vo_service.votable.columns import ResultColumn

from .conftest import PUBLIC, Archive, did
from .helpers import run

HIDDEN = ("img6", "img7", "img9")

PROBES = [
    ("direct-image", "SELECT obs_publisher_did FROM similarity.image"),
    ("direct-embedding", "SELECT obs_publisher_did, vector FROM similarity.embedding"),
    ("direct-neighbour", "SELECT * FROM similarity.neighbour"),
    ("by-id", f"SELECT * FROM similarity.image WHERE obs_publisher_did = '{did(6)}'"),
    (
        "neighbour-of-hidden",
        f"SELECT * FROM similarity.neighbour WHERE obs_publisher_did = '{did(7)}'",
    ),
    ("hidden-as-neighbour", f"SELECT * FROM similarity.neighbour WHERE neighbour_did = '{did(6)}'"),
    (
        "join-obscore",
        "SELECT o.obs_publisher_did, n.neighbour_did FROM ivoa.obscore AS o "
        "JOIN similarity.neighbour AS n ON n.obs_publisher_did = o.obs_publisher_did",
    ),
    (
        "left-join-obscore",
        "SELECT o.target_name, e.obs_publisher_did FROM ivoa.obscore AS o "
        "LEFT JOIN similarity.embedding AS e ON e.obs_publisher_did = o.obs_publisher_did "
        "WHERE e.obs_publisher_did IS NOT NULL",
    ),
    (
        "unqualified-full-name",
        "SELECT similarity.neighbour.neighbour_did FROM similarity.neighbour",
    ),
    (
        "subquery-in",
        "SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_publisher_did IN "
        "(SELECT obs_publisher_did FROM similarity.image)",
    ),
    (
        "subquery-exists",
        "SELECT obs_publisher_did FROM ivoa.obscore AS o WHERE EXISTS (SELECT 1 FROM "
        "similarity.embedding AS e WHERE e.obs_publisher_did = o.obs_publisher_did)",
    ),
    (
        "derived-table",
        "SELECT t.d FROM (SELECT neighbour_did AS d FROM similarity.neighbour) AS t",
    ),
    ("with", "WITH x AS (SELECT * FROM similarity.image) SELECT obs_publisher_did FROM x"),
    (
        "union",
        "SELECT obs_publisher_did FROM similarity.image UNION "
        "SELECT neighbour_did FROM similarity.neighbour",
    ),
    (
        "except",
        "SELECT obs_publisher_did FROM ivoa.obscore EXCEPT "
        "SELECT obs_publisher_did FROM similarity.image",
    ),
    (
        "self-join",
        "SELECT a.obs_publisher_did, b.neighbour_did FROM similarity.neighbour AS a "
        "JOIN similarity.neighbour AS b ON b.obs_publisher_did = a.neighbour_did",
    ),
]


def _visible_images(rows: list[tuple]) -> set[str]:
    return {part for row in rows for value in row for part in HIDDEN if part in str(value)}


@pytest.mark.parametrize("adql", [pytest.param(q, id=name) for name, q in PROBES])
def test_hidden_images_never_appear(archive: Archive, adql: str) -> None:
    _, rows = run(archive, adql)
    if did(6) not in adql and did(7) not in adql:
        assert rows, "the probe should return the public rows"
    if "EXCEPT" in adql:
        # ObsCore rows stay visible: the hidden images are the ones "without" similarity rows.
        assert {row[0] for row in rows} == {did(6), did(7)}
    else:
        assert _visible_images(rows) == set()


def test_counts_do_not_reveal_hidden_rows(archive: Archive) -> None:
    public = len(PUBLIC - {8}) + 1  # image 8 is public too; 9 images in all, 6 public
    _, rows = run(archive, "SELECT COUNT(*) FROM similarity.image")
    assert rows == [(public,)]
    _, rows = run(
        archive, "SELECT COUNT(*), COUNT(DISTINCT obs_publisher_did) FROM similarity.embedding"
    )
    assert rows == [(public, public)]
    _, rows = run(
        archive,
        f"SELECT MAX(rank) FROM similarity.neighbour WHERE obs_publisher_did = '{did(1)}'",
    )
    # Image 1's list holds images 2..5 and loses none of them: all public.
    assert rows == [(4,)]
    _, rows = run(
        archive,
        f"SELECT COUNT(*) FROM similarity.neighbour WHERE obs_publisher_did = '{did(5)}'",
    )
    # Image 5's list is 1, 2, 3, 4 (all public).
    assert rows == [(4,)]
    _, rows = run(
        archive,
        f"SELECT COUNT(*) FROM similarity.neighbour WHERE obs_publisher_did = '{did(8)}'",
    )
    # Image 8's list is 1, 2, 3, 4: all public.
    assert rows == [(4,)]
    _, rows = run(
        archive,
        f"SELECT COUNT(*) FROM similarity.neighbour WHERE obs_publisher_did = '{did(2)}'",
    )
    # Image 2's list is 1, 3, 4, 5.
    assert rows == [(4,)]
    _, rows = run(archive, "SELECT COUNT(*) FROM similarity.neighbour")
    everything = [n for n in range(1, 10)]
    expected = sum(
        1
        for number in everything
        if number in PUBLIC
        for other in [n for n in everything if n != number][:4]
        if other in PUBLIC
    )
    assert rows == [(expected,)]


def test_obscore_rows_of_hidden_images_stay_visible(archive: Archive) -> None:
    _, rows = run(
        archive, f"SELECT target_name FROM ivoa.obscore WHERE obs_publisher_did = '{did(6)}'"
    )
    assert rows == [("Secret disk",)]


def test_release_is_judged_at_now(archive: Archive) -> None:
    adql = f"SELECT COUNT(*) FROM similarity.image WHERE obs_publisher_did = '{did(6)}'"
    _, rows = run(archive, adql, now=datetime(2099, 1, 1))
    assert rows == [(1,)]
    _, rows = run(archive, adql, now=datetime(2098, 12, 31, 23, 59, 59))
    assert rows == [(0,)]


def test_uploaded_table_joined_with_similarity_sees_public_rows_only(archive: Archive) -> None:
    columns = (ResultColumn(name="did", datatype="char", arraysize="*"),)
    dids = ", ".join(f"('{did(n)}')" for n in range(1, 10))
    temporary = "TEMPORARY TABLE" if archive.dialect == "postgresql" else "TEMP TABLE"
    setup = f'CREATE {temporary} "probe" (did TEXT); INSERT INTO "probe" VALUES {dids}'
    sql_name = '"probe"' if archive.dialect == "postgresql" else 'temp."probe"'
    uploads = {"probe": UploadedTable("probe", sql_name, columns)}
    _, rows = run(
        archive,
        "SELECT u.did, i.cutout_rule, n.neighbour_did FROM TAP_UPLOAD.probe AS u "
        "JOIN similarity.image AS i ON i.obs_publisher_did = u.did "
        "LEFT JOIN similarity.neighbour AS n ON n.neighbour_did = u.did",
        uploads=uploads,
        setup=setup,
    )
    assert rows
    assert _visible_images(rows) == set()
