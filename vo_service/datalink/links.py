"""DataLink 1.1 ``{links}``: what a client can do with an archive record (``/datalink?ID=…``).

Every ObsCore row's ``access_url`` points here (``access_format``
``application/x-votable+xml;content=datalink``), and TAP results carry a
service descriptor of this endpoint, so VO clients reach it on their own:
pyvo's ``iter_datalinks()``, TOPCAT's DataLink window. For each ``ID``
(repeatable, GET or POST) the table lists, in consecutive rows (section 3.2):

- ``#this``: the FITS file (``/files/{key}.fits``, ``application/fits``);
- ``#preview``: the PNG preview (``/preview/{key}.png``);
- the similar-images service, as a service descriptor (section 4) whose
  ``ID`` parameter is bound by ``ref`` to the table's ID column, so that a
  client invokes it for the row it is on;
- the similar-images page for a person (``/similar?ID=…``, ``text/html``).

**Semantics of the similarity links.** The core vocabulary has no term for
"datasets that look like this one". ``#this``, ``#preview``,
``#progenitor``, ``#derivation`` and ``#coderived`` name provenance
relations a similar image does not have; ``#counterpart`` means the same
target seen otherwise, which similar images are not; ``#proc`` means a
processed version of this dataset (SODA cut-outs), and clients offer
cut-out parameters for it. ``#auxiliary``, the vocabulary's term for
related resources without a narrower relation, is what a client can
present truthfully without knowing vosim. The exact meaning is in
``local_semantics`` (DataLink 1.1 section 3.2.10: a service-specific term
that lets clients find the same kind of link for every dataset):
``similar-images`` for the service, ``similar-images-page`` for the page.

An unknown ID, or a product that is not public, gets one row with an
``error_message`` (``NotFoundFault: …``) and nothing else; a missing ID
parameter is a DALI error document. The response is always
``application/x-votable+xml;content=datalink`` in TABLEDATA, whatever the
Accept header says (GAVO DaCHS answered ``text/xml`` to Java's default
Accept header, an error for ``stilts datalinklint``). It is written by the
TAP VOTable writer, the one way vosim writes VOTables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from anyio import to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tap_schema import Settings
from tap_schema.release import utc_now
from vo_service.dali import (
    VOTABLE_TYPE,
    DaliParameters,
    RequestTooLargeError,
    error_document,
    read_dali_parameters,
    unread_body_response,
)
from vo_service.product_lookup import Product, ProductArchive, has_content, not_found_message
from vo_service.similarity.responses import SIMILARITY_DESCRIPTOR_ID, similarity_service
from vo_service.similarity.service import SimilarityService
from vo_service.urls import ServiceUrls
from vo_service.votable.columns import ResultColumn
from vo_service.votable.formats import OUTPUT_FORMATS
from vo_service.votable.service_descriptor import DATALINK_STANDARD_ID
from vo_service.votable.writers import VOTableFrame, table_writer

__all__ = [
    "DATALINK_TYPE",
    "LINK_COLUMNS",
    "LINK_COLUMN_NAMES",
    "MAX_IDS",
    "SIMILAR_IMAGES",
    "SIMILAR_IMAGES_PAGE",
    "Link",
    "has_public_vector",
    "links",
    "similar_image_links",
]

log = logging.getLogger(__name__)

DATALINK_TYPE = "application/x-votable+xml;content=datalink"
"""Content type of every ``{links}`` response (DataLink 1.1, section 3.1)."""

MAX_IDS = 1000
"""Identifiers answered per request; more are left for the next request (OVERFLOW)."""

_MAX_BODY_BYTES = 1 << 20
_ID_FIELD = "ID"  # the FIELD ID equals its name: astropy names columns by ID
_ACCEPTED_FORMATS = frozenset(
    {DATALINK_TYPE, VOTABLE_TYPE, "votable", "application/x-votable+xml;serialization=tabledata"}
)
_CONTENT_QUALIFIERS = {"continuum": "image", "peak_flux": "cube"}


def _text(name: str, ucd: str, description: str) -> ResultColumn:
    return ResultColumn(name, "char", "*", ucd=ucd, description=description)


LINK_COLUMNS: tuple[ResultColumn, ...] = (
    _text("ID", "meta.id;meta.main", "Input identifier"),
    _text("access_url", "meta.ref.url", "Link to data or service"),
    _text("service_def", "meta.ref", "Reference to a service descriptor resource"),
    _text("error_message", "meta.code.error", "Error if an access_url cannot be created"),
    _text("semantics", "meta.code", "Term from a controlled vocabulary describing the link"),
    _text("description", "meta.note", "Human-readable text describing this link"),
    _text("content_type", "meta.code.mime", "Mime-type of the content the link returns"),
    ResultColumn(
        "content_length",
        "long",
        unit="byte",
        ucd="phys.size;meta.file",
        description="Size of the download the link returns",
    ),
    _text("content_qualifier", "meta.code.class", "Product type of what the link returns"),
    _text("local_semantics", "meta.id.assoc", "The same kind of link for every dataset here"),
    _text("link_auth", "meta.code", "Whether the link needs authentication (false: anonymous)"),
    ResultColumn(
        "link_authorized",
        "boolean",
        ucd="meta.code",
        description="Whether the caller may use the link",
    ),
)
"""The ``{links}`` table's FIELDs: DataLink 1.1, section 3.2, table 1, in its order."""
LINK_COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in LINK_COLUMNS)
SIMILAR_IMAGES = "similar-images"
"""``local_semantics`` of the similar-images service link."""
SIMILAR_IMAGES_PAGE = "similar-images-page"
"""``local_semantics`` of the similar-images page link."""


