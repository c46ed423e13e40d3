"""Run the real application on 127.0.0.1 (a free port): in a thread, or as ``vosim serve``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import uvicorn
from starlette.applications import Starlette

from tap_schema import Catalogue, Settings, open_catalogue
from vo_service.app import create_app
from vo_service.tap.limits import TapLimits

ROOT = Path(__file__).resolve().parents[2]
VOSIM = (sys.executable, "-m", "vo_service.cli")
"""The ``vosim`` command of the checkout, run by this interpreter."""


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


@dataclass
class ServeProcess:
    """A ``vosim serve`` process and where to reach it; ``log`` is its stderr once it stopped."""

    url: str
    process: subprocess.Popen
    log: str = ""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def vosim_serve(
    environ: Mapping[str, str],
    *,
    command: Sequence[str] = VOSIM,
    cwd: Path = ROOT,
    wait_s: float = 120.0,
) -> Iterator[ServeProcess]:
    """Run ``vosim serve`` in its own process until the block ends, then stop it with Ctrl-C.

    ``command`` is the ``vosim`` command (by default the checkout's); the
    block starts once the server answers HTTP.
    """
    port = free_port()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            cwd=cwd,
            env=dict(environ),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        served = ServeProcess(f"http://127.0.0.1:{port}", process)
        try:
            _wait_for_answer(served, stderr, wait_s)
            yield served
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            finally:
                served.log = _read(stderr)


def _wait_for_answer(served: ServeProcess, stderr: IO[bytes], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            httpx.get(f"{served.url}/tap/availability", timeout=5)
            return
        except httpx.TransportError:
            if served.process.poll() is not None:
                raise RuntimeError(f"vosim serve exited: {_read(stderr)}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"vosim serve did not answer in {wait_s} s") from None
            time.sleep(0.2)


def _read(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode(errors="replace")
