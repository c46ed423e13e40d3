"""GAVO DaCHS, as Debian installs it (``gavodachs2-server``), run for the tests.

The Debian package creates DaCHS' database (``gavo``) in the PostgreSQL
cluster and its files under ``/var/gavo``; it does not have to be running.
The tests start their own server in the foreground on a free port of
127.0.0.1, with a settings file of their own (``GAVOSETTINGS``), so neither
``/etc/gavo.rc`` nor a DaCHS service started by the system is changed. Every
``dachs`` command of a test runs with that settings file too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.tap.server import free_port

from .catalogue import DACHS_AUTHORITY

__all__ = ["DachsServer", "dachs_database", "dachs_unavailable"]

INPUTS = Path("/var/gavo/inputs")


def dachs_unavailable() -> str | None:
    """Why DaCHS cannot be used here, or None when it can."""
    if shutil.which("dachs") is None:
        return "GAVO DaCHS is not installed (scripts/setup-system.sh installs gavodachs2-server)"
    if not INPUTS.is_dir():
        return (
            f"GAVO DaCHS is not configured ({INPUTS} missing): dpkg --configure gavodachs2-server"
        )
    if not os.access(INPUTS, os.W_OK):
        return f"cannot write DaCHS' inputs directory {INPUTS}: run as root or as a member of gavo"
    return None


def dachs_database(pg_server_url: str) -> tuple[sa.engine.URL, bool]:
    """DaCHS's database on the test cluster, and whether it holds ``ivoa.obscore`` yet.

    Skips the calling test where DaCHS cannot be used or has no database.
    """
    reason = dachs_unavailable()
    if reason:
        pytest.skip(reason)
    admin_url = sa.engine.make_url(pg_server_url).set(database="gavo")
    engine = sa.create_engine(admin_url)
    try:
        with engine.connect() as conn:
            has_obscore = conn.execute(sa.text("SELECT to_regclass('ivoa.obscore')")).scalar()
    except sa.exc.OperationalError:
        pytest.skip("GAVO DaCHS is installed but has no database: dpkg --configure it")
    finally:
        engine.dispose()
    return admin_url, has_obscore is not None


class DachsServer:
    """One DaCHS server process and the ``dachs`` command, with test settings.

    Parameters
    ----------
    workdir
        Folder for the settings file and the server's output.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = workdir / "gavo.rc"
        self.settings.write_text(
            f"[web]\nbindAddress: 127.0.0.1\nserverPort: {self.port}\nserverURL: {self.url}\n"
            f"[ivoa]\nauthority: {DACHS_AUTHORITY}\n"
        )
        self.log = workdir / "dachs-serve.log"
        self.env = {**os.environ, "GAVOSETTINGS": str(self.settings)}
        self.process: subprocess.Popen | None = None

    @property
    def tap_url(self) -> str:
        return f"{self.url}/tap"

    def run(self, *args: str, timeout: float = 300) -> str:
        """Run ``dachs ARGS``; return its output, raise with it on failure."""
        done = subprocess.run(
            ["dachs", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0 or "*** Error" in output:
            raise RuntimeError(f"dachs {' '.join(args)} failed ({done.returncode}):\n{output}")
        return output

    def start(self, timeout: float = 90) -> None:
        """Start the server in the foreground process group of the test, wait until it answers."""
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                ["dachs", "serve", "start", "--foreground"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"DaCHS exited at start:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.tap_url}/availability", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"DaCHS did not answer within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
