"""A DataLink fragment for archives that already run their own ``{links}`` service.

An archive whose DataLink service is its own (GAVO DaCHS, CADC, ESA) adds
"similar images" to its responses without proxying vosim's: for each
identifier it asks `similarity_links` for

- the rows (DataLink 1.1 section 3.2) vosim's own ``{links}`` response
  gives the image: ``#auxiliary`` with ``local_semantics``
  ``similar-images``, pointing by ``service_def`` at the service
  descriptor, and the page for a person (``similar-images-page``);
- the service descriptor (section 4), a ``RESOURCE type="meta"
  utype="adhoc:service"`` whose ``ID`` input parameter is bound by
  ``ref`` to the archive's ID FIELD, so that a client invokes the service
  for the row it is on.

They come as values, in the order of the archive's FIELDs, and as VOTable
text to paste (``templates/datalink/fragment.xml``): the rows into the
results TABLEDATA, the RESOURCE once per response after the results
RESOURCE. Rows, descriptor and their wording are the ones
`vo_service.datalink.links` writes, from the same functions and templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jinja2.environment import TemplateModule

from tap_schema.release import utc_now
from vo_service.similarity.responses import similarity_service
from vo_service.similarity.service import SimilarityLimits, SimilarityService
from vo_service.templating import environment
from vo_service.urls import ServiceUrls
from vo_service.votable.service_descriptor import ServiceDescriptor

from .links import LINK_COLUMN_NAMES, has_public_vector, similar_image_links

__all__ = ["DataLinkFragment", "similarity_links"]


@dataclass(frozen=True)
class DataLinkFragment:
    """The similar-images rows of one image and the service descriptor they name.

    Parameters
    ----------
    columns
        The archive's ``{links}`` FIELD names, in its order.
    rows
        The rows, values in the order of ``columns`` (None where vosim has
        no value, or for a column DataLink does not define); empty when
        the image cannot be ranked.
    descriptor
        The similar-images service descriptor (XML ID ``similar-images``).
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    descriptor: ServiceDescriptor

    def table_rows(self) -> str:
        """Return the rows as VOTable TABLEDATA ``<TR>`` elements (empty cells for None)."""
        return str(_macros().table_rows([[_cell(value) for value in row] for row in self.rows]))

    def service_resource(self) -> str:
        """Return the service descriptor ``RESOURCE``, for once after the results RESOURCE."""
        return str(_macros().service_resource(self.descriptor))


def similarity_links(
    did: str,
    base_url: str,
    *,
    id_ref: str = "ID",
    columns: Sequence[str] = LINK_COLUMN_NAMES,
    image_kind: str | None = None,
    limits: SimilarityLimits | None = None,
    similarity: SimilarityService | None = None,
) -> DataLinkFragment:
    """Return what adds an image's similar images to an archive's ``{links}`` response.

    Parameters
    ----------
    did
        The image's publisher DID (the ``ID`` of the archive's row).
    base_url
        Where the archive serves vosim's endpoints (its public base URL,
        e.g. ``https://archive.example.org/alma/vosim``).
    id_ref
        XML ``ID`` of the archive's ``ID`` FIELD, which the descriptor's
        ``ID`` parameter refers to.
    columns
        The archive's FIELD names in its order; by default DataLink 1.1's
        table 1 with the optional columns vosim fills.
    image_kind
        The image's kind (``continuum``, ``peak_flux``), for the row's
        description.
    limits
        The similarity service's limits, for the descriptor's MAXREC range;
        by default those of the service, else of the environment.
    similarity
        vosim's similarity service (``create_app(...).state.similarity``
        where vosim is mounted in the archive's application): rows are then
        given only for an image vosim can rank (public, with a current
        vector), as vosim's own ``{links}`` does, and the kind is looked up.
    """
    urls = ServiceUrls(base_url.rstrip("/"))
    if limits is None:
        limits = similarity.limits if similarity is not None else SimilarityLimits.from_env()
    descriptor = similarity_service(urls, id_ref, limits)
    if similarity is not None:
        product = similarity.archive.find([did]).get(did)
        now = utc_now()
        if product is None or not product.is_public(now):
            return DataLinkFragment(tuple(columns), (), descriptor)
        image_kind = product.image_kind
        if not has_public_vector(similarity, did, image_kind, now):
            return DataLinkFragment(tuple(columns), (), descriptor)
    links = similar_image_links(did, image_kind, urls)
    return DataLinkFragment(tuple(columns), tuple(link.row(columns) for link in links), descriptor)


def _macros() -> TemplateModule:
    return environment().get_template("datalink/fragment.xml").module


def _cell(value: object) -> object:
    """Write a value as VOTable TABLEDATA does (booleans as T/F, None as an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "T" if value else "F"
    return value
