"""An archive for the harvest tests: a second vosim installation, served over HTTP.

Its catalogue is the small ingested archive of `tests.served_archive` (real
FITS files through the real ingest, archive DIDs of ALMA's and DaCHS's
form, proprietary and undated products, a gzipped file), in a data folder
of its own. Its files are sent a little slowly, so that a harvest can be
killed half-way, and a test can make it fail on purpose (`ArchiveFaults`):
answer 5xx, or keep a client waiting past its timeout, a given number of
times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tap_schema import Settings, open_catalogue
from tests import served_archive
from tests.tap.server import RunningServer, serve_in_thread
from vo_service.app import create_app

FILE_DELAY_S = 0.15


@dataclass
class Fault:
    """How one path of the archive misbehaves, the first ``times`` requests.

    Parameters
    ----------
    times
        Requests that misbehave; later ones are answered normally.
    status
        Answer this status (e.g. 503) instead of the resource.
    wait_s
        Keep the client waiting this long before any answer.
    stall_s
        Send the status line and headers, then wait this long before the body.
    body
        Answer these bytes (with ``status``, 200 if not given) instead of the resource.
    """

    times: int
    status: int | None = None
    wait_s: float = 0.0
    stall_s: float = 0.0
    body: bytes | None = None


@dataclass
class ArchiveFaults:
    """The faults the archive shows, and when each path (and path with query) was asked for.

    A fault is keyed by a path (``/files/KEY.fits``), or by a path and its
    query (``/datalink?ID=…``, as the archive's ``access_url`` has it).
    """

    faults: dict[str, Fault] = field(default_factory=dict)
    requests: dict[str, list[float]] = field(default_factory=dict)

    def clear(self) -> None:
        self.faults.clear()
        self.requests.clear()


class FaultyArchive:
    """ASGI middleware: slow ``/files/`` answers, and the faults a test asked for."""

    def __init__(self, app, faults: ArchiveFaults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        query = scope["query_string"].decode("latin-1")
        target = f"{path}?{query}" if query else path
        for asked in {path, target}:
            self.faults.requests.setdefault(asked, []).append(time.monotonic())
        if path.startswith("/files/"):
            await asyncio.sleep(FILE_DELAY_S)
        fault = self.faults.faults.get(target) or self.faults.faults.get(path)
        if fault is None or fault.times <= 0:
            await self.app(scope, receive, send)
            return
        fault.times -= 1
        await asyncio.sleep(fault.wait_s)
        if fault.status is not None or fault.body is not None:
            status = fault.status or 200
            await send({"type": "http.response.start", "status": status, "headers": []})
            body = b"the archive is unwell" if fault.body is None else fault.body
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, _stalling(send, fault.stall_s))


def _stalling(send, stall_s: float):
    """Wrap ``send`` so that the first part of the body waits ``stall_s`` after the headers."""
    waited = False

    async def stalled(message) -> None:
        nonlocal waited
        if message["type"] == "http.response.body" and not waited:
            waited = True
            await asyncio.sleep(stall_s)
        await send(message)

    return stalled


@dataclass
class ServedArchive(RunningServer):
    """The served archive, and the faults it shows."""

    faults: ArchiveFaults = field(default_factory=ArchiveFaults)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedArchive]:
    folder = tmp_path_factory.mktemp("harvested-archive")
    settings = served_archive.installation(folder)
    catalogue = open_catalogue(settings)
    app = create_app(settings, catalogue=catalogue)
    faults = ArchiveFaults()
    try:
        with serve_in_thread(FaultyArchive(app, faults)) as url:
            yield ServedArchive(url, settings, catalogue, app, faults)
    finally:
        catalogue.dispose()


@pytest.fixture
def archive(served: ServedArchive) -> Iterator[ServedArchive]:
    """The served archive, without faults at the start and the end of each test."""
    served.faults.clear()
    yield served
    served.faults.clear()


@pytest.fixture
def harvester(tmp_path: Path) -> Settings:
    """An empty installation that harvests the archive (SQLite)."""
    return Settings.from_env(
        {"VOSIM_DATA_DIR": str(tmp_path / "harvester"), "VOSIM_AUTHORITY": "harvester.test"}
    )
