"""The VOSI and DALI endpoints of the TAP service: capabilities, availability, tables, examples.

VOSI 1.1 sections 3.1-3.4 and DALI 1.1 section 2.3 define the documents;
they are rendered from ``templates/tap/``. What they say comes from the
objects that also drive the service (limits, output formats, TAP_SCHEMA),
so the description cannot drift from the behaviour.
"""

from __future__ import annotations

import sqlalchemy as sa
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tap_schema.release import released, utc_now
from vo_service.templating import environment, xml_response
from vo_service.urls import ServiceUrls
from vo_service.votable.formats import OUTPUT_FORMATS

from .capabilities import ADQL_VERSIONS, DATA_MODELS, FEATURE_GROUPS
from .service import TapService
from .tableset import read_tableset

__all__ = ["availability", "capabilities", "examples", "service_root", "table", "tables"]

XHTML_TYPE = "application/xhtml+xml"


async def service_root(request: Request) -> Response:
    """Send whoever opens the TAP base URL in a browser to the capabilities.

    TAP 1.1 defines no document at the base URL itself (clients append
    ``/sync``, ``/capabilities``, …), but it is the address people are given
    and paste into a browser; a 404 there reads as a broken service.
    """
    return RedirectResponse(f"{ServiceUrls.from_request(request).tap}/capabilities", 303)


async def capabilities(request: Request) -> Response:
    """VOSI capabilities with the TAPRegExt description of the TAP capability."""
    service: TapService = request.app.state.tap
    return xml_response(
        "tap/capabilities.xml",
        base_url=ServiceUrls.from_request(request).tap,
        dialect=service.database.dialect,
        adql_versions=ADQL_VERSIONS,
        feature_groups=FEATURE_GROUPS,
        data_models=DATA_MODELS,
        output_formats=OUTPUT_FORMATS,
        limits=service.limits,
    )


async def availability(request: Request) -> Response:
    """VOSI availability: available when the catalogue database answers."""
    service: TapService = request.app.state.tap
    available, note = await to_thread.run_sync(service.check_database)
    return xml_response(
        "tap/availability.xml", available=available, note=note, up_since=service.started_at
    )


async def tables(request: Request) -> Response:
    """VOSI tables: the tableset from TAP_SCHEMA (``detail=min`` leaves out the columns)."""
    service: TapService = request.app.state.tap
    detail = _parameter(request, "detail") or "max"
    schemas = await to_thread.run_sync(read_tableset, service.catalogue)
    return xml_response("tap/tableset.xml", schemas=schemas, detail=detail, single=None)


async def table(request: Request) -> Response:
    """VOSI tables: one table, with its columns (VOSI 1.1, section 3.4.2)."""
    service: TapService = request.app.state.tap
    name = request.path_params["table_name"]
    schemas = await to_thread.run_sync(read_tableset, service.catalogue)
    for schema in schemas:
        for entry in schema.tables:
            if entry.name.lower() == name.lower():
                return xml_response("tap/tableset.xml", single=entry)
    return Response(
        f"no table {name!r}; /tap/tables lists the published tables",
        status_code=404,
        media_type="text/plain",
    )


async def examples(request: Request) -> Response:
    """DALI examples: queries that show what the similarity tables are for."""
    service: TapService = request.app.state.tap
    sample = await to_thread.run_sync(_sample_image, service)
    tap_url = ServiceUrls.from_request(request).tap
    text = environment().get_template("tap/examples.html").render(base_url=tap_url, **sample)
    return Response(text, media_type=XHTML_TYPE)


def _parameter(request: Request, name: str) -> str | None:
    for key, value in request.query_params.multi_items():
        if key.lower() == name.lower():
            return value
    return None


def _sample_image(service: TapService) -> dict[str, object]:
    """Find a public image with similar images, to put real identifiers into the examples."""
    catalogue = service.catalogue
    obscore = catalogue.table("ivoa.obscore")
    neighbour = catalogue.table("similarity.neighbour")
    columns = (
        obscore.c.obs_publisher_did,
        obscore.c.target_name,
        obscore.c.s_ra,
        obscore.c.s_dec,
        obscore.c.band_list,
        obscore.c.scientific_category,
    )
    public = released(obscore.c.obs_release_date, utc_now())
    with_neighbours = sa.exists().where(
        neighbour.c.obs_publisher_did == obscore.c.obs_publisher_did
    )
    with catalogue.begin() as conn:
        row = conn.execute(
            sa.select(*columns)
            .where(public, with_neighbours)
            .order_by(obscore.c.obs_publisher_did)
            .limit(1)
        ).first()
        if row is None:
            row = conn.execute(
                sa.select(*columns).where(public).order_by(obscore.c.obs_publisher_did).limit(1)
            ).first()
    if row is None:
        return {
            "did": f"ivo://{service.settings.authority}/alma?example",
            "target": "HH212",
            "ra": 83.8,
            "dec": -5.4,
            "band": "7",
            "category": "ISM, star formation and astrochemistry",
        }
    return {
        "did": row.obs_publisher_did,
        "target": row.target_name or "",
        "ra": round(row.s_ra or 0.0, 5),
        "dec": round(row.s_dec or 0.0, 5),
        "band": row.band_list or "7",
        "category": row.scientific_category or "ISM, star formation and astrochemistry",
    }
