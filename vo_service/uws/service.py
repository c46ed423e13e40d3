"""The life cycle of UWS jobs (UWS 1.1, section 2): create, run, abort, wait, destroy.

This layer holds the rules of the standard and nothing of HTTP: which phase
may follow which, what a client may still change, when a job is destroyed.
Jobs run in a small pool of worker threads; what a job does is the
``work`` function given to the service. Everything a job is lives in the
database and under ``job_dir/<job_id>``, so a restart loses nothing:
queued jobs are queued again, and a job caught executing is marked ERROR
with a message saying why (`JobService.recover`).

A job's final phase is written to its folder (``outcome.json``) before the
database: when the database refuses the write (locked by a long pipeline
stage, a full disk), the write is retried with a bounded, logged wait, then
by each maintenance pass and at the next start, so the job still ends in
its real final phase, with its real reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import anyio
from anyio import to_thread
from sqlalchemy.exc import OperationalError

from tap_schema.database import folder_writable
from tap_schema.release import naive_utc, utc_now
from vo_service.cancellation import CancelToken

from .models import (
    ACTIVE_PHASES,
    ExecutionPhase,
    Job,
    JobError,
    JobFailedError,
    JobParameter,
    JobResult,
)
from .storage import JobStore
from .writes import READ_ONLY, WriteHealth, write_failure

__all__ = [
    "InvalidPhaseError",
    "JobLimits",
    "JobService",
    "UnknownJobError",
    "Work",
    "parse_instant",
]

log = logging.getLogger(__name__)

Work = Callable[[Job, CancelToken, Path], Sequence[JobResult]]
"""What a job does: given the job, a cancel token and its folder, returns its results."""

# job control parameters (UWS 1.1, section 2.2.3): they act on the job, they are not its parameters
_CONTROL = frozenset({"PHASE", "ACTION", "EXECUTIONDURATION", "DESTRUCTION"})
_ABORTABLE = frozenset(
    {
        ExecutionPhase.PENDING,
        ExecutionPhase.QUEUED,
        ExecutionPhase.EXECUTING,
        ExecutionPhase.HELD,
        ExecutionPhase.SUSPENDED,
    }
)
_POLL_S = 1.0


class UnknownJobError(LookupError):
    """No such job (or it was destroyed): HTTP 404."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"there is no job {job_id!r}; it may have been deleted or destroyed")


class InvalidPhaseError(ValueError):
    """A request the job's current phase does not allow: HTTP 403 (UWS 1.1, section 2.2)."""


@dataclass(frozen=True)
class JobLimits:
    """Execution duration and retention limits of the jobs, in seconds, and worker count."""

    default_duration_s: int
    hard_duration_s: int
    default_retention_s: int
    hard_retention_s: int
    workers: int


