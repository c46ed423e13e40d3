"""HTTP handlers of the similarity service: parse the request, call the service, answer.

- ``GET|POST /similarity/sync``: rank against ``ID`` (repeatable), away from
  ``NOT_ID`` (repeatable), ``MAXREC`` rows from ``OFFSET``; a result table
  (VOTable by default) or, with ``RESPONSEFORMAT=application/json``, the
  page's JSON document (`vo_service.similarity.responses`).
- ``POST /similarity/sync`` with a multipart file field ``IMAGE``: rank
  against an uploaded FITS image (`vo_service.similarity.image_upload`), with
  the same other parameters (``ID`` then names further selected images).
- ``GET /similarity/image?ID=``: the JSON description of one public image
  (the page's tile of the image a search starts from).
- ``GET /similarity/capabilities``: VOSI capabilities listing both ways of
  calling the service and its parameters.

Errors are answered in the form the request asked for, in one place
(`responses.error_response`): a DALI error document, or ``{"error": …}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from anyio import to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from vo_service.dali import (
    DaliParameters,
    RequestTooLargeError,
    read_dali_parameters,
    unread_body_response,
)
from vo_service.templating import xml_response
from vo_service.urls import ServiceUrls

from .errors import ParameterError, SimilarityError
from .image_upload import IMAGE_FIELD, read_uploaded_image
from .parameters import SimilarityRequest, parse_similarity_request, wants_json
from .responses import error_response, image_response, json_response, table_response
from .service import SimilarityLimits, SimilarityResult, SimilarityService

__all__ = ["capabilities", "similar_image", "similarity_sync"]

log = logging.getLogger(__name__)

_FORM_MARGIN_BYTES = 64 * 1024
"""Room for the form fields beside the uploaded file: a larger body is refused unread."""


async def similarity_sync(request: Request) -> Response:
    """Rank the public images against the selected ones (GET or POST)."""
    service: SimilarityService = request.app.state.similarity
    as_json = wants_json(DaliParameters(request.query_params.multi_items()))
    try:
        params = await read_dali_parameters(
            request, max_body_bytes=service.limits.upload_limit_bytes + _FORM_MARGIN_BYTES
        )
    except RequestTooLargeError as error:
        return unread_body_response(error_response(str(error), 413, as_json=as_json))
    except HTTPException as error:
        message = f"the request body could not be read: {error.detail}"
        return error_response(message, 400, as_json=as_json)
    as_json = wants_json(params)
    try:
        parsed = parse_similarity_request(params, service.limits)
        result = await to_thread.run_sync(_search, service, parsed, params)
        return await _answer(request, service, parsed, result)
    except SimilarityError as error:
        return error_response(error, error.status_code, as_json=as_json)
    except Exception:
        log.exception("similarity request failed")
        return error_response("internal error of the similarity service", 500, as_json=as_json)


def _search(
    service: SimilarityService, parsed: SimilarityRequest, params: DaliParameters
) -> SimilarityResult:
    """Rank against the selected images, or against the uploaded one."""
    part = params.find_inline(IMAGE_FIELD)
    if part is None:
        if IMAGE_FIELD in params:
            raise ParameterError(
                f"{IMAGE_FIELD} must be a file in a multipart/form-data POST "
                f"(e.g. curl -F {IMAGE_FIELD}=@image.fits)"
            )
        return service.search(parsed.query)
    image = read_uploaded_image(
        part.content, part.filename, limit_bytes=service.limits.upload_limit_bytes
    )
    return service.search_by_image(image, parsed.query)


async def similar_image(request: Request) -> Response:
    """Describe one public image as JSON (a result row without rank and similarity)."""
    service: SimilarityService = request.app.state.similarity
    params = DaliParameters(request.query_params.multi_items())
    try:
        did = params.get("ID")
        if not did or not did.strip():
            raise ParameterError("give the image's obs_publisher_did as ID")
        product = await to_thread.run_sync(service.image, did.strip())
    except ValueError as error:
        return error_response(str(error), 400, as_json=True)
    except SimilarityError as error:
        return error_response(error, error.status_code, as_json=True)
    return image_response(product, ServiceUrls.from_request(request))


async def _answer(
    request: Request,
    service: SimilarityService,
    parsed: SimilarityRequest,
    result: SimilarityResult,
) -> Response:
    urls = ServiceUrls.from_request(request)
    query = parsed.query
    note = None
    if parsed.maxrec_requested is not None:
        note = (
            f"MAXREC={parsed.maxrec_requested} was lowered to this service's limit of "
            f"{service.limits.hard_maxrec} rows per response; ask for the next rows with OFFSET"
        )
    if parsed.response is None:
        return json_response(result, urls, maxrec=query.maxrec, offset=query.offset, note=note)
    schema = await to_thread.run_sync(request.app.state.tap.database.schema)
    return table_response(
        result,
        urls,
        response=parsed.response,
        schema=schema,
        limits=service.limits,
        maxrec=query.maxrec,
        offset=query.offset,
        note=note,
    )


@dataclass(frozen=True)
class _Param:
    name: str
    description: str
    data_type: str = "string"
    use: str = "optional"
    unit: str | None = None
    ucd: str | None = None


def _parameters(limits: SimilarityLimits) -> tuple[_Param, ...]:
    return (
        _Param(
            "ID", "Publisher DID of a selected image; repeat it to combine images", use="required"
        ),
        _Param("NOT_ID", "Publisher DID of an image to rank away from; repeatable"),
        _Param(
            "MIN_SEPARATION",
            "Leave out the images whose cut-out centre is closer than this to a selected "
            "image's (other targets only); 0, the default, leaves none out",
            "real",
            unit="arcsec",
            ucd="pos.angDistance",
        ),
        _Param(
            "MAXREC",
            f"Rows to return (default {limits.default_maxrec}, at most {limits.hard_maxrec})",
            "integer",
        ),
        _Param("OFFSET", "Ranked rows to skip, for the next page (default 0)", "integer"),
        _Param(
            "RESPONSEFORMAT",
            "VOTable (default), csv, tsv, fits, or application/json (the page's document)",
        ),
        _Param(
            "QUICKSELECT",
            "true: add the five k-means representatives of the top 1000, each with its 15 "
            "nearest (JSON only)",
            "boolean",
        ),
    )


async def capabilities(request: Request) -> Response:
    """VOSI capabilities of the similarity service (VOSI 1.1, section 3.1)."""
    service: SimilarityService = request.app.state.similarity
    return xml_response(
        "similarity/capabilities.xml",
        urls=ServiceUrls.from_request(request),
        params=_parameters(service.limits),
        limits=service.limits,
        image_field=IMAGE_FIELD,
    )
