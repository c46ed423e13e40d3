"""Run the real application under uvicorn on 127.0.0.1 (a free port) in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from tap_schema import Catalogue, Settings, open_catalogue
from vo_service.app import create_app
from vo_service.tap.limits import TapLimits


@dataclass
class RunningServer:
    """A served application and where to reach it."""

    url: str
    settings: Settings
    catalogue: Catalogue
    app: Starlette

    @property
    def tap_url(self) -> str:
        return self.url + "/tap"

    @property
    def backend(self) -> str:
        return self.catalogue.dialect


@contextmanager
def serve_in_thread(app: Starlette, **options: object) -> Iterator[str]:
    """Serve ``app`` until the block ends (``options`` for `uvicorn.Config`); yields its URL."""
    # IPPROTO_TCP explicitly: asyncio only disables Nagle's algorithm on sockets whose
    # proto is TCP, and a keep-alive client would otherwise wait 40 ms per response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def running_server(
    settings: Settings, *, limits: TapLimits | None = None, **app_options: object
) -> Iterator[RunningServer]:
    """Create the application of an installation (``app_options`` for `create_app`) and serve it."""
    catalogue = open_catalogue(settings)
    app = create_app(settings, catalogue=catalogue, limits=limits, **app_options)
    try:
        with serve_in_thread(app) as url:
            yield RunningServer(url, settings, catalogue, app)
    finally:
        catalogue.dispose()
