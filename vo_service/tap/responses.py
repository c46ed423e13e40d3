"""HTTP responses shared by the TAP endpoints: XML documents and DALI errors.

Errors are mapped to the protocol's form here and nowhere else (STYLE.md):
a `TapError` becomes a DALI 1.1 error document (section 4.4.2) with the
error's HTTP status.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from vo_service.templating import environment

from .errors import TapError
from .writers import error_document

__all__ = ["VOTABLE_TYPE", "XML_TYPE", "base_url", "error_response", "xml_document"]

log = logging.getLogger(__name__)

VOTABLE_TYPE = "application/x-votable+xml"
XML_TYPE = "application/xml"


def error_response(error: TapError | str, status_code: int | None = None) -> Response:
    """Answer with a DALI error document for an error (its status) or a message (400)."""
    message = error.message if isinstance(error, TapError) else error
    if status_code is None:
        status_code = error.status_code if isinstance(error, TapError) else 400
    if status_code >= 500:
        log.error("TAP request failed: %s", message)
    return Response(error_document(message), status_code=status_code, media_type=VOTABLE_TYPE)


def xml_document(template: str, status_code: int = 200, **context: object) -> Response:
    """Render one of the XML templates as an ``application/xml`` response."""
    text = environment().get_template(template).render(**context)
    return Response(text, status_code=status_code, media_type=XML_TYPE)


def base_url(request: Request, service_path: str = "/tap") -> str:
    """Return the TAP base URL as the client reached it (accessURLs, job and result links)."""
    root = str(request.base_url).rstrip("/")
    return root + service_path
