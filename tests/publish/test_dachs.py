"""Acceptance: vosim publishes into GAVO DaCHS, and DaCHS' own TAP service serves the tables.

DaCHS (Debian's ``gavodachs2-server``) has an ``ivoa.obscore`` of its own,
fed by a small archive RD (``data/dachs_archive.rd``) whose products carry
the publisher DIDs of vosim's test catalogue. Then, as an operator would:
``vosim publish --dachs-rd`` into DaCHS' database, ``dachs imp -m`` of the
descriptor, and through DaCHS' TAP service (pyvo): the tables are in
TAP_SCHEMA and ``/tables``, ADQL joins them to DaCHS' ``ivoa.obscore``,
``stilts taplint`` finds 0 errors; ``dachs drop`` and ``vosim unpublish``
leave DaCHS' TAP_SCHEMA exactly as it was.

Skipped only where DaCHS is not installed. Runs its own DaCHS server on a
free port; one test session at a time (a lock), since DaCHS' database and
input folder are shared by the machine.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pyvo
import sqlalchemy as sa

from model_training.publish.archive_rows import ArchiveMapping
from model_training.publish.stage import PublishError, publish, unpublish
from tap_schema import Settings
from tests.stilts_lint import run_taplint, taplint_available

from . import catalogue as cat
from .dachs_server import INPUTS, DachsServer, dachs_database

pytestmark = pytest.mark.slow

DATA = Path(__file__).with_name("data")
ARCHIVE_RD = INPUTS / "vosim_test_archive" / "q.rd"
VOSIM_RD = INPUTS / "vosim_test" / "similarity.rd"
LOCK = Path("/tmp/vosim-dachs-tests.lock")
SIMILARITY_TABLES = {
    f"similarity.{name}" for name in ("image", "model", "embedding", "neighbour", "category_compat")
}


@dataclass
class Dachs:
    """The running DaCHS, and how vosim reaches its database."""

    server: DachsServer
    engine_url: str
    """vosim's superuser acting as DaCHS' administrator role, which owns DaCHS' tables."""
    admin_url: str

    def tap(self) -> pyvo.dal.TAPService:
        return pyvo.dal.TAPService(self.server.tap_url)


@pytest.fixture(scope="session")
def dachs(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dachs]:
    admin_url, has_obscore = dachs_database(pg_server_url)
    engine_url = admin_url.set(query={"options": "-c role=gavoadmin"})
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = DachsServer(tmp_path_factory.mktemp("dachs"))
        found = Dachs(
            server,
            engine_url.render_as_string(hide_password=False),
            admin_url.render_as_string(hide_password=False),
        )
        _forget_test_resources(found)
        if not has_obscore:
            server.run("imp", "//obscore")
        _import_test_archive(server)
        try:
            server.start()
            yield found
        finally:
            server.stop()
            _forget_test_resources(found)


def _import_test_archive(server: DachsServer) -> None:
    ARCHIVE_RD.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "dachs_archive.rd", ARCHIVE_RD)
    with (ARCHIVE_RD.parent / "images.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                "accref",
                "obs_id",
                "dataproduct_type",
                "access_url",
                "target_name",
                "s_ra",
                "s_dec",
                "obs_release_date",
                "scientific_category",
            ]
        )
        for row in cat.archive_rows():
            release = row.release.isoformat() if row.release else ""
            writer.writerow(
                [
                    cat.accref(row.index),
                    f"uid://A001/X{row.index:03d}",
                    row.dataproduct_type,
                    f"https://archive.example/files/{cat.key(row.index)}.fits",
                    f"source-{row.index}",
                    10.0 + row.index,
                    -5.0 - row.index,
                    release,
                    row.category,
                ]
            )
    server.run("imp", str(ARCHIVE_RD))


def _forget_test_resources(dachs: Dachs) -> None:
    """Remove whatever an earlier, interrupted session left in DaCHS (and this one)."""
    for rd in (VOSIM_RD, ARCHIVE_RD):
        if rd.is_file():
            with contextlib.suppress(RuntimeError):
                dachs.server.run("drop", str(rd))
    unpublish(dachs.engine_url, dachs_rd=VOSIM_RD)
    for rd in (VOSIM_RD, ARCHIVE_RD):
        shutil.rmtree(rd.parent, ignore_errors=True)


