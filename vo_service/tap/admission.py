"""Admission of sync queries: a few clients never deny TAP to the rest.

Each sync query first takes a slot in one of two lanes. Light queries
(one table read once: TAP_SCHEMA, a COUNT, a small TOP) and heavy ones
(joins, subqueries, several tables, the similarity functions, which rank
every public vector per row) have their own slots, so however many heavy
queries arrive, light ones keep flowing. In each lane a client (its IP
address, as the ASGI server reports it) runs a bounded number of queries
at once; the others wait in a queue served round-robin over the clients,
so one client's burst only delays that client. The queue is bounded in
length and in waiting time: beyond either the request is answered at once
with 503 and ``Retry-After`` (a DALI error document), rather than letting
connections and threads pile up until the service stops answering.

A query judged heavy is first tried for a short time (`vo_service.tap.sync`)
in a lane of its own, the trial lane, with its own fair queue, so tries
never hold the light slots and a quick join never waits behind the slow
queries for want of a trial slot; a
client whose query ran past its try is remembered for a while
(`RecentHeavyClients`) and its heavy queries go to the heavy lane at once,
so that a client sending slow queries again and again does not spend a
slot and a core on each try.

Async jobs do not pass here: they have their own workers and their own
database connections (`vo_service.tap.service`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum

from sqlglot import exp

from vo_service.adql.dialect import parse_adql

from .errors import TapError

__all__ = [
    "Lane",
    "LaneLimits",
    "RecentHeavyClients",
    "ServiceBusyError",
    "SyncAdmission",
    "query_lane",
]

log = logging.getLogger(__name__)

_HEAVY_FUNCTIONS = ("vosim_similarity",)
"""Functions whose every call reads a whole table (prefix of their names)."""


class Lane(Enum):
    """Which slots a sync query takes."""

    LIGHT = "light"
    HEAVY = "heavy"
    TRIAL = "trial"


class ServiceBusyError(TapError):
    """Every slot is taken and the queue is full, or the wait was too long: 503."""

    status_code = 503

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def query_lane(adql: str) -> Lane:
    """Whether a query reads one table once (light) or may cost more (heavy).

    Judged from the ADQL alone, before anything runs: a query that does not
    even parse is light (the translator refuses it at once).
    """
    try:
        tree = parse_adql(adql)
    except Exception:
        return Lane.LIGHT
    tables = list(tree.find_all(exp.Table))
    selects = list(tree.find_all(exp.Select))
    functions = (node.name.lower() for node in tree.find_all(exp.Anonymous))
    if len(tables) > 1 or len(selects) > 1 or any(tree.find_all(exp.Join)):
        return Lane.HEAVY
    if any(name.startswith(_HEAVY_FUNCTIONS) for name in functions):
        return Lane.HEAVY
    return Lane.LIGHT


@dataclass(frozen=True)
class LaneLimits:
    """Slots of one lane: in total, and for one client."""

    slots: int
    per_client: int


@dataclass(eq=False)
class _Waiter:
    client: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


@dataclass
class _LaneState:
    limits: LaneLimits
    running: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    waiting: OrderedDict[str, deque[_Waiter]] = field(default_factory=OrderedDict)


class SyncAdmission:
    """Slots and a fair, bounded queue for the sync queries of one service.

    Parameters
    ----------
    lanes
        Slots of each lane.
    queue_size
        Queries waiting at most, all lanes and clients together.
    max_wait_s
        Longest wait for a slot; then the request gets 503.
    retry_after_s
        What ``Retry-After`` tells a refused client.

    The state is guarded by a thread lock and waiters are woken on their own
    event loop, so slots may be released from any thread.
    """

    def __init__(
        self,
        lanes: dict[Lane, LaneLimits],
        *,
        queue_size: int,
        max_wait_s: float,
        retry_after_s: int,
    ) -> None:
        self._lanes = {lane: _LaneState(limits) for lane, limits in lanes.items()}
        self.queue_size = queue_size
        self.max_wait_s = max_wait_s
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._queued = 0

    @asynccontextmanager
    async def slot(self, client: str, lane: Lane) -> AsyncIterator[None]:
        """Hold a slot of ``lane`` for ``client`` while the block runs.

        Raises
        ------
        ServiceBusyError
            When the queue is full, or no slot came free within ``max_wait_s``.
        """
        waiter = self._enter(client, lane)
        if not waiter.granted:
            await self._wait(waiter, lane, self.max_wait_s)
        try:
            yield
        finally:
            self._leave(client, lane)

    def running(self, lane: Lane) -> int:
        """Count the queries holding a slot of ``lane`` now."""
        return self._lanes[lane].running

    @property
    def queued(self) -> int:
        """How many queries wait for a slot now."""
        return self._queued

    def _enter(self, client: str, lane: Lane) -> _Waiter:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(client, loop, loop.create_future())
        state = self._lanes[lane]
        with self._lock:
            if self._queued >= self.queue_size and not self._may_run(state, client):
                raise self._busy(f"{self._queued} queries are already waiting")
            state.waiting.setdefault(client, deque()).append(waiter)
            self._queued += 1
            self._dispatch(state)
        return waiter

    async def _wait(self, waiter: _Waiter, lane: Lane, max_wait_s: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), max_wait_s)
        except (TimeoutError, asyncio.CancelledError) as stopped:
            with self._lock:
                if not waiter.granted:
                    self._withdraw(self._lanes[lane], waiter)
                    if isinstance(stopped, asyncio.CancelledError):
                        raise
                    log.warning(
                        "sync query of %s refused after %.0f s in the %s queue",
                        waiter.client,
                        max_wait_s,
                        lane.value,
                    )
                    raise self._busy(f"no query slot came free within {max_wait_s:.0f} s") from None
            if isinstance(stopped, asyncio.CancelledError):  # granted meanwhile: give it back
                self._leave(waiter.client, lane)
                raise

    def _leave(self, client: str, lane: Lane) -> None:
        state = self._lanes[lane]
        with self._lock:
            state.running -= 1
            left = state.by_client[client] - 1
            if left:
                state.by_client[client] = left
            else:
                del state.by_client[client]
            self._dispatch(state)

    def _may_run(self, state: _LaneState, client: str) -> bool:
        return (
            state.running < state.limits.slots
            and state.by_client.get(client, 0) < state.limits.per_client
            and not state.waiting.get(client)
        )

    def _dispatch(self, state: _LaneState) -> None:
        """Grant free slots to waiting clients, round-robin, oldest request of each first."""
        while state.running < state.limits.slots:
            client = next(
                (
                    name
                    for name in state.waiting
                    if state.by_client.get(name, 0) < state.limits.per_client
                ),
                None,
            )
            if client is None:
                return
            queue = state.waiting.pop(client)
            waiter = queue.popleft()
            if queue:
                state.waiting[client] = queue  # to the end: the others go first
            self._queued -= 1
            state.running += 1
            state.by_client[client] = state.by_client.get(client, 0) + 1
            waiter.granted = True
            waiter.loop.call_soon_threadsafe(_resolve, waiter.future)

    def _withdraw(self, state: _LaneState, waiter: _Waiter) -> None:
        queue = state.waiting.get(waiter.client)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self._queued -= 1
            if not queue:
                del state.waiting[waiter.client]

    def _busy(self, reason: str) -> ServiceBusyError:
        return ServiceBusyError(
            f"the service is busy ({reason}); try again in {self.retry_after_s} s, "
            "or submit the query as an async job (/tap/async)",
            self.retry_after_s,
        )


class RecentHeavyClients:
    """Clients whose heavy query ran past its short try, for ``memory_s``.

    Bounded: beyond ``size`` clients the longest remembered is forgotten,
    so many addresses cannot make it grow without end. Thread-safe.
    """

    def __init__(self, memory_s: float = 600.0, size: int = 10_000) -> None:
        self.memory_s = memory_s
        self.size = size
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()

    def remember(self, client: str) -> None:
        """Note that a heavy query of ``client`` needed the heavy lane."""
        with self._lock:
            self._seen.pop(client, None)
            self._seen[client] = time.monotonic()
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)

    def __contains__(self, client: str) -> bool:
        with self._lock:
            seen = self._seen.get(client)
            if seen is not None and time.monotonic() - seen > self.memory_s:
                del self._seen[client]
                seen = None
            return seen is not None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
