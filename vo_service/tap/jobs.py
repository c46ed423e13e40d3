"""What an async TAP job does: run its query and store the result as a file.

This is the ``work`` function the UWS job service runs in a worker thread
(TAP 1.1, section 2.2: the result of an async query is the UWS result named
``result``). Parameters are checked only now, when the job runs, as TAP 1.1
section 2.3 requires; any error ends the job in phase ERROR with the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tap_schema import Catalogue
from tap_schema.stored_urls import StoredUrlBase
from vo_service.cancellation import CancelToken
from vo_service.dali import DaliParameters
from vo_service.urls import ServiceUrls
from vo_service.uws.models import Job, JobError, JobFailedError, JobResult

from .errors import TapError
from .limits import TapLimits
from .query import parse_tap_query, result_chunks
from .query_database import QueryDatabase

__all__ = ["TapJobWork"]


class TapJobWork:
    """Runs the query of an async TAP job into ``<job folder>/result.<ext>``.

    Parameters
    ----------
    database
        Where queries run.
    limits
        Row and upload limits; the hard execution duration applies when the
        job asks for an unlimited one.
    catalogue
        The catalogue, for the base URL its stored URLs were written under.
    default_base_url
        The service's own base URL (`Settings.url_base`), under which
        results are written; a job created by an earlier version records
        its creator's base instead (`Job.base_url`), and keeps it.

    A job's result outlives the request that created it and is written
    without one: its URLs (the DataLink service descriptor, the stored
    access and preview URLs) are written under the service's own base URL,
    never the creator's ``Host`` (which an attacker chooses), and each
    reader gets them under their own base (`vo_service.uws.result_files`).
    """

    def __init__(
        self,
        database: QueryDatabase,
        limits: TapLimits,
        catalogue: Catalogue,
        default_base_url: str,
    ) -> None:
        self.database = database
        self.limits = limits
        self.catalogue = catalogue
        self.stored_url_base = StoredUrlBase(catalogue)
        self.default_base_url = default_base_url

    def __call__(self, job: Job, cancel: CancelToken, folder: Path) -> Sequence[JobResult]:
        """Execute the job's query; raise `JobFailedError` with the message if it cannot run."""
        params = DaliParameters((p.name, p.value) for p in job.parameters if not p.by_reference)
        inline = {p.name.lower(): p.value for p in job.parameters if p.by_reference}

        def resolve(part: str) -> bytes | None:
            file_name = inline.get(part.lower())
            return None if file_name is None else (folder / file_name).read_bytes()

        urls = ServiceUrls(job.base_url or self.default_base_url)
        try:
            query = parse_tap_query(params, self.limits, resolve_inline=resolve)
            path = folder / f"result.{query.response.format.extension}"
            partial = folder / "result.part"
            try:
                with partial.open("wb") as out:
                    for chunk in result_chunks(
                        self.database,
                        query,
                        timeout_s=job.execution_duration or self.limits.hard_duration_s,
                        cancel=cancel,
                        trailing_errors=False,
                        datalink_url=urls.datalink_service,
                        stored_urls=self.stored_url_base.rewriting(urls.base),
                    ):
                        out.write(chunk)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)  # a failed, cancelled or timed-out query's part
        except TapError as error:
            raise JobFailedError(JobError(error.message)) from error
        except ValueError as error:  # a repeated single-valued parameter
            raise JobFailedError(JobError(str(error))) from error
        return [JobResult("result", path.name, query.response.content_type, path.stat().st_size)]