def _dump(dachs: Dachs) -> dict[str, list[tuple]]:
    """Every row of DaCHS' TAP_SCHEMA tables and of its table registry (dc.tablemeta).

    ``tap_schema.tapjobs`` is left out: it is DaCHS' queue of async jobs
    (taplint runs some), not metadata.
    """
    engine = sa.create_engine(dachs.admin_url)
    dump = {}
    with engine.connect() as conn:
        names = [
            f"tap_schema.{name}"
            for name in sa.inspect(conn).get_table_names(schema="tap_schema")
            if name != "tapjobs"
        ]
        for name in [*sorted(names), "dc.tablemeta"]:
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
            dump[name] = sorted((tuple(row) for row in rows), key=repr)
    engine.dispose()
    return dump


def test_publish_into_dachs(dachs: Dachs, vosim_settings: Settings) -> None:
    before = _dump(dachs)
    mapping = ArchiveMapping.from_toml(DATA / "dachs_mapping.toml")

    report = publish(vosim_settings, dachs.engine_url, mapping=mapping, dachs_rd=VOSIM_RD)
    assert report.rows["image"] == len(cat.PUBLISHED)
    assert report.tap_schema is None  # DaCHS' TAP_SCHEMA is DaCHS' to write
    assert _dump(dachs) == before  # nothing is served before DaCHS is told
    written = VOSIM_RD.stat().st_mtime_ns
    publish(vosim_settings, dachs.engine_url, mapping=mapping, dachs_rd=VOSIM_RD)
    assert VOSIM_RD.stat().st_mtime_ns == written  # publishing twice: the same descriptor

    dachs.server.run("imp", "-m", str(VOSIM_RD))
    service = dachs.tap()

    listed = service.run_sync(
        "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'similarity'"
    )
    assert {str(name) for name in listed["table_name"]} == SIMILARITY_TABLES
    assert {table.name for table in service.tables} >= SIMILARITY_TABLES
    columns = service.run_sync(
        "SELECT column_name FROM TAP_SCHEMA.columns WHERE table_name = 'similarity.neighbour'"
    )
    assert {str(name) for name in columns["column_name"]} == {
        "obs_publisher_did",
        "rank",
        "neighbour_did",
        "cosine_similarity",
        "model_id",
    }

    joined = service.run_sync(
        "SELECT o.obs_publisher_did, o.dataproduct_type, n.model_id, n.neighbour_did, "
        "m.target_name "
        "FROM ivoa.obscore AS o "
        "JOIN similarity.neighbour AS n ON n.obs_publisher_did = o.obs_publisher_did "
        "JOIN ivoa.obscore AS m ON m.obs_publisher_did = n.neighbour_did"
    ).to_table()
    rows = {
        (str(row["obs_publisher_did"]), int(row["model_id"]), str(row["neighbour_did"]))
        for row in joined
    }
    assert rows == cat.expected_neighbours(set(cat.PUBLISHED))
    assert len(joined) == len(rows)
    for row in joined:
        index = cat.index_of(str(row["obs_publisher_did"]))
        assert str(row["dataproduct_type"]) == (
            "image" if cat.kind(index) == "continuum" else "cube"
        )

    hidden = service.run_sync(
        "SELECT COUNT(*) AS n FROM similarity.neighbour "
        f"WHERE neighbour_did IN ('{cat.did(cat.FUTURE)}', '{cat.did(cat.DISAGREEING)}')"
    )
    assert int(hidden["n"][0]) == 0
    vector = service.run_sync(
        "SELECT vector FROM similarity.embedding "
        f"WHERE obs_publisher_did = '{cat.did(1)}' AND model_id = 1"
    )
    np.testing.assert_allclose(np.asarray(vector["vector"][0], dtype=np.float32), cat.vector(1, 1))

    if taplint_available():
        lint = run_taplint(dachs.server.tap_url, timeout_s=400)
        print(
            f"taplint on DaCHS with vosim's tables: {lint.errors} errors, "
            f"{lint.warnings} warnings, {lint.failures} failures"
        )
        assert lint.errors == 0, lint.describe("E")

    with pytest.raises(PublishError, match="dachs drop"):
        unpublish(dachs.engine_url, dachs_rd=VOSIM_RD)
    dachs.server.run("drop", str(VOSIM_RD))
    unpublished = unpublish(dachs.engine_url, dachs_rd=VOSIM_RD)
    assert unpublished.dachs_rd == VOSIM_RD and not VOSIM_RD.exists()
    assert _dump(dachs) == before
    assert not SIMILARITY_TABLES & {table.name for table in dachs.tap().tables}
    engine = sa.create_engine(dachs.admin_url)
    with engine.connect() as conn:
        assert "similarity" not in sa.inspect(conn).get_schema_names()
    engine.dispose()
