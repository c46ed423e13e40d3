"""``vosim serve`` starts the application with uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tap_schema import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_vosim_serve_answers_on_loopback(any_settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {
        **os.environ,
        "VOSIM_DATA_DIR": str(any_settings.data_dir),
        "VOSIM_DB_URL": any_settings.db_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "vo_service.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/tap/availability", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "vosim serve did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "<vosi:available>true</vosi:available>" in response.text
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    log = process.stderr.read().decode()
    assert process.returncode == 0, log
    assert f"Uvicorn running on http://127.0.0.1:{port}" in log
