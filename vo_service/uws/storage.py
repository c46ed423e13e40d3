"""Jobs in the database: the only module of the UWS package that writes SQL.

The tables (``vosim.uws_job``, ``vosim.uws_job_parameter``,
``vosim.uws_job_result``) are described in ``tap_schema/yaml/vosim.yaml``,
never published in TAP_SCHEMA. Phase changes are conditional updates
(``UPDATE … WHERE phase IN (…)``), so that a worker finishing a job and a
client aborting it at the same moment cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from tap_schema import Catalogue

from .models import ExecutionPhase, Job, JobError, JobParameter, JobResult

__all__ = ["JobStore"]


class JobStore:
    """Reads and writes jobs in the catalogue database.

    Parameters
    ----------
    catalogue
        The catalogue, whose ``vosim`` schema holds the job tables.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.jobs = catalogue.table("vosim.uws_job")
        self.parameters = catalogue.table("vosim.uws_job_parameter")
        self.results = catalogue.table("vosim.uws_job_result")

    def add(self, job: Job) -> None:
        """Store a new job with its parameters."""
        with self.catalogue.begin() as conn:
            conn.execute(
                self.jobs.insert().values(
                    job_id=job.job_id,
                    run_id=job.run_id,
                    owner_id=job.owner_id,
                    phase=job.phase.value,
                    creation_time=job.creation_time,
                    execution_duration=job.execution_duration,
                    destruction_time=job.destruction_time,
                    base_url=job.base_url,
                )
            )
            self._insert_parameters(conn, job.job_id, job.parameters)

    def get(self, job_id: str) -> Job | None:
        """Return a job with its parameters and results, or None."""
        with self.catalogue.begin() as conn:
            row = conn.execute(sa.select(self.jobs).where(self.jobs.c.job_id == job_id)).first()
            if row is None:
                return None
            parameters = conn.execute(
                sa.select(self.parameters)
                .where(self.parameters.c.job_id == job_id)
                .order_by(self.parameters.c.position)
            ).all()
            results = conn.execute(
                sa.select(self.results)
                .where(self.results.c.job_id == job_id)
                .order_by(self.results.c.result_id)
            ).all()
        return _job(row, parameters, results)

    def list(
        self,
        *,
        phases: Iterable[ExecutionPhase] = (),
        after: datetime | None = None,
        last: int | None = None,
    ) -> list[Job]:
        """Jobs for the job list, newest first (UWS 1.1, section 2.2.2.1).

        Parameters
        ----------
        phases
            Only jobs in one of these phases; by default every phase but ARCHIVED.
        after
            Only jobs created after this instant.
        last
            Only this many most recent jobs.
        """
        query = sa.select(self.jobs).order_by(
            self.jobs.c.creation_time.desc(), self.jobs.c.job_id.desc()
        )
        phases = [phase.value for phase in phases]
        if phases:
            query = query.where(self.jobs.c.phase.in_(phases))
        else:
            query = query.where(self.jobs.c.phase != ExecutionPhase.ARCHIVED.value)
        if after is not None:
            query = query.where(self.jobs.c.creation_time > after)
        if last is not None:
            query = query.limit(last)
        with self.catalogue.begin() as conn:
            return [_job(row, (), ()) for row in conn.execute(query)]

    def change_phase(
        self,
        job_id: str,
        phase: ExecutionPhase,
        *,
        allowed_from: Iterable[ExecutionPhase],
        **values: object,
    ) -> bool:
        """Move a job to ``phase`` if it is in one of ``allowed_from``; True if it moved.

        Parameters
        ----------
        job_id
            The job.
        phase
            The new phase.
        allowed_from
            The phases the job may be in for the change to happen.
        **values
            Other columns to set at the same time (``start_time``, ``error_message``…).
        """
        statement = (
            self.jobs.update()
            .where(self.jobs.c.job_id == job_id)
            .where(self.jobs.c.phase.in_([p.value for p in allowed_from]))
            .values(phase=phase.value, **values)
        )
        with self.catalogue.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def update(
        self, job_id: str, *, only_in: ExecutionPhase | None = None, **values: object
    ) -> bool:
        """Set columns of a job (e.g. ``destruction_time``); True if the job was changed."""
        statement = self.jobs.update().where(self.jobs.c.job_id == job_id).values(**values)
        if only_in is not None:
            statement = statement.where(self.jobs.c.phase == only_in.value)
        with self.catalogue.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def replace_parameters(self, job_id: str, parameters: Iterable[JobParameter]) -> None:
        """Replace the whole parameter list of a job."""
        with self.catalogue.begin() as conn:
            conn.execute(self.parameters.delete().where(self.parameters.c.job_id == job_id))
            self._insert_parameters(conn, job_id, tuple(parameters))

    def complete(self, job_id: str, results: Iterable[JobResult], end_time: datetime) -> bool:
        """Record a job's results and move it from EXECUTING to COMPLETED, in one transaction."""
        with self.catalogue.begin() as conn:
            moved = conn.execute(
                self.jobs.update()
                .where(self.jobs.c.job_id == job_id)
                .where(self.jobs.c.phase == ExecutionPhase.EXECUTING.value)
                .values(phase=ExecutionPhase.COMPLETED.value, end_time=end_time)
            ).rowcount
            if moved != 1:
                return False
            rows = [
                {
                    "job_id": job_id,
                    "result_id": r.result_id,
                    "file_name": r.file_name,
                    "mime_type": r.mime_type,
                    "size": r.size,
                }
                for r in results
            ]
            if rows:
                conn.execute(self.results.insert(), rows)
        return True

    def delete(self, job_id: str) -> bool:
        """Forget a job, its parameters and results; True if it existed."""
        with self.catalogue.begin() as conn:
            conn.execute(self.results.delete().where(self.results.c.job_id == job_id))
            conn.execute(self.parameters.delete().where(self.parameters.c.job_id == job_id))
            return (
                conn.execute(self.jobs.delete().where(self.jobs.c.job_id == job_id)).rowcount == 1
            )

    def ids(
        self, *, phases: Iterable[ExecutionPhase] = (), destroyed_by: datetime | None = None
    ) -> list[str]:
        """Return the identifiers of the jobs in some phases, or due for destruction."""
        query = sa.select(self.jobs.c.job_id).order_by(self.jobs.c.creation_time)
        phases = [p.value for p in phases]
        if phases:
            query = query.where(self.jobs.c.phase.in_(phases))
        if destroyed_by is not None:
            query = query.where(self.jobs.c.destruction_time <= destroyed_by)
        with self.catalogue.begin() as conn:
            return list(conn.execute(query).scalars())

    def _insert_parameters(
        self, conn: sa.Connection, job_id: str, parameters: tuple[JobParameter, ...]
    ) -> None:
        if parameters:
            conn.execute(
                self.parameters.insert(),
                [
                    {
                        "job_id": job_id,
                        "position": index,
                        "name": p.name,
                        "value": p.value,
                        "by_reference": p.by_reference,
                    }
                    for index, p in enumerate(parameters)
                ],
            )


def _job(row: sa.Row, parameters: Iterable[sa.Row], results: Iterable[sa.Row]) -> Job:
    error = None
    if row.error_message is not None:
        error = JobError(message=row.error_message, type=row.error_type or "fatal")
    return Job(
        job_id=row.job_id,
        phase=ExecutionPhase(row.phase),
        creation_time=row.creation_time,
        execution_duration=row.execution_duration,
        destruction_time=row.destruction_time,
        run_id=row.run_id,
        owner_id=row.owner_id,
        start_time=row.start_time,
        end_time=row.end_time,
        error=error,
        parameters=tuple(JobParameter(p.name, p.value, bool(p.by_reference)) for p in parameters),
        results=tuple(JobResult(r.result_id, r.file_name, r.mime_type, r.size) for r in results),
        base_url=row.base_url,
    )
