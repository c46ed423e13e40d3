"""Ingest killed at every sync of its commits: the next ingest repairs and completes.

On SQLite each schema is a file and a multi-file commit is atomic per file
only (WAL), so the sweep SIGKILLs a first ``ingest`` of a small archive at
its 1st, 2nd, … ``fdatasync`` (strace fault injection), until a run gets
through: every point of every commit, catalogue creation included, is hit
once. On PostgreSQL, which commits all schemas at once, the ingest process
syncs only its own files (cut-outs, previews): the sweep kills it at each
``fsync``. After each kill the test checks what an operator would: the next
plain ingest exits cleanly, says what it repaired, every FITS file is then
exactly once in each of ``ivoa.obscore``, ``similarity.image`` and
``vosim.product`` with its cut-out, and DataLink, the preview and the file
answer for each of them.
"""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from astropy.io.votable import parse_single_table
from starlette.testclient import TestClient

from model_training.ingest.stage import ingest_folder
from tap_schema import Settings
from tests.faults.strace_faults import kill_forked_at
from tests.pg import fresh_database
from tests.test_ingest import assert_consistent, catalogue_state, make_archive, run
from vo_service.app import create_app

N_IMAGES = 1
N_FILES = N_IMAGES + 2  # make_archive adds a cube and a gzipped image
BATCH = 2  # two batch commits: the second one torn beside a first one committed
MAX_SYNCS = 300
"""More sync calls than any ingest of this archive makes: the sweep ends before."""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archive(tmp_path_factory.mktemp("faults") / "archive", n_images=N_IMAGES)


@contextmanager
def _sqlite(folder: Path) -> Iterator[Settings]:
    yield Settings.from_env({"VOSIM_DATA_DIR": str(folder / "data")})


@contextmanager
def _postgresql(folder: Path, server_url: str) -> Iterator[Settings]:
    with fresh_database(server_url, "vosim_sweep") as url:
        yield Settings.from_env({"VOSIM_DATA_DIR": str(folder / "data"), "VOSIM_DB_URL": url})


def _ingest(settings: Settings, archive: Path) -> None:
    report = ingest_folder(settings, archive, progress=False, workers=1, batch_size=BATCH)
    assert report.exit_status == 0, report


def assert_served(settings: Settings) -> None:
    """DataLink lists each product's file and preview, and both are served, non-empty."""
    products = catalogue_state(settings)["vosim.product"]
    app = create_app(settings, allowed_hosts=[])
    with TestClient(app) as client:
        for product in products:
            did = product["obs_publisher_did"]
            links = client.get("/datalink", params={"ID": did})
            assert links.status_code == 200, links.text
            table = parse_single_table(io.BytesIO(links.content)).to_table()
            rows = {row["semantics"]: row for row in table}
            assert not any(str(row["error_message"]).strip() for row in table), links.text
            key = quote(product["product_key"], safe="")
            assert rows["#this"]["access_url"].endswith(f"/files/{key}.fits")
            for semantics in ("#this", "#preview"):
                path = rows[semantics]["access_url"].split("testserver", 1)[1]
                answer = client.get(path)
                assert answer.status_code == 200, (semantics, did, answer.text)
                sent = int(answer.headers["content-length"])  # as stored: gzipped stays so
                assert sent == rows[semantics]["content_length"] > 0


NewSettings = Callable[[Path], AbstractContextManager[Settings]]


def _sweep(
    archive: Path, tmp_path: Path, syscall: str, new_settings: NewSettings
) -> list[dict[str, int]]:
    """Kill a first ingest at each ``syscall`` call in turn; repair, check, and go on.

    Returns the row counts of the three tables right after each kill.
    """
    torn_states = []
    for when in range(1, MAX_SYNCS):
        with new_settings(tmp_path / f"kill{when}") as settings:
            ended_by = kill_forked_at(lambda s=settings: _ingest(s, archive), syscall, when)
            if ended_by is None:  # the run got past its last sync: every point was hit
                assert_consistent(settings, N_FILES)
                return torn_states
            assert ended_by == signal.SIGKILL
            torn_states.append(_counts(settings))

            report = run(settings, archive)

            assert report.failed == 0, report.failures
            assert report.ingested + report.updated + report.unchanged == N_FILES
            _check_repair_line(report.warnings, torn_states[-1])
            assert_consistent(settings, N_FILES)
            assert_served(settings)
    raise AssertionError(f"ingest still killed at its {MAX_SYNCS}th {syscall}")


def _counts(settings: Settings) -> dict[str, int]:
    """Rows per product table, or nothing when the killed run left no catalogue to read."""
    try:
        return {name: len(rows) for name, rows in catalogue_state(settings).items()}
    except Exception:  # tables not created yet
        return {}


def _check_repair_line(warnings: list[str], torn: dict[str, int]) -> None:
    """Rows committed without their bookkeeping are repaired, and the report says so."""
    repaired = [line for line in warnings if line.startswith("repaired")]
    if torn and torn["ivoa.obscore"] > torn["vosim.product"]:
        assert repaired and "ivoa.obscore" in repaired[0], warnings
    else:
        assert not repaired, warnings


def test_ingest_killed_at_every_fdatasync_on_sqlite(archive: Path, tmp_path: Path) -> None:
    torn = _sweep(archive, tmp_path, "fdatasync", _sqlite)
    assert len(torn) > 20  # catalogue creation and both batch commits
    # the sweep did tear a batch commit between the files (the case being repaired)
    assert any(state and state["ivoa.obscore"] > state["vosim.product"] for state in torn)


def test_ingest_killed_at_every_fsync_on_postgresql(
    archive: Path, tmp_path: Path, pg_server_url: str
) -> None:
    torn = _sweep(archive, tmp_path, "fsync", lambda folder: _postgresql(folder, pg_server_url))
    assert torn  # the cut-outs of each batch are fsynced before its commit
    for state in torn:  # one transaction: every table or none
        assert len(set(state.values())) <= 1, state
