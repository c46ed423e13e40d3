"""/tap/async as UWS 1.1 describes it: phases, job list, sub-resources, blocking, restarts."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from .helpers import http, query_status, votable
from .server import RunningServer

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
QUICK = "SELECT TOP 3 obs_publisher_did FROM ivoa.obscore ORDER BY obs_publisher_did"
# 8 rows to the 9th power: long enough to abort or time out on both backends
SLOW = "SELECT COUNT(*) AS n FROM " + ", ".join(f"ivoa.obscore AS t{i}" for i in range(9))


def create(server: RunningServer, query: str = QUICK, **params: object) -> str:
    response = http.post(f"{server.tap_url}/async", data={"LANG": "ADQL", "QUERY": query, **params})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def document(job_url: str, **params: object) -> ET.Element:
    response = http.get(job_url, params=params, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(("application/xml", "text/xml"))
    return ET.fromstring(response.content)


def phase(job_url: str) -> str:
    return http.get(f"{job_url}/phase").text


def wait_for(job_url: str, phases: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (current := phase(job_url)) not in phases:
        assert time.monotonic() < deadline, f"job still {current}"
        time.sleep(0.05)
    return current


def test_a_job_goes_pending_queued_executing_completed(tap_server: RunningServer) -> None:
    job_url = create(tap_server, RUNID="run-1")
    job = document(job_url)
    assert job.get("version") == "1.1"
    assert job.findtext(f"{UWS}phase") == "PENDING"
    assert job.findtext(f"{UWS}runId") == "run-1"
    assert job.find(f"{UWS}ownerId").get(XSI_NIL) == "true"
    assert job.find(f"{UWS}quote").get(XSI_NIL) == "true"
    assert job_url.endswith("/" + job.findtext(f"{UWS}jobId"))
    parameters = {p.get("id"): p.text for p in job.iter(f"{UWS}parameter")}
    assert parameters["QUERY"] == QUICK and parameters["LANG"] == "ADQL"
    response = http.post(f"{job_url}/phase", data={"PHASE": "RUN"})
    assert response.status_code == 303 and response.headers["location"] == job_url
    assert wait_for(job_url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    job = document(job_url)
    assert job.findtext(f"{UWS}startTime") and job.findtext(f"{UWS}endTime")
    [result] = job.iter(f"{UWS}result")
    assert result.get("id") == "result"
    href = result.get("{http://www.w3.org/1999/xlink}href")
    assert href == f"{job_url}/results/result"
    content = http.get(href).content
    assert len(votable(content).get_first_table().array) == 3
    assert int(result.get("size")) == len(content)
    results = ET.fromstring(http.get(f"{job_url}/results").content)
    assert [r.get("id") for r in results.iter(f"{UWS}result")] == ["result"]


def test_phase_run_at_creation_and_blocking_wait(tap_server: RunningServer) -> None:
    job_url = create(tap_server, PHASE="RUN")
    started = time.monotonic()
    phases = []
    while not phases or phases[-1] in ("QUEUED", "EXECUTING"):
        # each blocking GET returns when the phase changes (UWS 1.1, section 2.2.1.2)
        phases.append(document(job_url, WAIT=30).findtext(f"{UWS}phase"))
        assert len(phases) <= 3
    assert phases[-1] == "COMPLETED"
    assert time.monotonic() - started < 20


def test_wait_returns_after_its_time_on_a_pending_job(tap_server: RunningServer) -> None:
    job_url = create(tap_server)
    started = time.monotonic()
    job = document(job_url, WAIT=1)
    assert 0.9 < time.monotonic() - started < 10
    assert job.findtext(f"{UWS}phase") == "PENDING"
    started = time.monotonic()
    document(job_url, WAIT=5, PHASE="EXECUTING")  # not in that phase: returns at once
    assert time.monotonic() - started < 1


def test_wait_wakes_up_when_the_phase_changes(tap_server: RunningServer) -> None:
    job_url = create(tap_server, SLOW)
    http.post(f"{job_url}/phase", data={"PHASE": "RUN"})
    wait_for(job_url, {"EXECUTING"})
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        blocking = client.build_request("GET", job_url, params={"WAIT": 20})
        http.post(f"{job_url}/phase", data={"PHASE": "ABORT"})
        job = ET.fromstring(client.send(blocking).content)
    assert job.findtext(f"{UWS}phase") == "ABORTED"
    assert time.monotonic() - started < 10


def test_abort_stops_an_executing_query(tap_server: RunningServer) -> None:
    job_url = create(tap_server, SLOW, PHASE="RUN")
    wait_for(job_url, {"EXECUTING"})
    response = http.post(f"{job_url}/phase", data={"PHASE": "ABORT"})
    assert response.status_code == 303
    assert phase(job_url) == "ABORTED"
    # the worker is free again: a quick job completes
    quick = create(tap_server, PHASE="RUN")
    assert wait_for(quick, {"COMPLETED", "ERROR"}, timeout=30) == "COMPLETED"
    part = tap_server.settings.job_dir / job_url.rsplit("/", 1)[1] / "result.part"
    deadline = time.monotonic() + 30  # the aborted query's thread ends on its own time
    while part.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not part.exists()


def test_abort_a_pending_job_and_bad_phase_values(tap_server: RunningServer) -> None:
    job_url = create(tap_server)
    assert http.post(f"{job_url}/phase", data={"PHASE": "ABORT"}).status_code == 303
    assert phase(job_url) == "ABORTED"
    assert http.post(f"{job_url}/phase", data={"PHASE": "SUSPEND"}).status_code == 400


def test_failed_query_ends_in_error_with_a_summary_and_error_document(
    tap_server: RunningServer,
) -> None:
    job_url = create(tap_server, "DUFF QUERY", PHASE="RUN")
    assert wait_for(job_url, {"COMPLETED", "ERROR"}) == "ERROR"
    job = document(job_url)
    summary = job.find(f"{UWS}errorSummary")
    assert summary is not None and summary.findtext(f"{UWS}message")
    response = http.get(f"{job_url}/error")
    assert response.status_code == 200
    assert query_status(response.content)[0][0] == "ERROR"
    assert http.get(f"{create(tap_server)}/error").status_code == 404


def test_delete_and_action_delete_answer_303_then_404(tap_server: RunningServer) -> None:
    for method in ("DELETE", "ACTION"):
        job_url = create(tap_server, PHASE="RUN")
        wait_for(job_url, {"COMPLETED"})
        folder = tap_server.settings.job_dir / job_url.rsplit("/", 1)[1]
        assert folder.is_dir()
        if method == "DELETE":
            response = http.delete(job_url)
        else:
            response = http.post(job_url, data={"action": "DELETE"})
        assert response.status_code == 303
        assert response.headers["location"] == f"{tap_server.tap_url}/async"
        assert http.get(job_url).status_code == 404
        assert not folder.exists()


def test_job_sub_resources(tap_server: RunningServer) -> None:
    job_url = create(tap_server)
    for name in ("quote", "owner", "executionduration", "destruction", "phase"):
        response = http.get(f"{job_url}/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
    assert http.get(f"{job_url}/quote").text == ""
    assert http.get(f"{job_url}/owner").text == ""
    response = http.post(f"{job_url}/executionduration", data={"EXECUTIONDURATION": "30"})
    assert response.status_code == 303
    assert http.get(f"{job_url}/executionduration").text == "30"
    http.post(f"{job_url}/executionduration", data={"EXECUTIONDURATION": "99999999"})
    assert http.get(f"{job_url}/executionduration").text == "120"  # the hard limit
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = http.post(f"{job_url}/destruction", data={"DESTRUCTION": tomorrow})
    assert response.status_code == 303
    assert http.get(f"{job_url}/destruction").text.startswith(tomorrow[:-1])
    assert http.post(f"{job_url}/destruction", data={"DESTRUCTION": "soon"}).status_code == 400


def test_parameters_change_only_while_pending(tap_server: RunningServer) -> None:
    job_url = create(tap_server)
    response = http.post(f"{job_url}/parameters", data={"MAXREC": "1", "runId": "again"})
    assert response.status_code == 303
    job = document(job_url)
    parameters = {p.get("id"): p.text for p in job.iter(f"{UWS}parameter")}
    assert parameters["MAXREC"] == "1" and parameters["RUNID"] == "again"
    assert job.findtext(f"{UWS}runId") == "again"
    listed = ET.fromstring(http.get(f"{job_url}/parameters").content)
    assert {p.get("id") for p in listed.iter(f"{UWS}parameter")} >= {"QUERY", "MAXREC"}
    http.post(f"{job_url}/phase", data={"PHASE": "RUN"})
    wait_for(job_url, {"COMPLETED"})
    assert http.post(f"{job_url}/parameters", data={"MAXREC": "5"}).status_code == 403
    assert (
        http.post(f"{job_url}/executionduration", data={"EXECUTIONDURATION": "5"}).status_code
        == 403
    )
    result = http.get(f"{job_url}/results/result").content
    assert len(votable(result).get_first_table().array) == 1
    assert [s for s, _ in query_status(result)] == ["OK", "OVERFLOW"]


def test_async_upload_is_kept_with_the_job(tap_server: RunningServer) -> None:
    response = http.post(
        f"{tap_server.tap_url}/async",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t1",
            "UPLOAD": "t1,param:t1",
        },
        files={"t1": ("t1.csv", b"a,b\n1,2\n3,4\n5,6\n")},
    )
    job_url = response.headers["location"]
    job = document(job_url)
    [inline] = [p for p in job.iter(f"{UWS}parameter") if p.get("byReference") == "true"]
    assert http.get(inline.text).content == b"a,b\n1,2\n3,4\n5,6\n"
    http.post(f"{job_url}/phase", data={"PHASE": "RUN"})
    assert wait_for(job_url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    result = votable(http.get(f"{job_url}/results/result").content).get_first_table()
    assert int(result.array["n"][0]) == 3


def test_job_list_filters(tap_server: RunningServer) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    pending = create(tap_server).rsplit("/", 1)[1]
    done_url = create(tap_server, PHASE="RUN")
    wait_for(done_url, {"COMPLETED"})
    done = done_url.rsplit("/", 1)[1]

    def listed(**params: object) -> list[str]:
        response = http.get(f"{tap_server.tap_url}/async", params=params)
        assert response.status_code == 200
        root = ET.fromstring(response.content)
        assert root.get("version") == "1.1"
        return [ref.get("id") for ref in root.iter(f"{UWS}jobref")]

    assert {pending, done} <= set(listed())
    assert pending in listed(PHASE="PENDING") and done not in listed(PHASE="PENDING")
    assert {pending, done} <= set(listed(phase=["PENDING", "COMPLETED"]))
    assert listed(LAST=2) == [done, pending]
    assert set(listed(AFTER=before.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))) >= {pending, done}
    assert listed(AFTER=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert http.get(f"{tap_server.tap_url}/async", params={"LAST": "0"}).status_code == 400
    assert http.get(f"{tap_server.tap_url}/async", params={"PHASE": "NAPPING"}).status_code == 400


def test_parameters_are_not_posted_to_the_job_itself(tap_server: RunningServer) -> None:
    job_url = create(tap_server)
    assert http.post(job_url, data={"MAXREC": "5"}).status_code == 400  # DALI 1.1 section 2.1


def test_unknown_jobs_are_404(tap_server: RunningServer) -> None:
    for path in ("", "/phase", "/results", "/results/result", "/error", "/parameters"):
        assert http.get(f"{tap_server.tap_url}/async/nosuchjob{path}").status_code == 404


def test_execution_duration_is_enforced(tap_server: RunningServer) -> None:
    job_url = create(tap_server, SLOW, EXECUTIONDURATION=1, PHASE="RUN")
    started = time.monotonic()
    assert wait_for(job_url, {"COMPLETED", "ERROR", "ABORTED"}) == "ERROR"
    assert time.monotonic() - started < 15
    message = document(job_url).find(f"{UWS}errorSummary").findtext(f"{UWS}message")
    assert "longer" in message
    folder = tap_server.settings.job_dir / job_url.rsplit("/", 1)[1]
    assert not (folder / "result.part").exists()  # no half-written result left behind


def test_destroyed_jobs_and_their_files_are_cleaned_up(tap_server: RunningServer) -> None:
    job_url = create(tap_server, PHASE="RUN")
    wait_for(job_url, {"COMPLETED"})
    job_id = job_url.rsplit("/", 1)[1]
    folder = tap_server.settings.job_dir / job_id
    assert folder.is_dir()
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert http.post(f"{job_url}/destruction", data={"DESTRUCTION": past}).status_code == 303
    destroyed = tap_server.app.state.tap.jobs.destroy_expired()
    assert job_id in destroyed
    assert not folder.exists()
    assert http.get(job_url).status_code == 404
    jobs = tap_server.catalogue.table("vosim.uws_job")
    with tap_server.catalogue.begin() as conn:
        assert conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first() is None


@pytest.mark.parametrize("left", ["EXECUTING", "QUEUED"])
def test_a_restart_never_loses_a_job(new_server, left: str) -> None:
    with new_server() as server:
        job_url = create(server)
        job_id = job_url.rsplit("/", 1)[1]
        catalogue, settings = server.catalogue, server.settings
    # as if the previous process had died with the job in this phase
    jobs = catalogue.table("vosim.uws_job")
    with catalogue.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(phase=left))
    with new_server() as server:
        job_url = f"{server.tap_url}/async/{job_id}"
        if left == "EXECUTING":
            job = document(job_url)
            assert job.findtext(f"{UWS}phase") == "ERROR"
            summary = job.find(f"{UWS}errorSummary")
            assert summary.get("type") == "transient"
            assert "restarted" in summary.findtext(f"{UWS}message")
        else:
            assert wait_for(job_url, {"COMPLETED", "ERROR"}) == "COMPLETED"
        assert settings.job_dir.is_dir()


def test_a_stop_mid_job_marks_it_error(new_server) -> None:
    with new_server() as server:
        job_url = create(server, SLOW, PHASE="RUN")
        job_id = job_url.rsplit("/", 1)[1]
        wait_for(job_url, {"EXECUTING"})
    with new_server() as server:
        job = document(f"{server.tap_url}/async/{job_id}")
        assert job.findtext(f"{UWS}phase") == "ERROR"
        assert "restarted" in job.find(f"{UWS}errorSummary").findtext(f"{UWS}message")
