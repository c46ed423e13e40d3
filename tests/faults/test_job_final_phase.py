"""Jobs whose final phase the database refused (locked, disk full) end for the real reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from tap_schema import Settings, open_catalogue
from vo_service.uws.models import ExecutionPhase, JobError, JobFailedError, JobResult
from vo_service.uws.service import JobLimits, JobService
from vo_service.uws.storage import JobStore

LIMITS = JobLimits(60, 600, 3600, 7200, 1)


def _succeeding(job, token, folder: Path):
    (folder / "result.xml").write_text("<VOTABLE/>")
    return [JobResult("result", "result.xml", "application/x-votable+xml", 10)]


def _failing(job, token, folder: Path):
    raise JobFailedError(JobError("the query needs a column that does not exist"))


def _locked(*args, **kwargs):
    raise OperationalError("UPDATE vosim.uws_job", {}, Exception("database is locked"))


def _wait_for_phase(service: JobService, job_id: str, phases: set[str], seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = service.get(job_id)
        if job.phase.value in phases:
            return job
        time.sleep(0.05)
    return service.get(job_id)


def _service(settings: Settings, work) -> JobService:
    catalogue = open_catalogue(settings)
    return JobService(JobStore(catalogue), job_dir=settings.job_dir, limits=LIMITS, work=work)


@pytest.mark.parametrize(
    ("work", "phase", "reason"),
    [(_succeeding, "COMPLETED", None), (_failing, "ERROR", "does not exist")],
)
def test_a_final_phase_the_database_refused_is_recorded_at_restart(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, work, phase: str, reason
) -> None:
    service = _service(sqlite_settings, work)
    monkeypatch.setattr(service.store, "complete", _locked)
    monkeypatch.setattr(service.store, "change_phase", _refuse_final(service.store.change_phase))
    job_id = service.create([("QUERY", "SELECT 1")]).job_id
    service.start(job_id)
    _wait_for_outcome(sqlite_settings, job_id)
    service.shutdown()
    assert service.get(job_id).phase == ExecutionPhase.EXECUTING  # the database refused it
    monkeypatch.undo()

    restarted = _service(sqlite_settings, work)
    restarted.recover()

    job = restarted.get(job_id)
    assert job.phase.value == phase
    if reason:
        assert reason in job.error.message and "restarted" not in job.error.message
    else:
        assert [result.result_id for result in job.results] == ["result"]
    restarted.shutdown()


def test_a_final_phase_recorded_once_the_database_accepts_writes(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(sqlite_settings, _succeeding)
    real_complete, refused = service.store.complete, []

    def locked_twice(*args, **kwargs):
        if len(refused) < 2:
            refused.append(1)
            _locked()
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(service.store, "complete", locked_twice)
    job_id = service.create([("QUERY", "SELECT 1")]).job_id
    service.start(job_id)

    assert _wait_for_phase(service, job_id, {"COMPLETED", "ERROR"}).phase.value == "COMPLETED"
    assert len(refused) == 2
    _wait_for_outcome(sqlite_settings, job_id, present=False)  # removed just after the write
    service.shutdown()


def _refuse_final(change_phase):
    def refusing(job_id, phase, **kwargs):
        if phase == ExecutionPhase.ERROR:
            _locked()
        return change_phase(job_id, phase, **kwargs)

    return refusing


def _wait_for_outcome(settings: Settings, job_id: str, present: bool = True) -> None:
    path = settings.job_dir / job_id / "outcome.json"
    deadline = time.monotonic() + 30
    while path.exists() != present and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists() == present


def test_a_job_caught_executing_by_a_crash_leaves_no_partial_result(
    sqlite_settings: Settings,
) -> None:
    crashed = _service(sqlite_settings, _succeeding)
    job_id = crashed.create([("QUERY", "SELECT 1")]).job_id
    crashed.store.change_phase(
        job_id, ExecutionPhase.EXECUTING, allowed_from=[ExecutionPhase.PENDING]
    )
    folder = sqlite_settings.job_dir / job_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.part").write_bytes(b"")  # the query had not written a byte yet
    crashed.shutdown()

    restarted = _service(sqlite_settings, _succeeding)
    restarted.recover()

    assert restarted.get(job_id).phase == ExecutionPhase.ERROR
    assert list(folder.glob("*.part")) == []
    restarted.shutdown()
