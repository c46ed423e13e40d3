"""``/preview/{key}.png`` and ``/files/{key}.fits``: the preview and the data of public products.

DataLink's ``#preview`` and ``#this`` links point here. A product harvested
from another archive without keeping its file (``vosim harvest``) is
redirected (307) to the archive's URL of the file. A product that is
unknown or not public yet gets a 404 with a sentence saying so, the same
sentence for both, and never a byte of its data (the proprietary rule). A
public one whose preview or file is gone from storage, or empty (a full
disk), is the server's fault: 500 saying that, never the not-public
sentence, and an error line in the log for the operator. Not 410 Gone,
which caches may keep (RFC 9111 section 4.2.2) after the file is restored,
and which asks nothing of the operator.
Responses carry the content type,
``Content-Length``, ``ETag`` and ``Last-Modified``, answer byte ranges
(Starlette's `FileResponse`), and answer a conditional GET whose validator
still matches with 304 Not Modified, so that the page's browser does not
fetch a preview twice.

A product ingested from a gzipped file (``.fits.gz``) is sent as stored,
with ``Content-Encoding: gzip``: HTTP clients then see the FITS file, and
those that keep the raw bytes (astropy, TOPCAT) recognise gzip themselves.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from pathlib import Path

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from tap_schema.release import utc_now
from vo_service.product_lookup import Product, has_content, not_found_message

__all__ = ["fits_file", "preview"]

FITS_TYPE = "application/fits"
PNG_TYPE = "image/png"

logger = logging.getLogger(__name__)


async def preview(request: Request) -> Response:
    """Send the PNG preview of a public product."""
    key = request.path_params["key"]
    product = await _public_product(request, key)
    if product is None:
        return _not_found(f"the preview {key}.png")
    path = request.app.state.tap.settings.preview_dir / f"{key}.png"
    if not has_content(path):  # deleted, or an empty file left by a full disk
        return _missing(f"the preview of {key}", path)
    return _file(request, path, PNG_TYPE)


async def fits_file(request: Request) -> Response:
    """Send the FITS file of a public product."""
    key = request.path_params["key"]
    product = await _public_product(request, key)
    if product is None or product.file_path is None:
        return _not_found(f"the FITS file {key}.fits")
    if product.remote_file is not None:  # harvested without a copy: the archive serves it
        return RedirectResponse(product.remote_file, status_code=307)
    path = Path(product.file_path)
    if not has_content(path):
        return _missing(f"the file of {key}", path)
    encoding = {"content-encoding": "gzip"} if path.name.lower().endswith(".gz") else {}
    return _file(request, path, FITS_TYPE, download_name=f"{key}.fits", headers=encoding)


async def _public_product(request: Request, key: str) -> Product | None:
    archive = request.app.state.similarity.archive
    product = await to_thread.run_sync(archive.find_by_key, key)
    if product is None or not product.is_public(utc_now()):
        return None
    return product


def _missing(what: str, path: Path) -> Response:
    """500 for a public product whose stored file is gone or empty; logged for the operator."""
    logger.error("%s is missing or empty in storage (restore it, or ingest again): %s", what, path)
    return PlainTextResponse(
        f"{what} is missing from the archive's storage: a fault of the server, reported to"
        " the archive's operator",
        status_code=500,
    )


def _not_found(name: str) -> Response:
    return PlainTextResponse(not_found_message(name), status_code=404)


def _file(
    request: Request,
    path: Path,
    media_type: str,
    *,
    download_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Serve a file, or 304 when the client's copy is still current.

    Starlette's `FileResponse` computes the validators but does not answer
    conditional requests (its `StaticFiles` does, for a whole folder); the
    comparison is RFC 9110 section 13.1: If-None-Match wins over
    If-Modified-Since.
    """
    response = FileResponse(
        path,
        stat_result=path.stat(),
        media_type=media_type,
        filename=download_name,
        content_disposition_type="inline",
        headers=headers,
    )
    if _still_current(request, response):
        kept = {name: response.headers[name] for name in ("etag", "last-modified")}
        return Response(status_code=304, headers=kept)
    return response


def _still_current(request: Request, response: Response) -> bool:
    etag = response.headers.get("etag")
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    last_modified = response.headers.get("last-modified")
    if if_modified_since and last_modified:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False
