"""The UWS 1.1 REST binding (section 2.2): parse the request, call the job service, answer.

Every state change answers 303 See Other: to the job after ``PHASE``,
``EXECUTIONDURATION``, ``DESTRUCTION`` and parameter changes, to the job
list after a deletion (HTTP DELETE or ``ACTION=DELETE``). An unknown job is
404, a change its phase forbids 403 (section 2.2), a malformed value 400.
Job URLs come from `vo_service.urls.ServiceUrls`, under the public base
URL; the job service is the one in ``request.app.state.tap.jobs``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from functools import wraps
from pathlib import Path

from anyio import to_thread
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from vo_service.dali import (
    VOTABLE_TYPE,
    DaliParameters,
    RequestTooLargeError,
    error_document,
    read_dali_parameters,
    unread_body_response,
)
from vo_service.templating import xml_datetime, xml_response
from vo_service.urls import ServiceUrls

from .models import ExecutionPhase, Job, JobResult
from .result_files import REWRITTEN_TYPES_EXCLUDED, rebased_chunks, rebased_size
from .service import InvalidPhaseError, JobService, UnknownJobError, parse_instant
from .writes import write_failure

__all__ = [
    "job",
    "job_destruction",
    "job_error",
    "job_execution_duration",
    "job_list",
    "job_owner",
    "job_parameter",
    "job_parameters",
    "job_phase",
    "job_quote",
    "job_result",
    "job_results",
]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def _uws_errors(handler: Handler) -> Handler:
    """Map the service's errors to UWS status codes, in one place.

    A write the storage refused (full disk, read-only data) is 503 with a
    DALI error document saying so, and is recorded for VOSI availability;
    any other failure is 500 with a DALI error document, never a bare page.
    """

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except UnknownJobError as error:
            return PlainTextResponse(str(error), status_code=404)
        except InvalidPhaseError as error:
            return PlainTextResponse(str(error), status_code=403)
        except RequestTooLargeError as error:
            document = error_document(str(error))
            return unread_body_response(Response(document, 413, media_type=VOTABLE_TYPE))
        except ValueError as error:
            return PlainTextResponse(str(error), status_code=400)
        except HTTPException as error:
            return PlainTextResponse(str(error.detail), status_code=error.status_code)
        except Exception as error:
            return _failure_response(request, error)

    return wrapper


def _failure_response(request: Request, error: Exception) -> Response:
    reason = write_failure(error)
    if reason is None:
        log.exception("UWS request %s %s failed", request.method, request.url.path)
        message = "internal error of the service; the request was not carried out"
        return Response(error_document(message), 500, media_type=VOTABLE_TYPE)
    log.warning("UWS request refused: %s (%s)", reason, error)
    _jobs(request).writes.failed(reason)
    message = f"async jobs are refused for now: {reason}; sync queries (/tap/sync) still work"
    return Response(error_document(message), 503, media_type=VOTABLE_TYPE)


def _jobs(request: Request) -> JobService:
    return request.app.state.tap.jobs


async def _params(request: Request) -> DaliParameters:
    limit = request.app.state.tap.limits.upload_limit_bytes + (1 << 20)
    return await read_dali_parameters(request, max_body_bytes=limit)


def _job_url(request: Request, job_id: str) -> str:
    return ServiceUrls.from_request(request).tap_job(job_id)


def _see_job(request: Request, job_id: str) -> Response:
    return RedirectResponse(_job_url(request, job_id), status_code=303)


def _see_job_list(request: Request) -> Response:
    return RedirectResponse(ServiceUrls.from_request(request).tap_jobs, status_code=303)


async def _job_document(request: Request, job: Job) -> Response:
    served = await to_thread.run_sync(_as_served, request, job)
    return xml_response("uws/job.xml", job=served, job_url=_job_url(request, job.job_id))


@_uws_errors
async def job_list(request: Request) -> Response:
    """GET: the job list, filtered by PHASE, AFTER, LAST. POST: create a job (303 to it)."""
    jobs = _jobs(request)
    params = await _params(request)
    if request.method == "POST":
        inline = {name: part.content for name, part in params.inline.items()}
        # no base_url: the result is written under the service's own (`result_files`)
        job = await to_thread.run_sync(lambda: jobs.create(list(params), inline))
        jobs.writes.succeeded()
        return _see_job(request, job.job_id)
    if not request.app.state.tap.limits.job_list:
        return PlainTextResponse(
            "this service does not list its jobs: a job is reached at the URL its creation "
            "answered (the Location of the 303)",
            status_code=403,
        )
    phases = []
    for value in params.getlist("PHASE"):
        try:
            phases.append(ExecutionPhase(value.upper()))
        except ValueError:
            raise ValueError(f"PHASE={value!r} is not a UWS phase") from None
    after = params.get("AFTER")
    last = params.get("LAST")
    last_count = None
    if last is not None:
        if not last.strip().isdigit() or int(last) <= 0:
            raise ValueError(f"LAST={last!r} must be a whole number greater than 0")
        last_count = int(last)

    def listing() -> list[Job]:
        return jobs.list(
            phases=phases,
            after=parse_instant(after, "AFTER") if after else None,
            last=last_count,
        )

    found = await to_thread.run_sync(listing)
    return xml_response(
        "uws/jobs.xml", jobs=found, jobs_url=ServiceUrls.from_request(request).tap_jobs
    )


@_uws_errors
async def job(request: Request) -> Response:
    """GET: the job document, blocking with WAIT. DELETE or POST ACTION=DELETE: destroy it."""
    jobs = _jobs(request)
    job_id = request.path_params["job_id"]
    if request.method == "DELETE":
        await to_thread.run_sync(jobs.delete, job_id)
        return _see_job_list(request)
    params = await _params(request)
    if request.method == "POST":
        action = params.get("ACTION")
        if action is not None and action.upper() == "DELETE":
            await to_thread.run_sync(jobs.delete, job_id)
            return _see_job_list(request)
        raise ValueError(
            "POST to a job takes only ACTION=DELETE; post parameters to its /parameters and "
            "PHASE=RUN or ABORT to its /phase"
        )
    wait = params.get("WAIT")
    if wait is None:
        found = await to_thread.run_sync(jobs.get, job_id)
    else:
        try:
            seconds = float(wait)
        except ValueError:
            raise ValueError(f"WAIT={wait!r} is not a number of seconds") from None
        max_wait = request.app.state.tap.limits.max_wait_s
        timeout = max_wait if seconds < 0 else min(seconds, max_wait)
        found = await jobs.wait(job_id, timeout_s=timeout, phase=params.get("PHASE"))
    return await _job_document(request, found)


@_uws_errors
async def job_phase(request: Request) -> Response:
    """GET: the phase as text. POST PHASE=RUN or PHASE=ABORT (303 to the job)."""
    jobs = _jobs(request)
    job_id = request.path_params["job_id"]
    if request.method == "GET":
        found = await to_thread.run_sync(jobs.get, job_id)
        return PlainTextResponse(found.phase.value)
    phase = ((await _params(request)).get("PHASE") or "").upper()
    if phase == "RUN":
        await to_thread.run_sync(jobs.start, job_id)
    elif phase == "ABORT":
        await to_thread.run_sync(jobs.abort, job_id)
    else:
        raise ValueError(f"PHASE={phase or '(none)'} cannot be posted; use RUN or ABORT")
    return _see_job(request, job_id)


@_uws_errors
async def job_execution_duration(request: Request) -> Response:
    """GET: the execution duration in seconds. POST EXECUTIONDURATION (303 to the job)."""
    return await _job_setting(
        request,
        "EXECUTIONDURATION",
        lambda job: str(job.execution_duration),
        _jobs(request).set_execution_duration,
    )


@_uws_errors
async def job_destruction(request: Request) -> Response:
    """GET: the destruction instant. POST DESTRUCTION (303 to the job)."""
    return await _job_setting(
        request,
        "DESTRUCTION",
        lambda job: _instant(job.destruction_time),
        _jobs(request).set_destruction,
    )


async def _job_setting(
    request: Request,
    name: str,
    shown: Callable[[Job], str],
    change: Callable[[str, str], object],
) -> Response:
    """Answer a job's settable value as text (GET), or change it and see the job (POST, 303)."""
    job_id = request.path_params["job_id"]
    if request.method == "GET":
        found = await to_thread.run_sync(_jobs(request).get, job_id)
        return PlainTextResponse(shown(found))
    value = (await _params(request)).get(name)
    if value is None:
        raise ValueError(f"{name} is missing")
    await to_thread.run_sync(change, job_id, value)
    return _see_job(request, job_id)


