"""vosim mounted under ``/archive/vosim`` of a plain Starlette application, as an archive would.

One small archive is ingested (real FITS files, real ingest, with the
stored URLs written under the default public URL, as a first ingest on a
laptop would) and given vectors and neighbour lists. Three parent
applications serve it, each under uvicorn on a free port, with uvicorn's
own proxy-header handling off so that only vosim's policy decides:

- ``mounted``: no public URL, forwarded headers not trusted;
- ``public``: ``VOSIM_PUBLIC_URL=https://archive.example.org/alma/vosim``;
- ``forwarded``: ``trust_forwarded=True``, as behind a reverse proxy.

The last two serve copies of the installation: an async job's result is
written once, for the URL its creator used, and the job lists would
otherwise show each other's jobs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from model_training.neighbours.stage import compute_neighbours
from tap_schema import Settings, open_catalogue
from tests import served_archive
from tests.served_server import TEST_SIMILARITY_LIMITS
from tests.tap.server import serve_in_thread
from vo_service.app import create_app

PREFIX = "/archive/vosim"
PUBLIC_URL = "https://archive.example.org/alma/vosim"
PROXY_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "proxy.example.org",
    "X-Forwarded-Prefix": "/alma",
}
PROXIED_BASE = "https://proxy.example.org/alma" + PREFIX
_PRISTINE = "data-as-built"


@dataclass
class Mounted:
    """A parent application with vosim under `PREFIX`, served, and how a client sees it."""

    url: str
    """Where the parent application listens (``http://127.0.0.1:PORT``)."""
    public_base: str
    """The base URL vosim's documents must use."""
    headers: dict[str, str] = field(default_factory=dict)
    """What a client's requests carry (the proxy's headers)."""
    app: Starlette | None = None
    """vosim's application."""

    @property
    def local_base(self) -> str:
        """Where vosim is reached on the test server."""
        return self.url + PREFIX

    def local(self, url: str) -> str:
        """The test server's URL of a URL under the public base."""
        assert url.startswith(self.public_base), url
        return self.local_base + url[len(self.public_base) :]


def archive_parent(vosim: Starlette) -> Starlette:
    """The archive's own application: its home page, and vosim under `PREFIX`.

    A ``Mount`` does not run the mounted application's lifespan: the parent
    runs vosim's inside its own (README, "Mount inside your application").
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with vosim.router.lifespan_context(vosim):
            yield

    def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the archive's own home page")

    return Starlette(routes=[Route("/", home), Mount(PREFIX, app=vosim)], lifespan=lifespan)


@pytest.fixture(scope="session")
def mount_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The ingested archive with vectors and neighbours (SQLite), ingested without a public URL."""
    folder = tmp_path_factory.mktemp("mount")
    settings = served_archive.installation(folder)
    compute_neighbours(settings, progress=False, device="cpu")
    shutil.copytree(settings.data_dir, folder / _PRISTINE)
    return settings


def own_copy(settings: Settings, folder: Path, **environ: str) -> Settings:
    """A copy of the installation as built, before any job: async jobs are not shared."""
    shutil.copytree(settings.data_dir.parent / _PRISTINE, folder / "data")
    return Settings.from_env(
        {
            "VOSIM_DATA_DIR": str(folder / "data"),
            "VOSIM_AUTHORITY": served_archive.AUTHORITY,
            **environ,
        }
    )


@contextlib.contextmanager
def _serve(settings: Settings, public_base: str | None, **options: object) -> Iterator[Mounted]:
    catalogue = open_catalogue(settings)
    vosim = create_app(
        settings,
        catalogue=catalogue,
        similarity_limits=TEST_SIMILARITY_LIMITS,
        embedder=served_archive.PooledEmbedder(),
        **options,
    )
    try:
        with serve_in_thread(archive_parent(vosim), proxy_headers=False) as url:
            yield Mounted(url, public_base or url + PREFIX, app=vosim)
    finally:
        catalogue.dispose()


@pytest.fixture(scope="session")
def mounted(mount_settings: Settings) -> Iterator[Mounted]:
    """vosim under `PREFIX`, its URLs derived from the requests."""
    with _serve(mount_settings, None) as server:
        yield server


@pytest.fixture(scope="session")
def public(mount_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mounted]:
    """vosim under `PREFIX`, with ``VOSIM_PUBLIC_URL`` set to another host and prefix."""
    folder = tmp_path_factory.mktemp("mount-public")
    settings = own_copy(mount_settings, folder, VOSIM_PUBLIC_URL=PUBLIC_URL + "/")
    with _serve(settings, PUBLIC_URL) as server:
        yield server


@pytest.fixture(scope="session")
def forwarded(
    mount_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mounted]:
    """vosim under `PREFIX`, behind a (simulated) reverse proxy whose headers it trusts."""
    settings = own_copy(mount_settings, tmp_path_factory.mktemp("mount-forwarded"))
    with _serve(settings, PROXIED_BASE, trust_forwarded=True) as server:
        server.headers = dict(PROXY_HEADERS)
        yield server
