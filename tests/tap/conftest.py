"""Fixtures of the TAP tests: a real server on each backend with a small catalogue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tap_schema import Settings, open_catalogue
from tests.pg import fresh_database
from vo_service.tap.limits import TapLimits

from . import catalogue as small
from .server import RunningServer, running_server

TEST_LIMITS = TapLimits(
    default_maxrec=1000,
    hard_maxrec=5000,
    sync_duration_s=20.0,
    default_duration_s=60,
    hard_duration_s=120,
    upload_limit_bytes=200_000,
    async_workers=2,
    max_wait_s=10.0,
)


@pytest.fixture(scope="session")
def _pg_session_database(pg_server_url: str) -> Iterator[str]:
    with fresh_database(pg_server_url, "vosim_tap") as url:
        yield url


def _settings(request: pytest.FixtureRequest, data_dir: Path, backend: str) -> Settings:
    environ = {"VOSIM_DATA_DIR": str(data_dir), "VOSIM_AUTHORITY": small.AUTHORITY}
    if backend == "postgresql":
        environ["VOSIM_DB_URL"] = request.getfixturevalue("_pg_session_database")
    return Settings.from_env(environ)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def tap_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server per backend for the whole session, on the small catalogue."""
    settings = _settings(request, tmp_path_factory.mktemp(request.param), request.param)
    small.fill(open_catalogue(settings))
    with running_server(settings, limits=TEST_LIMITS) as server:
        yield server


@pytest.fixture
def new_server(
    any_settings: Settings,
) -> Callable[..., AbstractContextManager[RunningServer]]:
    """Start a server of its own (for restarts and special limits), on each backend."""
    small.fill(open_catalogue(any_settings))

    def start(**changes: object) -> AbstractContextManager[RunningServer]:
        return running_server(any_settings, limits=TEST_LIMITS.with_changes(**changes))

    return start
