"""The errors a TAP request can end in, each with a message the user can act on.

TAP 1.1 (section 4.3) and DALI 1.1 (section 4.2) distinguish an invalid
request (the client's to fix: HTTP 4xx) from a valid one the service failed
to complete (5xx). Every refusal is one of these types; the HTTP layer turns
them into a DALI error document in one place (`vo_service.tap.responses`).
"""

from __future__ import annotations

from vo_service.dali import ServiceError

__all__ = [
    "ExecutionError",
    "ParameterError",
    "QueryAbortedError",
    "QueryTimeoutError",
    "TapError",
    "UploadError",
    "UsageError",
]


class TapError(ServiceError):
    """A TAP request that ended without a result."""


class UsageError(TapError):
    """An invalid request: the client can fix it (DALI 1.1, section 4.2)."""

    status_code = 400


class ParameterError(UsageError):
    """A missing, repeated or malformed request parameter."""


class UploadError(UsageError):
    """A TAP_UPLOAD table that cannot be accepted (name, size, or content)."""


class QueryTimeoutError(UsageError):
    """The query ran longer than the execution duration it was allowed.

    A client error rather than a service failure: the remedy is a more
    selective query, or an async job with a longer execution duration.
    """


class QueryAbortedError(TapError):
    """The query was stopped on request (UWS ``PHASE=ABORT`` or job deletion)."""


class ExecutionError(UsageError):
    """The database refused to run a query that passed translation.

    Such errors (a division by zero, a type mismatch the translator could
    not see) are caused by the query's content, so they are reported as
    client errors, with the database's own message.
    """