@dataclass(frozen=True)
class Link:
    """One row of the ``{links}`` table."""

    id: str
    semantics: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    local_semantics: str | None = None

    def values(self) -> dict[str, object]:
        """Return the values by column name (DataLink 1.1, section 3.2, table 1)."""
        usable = self.error_message is None
        return {
            "ID": self.id,
            "access_url": self.access_url,
            "service_def": self.service_def,
            "error_message": self.error_message,
            "semantics": self.semantics,
            "description": self.description,
            "content_type": self.content_type,
            "content_length": self.content_length,
            "content_qualifier": self.content_qualifier,
            "local_semantics": self.local_semantics,
            "link_auth": "false" if usable else None,
            "link_authorized": True if usable else None,
        }

    def row(self, columns: Sequence[str] = LINK_COLUMN_NAMES) -> tuple[object, ...]:
        """Return the values in the order of ``columns`` (by default, `LINK_COLUMNS`)."""
        values = self.values()
        return tuple(values.get(name) for name in columns)


async def links(request: Request) -> Response:
    """Answer a ``{links}`` request (DataLink 1.1, section 3), GET or POST."""
    try:
        params = await read_dali_parameters(request, max_body_bytes=_MAX_BODY_BYTES)
    except RequestTooLargeError as error:
        return unread_body_response(_error(f"UsageFault: {error}", 413))
    except HTTPException as error:
        return _error(f"UsageFault: the request body could not be read: {error.detail}", 400)
    try:
        ids = _identifiers(params)
    except ValueError as error:
        return _error(f"UsageFault: {error}", 400)
    urls = ServiceUrls.from_request(request)
    try:
        table = await to_thread.run_sync(
            _links, request.app.state.similarity, request.app.state.tap.settings, urls, ids
        )
    except Exception:
        log.exception("DataLink request failed")
        return _error("FatalFault: internal error of the DataLink service", 500)
    rows, referenced = table
    frame = VOTableFrame(
        standard_id=DATALINK_STANDARD_ID,
        field_ids={"ID": _ID_FIELD},
        service_descriptors=(
            (similarity_service(urls, _ID_FIELD, request.app.state.similarity.limits),)
            if referenced
            else ()
        ),
        overflow_message=(
            f"Only the first {MAX_IDS} identifiers were answered; ask again for the others."
        ),
    )
    writer = table_writer(OUTPUT_FORMATS[0], LINK_COLUMNS, frame=frame)
    body = writer.head() + writer.rows(rows) + writer.tail(overflow=len(ids) > MAX_IDS, error=None)
    return Response(body, media_type=DATALINK_TYPE)


def _identifiers(params: DaliParameters) -> list[str]:
    response_format = params.get("RESPONSEFORMAT")
    if response_format is not None:
        normalised = "".join(response_format.split()).lower()
        if normalised not in _ACCEPTED_FORMATS:
            raise ValueError(
                f"RESPONSEFORMAT={response_format!r} is not offered; {DATALINK_TYPE} "
                "(the default) is the only format of this service"
            )
    ids = [value.strip() for value in params.getlist("ID") if value.strip()]
    if not ids:
        raise ValueError("give the identifier of a dataset (obs_publisher_did) as ID")
    return ids


def _links(
    similarity: SimilarityService, settings: Settings, urls: ServiceUrls, ids: Sequence[str]
) -> tuple[list[tuple[object, ...]], bool]:
    """Build every row; say whether any row references the similar-images service."""
    answered = list(dict.fromkeys(ids[:MAX_IDS]))
    archive: ProductArchive = similarity.archive
    products = archive.find(answered)
    now = utc_now()
    rows: list[tuple[object, ...]] = []
    referenced = False
    for did in answered:
        for link in _product_links(did, products.get(did), similarity, settings, urls, now):
            rows.append(link.row())
            referenced = referenced or link.service_def is not None
    return rows, referenced


