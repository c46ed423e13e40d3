"""``vosim serve`` starts the application with uvicorn on 127.0.0.1, and Ctrl-C stops it."""

from __future__ import annotations

import os

import httpx

from tap_schema import Settings
from tests.tap.server import vosim_serve


def test_vosim_serve_answers_on_loopback(any_settings: Settings) -> None:
    environ = {
        **os.environ,
        "VOSIM_DATA_DIR": str(any_settings.data_dir),
        "VOSIM_DB_URL": any_settings.db_url,
    }
    with vosim_serve(environ) as served:
        response = httpx.get(f"{served.url}/tap/availability", timeout=30)
    assert response.status_code == 200
    assert "<vosi:available>true</vosi:available>" in response.text
    assert served.process.returncode == 0, served.log
    assert f"Uvicorn running on {served.url}" in served.log
