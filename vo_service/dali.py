"""Request parameters as DALI 1.1 defines them, read from a Starlette request.

DALI 1.1, section 3: parameter names are case-insensitive (pyvo sends
``K=5`` for ``k=5``), values are case-sensitive, a parameter may be repeated
only where its definition allows it, and a POST carries its parameters either
``application/x-www-form-urlencoded`` or ``multipart/form-data`` (section 2);
the latter also carries inline content such as ``UPLOAD=t1,param:t1``.
Every DAL endpoint of vosim (TAP, DataLink, the similarity service) reads
its parameters through here, and reports errors with `error_document`
(section 4.4.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from vo_service.templating import environment, xml_safe

__all__ = [
    "VOTABLE_TYPE",
    "DaliParameters",
    "InlineContent",
    "RequestTooLargeError",
    "ServiceError",
    "error_document",
    "read_dali_parameters",
    "unread_body_response",
]

VOTABLE_TYPE = "application/x-votable+xml"


class ServiceError(Exception):
    """A DAL request that ended without a result: the base of each service's errors.

    Each service answers it in its own form (a TAP error VOTable, the
    similarity service's VOTable or JSON) with `status_code` for a
    synchronous response.

    Parameters
    ----------
    message
        What went wrong and, where possible, how to fix it.
    """

    status_code: int = 500
    """HTTP status of a synchronous response carrying this error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestTooLargeError(ValueError):
    """A request body, or one inline part of it, over the size the service accepts."""


@dataclass(frozen=True)
class InlineContent:
    """One file part of a multipart POST (DALI 1.1, section 3.2.4, ``param:`` URIs)."""

    name: str
    """The part's form field name, which ``param:<name>`` refers to."""
    content: bytes
    content_type: str | None = None
    filename: str | None = None


class DaliParameters:
    """Parameters of one request, looked up by case-insensitive name.

    Parameters
    ----------
    pairs
        ``(name, value)`` in request order (query string first, then body).
    inline
        File parts of a multipart body by field name.
    """

    def __init__(
        self,
        pairs: Iterable[tuple[str, str]] = (),
        inline: Mapping[str, InlineContent] | None = None,
    ) -> None:
        self._pairs = list(pairs)
        self._by_name: dict[str, list[str]] = {}
        for name, value in self._pairs:
            self._by_name.setdefault(name.upper(), []).append(value)
        self.inline: dict[str, InlineContent] = dict(inline or {})

    def __contains__(self, name: str) -> bool:
        return name.upper() in self._by_name

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def getlist(self, name: str) -> list[str]:
        """Return every value given for ``name`` (any case), in request order."""
        return list(self._by_name.get(name.upper(), ()))

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of a single-valued parameter.

        Raises
        ------
        ValueError
            When the parameter was given twice with different values
            (DALI 1.1, section 3.2: services must reject that).
        """
        values = self._by_name.get(name.upper())
        if not values:
            return default
        if len(set(values)) > 1:
            raise ValueError(
                f"parameter {name.upper()} was given {len(values)} different values "
                f"({', '.join(repr(v) for v in values)}); give it once"
            )
        return values[0]

    def find_inline(self, name: str) -> InlineContent | None:
        """Return the inline part called ``name``: exact match first, then any case."""
        if name in self.inline:
            return self.inline[name]
        for part_name, part in self.inline.items():
            if part_name.lower() == name.lower():
                return part
        return None


async def read_dali_parameters(request: Request, *, max_body_bytes: int) -> DaliParameters:
    """Collect the parameters of a GET or POST request.

    Parameters
    ----------
    request
        The incoming request; a POST may be urlencoded or multipart.
    max_body_bytes
        Largest body accepted, uploads included; checked against
        ``Content-Length`` before anything is read, and counted as the body
        arrives, so that a chunked body (no ``Content-Length``) or one
        longer than it said is refused at the limit, unread beyond it.

    Raises
    ------
    RequestTooLargeError
        When the body, or one of its parts, is larger than ``max_body_bytes``.
    """
    pairs = list(request.query_params.multi_items())
    inline: dict[str, InlineContent] = {}
    if request.method == "POST":
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise RequestTooLargeError(
                f"the request body has {int(declared)} bytes; this service accepts at most "
                f"{max_body_bytes} bytes (uploads included)"
            )
        limited = Request(request.scope, _counting(request.receive, max_body_bytes))
        async with limited.form(
            max_files=64, max_fields=1000, max_part_size=max_body_bytes
        ) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    inline[name] = await _read_part(name, value, max_body_bytes)
                else:
                    pairs.append((name, value))
    return DaliParameters(pairs, inline)


def _counting(receive: Receive, max_bytes: int) -> Receive:
    """Wrap an ASGI ``receive`` so that it raises once more than ``max_bytes`` arrived."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise RequestTooLargeError(
                    f"the request body has more than {max_bytes} bytes, the most this service "
                    "accepts (uploads included)"
                )
        return message

    return counted


async def _read_part(name: str, upload: UploadFile, max_bytes: int) -> InlineContent:
    content = await upload.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise RequestTooLargeError(
            f"the inline part {name!r} has more than {max_bytes} bytes, "
            "the most this service accepts"
        )
    return InlineContent(
        name=name,
        content=content,
        content_type=upload.content_type,
        filename=upload.filename,
    )


def unread_body_response(response: Response) -> Response:
    """Mark the answer to a body refused unread (`RequestTooLargeError`) as the connection's last.

    The rest of the body is never read, so the connection cannot carry
    another request: the HTTP server closes it after the answer instead of
    reading the body's remainder as the next request.
    """
    response.headers["connection"] = "close"
    return response


def error_document(message: str) -> bytes:
    """Write a DALI 1.1 error document (section 4.4.2) carrying ``message``."""
    text = environment().get_template("dali/error.xml").render(message=xml_safe(message))
    return text.encode("utf-8")