@_uws_errors
async def job_error(request: Request) -> Response:
    """Answer the DALI error document of a job in phase ERROR (TAP 1.1 section 2.2, 200)."""
    found = await to_thread.run_sync(_jobs(request).get, request.path_params["job_id"])
    if found.phase != ExecutionPhase.ERROR or found.error is None:
        return PlainTextResponse(f"job {found.job_id} is {found.phase}, not ERROR", status_code=404)
    return Response(error_document(found.error.message), media_type=VOTABLE_TYPE)


@_uws_errors
async def job_quote(request: Request) -> Response:
    """Answer the quote: empty, as this service does not predict completion (UWS 1.1, 2.1.6)."""
    found = await to_thread.run_sync(_jobs(request).get, request.path_params["job_id"])
    return PlainTextResponse(_instant(found.quote))


@_uws_errors
async def job_owner(request: Request) -> Response:
    """Answer the owner: empty for anonymous jobs (UWS 1.1, 2.1.8)."""
    found = await to_thread.run_sync(_jobs(request).get, request.path_params["job_id"])
    return PlainTextResponse(found.owner_id or "")


@_uws_errors
async def job_parameters(request: Request) -> Response:
    """GET: the parameter list. POST: add or replace parameters of a PENDING job (303)."""
    jobs = _jobs(request)
    job_id = request.path_params["job_id"]
    if request.method == "GET":
        found = await to_thread.run_sync(jobs.get, job_id)
        return xml_response("uws/parameters.xml", job=found, job_url=_job_url(request, job_id))
    params = await _params(request)
    inline = {name: part.content for name, part in params.inline.items()}
    await to_thread.run_sync(jobs.update_parameters, job_id, list(params), inline)
    return _see_job(request, job_id)