def _product_links(
    did: str,
    product: Product | None,
    similarity: SimilarityService,
    settings: Settings,
    urls: ServiceUrls,
    now: datetime,
) -> list[Link]:
    if product is None or not product.is_public(now):
        return [Link(did, "#this", error_message=f"NotFoundFault: {not_found_message(did)}")]
    if product.product_key is None:
        return [
            Link(did, "#this", error_message=f"NotFoundFault: the archive holds no file of {did}")
        ]
    return [
        _file_link(product, urls),
        _preview_link(product, settings, urls),
        *_similarity_links(product, similarity, urls, now),
    ]


def _file_link(product: Product, urls: ServiceUrls) -> Link:
    did, key = product.obs_publisher_did, product.product_key
    assert key is not None and product.file_path is not None
    kind = "peak-flux cube" if product.image_kind == "peak_flux" else "continuum image"
    if product.remote_file is not None:  # harvested, the file left at the archive
        return Link(
            did,
            "#this",
            access_url=product.remote_file,
            description=f"The FITS file of this {kind}, at the archive it was harvested from",
            content_type="application/fits",
            content_length=product.file_size,
            content_qualifier=_CONTENT_QUALIFIERS.get(product.image_kind or ""),
        )
    path = Path(product.file_path)
    if not has_content(path):
        return _missing_link(did, "#this", f"the file of {did}", path)
    return Link(
        did,
        "#this",
        access_url=urls.file(key),
        description=f"The FITS file of this {kind}",
        content_type="application/fits",
        content_length=path.stat().st_size,
        content_qualifier=_CONTENT_QUALIFIERS.get(product.image_kind or ""),
    )


def _missing_link(did: str, semantics: str, what: str, path: Path) -> Link:
    """Make the row of a public product's stored file that is gone or empty; logged."""
    log.error("%s is missing or empty in storage (restore it, or ingest again): %s", what, path)
    return Link(did, semantics, error_message=f"FatalFault: {what} is missing from storage")


def _preview_link(product: Product, settings: Settings, urls: ServiceUrls) -> Link:
    did, key = product.obs_publisher_did, product.product_key
    assert key is not None
    path = settings.preview_dir / f"{key}.png"
    if not has_content(path):
        return _missing_link(did, "#preview", f"the preview of {did}", path)
    return Link(
        did,
        "#preview",
        access_url=urls.preview(key),
        description="PNG preview of the image",
        content_type="image/png",
        content_length=path.stat().st_size,
    )


def _similarity_links(
    product: Product, similarity: SimilarityService, urls: ServiceUrls, now: datetime
) -> list[Link]:
    """Link the similar-images service and page, if the image has a current vector."""
    did = product.obs_publisher_did
    if not has_public_vector(similarity, did, product.image_kind, now):
        return []
    return similar_image_links(did, product.image_kind, urls)


def has_public_vector(
    similarity: SimilarityService, did: str, image_kind: str | None, now: datetime
) -> bool:
    """Whether an image is public and has a vector of its kind's current model (is rankable)."""
    index = similarity.indexes.get(image_kind or "")
    position = None if index is None else index.positions.get(did)
    return index is not None and position is not None and bool(index.public_mask(now)[position])


def similar_image_links(did: str, image_kind: str | None, urls: ServiceUrls) -> list[Link]:
    """Return the rows that offer an image's similar images: the service and the page.

    The first row points, by ``service_def``, at the service descriptor
    `vo_service.similarity.responses.similarity_service` writes (XML ID
    ``similar-images``); the second is the page for a person. Used by this
    endpoint and by `vo_service.datalink.fragment` for an archive's own
    ``{links}`` service, so that both say the same.
    """
    kind = f"{image_kind}, " if image_kind else ""
    return [
        Link(
            did,
            "#auxiliary",
            service_def=SIMILARITY_DESCRIPTOR_ID,
            description=(
                "Service: the public images morphologically most similar to this one "
                f"({kind}compatible scientific categories), most similar first"
            ),
            content_type=VOTABLE_TYPE,
            local_semantics=SIMILAR_IMAGES,
        ),
        Link(
            did,
            "#auxiliary",
            access_url=urls.page(did),
            description="Web page of the images most similar to this one, to refine by clicking",
            content_type="text/html",
            local_semantics=SIMILAR_IMAGES_PAGE,
        ),
    ]


def _error(message: str, status_code: int) -> Response:
    """Answer with a DALI error document (DataLink 1.1 section 3.3: the whole request failed)."""
    return Response(error_document(message), status_code, media_type=VOTABLE_TYPE)
