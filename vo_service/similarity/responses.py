"""The answers of the similarity service: the page's JSON document, or a result table.

**JSON** (``RESPONSEFORMAT=application/json``), the contract with the page::

    {"selection": [did, ...], "excluded": [did, ...], "image_kind": "continuum",
     "model_id": 3, "total": 812, "offset": 0, "maxrec": 100, "overflow": true,
     "min_separation": 30.0, "hidden_nearby": 4,
     "results": [{"rank": 1, "obs_publisher_did": ..., "target_name": ..., "s_ra": ...,
                  "s_dec": ..., "band_list": ..., "scientific_category": ...,
                  "similarity": 0.93, "preview_url": ..., "datalink_url": ...,
                  "file_url": ..., "page_url": ...}, ...],
     "quick_select": [{"representative": did, "members": [did, ...]}, ...]}

``min_separation`` is the ``MIN_SEPARATION`` in arcsec (0: off) and
``hidden_nearby`` the number of candidates it left out (``total`` counts
those ranked, after it). ``quick_select`` only when requested
(``QUICKSELECT=true``): the five k-means representatives of the current
top 1000, most similar first, each with the 15 images closest to it
(itself first), which a click preselects;
``upload`` only for a search by uploaded image: what the service made of
it (kind, cut-out rule and centre, S/N) and the cut-out itself as RGBA
pixels in the previews' colours (``cutout_image``), which the page draws on
a canvas (an inline ``data:`` image would need the Content-Security-Policy
to allow it); ``note`` when MAXREC was lowered. Errors are
``{"error": message}`` with the HTTP status of the error.

**Tables** (VOTable by default; CSV, TSV, FITS as in TAP) are written by
the TAP writer, with the same columns. Their metadata (UCD, unit,
description) is TAP_SCHEMA's for the columns that come from published
tables, so a client sees the same description as in a TAP query. A VOTable
also carries two service descriptors bound to the ``obs_publisher_did``
column: DataLink (for each image's files) and this service (to rank
against one row's image).
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np
from starlette.responses import Response

from model_training.ingest.preview import render_preview
from vo_service.adql import TapSchema
from vo_service.dali import VOTABLE_TYPE, error_document
from vo_service.product_lookup import Product
from vo_service.urls import ServiceUrls
from vo_service.votable.columns import ResultColumn
from vo_service.votable.formats import ResponseFormat
from vo_service.votable.service_descriptor import InputParam, ServiceDescriptor, links_service
from vo_service.votable.writers import VOTableFrame, table_writer

from .errors import SimilarityError
from .image_upload import UploadedImage
from .service import RankedImage, SimilarityLimits, SimilarityResult

__all__ = [
    "DID_FIELD_ID",
    "SIMILARITY_DESCRIPTOR_ID",
    "error_response",
    "image_json",
    "image_response",
    "json_response",
    "similarity_service",
    "table_response",
]

DID_FIELD_ID = "obs_publisher_did"
"""XML ID of the ``obs_publisher_did`` FIELD, which the service descriptors ``ref``."""

JSON_TYPE = "application/json"

_URL_COLUMNS = (
    ResultColumn(
        "preview_url",
        "char",
        "*",
        ucd="meta.ref.url;meta.preview",
        description="PNG preview of the image",
    ),
    ResultColumn(
        "datalink_url",
        "char",
        "*",
        ucd="meta.ref.url",
        description="DataLink {links} response of the image: its file, preview and services",
    ),
    ResultColumn(
        "file_url", "char", "*", ucd="meta.ref.url;meta.file", description="FITS file of the image"
    ),
    ResultColumn(
        "page_url",
        "char",
        "*",
        ucd="meta.ref.url",
        description="Web page of the images most similar to this one",
    ),
)
_SIMILARITY_COLUMN = ResultColumn(
    "similarity",
    "float",
    ucd="stat.correlation",
    description="Cosine similarity of the image's vector to the combined query vector",
)


def image_json(product: Product, urls: ServiceUrls) -> dict[str, object]:
    """Describe one image the way every result row does, without rank and similarity."""
    key = product.product_key
    return {
        "obs_publisher_did": product.obs_publisher_did,
        "target_name": product.target_name,
        "s_ra": product.s_ra,
        "s_dec": product.s_dec,
        "band_list": product.band_list,
        "scientific_category": product.scientific_category,
        "image_kind": product.image_kind,
        "preview_url": urls.preview(key) if key else None,
        "datalink_url": urls.datalink(product.obs_publisher_did),
        "file_url": urls.file(key) if key else None,
        "page_url": urls.page(product.obs_publisher_did),
    }


def image_response(product: Product, urls: ServiceUrls) -> Response:
    """Answer with the JSON description of one image."""
    return Response(
        json.dumps(_without_nan(image_json(product, urls)), allow_nan=False), media_type=JSON_TYPE
    )


def _ranked_json(row: RankedImage, urls: ServiceUrls) -> dict[str, object]:
    described = image_json(row.product, urls)
    del described["image_kind"]
    return {"rank": row.rank, **described, "similarity": row.similarity}


def json_response(
    result: SimilarityResult,
    urls: ServiceUrls,
    *,
    maxrec: int,
    offset: int,
    note: str | None = None,
) -> Response:
    """Answer with the page's JSON document of a ranking."""
    document: dict[str, object] = {
        "selection": list(result.selection),
        "excluded": list(result.excluded),
        "image_kind": result.image_kind,
        "model_id": result.model_id,
        "total": result.total,
        "offset": offset,
        "maxrec": maxrec,
        "overflow": result.overflow,
        "min_separation": result.min_separation_arcsec,
        "hidden_nearby": result.hidden_nearby,
        "results": [_ranked_json(row, urls) for row in result.results],
    }
    if result.uploaded is not None:
        document["upload"] = {
            **_upload_json(result.uploaded),
            "cutout_image": _cutout_image(result.uploaded),
        }
        if result.uploaded_vector is not None:
            document["upload"]["vector"] = [float(x) for x in result.uploaded_vector]
    if result.quick_select is not None:
        document["quick_select"] = [
            {"representative": group.representative, "members": list(group.members)}
            for group in result.quick_select
        ]
    if note:
        document["note"] = note
    return Response(json.dumps(_without_nan(document), allow_nan=False), media_type=JSON_TYPE)


