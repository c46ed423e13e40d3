"""Everything the TAP endpoints share, opened once per application.

The read-write catalogue (TAP_SCHEMA, the job tables), the read-only query
databases (one pool of connections for sync queries, one for async jobs, so
that neither can take all connections from the other), the admission of sync
queries, the limits and the async job service, with their start-up and
shut-down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.stored_urls import StoredUrlBase
from vo_service.uws import JobService, JobStore
from vo_service.uws.service import JobLimits

from .admission import Lane, LaneLimits, RecentHeavyClients, SyncAdmission
from .jobs import TapJobWork
from .limits import TapLimits
from .query_database import QueryDatabase

__all__ = ["TapService"]


@dataclass
class TapService:
    """The state of the TAP service.

    Parameters
    ----------
    settings
        The installation's settings (job results go to ``settings.job_dir``).
    limits
        Row, time and upload limits.
    catalogue
        The catalogue, read-write: TAP_SCHEMA and the job tables.
    database
        Where sync queries run, read-only.
    jobs
        The async job list.
    job_database
        Where async jobs run, read-only: connections of their own.
    admission
        Slots and queue of the sync queries.
    recent_heavy
        Clients whose heavy query lately ran past its short try.
    stored_url_base
        The base of the URLs stored in the catalogue, rewritten in results.
    """

    settings: Settings
    limits: TapLimits
    catalogue: Catalogue
    database: QueryDatabase
    jobs: JobService
    stored_url_base: StoredUrlBase
    job_database: QueryDatabase
    admission: SyncAdmission
    recent_heavy: RecentHeavyClients = field(default_factory=RecentHeavyClients)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        catalogue: Catalogue | None = None,
        limits: TapLimits | None = None,
    ) -> TapService:
        """Open the databases (creating missing tables) and the job service."""
        limits = limits or TapLimits.from_env()
        if catalogue is None:
            catalogue = open_catalogue(settings)
        else:
            catalogue.metadata["vosim"].create_all(catalogue.engine)
        url = catalogue.engine.url.render_as_string(hide_password=False)
        slots = limits.sync_light_slots + limits.sync_heavy_slots + limits.sync_trial_slots
        database = QueryDatabase(url, pool_size=slots)
        job_database = QueryDatabase(url, pool_size=limits.async_workers)
        jobs = JobService(
            JobStore(catalogue),
            job_dir=settings.job_dir,
            limits=JobLimits(
                default_duration_s=limits.default_duration_s,
                hard_duration_s=limits.hard_duration_s,
                default_retention_s=limits.default_retention_s,
                hard_retention_s=limits.hard_retention_s,
                workers=limits.async_workers,
            ),
            work=TapJobWork(job_database, limits, catalogue, default_base_url=settings.url_base),
        )
        return cls(
            settings,
            limits,
            catalogue,
            database,
            jobs,
            StoredUrlBase(catalogue),
            job_database,
            _admission(limits),
        )

    def start(self) -> None:
        """Prepare the query database and take up the jobs a previous run left."""
        self.database.prepare()
        self.jobs.recover()

    def stop(self) -> None:
        """Stop the job workers and close the query connections."""
        self.jobs.shutdown()
        self.database.dispose()
        self.job_database.dispose()

    def check_database(self) -> tuple[bool, str]:
        """Whether the catalogue answers, with a note for VOSI availability.

        Sync queries only read: when writes fail the service stays available
        for them, and the note says that async jobs are refused, and why.
        """
        try:
            with self.database.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as error:
            return False, f"the catalogue database does not answer: {error.__class__.__name__}"
        refused = self.jobs.writes.failure
        if refused is not None:
            return True, f"the service is accepting sync queries; async jobs are refused: {refused}"
        return True, "the service is accepting queries"


def _admission(limits: TapLimits) -> SyncAdmission:
    """Make the sync query slots and queue the limits describe."""
    return SyncAdmission(
        {
            Lane.LIGHT: LaneLimits(limits.sync_light_slots, limits.sync_light_per_client),
            Lane.HEAVY: LaneLimits(limits.sync_heavy_slots, limits.sync_heavy_per_client),
            Lane.TRIAL: LaneLimits(limits.sync_trial_slots, 1),
        },
        queue_size=limits.sync_queue_size,
        max_wait_s=limits.sync_queue_wait_s,
        retry_after_s=limits.sync_retry_after_s,
    )
