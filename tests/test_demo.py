"""``vosim demo`` end to end on a tiny archive, then a search by upload with its model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tap_schema import Settings
from tests.tap.server import running_server

ROOT = Path(__file__).resolve().parent.parent


def _demo(data_dir: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "VOSIM_DATA_DIR": str(data_dir)}
    environment.pop("VOSIM_DB_URL", None)
    command = [sys.executable, "-m", "vo_service.cli", "demo", "--sources", "8", "--views", "2"]
    command += ["--epochs", "1", "--no-serve"]
    return subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("demo") / "vosim-data"
    done = _demo(data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    return data_dir, done.stdout


def test_demo_runs_every_stage_and_prints_where_to_look(demo_dir: tuple[Path, str]) -> None:
    _, output = demo_dir
    for stage in range(1, 7):
        assert f"[{stage}/7]" in output
    assert "similarity page  http://127.0.0.1:8000/" in output
    assert "TAP service      http://127.0.0.1:8000/tap" in output
    assert "its DataLink     http://127.0.0.1:8000/datalink?ID=ivo%3A%2F%2F" in output


def test_a_second_demo_reuses_everything(demo_dir: tuple[Path, str]) -> None:
    data_dir, _ = demo_dir
    again = _demo(data_dir)
    assert again.returncode == 0, again.stderr
    assert "already written" in again.stdout
    assert "is already current" in again.stdout
    assert "0 new vectors" in again.stdout


def test_an_uploaded_archive_image_finds_itself_first(demo_dir: tuple[Path, str]) -> None:
    """The round trip of a user: download an image's FITS file, upload it, find the image.

    The upload goes through the model the demo trained (the application's
    default embedder), so its vector is the stored one and its similarity 1.
    """
    data_dir, output = demo_dir
    did = unquote(re.search(r"its DataLink +\S+\?ID=(\S+)", output).group(1))
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(data_dir)})
    with running_server(settings) as server, httpx.Client(timeout=60) as client:
        described = client.get(f"{server.url}/similarity/image", params={"ID": did})
        assert described.status_code == 200, described.text
        fits = client.get(described.json()["file_url"])
        assert fits.status_code == 200
        response = client.post(
            f"{server.url}/similarity/sync",
            data={"RESPONSEFORMAT": "application/json", "MAXREC": "3"},
            files={"IMAGE": ("download.fits", fits.content)},
        )
    assert response.status_code == 200, response.text
    first = response.json()["results"][0]
    assert first["obs_publisher_did"] == did
    assert first["similarity"] == pytest.approx(1.0, abs=1e-4)
