"""The installed package, not the source tree: ``pip install .`` ships everything ``vosim`` needs.

Tests otherwise import from the checkout, which hides a sub-package or data
folder left out of the wheel; here the wheel is built, installed into its own
folder, and its ``vosim`` command is run from a folder outside the checkout.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.tap.server import vosim_serve

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it (without dependencies: the test's own are used)."""
    folder = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(folder / "wheel")]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = (folder / "wheel").glob("vosim-*.whl")
    target = folder / "site"
    install = [*pip, "install", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return target


def _environment(installed: Path, work: Path) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(installed), "VOSIM_DATA_DIR": str(work / "data")}
    environment.pop("VOSIM_DB_URL", None)
    return environment


def _console_script(installed: Path) -> str:
    """The ``vosim`` entry point the wheel declares, as ``module:function``."""
    (entry_points,) = installed.glob("vosim-*.dist-info/entry_points.txt")
    parser = configparser.ConfigParser()
    parser.read_string(entry_points.read_text())
    return parser["console_scripts"]["vosim"]


def _command(installed: Path, *args: str) -> list[str]:
    """Run what the installed ``vosim`` console script runs, with this test's interpreter."""
    module, _, function = _console_script(installed).partition(":")
    return [
        sys.executable,
        "-c",
        f"from {module} import {function}; raise SystemExit({function}())",
        *args,
    ]


def _vosim(installed: Path, work: Path, *args: str) -> None:
    done = subprocess.run(
        _command(installed, *args),
        cwd=work,
        env=_environment(installed, work),
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_installed_packages_are_imported_not_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    code = (
        "import vo_service.tap, vo_service.similarity, vo_service.adql, vo_service.uws, "
        "model_training, tap_schema, templates; "
        "print(vo_service.tap.__file__, model_training.__file__, *templates.__path__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_environment(installed, tmp_path),
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert all(path.startswith(str(installed)) for path in done.stdout.split())


def test_the_installed_command_ingests_and_serves_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    _vosim(installed, tmp_path, "synth", "archive", "--sources", "3", "--views", "1")
    _vosim(installed, tmp_path, "ingest", "archive")
    with vosim_serve(
        _environment(installed, tmp_path), command=_command(installed), cwd=tmp_path
    ) as served:
        home = httpx.get(f"{served.url}/", timeout=30)
        assert home.status_code == 200 and "<html" in home.text
        tables = httpx.get(f"{served.url}/tap/tables", timeout=30)
        assert tables.status_code == 200 and "ivoa.obscore" in tables.text
        script = httpx.get(f"{served.url}/static/similar.js", timeout=30)
        assert script.status_code == 200
    assert served.process.returncode == 0, served.log
