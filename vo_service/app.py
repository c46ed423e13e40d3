"""The vosim web application: its HTTP surface as one route table.

Read the table top to bottom to see every URL the service answers. Each
protocol lives in its own module (``tap.sync``, ``tap.vosi``,
``uws.handlers``, ``similarity.handlers``), the HTML pages in ``pages``;
this file only wires them, opens what they share, and starts and stops it
with the application.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
from anyio import to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from model_training.learn.current_embedder import CurrentModelEmbedder
from tap_schema import Catalogue, Settings
from vo_service.datalink import links as datalink
from vo_service.pages import files
from vo_service.pages import handlers as pages
from vo_service.public_base import PublicBase, PublicBaseMiddleware
from vo_service.security_headers import SecurityHeadersMiddleware
from vo_service.similarity import IndexOptions, SimilarityLimits, SimilarityService
from vo_service.similarity import handlers as similarity
from vo_service.similarity.embedder import Embedder
from vo_service.tap import sync, vosi
from vo_service.tap.limits import TapLimits
from vo_service.tap.service import TapService
from vo_service.uws import handlers as uws

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_CLEANUP_INTERVAL_S = 60.0


def create_app(
    settings: Settings,
    *,
    catalogue: Catalogue | None = None,
    limits: TapLimits | None = None,
    similarity_limits: SimilarityLimits | None = None,
    index_options: IndexOptions | None = None,
    embedder: Embedder | None = None,
    public_url: str | None = None,
    trust_forwarded: bool | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """Build the application: TAP, DataLink, the similarity service and the pages, as one ASGI app.

    Serve it alone (``vosim serve``) or mount it under any prefix of an
    archive's own Starlette or FastAPI application; a mounting parent must
    run vosim's lifespan itself, because ``Mount`` does not, and until it has
    run vosim answers 503 (README, "Mount inside your application"). Every
    URL vosim writes is under the public base URL of `vo_service.public_base`.

    Parameters
    ----------
    settings
        The installation (database URL, data and job folders, public URL).
    catalogue
        An open catalogue to use; by default the one of ``settings``, created
        if missing.
    limits
        TAP limits; by default `TapLimits.from_env`.
    similarity_limits
        Limits of the similarity service; by default `SimilarityLimits.from_env`.
    index_options
        How the similarity index ranks (exact or reduced copy); defaults otherwise.
    embedder
        Embeds uploaded images for the similarity search by image; by default
        the current model of each kind (`CurrentModelEmbedder`), loaded at
        the first upload.
    public_url
        The public base URL of the application, e.g.
        ``https://archive.example.org/alma/vosim``; by default
        ``settings.public_url`` (``VOSIM_PUBLIC_URL``). When neither is set,
        URLs follow each request.
    trust_forwarded
        Take the public base URL from the reverse proxy's ``Forwarded`` /
        ``X-Forwarded-*`` headers; by default ``settings.trust_forwarded``
        (``VOSIM_TRUST_FORWARDED``). Only behind a proxy that sets them.
    allowed_hosts
        ``Host`` names answered (Starlette's ``TrustedHostMiddleware``; others
        get 400); by default ``settings.allowed_hosts``, none when that is
        empty (a mounting application checks hosts itself). ``vosim serve``
        passes `vo_service.server.allowed_hosts`.
    """
    if public_url is not None:
        settings = settings.with_changes(public_url=public_url.rstrip("/"))
    if trust_forwarded is not None:
        settings = settings.with_changes(trust_forwarded=trust_forwarded)
    tap = TapService.open(settings, catalogue=catalogue, limits=limits)
    similar = SimilarityService(
        tap.catalogue,
        limits=similarity_limits,
        options=index_options,
        embedder=embedder or CurrentModelEmbedder(tap.catalogue),
    )
    tap.database.set_score_source(similar)  # vosim_similarity with a constant: the index
    routes = [
        Mount(
            "/tap",
            routes=[
                Route("/", vosi.service_root),
                Route("/sync", sync.sync_query, methods=["GET", "POST"]),
                Route("/async", uws.job_list, methods=["GET", "POST"], name="uws_jobs"),
                Route(
                    "/async/{job_id}", uws.job, methods=["GET", "POST", "DELETE"], name="uws_job"
                ),
                Route("/async/{job_id}/phase", uws.job_phase, methods=["GET", "POST"]),
                Route(
                    "/async/{job_id}/executionduration",
                    uws.job_execution_duration,
                    methods=["GET", "POST"],
                ),
                Route("/async/{job_id}/destruction", uws.job_destruction, methods=["GET", "POST"]),
                Route("/async/{job_id}/error", uws.job_error),
                Route("/async/{job_id}/quote", uws.job_quote),
                Route("/async/{job_id}/owner", uws.job_owner),
                Route("/async/{job_id}/parameters", uws.job_parameters, methods=["GET", "POST"]),
                Route("/async/{job_id}/parameters/{name}", uws.job_parameter),
                Route("/async/{job_id}/results", uws.job_results),
                Route("/async/{job_id}/results/{result_id}", uws.job_result),
                Route("/capabilities", vosi.capabilities),
                Route("/availability", vosi.availability),
                Route("/tables", vosi.tables),
                Route("/tables/{table_name}", vosi.table),
                Route("/examples", vosi.examples),
            ],
        ),
        Route("/datalink", datalink.links, methods=["GET", "POST"]),
        Route("/similarity/sync", similarity.similarity_sync, methods=["GET", "POST"]),
        Route("/similarity/image", similarity.similar_image),
        Route("/similarity/capabilities", similarity.capabilities),
        Route("/preview/{key}.png", files.preview),
        Route("/files/{key}.fits", files.fits_file),
        Route("/", pages.home),
        Route(pages.SIMILAR_PAGE, pages.similar),
        Mount("/static", StaticFiles(packages=[("templates", "static")]), name="static"),
    ]
    public_base = PublicBase(settings.public_url, settings.trust_forwarded)
    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(PublicBaseMiddleware, policy=public_base),
    ]
    allowed_hosts = settings.allowed_host_names if allowed_hosts is None else allowed_hosts
    if allowed_hosts:
        middleware.insert(1, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=_lifespan,
    )
    app.state.tap = tap
    app.state.catalogue = tap.catalogue
    app.state.similarity = similar
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Start the services (the similarity vectors loaded before the first request).

    Then, while serving: destroy expired async jobs every minute, and reload
    the similarity vectors when the catalogue changes; stop cleanly.
    """
    tap: TapService = app.state.tap
    similar: SimilarityService = app.state.similarity
    await to_thread.run_sync(tap.start)
    await to_thread.run_sync(lambda: similar.refresh(force=True))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_destroy_expired_jobs, tap)
        tasks.start_soon(_refresh_similarity, similar)
        app.state.started = True
        try:
            yield
        finally:
            app.state.started = False
            tasks.cancel_scope.cancel()
            await to_thread.run_sync(tap.stop)


async def _refresh_similarity(similar: SimilarityService) -> None:
    while True:
        await anyio.sleep(similar.limits.refresh_interval_s)
        try:
            await to_thread.run_sync(similar.refresh)
        except Exception:
            log.exception("reloading the similarity vectors failed; serving the previous ones")


async def _destroy_expired_jobs(tap: TapService) -> None:
    while True:
        try:
            await to_thread.run_sync(tap.jobs.destroy_expired)
        except Exception:
            log.exception("destroying expired jobs failed")
        await anyio.sleep(_CLEANUP_INTERVAL_S)
