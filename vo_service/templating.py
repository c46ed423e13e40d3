"""The Jinja2 environment of every document vosim writes from ``templates/``.

XML documents of the standards (VOSI, UWS, VOTable headers) and HTML pages
are templates, not strings built in code, so that the document's structure
can be read in one place next to the standard that defines it. One
environment serves them all, with autoescaping for ``.xml`` and ``.html``.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from importlib import resources

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from tap_schema.release import naive_utc

from .urls import ServiceUrls

__all__ = [
    "XML_TYPE",
    "environment",
    "templates",
    "xml_attribute",
    "xml_datetime",
    "xml_response",
    "xml_safe",
]

XML_TYPE = "application/xml"

# characters XML 1.0 does not allow in a document, even escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTROL = tuple(chr(code) for code in (*range(9), 11, 12, *range(14, 32)))


def xml_attribute(value: object) -> Markup:
    """Escape a value for an XML attribute, keeping its line breaks.

    An XML parser turns a raw newline inside an attribute into a space
    (XML 1.0, section 3.3.3); a query text echoed in an ``INFO`` value would
    lose its lines without character references.
    """
    text = str(escape("" if value is None else value))
    return Markup(text.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def xml_datetime(value: datetime | None) -> str:
    """Write an instant the UWS 1.1 way (section 2.2.1): ISO-8601, 'T', UTC with 'Z'."""
    if value is None:
        return ""
    return naive_utc(value).isoformat(timespec="milliseconds") + "Z"


def xml_safe(text: str) -> str:
    """Replace the characters XML 1.0 forbids by '?' (ASCII, as VOTable ``char`` must be).

    For ASCII text the check is 29 substring scans, which run at memory
    speed; a regular expression over a megabyte of result rows took longer
    than formatting them.
    """
    if text.isascii():
        if not any(character in text for character in _CONTROL):
            return text
    elif _INVALID_XML.search(text) is None:
        return text
    return _INVALID_XML.sub("?", text)


@cache
def environment() -> Environment:
    """Return the shared Jinja2 environment over the ``templates`` package."""
    folder = resources.files("templates")
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(["xml", "html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["xml_attribute"] = xml_attribute
    env.filters["xml_datetime"] = xml_datetime
    return env


def _page_urls(request: Request) -> dict[str, object]:
    """Give every page ``urls``: its links, style sheets and scripts are under the public base."""
    return {"urls": ServiceUrls.from_request(request)}


templates = Jinja2Templates(env=environment(), context_processors=[_page_urls])


def xml_response(template: str, status_code: int = 200, **context: object) -> Response:
    """Render one of the XML templates as an ``application/xml`` response."""
    text = environment().get_template(template).render(**context)
    return Response(text, status_code=status_code, media_type=XML_TYPE)
