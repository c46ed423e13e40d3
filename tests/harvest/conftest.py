"""An archive for the harvest tests: a second vosim installation, served over HTTP.

Its catalogue is the small ingested archive of `tests.served_archive` (real
FITS files through the real ingest, archive DIDs of ALMA's and DaCHS's
form, proprietary and undated products, a gzipped file), in a data folder
of its own. Its files are sent a little slowly, so that a harvest can be
killed half-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tap_schema import Settings, open_catalogue
from tests import served_archive
from tests.tap.server import RunningServer, serve_in_thread
from vo_service.app import create_app

FILE_DELAY_S = 0.15


class SlowFiles:
    """ASGI middleware: every ``/files/`` answer waits a moment first."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/files/"):
            await asyncio.sleep(FILE_DELAY_S)
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("harvested-archive")
    settings = Settings.from_env(
        {"VOSIM_DATA_DIR": str(folder / "data"), "VOSIM_AUTHORITY": served_archive.AUTHORITY}
    )
    catalogue = open_catalogue(settings)
    try:
        served_archive.build(settings, catalogue, folder / "files")
    finally:
        catalogue.dispose()
    catalogue = open_catalogue(settings)
    app = create_app(settings, catalogue=catalogue)
    try:
        with serve_in_thread(SlowFiles(app)) as url:
            yield RunningServer(url, settings, catalogue, app)
    finally:
        catalogue.dispose()


@pytest.fixture
def harvester(tmp_path: Path) -> Settings:
    """An empty installation that harvests the archive (SQLite)."""
    return Settings.from_env(
        {"VOSIM_DATA_DIR": str(tmp_path / "harvester"), "VOSIM_AUTHORITY": "harvester.test"}
    )