@_uws_errors
async def job_parameter(request: Request) -> Response:
    """Answer the content of an inline parameter (UWS 1.1, section 2.2.3.1.1)."""
    jobs = _jobs(request)
    job_id, name = request.path_params["job_id"], request.path_params["name"]
    found = await to_thread.run_sync(jobs.get, job_id)
    for parameter in found.parameters:
        if parameter.name == name:
            if parameter.by_reference:
                return FileResponse(jobs.folder(job_id) / parameter.value)
            return PlainTextResponse(parameter.value)
    return PlainTextResponse(f"job {job_id} has no parameter {name!r}", status_code=404)


@_uws_errors
async def job_results(request: Request) -> Response:
    """Answer the result list (UWS 1.1, section 2.2.2.3)."""
    job_id = request.path_params["job_id"]
    found = await to_thread.run_sync(_jobs(request).get, job_id)
    served = await to_thread.run_sync(_as_served, request, found)
    return xml_response("uws/results.xml", job=served, job_url=_job_url(request, job_id))


@_uws_errors
async def job_result(request: Request) -> Response:
    """One result file, e.g. TAP's ``result`` (TAP 1.1, section 2.2)."""
    jobs = _jobs(request)
    job_id, result_id = request.path_params["job_id"], request.path_params["result_id"]
    found = await to_thread.run_sync(jobs.get, job_id)
    for result in found.results:
        if result.result_id == result_id:
            return _result_file(request, found, jobs.folder(job_id) / result.file_name, result)
    return PlainTextResponse(f"job {job_id} has no result {result_id!r}", status_code=404)


def _bases(request: Request, job: Job, result: JobResult) -> tuple[str, str] | None:
    """Return the base a result was written under and the reader's; None to send it as is."""
    stored = job.base_url or request.app.state.tap.settings.url_base
    public = ServiceUrls.from_request(request).base
    if stored.rstrip("/") == public.rstrip("/") or result.mime_type in REWRITTEN_TYPES_EXCLUDED:
        return None
    return stored, public


def _as_served(request: Request, job: Job) -> Job:
    """Return the job with each result's size as `job_result` sends it to this reader."""
    results = []
    for result in job.results:
        bases = _bases(request, job, result)
        if bases is not None:
            path = _jobs(request).folder(job.job_id) / result.file_name
            size = rebased_size(path, *bases)
            result = replace(result, size=result.size if size is None else size)
        results.append(result)
    return replace(job, results=tuple(results))


def _result_file(request: Request, job: Job, path: Path, result: JobResult) -> Response:
    """Send a result file with its URLs under the reader's base URL (`result_files`)."""
    bases = _bases(request, job, result)
    if bases is None:
        return FileResponse(path, media_type=result.mime_type)
    stored, public = bases
    if not path.is_file():
        raise HTTPException(404, f"the result {result.result_id!r} of job {job.job_id} is gone")
    return StreamingResponse(
        iterate_in_threadpool(rebased_chunks(path, stored, public)), media_type=result.mime_type
    )


def _instant(value: datetime | None) -> str:
    return xml_datetime(value) if value is not None else ""
