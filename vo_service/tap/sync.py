"""``/tap/sync``: run a query and answer with its result (TAP 1.1 section 2.1, DALI 1.1 2.2).

The query waits for a slot (`vo_service.tap.admission`: light and heavy
queries apart, each client its share, a bounded queue, 503 beyond), then
runs in a worker thread, holding its slot until its last byte is sent. Its
first rows are fetched before the response starts, so that any error of the
query gets a proper HTTP status and DALI error document; a small result is
then sent in one piece (with a Content-Length), a large one is streamed as
it is read.

A query judged heavy is first tried for a short time (``sync_heavy_trial_s``),
in a slot of the trial lane, waiting for one in that lane's own fair queue:
most joins an archive's users send (an image's neighbours joined with
ObsCore) end well within it and are answered without waiting behind the
queries that really are slow. Only one that runs past it, or whose result
is larger than the first megabyte, waits for a heavy slot and runs again
there with the full time limit; its client's heavy queries then go to the
heavy lane at once for a while (`vo_service.tap.admission.RecentHeavyClients`).
Every try ends within ``sync_heavy_trial_s``, so a trial slot is never held
longer, and each new client of slow queries holds one for a single try.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

from anyio import to_thread
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vo_service.dali import (
    DaliParameters,
    RequestTooLargeError,
    read_dali_parameters,
    unread_body_response,
)
from vo_service.urls import ServiceUrls

from .admission import Lane, query_lane
from .errors import QueryTimeoutError, TapError
from .query import TapQuery, parse_tap_query, result_chunks
from .responses import error_response
from .service import TapService

__all__ = ["sync_query"]

log = logging.getLogger(__name__)

_PREFETCH_BYTES = 1 << 20
_BODY_MARGIN_BYTES = 1 << 20


async def sync_query(request: Request) -> Response:
    """Run one TAP query synchronously (GET or POST, urlencoded or multipart)."""
    service: TapService = request.app.state.tap
    try:
        params = await read_dali_parameters(
            request, max_body_bytes=service.limits.upload_limit_bytes + _BODY_MARGIN_BYTES
        )
    except RequestTooLargeError as error:
        return unread_body_response(error_response(str(error), 413))
    except HTTPException as error:  # a malformed form body
        return error_response(f"the request body could not be read: {error.detail}", 400)
    client = request.client.host if request.client else "unknown"
    urls = ServiceUrls.from_request(request)
    lane = _lane(params)
    slot = AsyncExitStack()
    try:
        if lane is Lane.HEAVY and _may_try_light(service, client, params):
            answered = await _try_light(service, client, params, urls)
            if answered is not None:
                query, head = answered
                return Response(head, media_type=query.response.content_type)
        await slot.enter_async_context(service.admission.slot(client, lane))
        query, head, rest = await to_thread.run_sync(
            _start, service, params, urls, service.limits.sync_duration_s
        )
    except TapError as error:
        await slot.aclose()
        return error_response(error)
    except Exception:
        await slot.aclose()
        log.exception("sync query failed")
        return error_response("internal error of the service; the query was not run", 500)
    content_type = query.response.content_type
    if rest is None:
        await slot.aclose()
        return Response(head, media_type=content_type)
    return StreamingResponse(_stream(head, rest, slot), media_type=content_type)


def _lane(params: DaliParameters) -> Lane:
    try:
        return query_lane(params.get("QUERY") or "")
    except ValueError:  # a repeated QUERY: refused when the query is read
        return query_lane("")


def _may_try_light(service: TapService, client: str, params: DaliParameters) -> bool:
    """Whether a heavy query gets a short try (not with uploads: they are read once)."""
    trial_s = service.limits.sync_heavy_trial_s
    if not 0 < trial_s < service.limits.sync_duration_s or "UPLOAD" in params:
        return False
    return client not in service.recent_heavy


async def _try_light(
    service: TapService, client: str, params: DaliParameters, urls: ServiceUrls
) -> tuple[TapQuery, bytes] | None:
    """Run a heavy query in a trial slot for a short time: its whole answer, or None.

    None when it ran past ``sync_heavy_trial_s``, or when its result is
    larger than the first megabyte (it is then sent from the heavy lane,
    without the short limit); any other error of the query is its answer
    (`TapError`), and so is a trial queue that is full or kept it waiting
    too long (503). Waiting for a trial slot rather than for a heavy one
    when none is free keeps a quick join of a new client out of the queue
    behind the slow queries (where it waited up to the queue's limit).
    """
    trial_s = service.limits.sync_heavy_trial_s
    async with service.admission.slot(client, Lane.TRIAL):
        try:
            query, head, rest = await to_thread.run_sync(_start, service, params, urls, trial_s)
        except QueryTimeoutError:
            service.recent_heavy.remember(client)
            return None
        if rest is not None:
            await to_thread.run_sync(_close, rest)
            return None
        return query, head


def _close(rest: Iterator[bytes]) -> None:
    close = getattr(rest, "close", None)
    if close is not None:
        close()


async def _stream(head: bytes, rest: Iterator[bytes], slot: AsyncExitStack) -> AsyncIterator[bytes]:
    """Send a large result; its database session and query slot end with it."""
    try:
        yield head
        async for piece in iterate_in_threadpool(rest):
            yield piece
    finally:
        await to_thread.run_sync(_close, rest)
        await slot.aclose()


def _start(
    service: TapService, params: DaliParameters, urls: ServiceUrls, timeout_s: float
) -> tuple[TapQuery, bytes, Iterator[bytes] | None]:
    """Check the query, run it within ``timeout_s``, and read its result up to the first megabyte.

    URLs in the result (the DataLink service descriptor, stored access and
    preview URLs) are under the base URL of this request.
    """
    query = parse_tap_query(params, service.limits)
    chunks = result_chunks(
        service.database,
        query,
        timeout_s=timeout_s,
        datalink_url=urls.datalink_service,
        stored_urls=service.stored_url_base.rewriting(urls.base),
    )
    pieces = [next(chunks)]
    size = len(pieces[0])
    for piece in chunks:
        pieces.append(piece)
        size += len(piece)
        if size >= _PREFETCH_BYTES:
            return query, b"".join(pieces), chunks
    return query, b"".join(pieces), None