class JobService:
    """Creates, runs and destroys the jobs of one UWS job list.

    Parameters
    ----------
    store
        Where jobs are persisted.
    job_dir
        Folder holding one sub-folder per job (inline uploads, results).
    limits
        Execution duration and retention limits.
    work
        What a job does.

    ``writes`` tells whether the storage takes writes (`vo_service.uws.writes`).
    """

    def __init__(self, store: JobStore, *, job_dir: Path, limits: JobLimits, work: Work) -> None:
        self.store = store
        self.job_dir = job_dir
        self.limits = limits
        self.work = work
        self.writes = WriteHealth()
        self._executor = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="uws")
        self._running: dict[str, CancelToken] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    # -- the job list ------------------------------------------------------------------------

    def create(
        self,
        parameters: Iterable[tuple[str, str]],
        inline: Mapping[str, bytes] | None = None,
        *,
        owner_id: str | None = None,
        base_url: str | None = None,
    ) -> Job:
        """Create a job in phase PENDING (UWS 1.1, section 2.2.3.1).

        Job control parameters are honoured at creation: ``PHASE=RUN`` queues
        the job at once, ``RUNID`` tags it; ``EXECUTIONDURATION`` and
        ``DESTRUCTION`` set those values within the limits. Inline content
        (multipart parts) is saved in the job's folder and listed as a
        by-reference parameter (section 2.2.3.1.1). ``base_url`` is the
        service's public base URL as the creator reached it: the job's
        results are written later, without a request to tell it.
        """
        now = utc_now()
        job_id = secrets.token_hex(16)  # 128 random bits: a job's URL cannot be guessed
        pairs = [(name.upper(), value) for name, value in parameters]
        values = dict(pairs)
        folder = self.folder(job_id)
        stored = [JobParameter(name, value) for name, value in pairs if name not in _CONTROL]
        stored += self._save_inline(folder, inline or {})
        job = Job(
            job_id=job_id,
            phase=ExecutionPhase.PENDING,
            creation_time=now,
            execution_duration=self._duration(values.get("EXECUTIONDURATION")),
            destruction_time=self._destruction(now, values.get("DESTRUCTION")),
            run_id=values.get("RUNID"),
            owner_id=owner_id,
            parameters=tuple(stored),
            base_url=base_url,
        )
        self.store.add(job)
        if values.get("PHASE", "").upper() == "RUN":
            return self.start(job_id)
        return job

    def list(
        self,
        *,
        phases: Iterable[ExecutionPhase] = (),
        after: datetime | None = None,
        last: int | None = None,
    ) -> list[Job]:
        """Return the job list, newest first, filtered as UWS 1.1 section 2.2.2.1 describes."""
        return self.store.list(phases=phases, after=after, last=last)

    # -- one job -----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """Return a job; one past its destruction time is destroyed now and is unknown."""
        job = self.store.get(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        if job.destruction_time <= utc_now():
            self.delete(job_id)
            raise UnknownJobError(job_id)
        return job

    def folder(self, job_id: str) -> Path:
        """Return the folder of a job's files."""
        return self.job_dir / job_id

    def start(self, job_id: str) -> Job:
        """``PHASE=RUN``: queue a PENDING (or HELD) job; later phases are left as they are."""
        job = self.get(job_id)
        if job.phase in (ExecutionPhase.PENDING, ExecutionPhase.HELD) and self.store.change_phase(
            job_id, ExecutionPhase.QUEUED, allowed_from=(job.phase,)
        ):
            self._phase_changed(job_id)
            self._executor.submit(self._execute, job_id)
        return self.get(job_id)

    def abort(self, job_id: str) -> Job:
        """``PHASE=ABORT``: stop the job; results already made are kept (UWS 1.1, 2.1.4)."""
        self.get(job_id)
        if self.store.change_phase(
            job_id, ExecutionPhase.ABORTED, allowed_from=_ABORTABLE, end_time=utc_now()
        ):
            self._phase_changed(job_id)
        self._cancel(job_id)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Destroy a job: stop it, forget it, delete its files (UWS 1.1, section 2.1.5)."""
        self._cancel(job_id)
        existed = self.store.delete(job_id)
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        self._phase_changed(job_id)
        if not existed:
            raise UnknownJobError(job_id)

    def update_parameters(
        self, job_id: str, parameters: Iterable[tuple[str, str]], inline: Mapping[str, bytes]
    ) -> Job:
        """Add or replace parameters of a PENDING job (DALI 1.1, section 2.1).

        A parameter given again replaces the old value, except UPLOAD, which
        accumulates (TAP 1.1, section 2.3.8).
        """
        job = self.get(job_id)
        if job.phase != ExecutionPhase.PENDING:
            raise InvalidPhaseError(
                f"job {job_id} is {job.phase}; parameters can only change while PENDING"
            )
        updates = [JobParameter(name.upper(), value) for name, value in parameters]
        updates = [p for p in updates if p.name not in _CONTROL]
        updates += self._save_inline(self.folder(job_id), inline)
        replaced = {p.name.upper() for p in updates if p.name.upper() != "UPLOAD"}
        kept = [p for p in job.parameters if p.name.upper() not in replaced]
        self.store.replace_parameters(job_id, [*kept, *updates])
        run_id = next((p.value for p in reversed(updates) if p.name == "RUNID"), None)
        if run_id is not None:
            self.store.update(job_id, run_id=run_id)
        return self.get(job_id)

    def set_execution_duration(self, job_id: str, value: str) -> Job:
        """Change the execution duration of a PENDING job, within the hard limit (UWS 2.2.3.4)."""
        job = self.get(job_id)
        if job.phase != ExecutionPhase.PENDING:
            raise InvalidPhaseError(
                f"job {job_id} is {job.phase}; its execution duration can only change while PENDING"
            )
        self.store.update(job_id, execution_duration=self._duration(value))
        return self.get(job_id)

    def set_destruction(self, job_id: str, value: str) -> None:
        """Change the destruction time, at most the retention limit after creation (UWS 2.2.3.3).

        A time already past destroys the job at its next access or cleanup.
        """
        job = self.get(job_id)
        when = parse_instant(value, "DESTRUCTION")
        latest = job.creation_time + timedelta(seconds=self.limits.hard_retention_s)
        self.store.update(job_id, destruction_time=min(when, latest))

    async def wait(self, job_id: str, *, timeout_s: float, phase: str | None) -> Job:
        """Block until the job leaves its phase, or ``timeout_s`` passes (UWS 1.1, 2.2.1.2).

        Only an active phase (PENDING, QUEUED, EXECUTING) blocks, and only
        when it equals ``phase`` if that is given.
        """
        job = await to_thread.run_sync(self.get, job_id)
        expected = job.phase if phase is None else phase.upper()
        if job.phase not in ACTIVE_PHASES or job.phase != expected or timeout_s <= 0:
            return job
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.setdefault(job_id, []).append(entry)
        try:
            with anyio.move_on_after(timeout_s):
                while True:
                    with anyio.move_on_after(_POLL_S):
                        await event.wait()
                    event.clear()
                    job = await to_thread.run_sync(self.get, job_id)
                    if job.phase != expected:
                        break
        finally:
            with self._lock:
                self._waiters[job_id].remove(entry)
                if not self._waiters[job_id]:
                    del self._waiters[job_id]
        return await to_thread.run_sync(self.get, job_id)

    # -- maintenance -------------------------------------------------------------------------

    def recover(self) -> None:
        """At start-up: queue again the jobs left QUEUED, fail those left EXECUTING.

        A job caught executing by a stop or a crash cannot be resumed (its
        partial result is meaningless); it is put in phase ERROR with a
        message telling the client to run it again, never silently lost, and
        the partial files its work left (``*.part``, empty or cut short) are
        removed. When the storage refuses writes (read-only, full), the
        service starts all the same, for sync queries: `writes` says why jobs
        are refused.
        """
        try:
            self.job_dir.mkdir(parents=True, exist_ok=True)
            if not folder_writable(self.job_dir):
                self.writes.failed(READ_ONLY)
            self._recover()
        except Exception as error:
            reason = write_failure(error)
            if reason is None:
                raise
            log.warning("async jobs are refused: %s (%s)", reason, error)
            self.writes.failed(reason)

    def _recover(self) -> None:
        """Settle or fail each job left EXECUTING, with a ``repaired:`` line for each."""
        for job_id in self.store.ids(phases=[ExecutionPhase.EXECUTING]):
            if self._settle(job_id):
                log.warning(
                    "repaired: job %s had ended before the service stopped; its final phase is"
                    " recorded now",
                    job_id,
                )
            else:
                self.store.change_phase(
                    job_id,
                    ExecutionPhase.ERROR,
                    allowed_from=[ExecutionPhase.EXECUTING],
                    end_time=utc_now(),
                    error_type="transient",
                    error_message=_INTERRUPTED,
                )
                log.warning(
                    "repaired: job %s was executing when the service stopped; it is now in"
                    " phase ERROR, to be run again",
                    job_id,
                )
            self._remove_partial_files(job_id)
        for job_id in self.store.ids(phases=[ExecutionPhase.QUEUED]):
            self._executor.submit(self._execute, job_id)

    def _remove_partial_files(self, job_id: str) -> None:
        """Delete the ``*.part`` files a job's work (or its outcome) was cut short in."""
        folder = self.folder(job_id)
        for part in folder.glob("*.part") if folder.is_dir() else ():
            log.info("job %s: removing %s, left by an interrupted run", job_id, part)
            part.unlink(missing_ok=True)

    def destroy_expired(self) -> list[str]:
        """Destroy every job whose destruction time has passed, and stray job folders.

        Also records the final phase of jobs that ended while the database
        refused writes (see the module documentation).
        """
        with self._lock:
            running = set(self._running)
        for job_id in self.store.ids(phases=[ExecutionPhase.EXECUTING]):
            if job_id not in running:
                self._settle(job_id)
        expired = self.store.ids(destroyed_by=utc_now())
        for job_id in expired:
            with contextlib.suppress(UnknownJobError):
                self.delete(job_id)
        if self.job_dir.is_dir():
            known = set(self.store.ids())
            for folder in self.job_dir.iterdir():
                if folder.is_dir() and folder.name not in known:
                    shutil.rmtree(folder, ignore_errors=True)
        return expired

    def shutdown(self) -> None:
        """Stop the workers; executing jobs end in ERROR and can be run again."""
        self._stopping = True
        with self._lock:
            tokens = list(self._running.values())
        for token in tokens:
            token.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- execution ---------------------------------------------------------------------------

    def _execute(self, job_id: str) -> None:
        if self._stopping:
            return
        token = CancelToken()
        with self._lock:
            self._running[job_id] = token
        try:
            if not self.store.change_phase(
                job_id,
                ExecutionPhase.EXECUTING,
                allowed_from=[ExecutionPhase.QUEUED],
                start_time=utc_now(),
            ):
                return  # aborted or deleted while queued
            self._phase_changed(job_id)
            job = self.store.get(job_id)
            if job is None:
                return
            folder = self.folder(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            try:
                results = self.work(job, token, folder)
            except JobFailedError as failure:
                self._fail(job_id, failure.error, token)
            except Exception as error:
                self._fail(job_id, self._unexpected(job_id, error, token), token)
            else:
                self.writes.succeeded()  # its result was written: the storage takes writes
                self._finish(job_id, {"results": [vars(r) for r in results]})
        except OperationalError as error:  # the database refused the EXECUTING phase itself
            log.error("job %s: the database refused a write (%s)", job_id, error)
            if (reason := write_failure(error)) is not None:
                self.writes.failed(reason)
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    def _unexpected(self, job_id: str, error: Exception, token: CancelToken) -> JobError:
        """Name the error of a job whose work raised: the storage's refusal, or a fault of ours.

        A result the storage refused (full disk, read-only folder) is a
        transient error, and VOSI availability says from then on that async
        jobs are refused and why, as a refused job creation does, until a
        write succeeds again.
        """
        reason = write_failure(error)
        if reason is not None:
            log.warning("job %s: its result could not be written: %s (%s)", job_id, reason, error)
            self.writes.failed(reason)
            return JobError(
                f"the result could not be written: {reason}; run it again later", "transient"
            )
        if not token.cancelled:
            log.exception("job %s failed", job_id)
        return JobError(f"internal error of the service: {error}")

    def _fail(self, job_id: str, error: JobError, token: CancelToken) -> None:
        if token.cancelled and self._stopping:
            error = JobError(_INTERRUPTED, "transient")
        elif token.cancelled:
            return  # aborted or deleted: that phase change was already recorded
        self._finish(job_id, {"error": error.message, "error_type": error.type})

    def _finish(self, job_id: str, outcome: dict[str, object]) -> None:
        """Record a job's final phase: in its folder first, then in the database, retried."""
        outcome["end_time"] = utc_now().isoformat()
        path = self.folder(job_id) / _OUTCOME
        partial = path.with_suffix(".part")
        try:
            partial.write_text(json.dumps(outcome), "utf-8")
            os.replace(partial, path)
        except OSError as error:  # the folder is gone (job deleted) or the disk is full
            log.warning("job %s: cannot keep its final phase in %s: %s", job_id, path, error)
        for attempt in range(1, _FINISH_ATTEMPTS + 1):
            try:
                self._apply(job_id, outcome)
                path.unlink(missing_ok=True)
                return
            except OperationalError as error:
                if (reason := write_failure(error)) is not None:
                    self.writes.failed(reason)
                log.warning(
                    "job %s: its final phase could not be recorded (attempt %d of %d): %s",
                    job_id,
                    attempt,
                    _FINISH_ATTEMPTS,
                    error,
                )
        log.error(
            "job %s: final phase kept in %s; recorded at the next maintenance pass", job_id, path
        )

    def _settle(self, job_id: str) -> bool:
        """Move an EXECUTING job to the final phase its ``outcome.json`` records, if any."""
        path = self.folder(job_id) / _OUTCOME
        try:
            outcome = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return False
        self._apply(job_id, outcome)
        path.unlink(missing_ok=True)
        return True

    def _apply(self, job_id: str, outcome: dict) -> None:
        """Write a final phase (``results``, or ``error`` and ``error_type``) to the database."""
        end_time = naive_utc(datetime.fromisoformat(outcome["end_time"]))
        if "results" in outcome:
            results = [JobResult(**result) for result in outcome["results"]]
            moved = self.store.complete(job_id, results, end_time)
        else:
            moved = self.store.change_phase(
                job_id,
                ExecutionPhase.ERROR,
                allowed_from=[ExecutionPhase.EXECUTING],
                end_time=end_time,
                error_type=outcome["error_type"],
                error_message=outcome["error"],
            )
        if moved:
            self._phase_changed(job_id)

    def _cancel(self, job_id: str) -> None:
        with self._lock:
            token = self._running.get(job_id)
        if token is not None:
            token.cancel()

    def _phase_changed(self, job_id: str) -> None:
        """Wake the requests blocked in `wait` on this job, from any thread."""
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    # -- parameters --------------------------------------------------------------------------

    def _duration(self, value: str | None) -> int:
        if value is None or not value.strip():
            return self.limits.default_duration_s
        try:
            seconds = int(float(value))
        except ValueError:
            raise ValueError(f"EXECUTIONDURATION={value!r} is not a number of seconds") from None
        if seconds <= 0 or seconds > self.limits.hard_duration_s:
            return self.limits.hard_duration_s
        return seconds

    def _destruction(self, now: datetime, value: str | None) -> datetime:
        latest = now + timedelta(seconds=self.limits.hard_retention_s)
        if value is None or not value.strip():
            return now + timedelta(seconds=self.limits.default_retention_s)
        return min(parse_instant(value, "DESTRUCTION"), latest)

    def _save_inline(self, folder: Path, inline: Mapping[str, bytes]) -> list[JobParameter]:
        saved = []
        if inline:
            (folder / "inline").mkdir(parents=True, exist_ok=True)
        for index, (name, content) in enumerate(sorted(inline.items())):
            file_name = f"inline/{index:02d}-{secrets.token_hex(4)}"
            (folder / file_name).write_bytes(content)
            saved.append(JobParameter(name, file_name, by_reference=True))
        return saved


_OUTCOME = "outcome.json"
"""A job's final phase, written before the database is (see the module documentation)."""
_FINISH_ATTEMPTS = 3
"""Database writes tried per final phase; each waits up to the busy timeout (30 s on SQLite)."""

_INTERRUPTED = (
    "the service was restarted while this job was executing; its result was lost. "
    "Create and run the job again."
)


def parse_instant(value: str, name: str) -> datetime:
    """Read an ISO-8601 instant (UWS 1.1, section 2.2.1: 'T' separator, UTC)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{name}={value!r} is not an ISO-8601 instant such as 2030-01-31T12:00:00Z"
        ) from None
    return naive_utc(when)
