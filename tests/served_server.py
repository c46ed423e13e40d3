"""A real server on the small ingested archive (`tests.served_archive`), on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import served_archive
from tests.pg import fresh_database
from tests.tap.server import RunningServer, running_server
from vo_service.similarity import SimilarityLimits

TEST_SIMILARITY_LIMITS = SimilarityLimits(
    default_maxrec=10, hard_maxrec=12, refresh_interval_s=0.2, upload_limit_bytes=300_000
)


@pytest.fixture(scope="session")
def _archive_pg_database(pg_server_url: str) -> Iterator[str]:
    with fresh_database(pg_server_url, "vosim_archive") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def archive_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server per backend for the whole session, on the ingested test archive."""
    folder = tmp_path_factory.mktemp(f"archive-{request.param}")
    environ = {}
    if request.param == "postgresql":
        environ["VOSIM_DB_URL"] = request.getfixturevalue("_archive_pg_database")
    settings = served_archive.installation(folder, **environ)
    with running_server(
        settings,
        similarity_limits=TEST_SIMILARITY_LIMITS,
        embedder=served_archive.PooledEmbedder(),
    ) as server:
        yield server
