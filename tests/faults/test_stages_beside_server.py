"""Pipeline stages beside a busy server: embed, neighbours --full and ingest all complete.

While the stages write, the served archive gets one async job a second and
eight sync clients querying without pause, some of them the neighbour lists
themselves. Each stage must finish (writers wait for the database and
retry, boundedly and with a log line; readers and jobs take no write lock
they do not need), every job must end COMPLETED, and no reader may ever see
a half-written neighbour list: within one query, each image's list has the
ranks 1..n, all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from model_training.learn.checkpoints import register_model, save_network
from model_training.learn.embed import embed_images
from model_training.learn.simclr import build_method
from model_training.neighbours.stage import compute_neighbours
from tap_schema import Settings, open_catalogue
from tests.fits_factory import source_image, write_image
from tests.tap.helpers import votable
from tests.tap.server import RunningServer, running_server
from tests.test_ingest import assert_consistent, make_archive, run
from tests.toy_archive import TINY_CONFIG

SYNC_CLIENTS = 8
N_IMAGES = 12
HALF_WRITTEN = (
    "SELECT model_id, obs_publisher_did, COUNT(*) AS n,"
    " MAX(rank) AS top_rank, MIN(rank) AS low_rank"
    " FROM similarity.neighbour GROUP BY model_id, obs_publisher_did"
)
QUERIES = [
    HALF_WRITTEN,
    "SELECT COUNT(*) AS n FROM ivoa.obscore",
    "SELECT TOP 5 obs_publisher_did, s_ra, s_dec FROM ivoa.obscore",
    "SELECT COUNT(*) AS n FROM similarity.embedding",
]


@dataclass
class Load:
    """What the clients met while the stages ran."""

    statuses: dict[int, int] = field(default_factory=dict)
    torn_lists: list[tuple] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _sync_client(server: RunningServer, load: Load, number: int) -> None:
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{10 + number}")
    with httpx.Client(transport=transport, timeout=120) as http:
        turn = number
        while not load.stop.is_set():
            query = QUERIES[turn % len(QUERIES)]
            turn += 1
            response = http.get(f"{server.tap_url}/sync", params={"LANG": "ADQL", "QUERY": query})
            load.count(response.status_code)
            if response.status_code == 200 and query == HALF_WRITTEN:
                for row in votable(response.content).get_first_table().array:
                    if not (row["low_rank"] == 1 and row["top_rank"] == row["n"]):
                        load.torn_lists.append(tuple(row))


def _job_client(server: RunningServer, load: Load) -> None:
    with httpx.Client(timeout=120) as http:
        while not load.stop.wait(1.0):
            response = http.post(
                f"{server.tap_url}/async",
                data={"LANG": "ADQL", "QUERY": QUERIES[len(load.jobs) % 4], "PHASE": "RUN"},
            )
            load.count(response.status_code)
            if response.status_code == 303:
                load.jobs.append(response.headers["location"])


@contextmanager
def busy(server: RunningServer) -> Iterator[Load]:
    """Eight sync clients and an async job a second, until the block ends."""
    load = Load()
    threads = [
        threading.Thread(target=_sync_client, args=(server, load, n)) for n in range(SYNC_CLIENTS)
    ]
    threads.append(threading.Thread(target=_job_client, args=(server, load)))
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    try:
        yield load
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=180)
    with httpx.Client(timeout=60) as http:
        for job in load.jobs:
            load.phases.append(_final_phase(http, job))


def _final_phase(http: httpx.Client, job: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        phase = http.get(f"{job}/phase").text
        if phase not in ("QUEUED", "EXECUTING", "PENDING") or time.monotonic() > deadline:
            return phase
        time.sleep(0.2)


def _register_untrained_model(settings: Settings) -> None:
    """A current continuum model: an untrained tiny network (embedding costs little)."""
    path = settings.model_dir / "untrained.pt"
    save_network(path, build_method(TINY_CONFIG), TINY_CONFIG)
    catalogue = open_catalogue(settings)
    try:
        with catalogue.begin() as conn:
            names = {"model_name": "untrained", "image_kind": "continuum"}
            register_model(conn, catalogue, names, path, current=True)
    finally:
        catalogue.dispose()


@pytest.fixture
def installation(any_settings: Settings, tmp_path: Path) -> Settings:
    """An ingested archive with an (untrained) current model, embedded, with lists."""
    run(any_settings, make_archive(tmp_path / "archive", n_images=N_IMAGES))
    _register_untrained_model(any_settings)
    embed_images(any_settings, progress=False, threads=1)
    compute_neighbours(any_settings, k=5, full=True, progress=False, device="cpu")
    return any_settings


def test_stages_complete_beside_a_busy_server(installation: Settings, tmp_path: Path) -> None:
    settings = installation
    with running_server(settings) as server, busy(server) as load:
        for i in (100, 101):  # two new images in the archive
            write_image(tmp_path / "archive" / f"new{i}.fits", source_image(64, 64, seed=i))
        report = run(settings, tmp_path / "archive")
        assert (report.failed, report.ingested) == (0, 2), report
        embedded = embed_images(settings, progress=False, threads=1)
        assert sum(embedded.embedded.values()) == 2, embedded
        for k in (5, 7):
            reports = compute_neighbours(settings, k=k, full=True, progress=False, device="cpu")
            assert [found.mode for found in reports] == ["full"], reports
        time.sleep(2.0)  # readers and jobs beside the last commit too
    assert_consistent(settings, N_IMAGES + 2 + 2)  # with make_archive's cube and gzipped image
    assert load.torn_lists == []
    assert set(load.statuses) <= {200, 303}, load.statuses
    assert load.statuses[200] > 50
    assert load.phases and set(load.phases) == {"COMPLETED"}, load.phases
