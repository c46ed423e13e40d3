"""HTTP responses shared by the TAP endpoints: DALI errors.

Errors are mapped to the protocol's form here and nowhere else:
a `TapError` becomes a DALI 1.1 error document (section 4.4.2) with the
error's HTTP status, and ``Retry-After`` when it says when to come back.
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from vo_service.dali import VOTABLE_TYPE, error_document

from .errors import TapError

__all__ = ["error_response"]

log = logging.getLogger(__name__)


def error_response(error: TapError | str, status_code: int | None = None) -> Response:
    """Answer with a DALI error document for an error (its status) or a message (400)."""
    message = error.message if isinstance(error, TapError) else error
    if status_code is None:
        status_code = error.status_code if isinstance(error, TapError) else 400
    retry_after = getattr(error, "retry_after_s", None)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    if retry_after is not None:
        log.warning("TAP request refused: %s", message)
    elif status_code >= 500:
        log.error("TAP request failed: %s", message)
    return Response(
        error_document(message), status_code=status_code, media_type=VOTABLE_TYPE, headers=headers
    )
