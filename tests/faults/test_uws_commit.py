"""The server killed at every commit point of its async jobs: after a restart each is settled.

A job's rows (``vosim.uws_job`` and its parameters and results) live in one
file, and its result and final phase are written to its folder before the
database. The sweep runs a server (the ASGI application, in a child) that
creates and runs an async job, and SIGKILLs it at its 1st, 2nd, … commit
point (`tests.faults.commit_points`: before and after each commit that
writes, and each rename of a finished file; on PostgreSQL the commits only),
until a run gets through. After each kill the restarted service must leave
no job wedged: the job ends COMPLETED (its result served in full) or ERROR
with a reason, or stays PENDING (its creation was never answered) and runs
when asked; no partial file is left, and the restart logs a ``repaired:``
line for each job it found executing.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time
import xml.etree.ElementTree as ET
from functools import partial

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tap_schema import Settings, open_catalogue
from tests.faults.commit_points import CommitPoints
from tests.faults.strace_faults import fork_and_wait
from tests.pg import sessions_ended
from tests.tap import catalogue as small
from tests.tap.helpers import votable
from vo_service.app import create_app

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
JOB = {"LANG": "ADQL", "QUERY": "SELECT TOP 3 obs_id FROM ivoa.obscore ORDER BY obs_id"}
N_JOBS = 1
FINAL = {"COMPLETED", "ERROR"}
MAX_POINTS = 60
"""More commit points than serving these jobs passes: the sweep ends before."""


def _serve_jobs(settings: Settings, points: CommitPoints, *, renames: bool = True) -> None:
    """Serve; create and run each job (PHASE=RUN at creation) and wait for its end, in turn.

    One job at a time, so that the n-th point is the same one in every run.
    """
    points.install(renames=renames)
    with TestClient(create_app(settings, allowed_hosts=[]), follow_redirects=False) as client:
        for _ in range(N_JOBS):
            created = client.post("/tap/async", data={**JOB, "PHASE": "RUN"})
            assert created.status_code == 303, created.text
            assert _wait(client, created.headers["location"]) == "COMPLETED"


def _wait(client: TestClient, url: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while (phase := client.get(f"{url}/phase").text) not in FINAL:
        assert time.monotonic() < deadline, f"{url} still {phase}"
        time.sleep(0.02)
    return phase


def _phases(settings: Settings) -> dict[str, str]:
    """Each stored job's phase, as the killed server left it."""
    catalogue = open_catalogue(settings, create=False)
    jobs = catalogue.table("vosim.uws_job")
    try:
        with catalogue.begin() as conn:
            return dict(conn.execute(sa.select(jobs.c.job_id, jobs.c.phase)).all())
    finally:
        catalogue.dispose()


def _check_restart(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> tuple[set[str], list[str]]:
    """Restart: every job settled or runnable, results whole, a line per repair.

    Returns the phases the kill left, and the repair lines.
    """
    left = _phases(settings)
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING),
        TestClient(create_app(settings, allowed_hosts=[]), follow_redirects=False) as client,
    ):
        for job_id, phase in left.items():
            url = f"/tap/async/{job_id}"
            if phase == "PENDING":  # its creation was never answered: it runs when asked
                assert client.post(f"{url}/phase", data={"PHASE": "RUN"}).status_code == 303
            ended = _wait(client, url)
            document = ET.fromstring(client.get(url).content)
            if ended == "COMPLETED":
                result = client.get(f"{url}/results/result")
                assert result.status_code == 200
                assert len(votable(result.content).get_first_table().array) == 3
            else:
                assert document.findtext(f"{UWS}errorSummary/{UWS}message", "").strip()
                assert phase == "EXECUTING", (job_id, phase)  # only an interrupted job fails
        repaired = [record.getMessage() for record in caplog.records]
    repaired = [line for line in repaired if line.startswith("repaired:")]
    executing = sorted(job_id for job_id, phase in left.items() if phase == "EXECUTING")
    assert sorted(line.split()[2] for line in repaired) == executing, repaired
    assert not list(settings.job_dir.rglob("*.part"))
    return set(left.values()), repaired


def _forget_jobs(settings: Settings) -> None:
    """No job in the catalogue or the job folder: as before the first run."""
    catalogue = open_catalogue(settings, create=False)
    with catalogue.begin() as conn:
        for name in ("uws_job_result", "uws_job_parameter", "uws_job"):
            conn.execute(catalogue.table(f"vosim.{name}").delete())
    catalogue.dispose()
    shutil.rmtree(settings.job_dir, ignore_errors=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_killed_at_every_commit_point_of_its_jobs(
    backend: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    settings: Settings = request.getfixturevalue(
        f"{'pg' if backend == 'postgresql' else backend}_settings"
    )
    catalogue = open_catalogue(settings)
    small.fill(catalogue)
    catalogue.dispose()
    left_behind: set[str] = set()
    repairs: list[str] = []
    for when in range(1, MAX_POINTS):
        _forget_jobs(settings)
        points = CommitPoints(when)  # on PostgreSQL its commits only: the files are the same
        ended_by = fork_and_wait(
            partial(_serve_jobs, settings, points, renames=backend == "sqlite")
        )
        if ended_by is None:  # the run got past its last point: every point was hit
            assert set(_phases(settings).values()) == {"COMPLETED"}
            break
        assert ended_by == signal.SIGKILL
        if backend == "postgresql":
            sessions_ended(settings.db_url)
        phases, repaired = _check_restart(settings, caplog)
        left_behind |= phases
        repairs += repaired
    else:
        raise AssertionError(f"the server still killed at its {MAX_POINTS}th commit point")
    assert {"PENDING", "QUEUED", "EXECUTING", "COMPLETED"} <= left_behind  # each kind was hit
    # caught executing, and caught between its outcome file and its final phase's commit
    assert {line.split(" ", 3)[3].split()[0] for line in repairs} == {"was", "had"}
