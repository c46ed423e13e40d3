"""Sync TAP under load: slow queries from a few clients never stop the others.

Each client below has an address of its own (127.0.0.x), as distinct
users do; the service shares its sync slots by client address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
import pyvo
import requests
from requests.adapters import HTTPAdapter

from vo_service.tap.admission import (
    Lane,
    LaneLimits,
    RecentHeavyClients,
    ServiceBusyError,
    SyncAdmission,
    query_lane,
)

from . import catalogue as small
from .helpers import query_status, votable
from .server import RunningServer
from .test_uws import create, wait_for

SLOW = "SELECT COUNT(*) AS n FROM " + ", ".join(f"ivoa.obscore AS t{i}" for i in range(11))
"""8 rows to the 11th power: over any time limit below."""
CHEAP = [
    "SELECT COUNT(*) AS n FROM ivoa.obscore",
    "SELECT TOP 3 obs_publisher_did FROM ivoa.obscore",
    "SELECT table_name FROM TAP_SCHEMA.tables",
]


def client(number: int) -> httpx.Client:
    """An HTTP client calling from its own loopback address."""
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{number}")
    return httpx.Client(transport=transport, timeout=120)


def sync(http: httpx.Client, server: RunningServer, query: str) -> httpx.Response:
    return http.get(f"{server.tap_url}/sync", params={"LANG": "ADQL", "QUERY": query})


@contextmanager
def slow_queries(server: RunningServer, clients: list[int]) -> Iterator[list]:
    """Slow queries running, one per client number, until the block ends; yields their futures."""
    pool = ThreadPoolExecutor(len(clients))
    https = [client(number) for number in clients]
    futures = [pool.submit(sync, http, server, SLOW) for http in https]
    time.sleep(1.0)  # all of them in the service: running or queued
    try:
        yield futures
    finally:
        pool.shutdown(wait=True)
        for http in https:
            http.close()


def test_query_lanes() -> None:
    assert query_lane(CHEAP[0]) is Lane.LIGHT
    assert query_lane("SELECT * FROM TAP_SCHEMA.columns WHERE table_name = 'x'") is Lane.LIGHT
    assert query_lane(SLOW) is Lane.HEAVY
    assert query_lane("SELECT a.obs_id FROM ivoa.obscore a JOIN ivoa.obscore b USING (obs_id)") == (
        Lane.HEAVY
    )
    assert query_lane(
        "SELECT obs_id FROM ivoa.obscore WHERE s_ra > (SELECT AVG(s_ra) FROM ivoa.obscore)"
    ) == (Lane.HEAVY)


def test_cheap_queries_flow_beside_slow_ones(new_server) -> None:
    """Six slow queries from three clients: cheap ones answer, and so does availability."""
    with new_server(sync_duration_s=6.0, sync_heavy_slots=1, sync_queue_wait_s=6.0) as server:
        with slow_queries(server, [2, 2, 3, 3, 4, 4]) as slow, client(9) as http:
            for query in CHEAP * 3:
                started = time.monotonic()
                response = sync(http, server, query)
                assert response.status_code == 200, response.text
                assert time.monotonic() - started < 5
            available = http.get(f"{server.tap_url}/availability")
            assert "<vosi:available>true</vosi:available>" in available.text
            job = create(server, CHEAP[0], PHASE="RUN")  # async jobs: workers of their own
            assert wait_for(job, {"COMPLETED", "ERROR"}, timeout=30) == "COMPLETED"
            admission = server.app.state.tap.admission
            assert admission.running(Lane.HEAVY) == 1 and admission.queued  # still there
        for future in slow:  # the slow ones end in their own time limit, or wait too long
            assert future.result().status_code in (400, 503)


def test_a_quick_join_is_answered_beside_slow_ones(new_server) -> None:
    """A join judged heavy, that ends at once, does not wait behind the slow queries' lane."""
    join = (
        "SELECT a.obs_publisher_did, b.target_name FROM ivoa.obscore AS a JOIN ivoa.obscore AS b "
        f"ON b.obs_publisher_did = a.obs_publisher_did WHERE a.obs_publisher_did = '{small.did(1)}'"
    )
    assert query_lane(join) is Lane.HEAVY
    with (
        new_server(sync_duration_s=6.0, sync_heavy_slots=1, sync_queue_wait_s=6.0) as server,
        slow_queries(server, [2, 3, 4]),
        client(9) as http,
    ):
        admission = server.app.state.tap.admission
        _wait_for_queued(admission, 2)
        assert admission.running(Lane.HEAVY) == 1 and admission.queued == 2
        response = sync(http, server, join)  # not 503 after the 6 s in the heavy queue
        assert response.status_code == 200, response.text
        [table] = votable(response.content).iter_tables()
        assert list(table.array["obs_publisher_did"]) == [small.did(1)]
        assert admission.running(Lane.HEAVY) == 1 and admission.queued == 2  # still waiting
        recent = server.app.state.tap.recent_heavy  # the slow ones' next go straight there
        assert any(f"127.0.0.{n}" in recent for n in (2, 3, 4)) and "127.0.0.9" not in recent