def _without_nan(value: object) -> object:
    """Replace NaN and infinities (which JSON cannot carry) by null, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value


def _upload_json(image: UploadedImage) -> dict[str, object]:
    """Describe what the service made of an uploaded image: its kind and cut-out."""
    cutout = image.cutout
    return {
        "file_name": image.file_name,
        "image_kind": image.image_kind,
        "cutout_rule": cutout.rule,
        "cutout_ra": cutout.ra,
        "cutout_dec": cutout.dec,
        "peak_snr": cutout.peak_snr if np.isfinite(cutout.peak_snr) else None,
    }


def _vector_text(vector: np.ndarray) -> str:
    """Write a vector as space-separated float32 values that read back exactly."""
    return " ".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32))


def _cutout_image(image: UploadedImage) -> dict[str, object]:
    """Render the cut-out as the previews show a map (asinh stretch, inferno): RGBA, north up."""
    rendered = render_preview(image.cutout.pixels).convert("RGBA")
    return {
        "width": rendered.width,
        "height": rendered.height,
        "rgba": base64.b64encode(rendered.tobytes()).decode("ascii"),
    }


def result_columns(schema: TapSchema) -> tuple[ResultColumn, ...]:
    """Describe the columns of a result table as TAP_SCHEMA describes their origin."""
    obscore = _columns(schema, "ivoa", "obscore")
    neighbour = _columns(schema, "similarity", "neighbour")
    rank = neighbour["rank"]
    return (
        ResultColumn(
            "rank",
            rank.datatype,
            ucd=rank.ucd,
            description="Position in the ranking, 1 for the most similar",
        ),
        *(
            obscore[name]
            for name in (
                "obs_publisher_did",
                "target_name",
                "s_ra",
                "s_dec",
                "band_list",
                "scientific_category",
            )
        ),
        _SIMILARITY_COLUMN,
        *_URL_COLUMNS,
    )


def _columns(schema: TapSchema, schema_name: str, table: str) -> dict[str, ResultColumn]:
    found = schema.find((schema_name, False), (table, False))
    return {column.name: column for column in found.columns}


def _row(row: RankedImage, urls: ServiceUrls) -> tuple[object, ...]:
    product = row.product
    key = product.product_key
    return (
        row.rank,
        product.obs_publisher_did,
        product.target_name,
        product.s_ra,
        product.s_dec,
        product.band_list,
        product.scientific_category,
        row.similarity,
        urls.preview(key) if key else None,
        urls.datalink(product.obs_publisher_did),
        urls.file(key) if key else None,
        urls.page(product.obs_publisher_did),
    )


def table_response(
    result: SimilarityResult,
    urls: ServiceUrls,
    *,
    response: ResponseFormat,
    schema: TapSchema,
    limits: SimilarityLimits,
    maxrec: int,
    offset: int,
    note: str | None = None,
) -> Response:
    """Answer with the ranking as a table (VOTable with service descriptors, or another format)."""
    infos = [("image_kind", result.image_kind), ("model_id", str(result.model_id))]
    infos += [("total", str(result.total))]
    infos += [("ID", did) for did in result.selection]
    infos += [("NOT_ID", did) for did in result.excluded]
    if result.min_separation_arcsec > 0:
        infos += [
            ("MIN_SEPARATION", repr(result.min_separation_arcsec)),
            ("hidden_nearby", str(result.hidden_nearby)),
        ]
    if result.uploaded is not None:
        upload = _upload_json(result.uploaded)
        infos += [(f"upload_{name}", str(value)) for name, value in upload.items()]
        if result.uploaded_vector is not None:
            # the TABLEDATA form of an array, which vosim_similarity_vector also reads as text
            infos.append(("upload_vector", _vector_text(result.uploaded_vector)))
    if note:
        infos.append(("note", note))
    frame = VOTableFrame(
        standard_id=None,
        infos=tuple(infos),
        field_ids={"obs_publisher_did": DID_FIELD_ID},
        service_descriptors=(
            links_service(urls.datalink_service, DID_FIELD_ID),
            similarity_service(urls, DID_FIELD_ID, limits),
        ),
        overflow_message=(
            f"{result.total} images were ranked; this page ends at row {offset + maxrec}. "
            f"Ask for the next page with OFFSET={offset + maxrec}"
            f" (MAXREC up to {limits.hard_maxrec})."
        ),
    )
    writer = table_writer(response.format, result_columns(schema), frame=frame)
    body = (
        writer.head()
        + writer.rows([_row(row, urls) for row in result.results])
        + writer.tail(overflow=result.overflow, error=None)
    )
    return Response(body, media_type=response.content_type)


SIMILARITY_DESCRIPTOR_ID = "similar-images"
"""XML ID of the similarity service descriptor, which DataLink rows name in ``service_def``."""


def similarity_service(
    urls: ServiceUrls, id_ref: str, limits: SimilarityLimits
) -> ServiceDescriptor:
    """Describe the similarity service, ranking against the image in FIELD ``id_ref``."""
    return ServiceDescriptor(
        id=SIMILARITY_DESCRIPTOR_ID,
        access_url=urls.similarity_service,
        name="Similar images",
        description=(
            "The public images morphologically most similar to this one (same image kind, "
            "compatible scientific category), most similar first"
        ),
        input_params=(
            InputParam(
                "ID",
                ref=id_ref,
                ucd="meta.id;meta.main",
                description="Publisher DID of the image to find similar images of",
            ),
            # value="0", the default, rather than "" (for the user to fill in): pyvo 1.9
            # reads an empty double PARAM as None and its process() then fails.
            InputParam(
                "MIN_SEPARATION",
                datatype="double",
                arraysize=None,
                value="0",
                unit="arcsec",
                ucd="pos.angDistance",
                description=(
                    "Leave out the images whose cut-out centre is closer than this to the "
                    "image's own (other targets only); 0, the default, leaves none out"
                ),
                minimum="0",
            ),
            InputParam(
                "MAXREC",
                datatype="int",
                arraysize=None,
                description=f"Number of similar images to return (default {limits.default_maxrec})",
                minimum="0",
                maximum=str(limits.hard_maxrec),
            ),
            InputParam(
                "OFFSET",
                datatype="int",
                arraysize=None,
                description="Similar images to skip, for the next page (default 0)",
                minimum="0",
            ),
            InputParam(
                "RESPONSEFORMAT",
                description="Format of the answer (default VOTable)",
                options=(VOTABLE_TYPE, "text/csv", "application/fits", JSON_TYPE),
            ),
        ),
    )


def error_response(error: SimilarityError | str, status_code: int, *, as_json: bool) -> Response:
    """Answer with an error in the form the client asked for: JSON, or a DALI error document."""
    message = error.message if isinstance(error, SimilarityError) else error
    if as_json:
        return Response(json.dumps({"error": message}), status_code, media_type=JSON_TYPE)
    return Response(error_document(message), status_code, media_type=VOTABLE_TYPE)
