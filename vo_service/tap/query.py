"""One TAP query, from its request parameters to the bytes of its result.

This is the part of TAP shared by ``/sync`` and ``/async``: read the
parameters (TAP 1.1, section 2.3), load the uploads, let the ADQL translator
turn the query into SQL, run it read-only with its time limit, and write the
rows in the requested format, MAXREC rows at most, with the overflow flag
when there were more. It knows nothing of HTTP or UWS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from tap_schema.release import naive_utc, utc_now
from tap_schema.stored_urls import StoredUrls
from vo_service.adql import AdqlError, TranslatedQuery, UploadedTable, translate_adql
from vo_service.cancellation import CancelToken
from vo_service.dali import DaliParameters
from vo_service.votable.columns import ResultColumn
from vo_service.votable.formats import ResponseFormat, UnknownFormatError, find_output_format
from vo_service.votable.service_descriptor import links_service
from vo_service.votable.values import column_shape
from vo_service.votable.writers import VOTableFrame, table_writer

from .errors import ParameterError, TapError, UsageError
from .limits import TapLimits
from .query_database import QueryDatabase
from .table_upload import UploadTable, parse_upload_parameter, read_upload

__all__ = ["LANGUAGES", "TapQuery", "parse_tap_query", "result_chunks"]

LANGUAGES: dict[str, str] = {"ADQL": "2.1", "ADQL-2.0": "2.0", "ADQL-2.1": "2.1"}
"""LANG values accepted (TAP 1.1 section 2.3.1), with the ADQL version each selects."""

_BATCH_ROWS = 1_000
_DID_FIELD_ID = "obs_publisher_did"


@dataclass(frozen=True)
class TapQuery:
    """A TAP query request, checked and ready to run."""

    adql: str
    lang: str
    maxrec: int
    """Rows to return at most (MAXREC, capped at the hard limit)."""
    response: ResponseFormat
    uploads: tuple[UploadTable, ...] = ()
    runid: str | None = None


def parse_tap_query(
    params: DaliParameters,
    limits: TapLimits,
    *,
    resolve_inline: Callable[[str], bytes | None] | None = None,
) -> TapQuery:
    """Check the parameters of a TAP query (TAP 1.1, section 2.3; DALI 1.1, section 3).

    Unknown parameters are ignored, as TAP 1.1 requires of "spurious"
    parameters; LANG defaults to ADQL; a MAXREC above the hard limit is
    lowered to it rather than refused.

    Parameters
    ----------
    params
        The request parameters (or an async job's stored parameters).
    limits
        Row and upload limits.
    resolve_inline
        For async jobs: finds the inline upload content saved with the job.

    Raises
    ------
    ParameterError, UploadError
        For a parameter the query cannot run with.
    """
    try:
        request = params.get("REQUEST")
        lang = (params.get("LANG") or "ADQL").strip()
        adql = params.get("QUERY")
        maxrec_text = params.get("MAXREC")
        response_value = params.get("RESPONSEFORMAT") or params.get("FORMAT")
        runid = params.get("RUNID")
    except ValueError as error:
        raise ParameterError(str(error)) from error
    if request is not None and request.strip().lower() != "doquery":
        raise ParameterError(f"REQUEST={request!r} is not supported; omit it or use doQuery")
    if lang.upper() not in LANGUAGES:
        raise ParameterError(
            f"unknown query language LANG={lang!r}; this service accepts " + ", ".join(LANGUAGES)
        )
    if adql is None or not adql.strip():
        raise ParameterError("the QUERY parameter is missing: give the ADQL query to run")
    return TapQuery(
        adql=adql,
        lang=lang.upper(),
        maxrec=_maxrec(maxrec_text, limits),
        response=_response_format(response_value),
        uploads=tuple(
            read_upload(
                reference,
                params,
                max_bytes=limits.upload_limit_bytes,
                resolve=resolve_inline,
                private_urls=limits.upload_url_private,
            )
            for reference in _upload_references(params, limits)
        ),
        runid=runid,
    )


def _response_format(value: str | None) -> ResponseFormat:
    try:
        return find_output_format(value)
    except UnknownFormatError as error:
        raise ParameterError(str(error)) from error


def _maxrec(text: str | None, limits: TapLimits) -> int:
    if text is None or not text.strip():
        return limits.default_maxrec
    digits = text.strip()
    unsigned = digits.removeprefix("-")
    if not (unsigned.isascii() and unsigned.isdigit()):
        raise ParameterError(
            f"MAXREC={text!r} is not a whole number of rows (ASCII digits, as DALI writes them)"
        )
    if unsigned != digits:
        raise ParameterError(f"MAXREC={digits} is negative; give 0 or more rows")
    value = int(digits)
    return min(value, limits.hard_maxrec)


def _upload_references(params: DaliParameters, limits: TapLimits) -> list:
    references = parse_upload_parameter(params.getlist("UPLOAD"))
    if len(references) > limits.max_uploads:
        raise ParameterError(
            f"{len(references)} tables uploaded; this service accepts at most {limits.max_uploads}"
        )
    return references


def result_chunks(
    database: QueryDatabase,
    query: TapQuery,
    *,
    timeout_s: float | None,
    cancel: CancelToken | None = None,
    now: datetime | None = None,
    trailing_errors: bool = True,
    datalink_url: str | None = None,
    stored_urls: StoredUrls | None = None,
) -> Iterator[bytes]:
    """Run a query and yield its result document in pieces.

    The first piece is produced only once the query has run and its first
    rows are in, so every error of the query itself is raised from the first
    ``next()``, before anything was sent. An error after that (a timeout
    while fetching) ends the document with an error INFO instead.

    Parameters
    ----------
    database
        Where the query runs.
    query
        The checked request.
    timeout_s
        Limit on the query's run time.
    cancel
        Lets another thread stop the query.
    now
        The instant release dates are compared with (the current time by default).
    trailing_errors
        Report an error met after the first piece in the document's tail
        (a streamed sync response cannot change its status any more); when
        False (async jobs, which can end in ERROR) it is raised.
    datalink_url
        The DataLink ``{links}`` endpoint: a VOTable result with an
        ``obs_publisher_did`` column then carries its service descriptor.
    stored_urls
        Rewrites the URLs stored in the catalogue (``access_url``,
        ``preview_url``) to the response's base URL, in every text column.

    Raises
    ------
    TapError
        From the first ``next()``, when the query cannot run.
    """
    moment = utc_now() if now is None else naive_utc(now)
    with database.session(timeout_s=timeout_s, cancel=cancel) as session:
        uploads = {upload.name.lower(): session.load_upload(upload) for upload in query.uploads}
        translated = _translate(database, query, uploads, moment)
        writer = table_writer(
            query.response.format,
            translated.columns,
            query=query.adql,
            frame=_datalink_frame(translated.columns, datalink_url),
        )
        if query.maxrec == 0:
            # DALI 1.1 section 3.2.3: metadata, no rows, and the overflow indicator
            yield writer.head() + writer.tail(overflow=True, error=None)
            return
        text_columns = [
            position
            for position, column in enumerate(translated.columns)
            if column_shape(column).kind == "text"
        ]
        batches = session.rows(
            translated, limit=query.maxrec + 1, batch_size=_BATCH_ROWS, now=moment
        )
        with contextlib.closing(batches):  # a result read in part ends its fetch first
            first = next(batches, [])
            written = 0
            overflow = False

            def take(batch: list) -> list:
                nonlocal written, overflow
                if written + len(batch) > query.maxrec:
                    batch = batch[: query.maxrec - written]
                    overflow = True
                written += len(batch)
                return batch if stored_urls is None else stored_urls.rows(batch, text_columns)

            yield writer.head() + writer.rows(take(first))
            error: str | None = None
            try:
                for batch in batches:
                    yield writer.rows(take(batch))
            except TapError as failure:
                if not trailing_errors:
                    raise
                error = failure.message
            yield writer.tail(overflow=overflow, error=error)


def _datalink_frame(
    columns: Sequence[ResultColumn], datalink_url: str | None
) -> VOTableFrame | None:
    """Bind a DataLink service descriptor to the result's ``obs_publisher_did`` column.

    DataLink 1.1, section 4: the descriptor's ID parameter refers by
    ``ref`` to the FIELD holding the identifiers, so pyvo's
    ``iter_datalinks()`` and TOPCAT's "Invoke Service" can follow every row.
    Only when exactly one column has that name: FIELD IDs must be unique.
    """
    named = [column.name for column in columns if column.name.lower() == "obs_publisher_did"]
    if datalink_url is None or len(named) != 1:
        return None
    return VOTableFrame(
        field_ids={named[0]: _DID_FIELD_ID},
        service_descriptors=(links_service(datalink_url, _DID_FIELD_ID),),
    )


def _translate(
    database: QueryDatabase,
    query: TapQuery,
    uploads: dict[str, UploadedTable],
    now: datetime | None,
) -> TranslatedQuery:
    try:
        return translate_adql(
            query.adql,
            schema=database.schema(),
            dialect=database.dialect,
            uploads=uploads,
            max_rows=query.maxrec + 1,
            now=now,
            score_relations=database.scores is not None,
        )
    except AdqlError as error:
        raise UsageError(str(error)) from error
