"""Shared fixtures: a fresh catalogue on SQLite, one on PostgreSQL when it runs, a browser.

PostgreSQL tests use the server that ``.ci/run`` starts (``VOSIM_TEST_PG_URL``,
by default the local Debian cluster with user ``vosim``). Each test session
gets its own database, dropped at the end. Where no server is reachable the
PostgreSQL tests are skipped, unless ``VOSIM_REQUIRE_PG=1`` (set by CI) makes
that an error: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tap_schema import Settings
from tests.pg import fresh_database

if TYPE_CHECKING:
    from playwright.sync_api import Browser

DEFAULT_PG_URL = "postgresql+psycopg://vosim:vosim@127.0.0.1:5432/vosim"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (starting one takes about a second)."""
    from tests.browser import chromium  # Playwright only where a test needs a browser

    with chromium() as browser:
        yield browser


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings of an empty installation in a temporary folder, on SQLite."""
    return Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "vosim-data")})


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a PostgreSQL maintenance database, or skip when none is reachable."""
    url = os.environ.get("VOSIM_TEST_PG_URL", DEFAULT_PG_URL)
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        if os.environ.get("VOSIM_REQUIRE_PG") == "1":
            raise RuntimeError(f"PostgreSQL required but unreachable at {url}") from error
        pytest.skip(f"no PostgreSQL server at {url}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database(pg_server_url, "vosim_test") as url:
        yield url


@pytest.fixture
def pg_settings(tmp_path: Path, pg_database_url: str) -> Settings:
    """Settings of an empty installation whose catalogue is on PostgreSQL."""
    return Settings.from_env(
        {"VOSIM_DATA_DIR": str(tmp_path / "vosim-data"), "VOSIM_DB_URL": pg_database_url}
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def any_settings(request: pytest.FixtureRequest) -> Settings:
    """The same test on both backends."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_settings")
    return request.getfixturevalue("pg_settings")
