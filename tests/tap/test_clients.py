"""Real clients against the real server: pyvo and ``stilts tapquery`` (sync, async, upload)."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import pyvo
from astropy.table import Table

from tests.stilts_lint import needs_stilts

from . import catalogue as small
from .server import RunningServer

NEIGHBOURS = (
    "SELECT n.rank, n.neighbour_did, o.band_list FROM similarity.neighbour AS n "
    "JOIN ivoa.obscore AS o ON o.obs_publisher_did = n.neighbour_did "
    f"WHERE n.obs_publisher_did = '{small.did(1)}' ORDER BY n.rank"
)


def test_pyvo_sync_search_and_limits(tap_server: RunningServer) -> None:
    service = pyvo.dal.TAPService(tap_server.tap_url)
    result = service.run_sync(NEIGHBOURS)
    table = result.to_table()
    assert list(table["neighbour_did"]) == [did for _, did in small.public_neighbours(1)]
    assert small.did(7) not in set(table["neighbour_did"])  # proprietary, and the most similar
    assert list(service.search("SELECT obs_id FROM ivoa.obscore", maxrec=3).to_table()["obs_id"])
    assert service.search("SELECT obs_id FROM ivoa.obscore", maxrec=3).query_status == "OVERFLOW"
    assert service.maxrec == 1000 and service.hardlimit == 5000
    assert "ADQL" in [language.name for language in service.capabilities[0].languages]
    with pytest.raises(pyvo.dal.DALQueryError):
        service.run_sync("DUFF QUERY")


def test_pyvo_async(tap_server: RunningServer) -> None:
    service = pyvo.dal.TAPService(tap_server.tap_url)
    table = service.run_async(NEIGHBOURS).to_table()
    assert list(zip(table["rank"], table["neighbour_did"], strict=True)) == small.public_neighbours(
        1
    )
    job = service.submit_job("SELECT TOP 2 obs_id FROM ivoa.obscore")
    assert job.phase == "PENDING"
    job.run().wait(timeout=60)
    assert job.phase == "COMPLETED"
    assert len(job.fetch_result().to_table()) == 2
    job.delete()


def test_pyvo_tables(tap_server: RunningServer) -> None:
    tables = pyvo.dal.TAPService(tap_server.tap_url).tables
    assert "ivoa.obscore" in set(tables.keys())
    columns = {column.name: column for column in tables["similarity.embedding"].columns}
    assert columns["vector"].datatype.arraysize == "*"


def test_pyvo_upload_of_an_astropy_table(tap_server: RunningServer) -> None:
    mine = Table({"did": [small.did(2), small.did(4)], "note": ["a", "b"], "weight": [1, 2]})
    result = pyvo.dal.TAPService(tap_server.tap_url).run_sync(
        "SELECT m.note, o.image_kind FROM TAP_UPLOAD.mine AS m "
        "JOIN ivoa.obscore AS o ON o.obs_publisher_did = m.did ORDER BY m.weight",
        uploads={"mine": mine},
    )
    table = result.to_table()
    assert list(table["note"]) == ["a", "b"]
    assert set(table["image_kind"]) == {"peak_flux"}


def _tapquery(server: RunningServer, out: Path, *arguments: str) -> list[dict]:
    done = subprocess.run(
        ["stilts", "tapquery", f"tapurl={server.tap_url}", f"out={out}", "ofmt=csv", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with out.open() as stream:
        return list(csv.DictReader(stream))


@needs_stilts
@pytest.mark.parametrize("sync", ["true", "false"])
def test_stilts_tapquery(tap_server: RunningServer, tmp_path: Path, sync: str) -> None:
    rows = _tapquery(tap_server, tmp_path / "out.csv", f"adql={NEIGHBOURS}", f"sync={sync}")
    assert [row["neighbour_did"] for row in rows] == [did for _, did in small.public_neighbours(1)]


@needs_stilts
def test_stilts_tapquery_upload(tap_server: RunningServer, tmp_path: Path) -> None:
    upload = tmp_path / "mine.xml"
    Table({"did": [small.did(1), small.did(2)], "weight": [1.5, 2.5]}).write(
        upload, format="votable"
    )
    rows = _tapquery(
        tap_server,
        tmp_path / "out.csv",
        "adql=SELECT u.did, u.weight, o.target_name FROM TAP_UPLOAD.mine AS u "
        "JOIN ivoa.obscore AS o ON o.obs_publisher_did = u.did ORDER BY u.weight",
        "nupload=1",
        f"upload1={upload}",
        "upname1=mine",
    )
    assert [(row["did"], row["target_name"]) for row in rows] == [
        (small.did(1), "HH212"),
        (small.did(2), "HH212"),
    ]


SIMILAR = (
    f"SELECT o.obs_publisher_did, vosim_similarity(o.obs_publisher_did, '{small.did(1)}') AS sim "
    "FROM ivoa.obscore AS o WHERE o.obs_publisher_did <> '" + small.did(1) + "' AND "
    f"vosim_similarity(o.obs_publisher_did, '{small.did(1)}') IS NOT NULL ORDER BY sim DESC"
)


def test_pyvo_runs_the_similarity_function_sync_and_async(tap_server: RunningServer) -> None:
    service = pyvo.dal.TAPService(tap_server.tap_url)
    for result in (service.run_sync(SIMILAR), service.run_async(SIMILAR)):
        table = result.to_table()
        assert set(table["obs_publisher_did"]) == {small.did(3), small.did(5)}
        assert list(table["sim"]) == sorted(table["sim"], reverse=True)


@needs_stilts
@pytest.mark.parametrize("sync", ["true", "false"])
def test_stilts_tapquery_runs_the_similarity_function(
    tap_server: RunningServer, tmp_path: Path, sync: str
) -> None:
    rows = _tapquery(tap_server, tmp_path / "out.csv", f"adql={SIMILAR}", f"sync={sync}")
    assert {row["obs_publisher_did"] for row in rows} == {small.did(3), small.did(5)}
