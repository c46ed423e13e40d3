"""The parameters of ``/similarity/sync``, read DALI 1.1's way.

Names are case-insensitive and read through `vo_service.dali` (pyvo sends
``MAXREC`` for ``maxrec=``). ``ID`` and ``NOT_ID`` may be repeated (one per
selected or excluded image); every other parameter is single-valued.
``MIN_SEPARATION`` is an angle in arcsec (0 or more). ``MAXREC`` above the
hard limit is lowered to it, as DALI 1.1 section 3.2.3 prescribes, and the
response says so with its overflow status; unknown
parameters are ignored (section 3.1: a service must accept parameters it
does not know).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vo_service.dali import DaliParameters
from vo_service.votable.formats import ResponseFormat, UnknownFormatError, find_output_format

from .errors import ParameterError
from .service import SimilarityLimits, SimilarityQuery

__all__ = [
    "JSON_TYPE",
    "SimilarityRequest",
    "angle_arcsec",
    "parse_similarity_request",
    "wants_json",
]

JSON_TYPE = "application/json"
_JSON_NAMES = frozenset({"application/json", "json"})
_TRUE = frozenset({"true", "yes", "1", "t"})
_FALSE = frozenset({"false", "no", "0", "f", ""})
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A number as DALI and VOTable write them: ASCII digits, no NaN or infinity, no ``_``."""


@dataclass(frozen=True)
class SimilarityRequest:
    """A parsed request: what to rank, and how to answer."""

    query: SimilarityQuery
    response: ResponseFormat | None
    """The table format; None for the page's JSON document."""
    maxrec_requested: int | None
    """MAXREC as given, when the hard limit lowered it."""


def wants_json(params: DaliParameters) -> bool:
    """Whether the client asked for JSON (errors then come as JSON too)."""
    try:
        value = params.get("RESPONSEFORMAT")
    except ValueError:
        return False
    return value is not None and value.strip().lower() in _JSON_NAMES


def parse_similarity_request(params: DaliParameters, limits: SimilarityLimits) -> SimilarityRequest:
    """Check the parameters of a similarity request.

    Raises
    ------
    ParameterError
        For a malformed value, a repeated single-valued parameter, or an
        unsupported RESPONSEFORMAT.
    """
    try:
        maxrec_text = params.get("MAXREC")
        offset_text = params.get("OFFSET")
        format_text = params.get("RESPONSEFORMAT")
        quick_text = params.get("QUICKSELECT")
        separation_text = params.get("MIN_SEPARATION")
    except ValueError as error:
        raise ParameterError(str(error)) from error
    maxrec = _whole_number("MAXREC", maxrec_text, limits.default_maxrec)
    offset = _whole_number("OFFSET", offset_text, 0)
    quick_select = _boolean("QUICKSELECT", quick_text)
    min_separation = angle_arcsec("MIN_SEPARATION", separation_text)
    response = None
    if not wants_json(params):
        if quick_select:
            raise ParameterError(
                "QUICKSELECT=true belongs to the JSON answer: ask with "
                "RESPONSEFORMAT=application/json"
            )
        try:
            response = find_output_format(format_text)
        except UnknownFormatError as error:
            raise ParameterError(
                f"{error}; or RESPONSEFORMAT=application/json for the page's JSON"
            ) from error
    return SimilarityRequest(
        query=SimilarityQuery(
            selection=tuple(_identifiers(params, "ID")),
            excluded=tuple(_identifiers(params, "NOT_ID")),
            maxrec=min(maxrec, limits.hard_maxrec),
            offset=offset,
            quick_select=quick_select,
            min_separation_arcsec=min_separation,
        ),
        response=response,
        maxrec_requested=maxrec if maxrec > limits.hard_maxrec else None,
    )


def _identifiers(params: DaliParameters, name: str) -> list[str]:
    values = [value.strip() for value in params.getlist(name)]
    if any(not value for value in values):
        raise ParameterError(f"an empty {name} was given; give an image's obs_publisher_did")
    return values


def _whole_number(name: str, text: str | None, default: int) -> int:
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ParameterError(f"{name}={text!r} is not a whole number") from None
    if value < 0:
        raise ParameterError(f"{name}={value} is negative; give 0 or more")
    return value


def angle_arcsec(name: str, text: str | None) -> float:
    """Read an angle in arcsec, 0 or more, written as a plain decimal number (default 0).

    Raises
    ------
    ParameterError
        For anything else (NaN, infinity, a negative angle, non-ASCII digits).
    """
    if text is None or not text.strip():
        return 0.0
    if not _DECIMAL.fullmatch(text.strip()):
        raise ParameterError(
            f"{name}={text!r} is not a number of arcsec (write it as e.g. 30 or 2.5e1)"
        )
    value = float(text.strip())
    if not math.isfinite(value) or value < 0:
        raise ParameterError(f"{name}={text!r} must be a finite angle in arcsec, 0 or more")
    return value


def _boolean(name: str, text: str | None) -> bool:
    value = (text or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ParameterError(f"{name}={text!r} is neither true nor false")