def _wait_for_queued(admission: SyncAdmission, queued: int) -> None:
    """Wait until the slow queries are past their short tries and ``queued`` wait in the queue."""
    deadline = time.monotonic() + 5
    while admission.queued < queued and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_full_queue_answers_503_with_retry_after(new_server) -> None:
    with (
        new_server(
            sync_duration_s=4.0,
            sync_heavy_slots=1,
            sync_queue_size=2,
            sync_queue_wait_s=4.0,
            sync_retry_after_s=7,
        ) as server,
        slow_queries(server, [2, 3, 4]),
        client(5) as http,
    ):
        admission = server.app.state.tap.admission
        _wait_for_queued(admission, 2)  # the slot taken and the queue full
        assert admission.running(Lane.HEAVY) == 1 and admission.queued == 2
        response = sync(http, server, SLOW)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        [(status, message)] = query_status(response.content)
        assert status == "ERROR" and "busy" in message and "async" in message
        votable(response.content)  # a valid DALI error document
        with pytest.raises(pyvo.DALQueryError, match="busy"):
            pyvo.dal.TAPService(server.tap_url, session=_session(5)).run_sync(SLOW)
        assert sync(http, server, CHEAP[0]).status_code == 200  # light lane: not queued


def test_a_query_over_its_time_limit_is_an_error_pyvo_reports(new_server) -> None:
    """pyvo raises DALQueryError with the service's message, not a bare HTTP error."""
    with new_server(sync_duration_s=0.5) as server:
        service = pyvo.dal.TAPService(server.tap_url)
        with pytest.raises(pyvo.DALQueryError, match="longer than the execution time"):
            service.run_sync(SLOW)


class _SourceAddress(HTTPAdapter):
    """A requests adapter calling from one loopback address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def _session(number: int) -> requests.Session:
    """A requests session (what pyvo uses) from 127.0.0.``number``."""
    session = requests.Session()
    session.mount("http://", _SourceAddress(f"127.0.0.{number}"))
    return session


# -- the queue itself ------------------------------------------------------------------------


def _admission(**options: object) -> SyncAdmission:
    settings = {"queue_size": 10, "max_wait_s": 5.0, "retry_after_s": 3, **options}
    return SyncAdmission({Lane.LIGHT: LaneLimits(2, 1), Lane.HEAVY: LaneLimits(1, 1)}, **settings)


def test_slots_are_shared_round_robin_over_clients() -> None:
    """Client a queues five queries, then b and c one each: b and c do not wait behind a."""
    order: list[str] = []

    async def query(admission: SyncAdmission, who: str, release: asyncio.Event) -> None:
        async with admission.slot(who, Lane.LIGHT):
            order.append(who)
            await release.wait()

    async def scenario() -> None:
        admission = _admission()
        releases = [asyncio.Event() for _ in range(8)]
        names = ["a", "a", "a", "a", "a", "b", "c", "d"]
        tasks = []
        for name, release in zip(names, releases, strict=True):
            tasks.append(asyncio.create_task(query(admission, name, release)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert order == ["a", "b"]  # one slot per client: a's second waits
        assert admission.running(Lane.LIGHT) == 2 and admission.queued == 6
        for release in releases:
            release.set()
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        # a's second query had queued before c: then c and d before the rest of a's backlog
        assert order == ["a", "b", "a", "c", "d", "a", "a", "a"]

    asyncio.run(scenario())


def test_clients_of_heavy_queries_are_remembered_within_bounds() -> None:
    recent = RecentHeavyClients(size=2)
    for client_address in ("a", "b", "c"):
        recent.remember(client_address)
    assert "a" not in recent and "b" in recent and "c" in recent  # the oldest forgotten
    forgetful = RecentHeavyClients(memory_s=-1.0)
    forgetful.remember("a")
    assert "a" not in forgetful


def test_the_queue_is_bounded_in_length_and_time() -> None:
    async def scenario() -> None:
        admission = _admission(queue_size=1, max_wait_s=0.2)
        async with admission.slot("a", Lane.HEAVY):
            waiting = asyncio.create_task(_enter(admission, "b"))
            await asyncio.sleep(0.01)
            with pytest.raises(ServiceBusyError) as full:
                await _enter(admission, "c")
            assert full.value.retry_after_s == 3 and full.value.status_code == 503
            with pytest.raises(ServiceBusyError, match="within"):
                await waiting
            assert admission.queued == 0
        async with admission.slot("c", Lane.HEAVY):  # freed slots are taken again
            assert admission.running(Lane.HEAVY) == 1
        assert admission.running(Lane.HEAVY) == 0

    asyncio.run(scenario())


async def _enter(admission: SyncAdmission, who: str) -> None:
    async with admission.slot(who, Lane.HEAVY):
        pass
