"""Many clients at once against a served archive, with and without hostile slow queries.

Builds a catalogue of public continuum images with synthetic unit vectors
(`similarity_latency.synthetic_vectors`, `adql_similarity.prepare`: ObsCore
rows, vectors, and the precomputed neighbours of some images), serves it
with ``vosim serve`` in its own process (`tap_latency.server`), and runs
series of concurrent clients for a bounded time. Each client calls from an
address of its own (127.0.0.x), as distinct users do, since the service
shares its sync query slots by client address, and sends its next request
as soon as the last one is answered (no think time: the hardest case).

The cheap requests of a series come from one of three mixes:

- **tap**: sync TAP queries an archive's users send: the COUNT of a band, a
  cone of 0.5 degrees, the first 100 rows of a few columns, the neighbours
  of an image joined with ObsCore, the table list of TAP_SCHEMA;
- **similarity**: the similarity service: the ranking of one image, of a
  refinement of three, and the description of one image;
- **both**: each request drawn from either.

Each mix runs alone, then beside 10 hostile clients (their own addresses)
that send, again and again, a cross join of ObsCore with itself three
times: far beyond any time limit, so each holds a heavy query slot until
the service's sync time limit (``--slow-limit``) stops it, or waits for one
until the queue refuses it (503). The table gives, per series, the cheap
requests answered per second, their p50/p95/p99 latency, every non-200
answer to a cheap request by status, the slow queries' own answers by
status, and the 1-minute load average at the end of the series. Goal: with
the slow queries running, cheap requests keep p95 < 500 ms and get no
error, on 2 cores. The clients run on the same cores as the server.

Run from the repository root::

    python benchmarks/load.py [--seconds 20] [--clients 16 32] [--slow 10]
        [--mixes tap similarity both] [--backends sqlite postgresql]
        [--images 20000] [--dimensions 128] [--baseline DIR]

With ``--baseline``, the same catalogue is first served by the code of
another checkout (e.g. ``git archive main``), then by this one, one after
the other, each through every series: the table's ``code`` column says which.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adql_similarity import prepare, service_path, tap_path
from similarity_latency import _image, did, synthetic_vectors
from tap_latency import REPOSITORY, installation, percentile, server

SLOW = (
    "SELECT COUNT(*) AS n FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c "
    "WHERE a.s_ra + b.s_ra + c.s_ra > -1"
)
"""A cross join of ObsCore with itself three times: N³ rows, beyond any time limit."""
QUERY_IMAGES = 200
"""Images whose neighbours are precomputed: the ones the clients ask about."""
SLOW_ADDRESSES = 200
"""The slow clients call from 127.0.0.200 on, the cheap ones from 127.0.0.2 on."""

Request = Callable[[random.Random], str]
"""Makes the path (and query string) of one request."""


def tap_mix(images: list[int]) -> list[Request]:
    """Cheap sync TAP queries: one table read once, or a join on one image's key."""

    def count(rng: random.Random) -> str:
        band = rng.choice(("3", "7"))
        return tap_path(f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE band_list = '{band}'")

    def cone(rng: random.Random) -> str:
        image = _image(rng.choice(images), released=None)
        return tap_path(
            "SELECT obs_publisher_did, target_name, s_ra, s_dec, band_list FROM ivoa.obscore "
            "WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
            f"CIRCLE('ICRS', {image.ra}, {image.dec}, 0.5))"
        )

    def first_rows(rng: random.Random) -> str:
        return tap_path(
            "SELECT TOP 100 obs_publisher_did, target_name, s_ra, s_dec, t_min FROM ivoa.obscore"
        )

    def neighbours_of(rng: random.Random) -> str:
        query = did(rng.choice(images))
        return tap_path(
            "SELECT n.rank, n.cosine_similarity, o.obs_publisher_did, o.target_name, "
            "o.band_list FROM similarity.neighbour AS n JOIN ivoa.obscore AS o "
            f"ON o.obs_publisher_did = n.neighbour_did WHERE n.obs_publisher_did = '{query}' "
            "AND n.rank <= 20 ORDER BY n.rank"
        )

    def tables(rng: random.Random) -> str:
        return tap_path("SELECT schema_name, table_name FROM TAP_SCHEMA.tables")

    return [count, cone, first_rows, neighbours_of, tables]


def similarity_mix(images: list[int]) -> list[Request]:
    """Cheap requests of the similarity service: rankings, and one image's description."""

    def ranking(rng: random.Random) -> str:
        return service_path(did(rng.choice(images)))

    def refinement(rng: random.Random) -> str:
        selected = [did(image) for image in rng.sample(images, 3)]
        parameters = [("ID", one) for one in selected] + [
            ("MAXREC", "50"),
            ("RESPONSEFORMAT", "application/json"),
        ]
        return "/similarity/sync?" + urllib.parse.urlencode(parameters)

    def description(rng: random.Random) -> str:
        return "/similarity/image?" + urllib.parse.urlencode({"ID": did(rng.choice(images))})

    return [ranking, refinement, description]


def mixes(images: list[int]) -> dict[str, list[Request]]:
    tap, similarity = tap_mix(images), similarity_mix(images)
    return {"tap": tap, "similarity": similarity, "both": tap + similarity}


@dataclass
class Answers:
    """What one client got: milliseconds of its 200s, and the count of every other status."""

    times_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


def call(link: http.client.HTTPConnection, path: str) -> str:
    """Send one GET; the status, or ``200 ERROR`` for a result whose VOTable says ERROR."""
    link.request("GET", path)
    response = link.getresponse()
    body = response.read()
    if response.status == 200 and b'name="QUERY_STATUS" value="ERROR"' in body:
        return "200 ERROR"
    return str(response.status)


def client(
    url: str, address: str, requests: list[Request], seed: int, go_on: Callable[[], bool]
) -> Answers:
    """Send requests one after the other from ``address`` while ``go_on()``; keep-alive."""
    parts = urllib.parse.urlparse(url)
    rng = random.Random(seed)
    answers = Answers()

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=120, source_address=(address, 0)
        )

    link = connect()
    while go_on():
        path = rng.choice(requests)(rng)
        started = time.perf_counter()
        try:
            status = call(link, path)
        except (OSError, http.client.HTTPException) as error:
            status = type(error).__name__
            link.close()
            link = connect()
        if status == "200":
            answers.times_ms.append((time.perf_counter() - started) * 1000)
        else:
            answers.statuses[status] += 1
    link.close()
    return answers


def in_threads(targets: list[Callable[[], Answers]]) -> tuple[list[threading.Thread], list]:
    """Start one thread per target; the list of answers fills as they end."""
    results: list[Answers] = []
    threads = [
        threading.Thread(target=lambda target=target: results.append(target()), daemon=True)
        for target in targets
    ]
    for thread in threads:
        thread.start()
    return threads, results


@dataclass
class Series:
    """The outcome of one series, as a row of the table."""

    code: str
    clients: int
    mix: str
    slow: int
    seconds: float
    cheap: Answers
    hostile: Counter
    load: float


def run_series(
    url: str,
    clients: int,
    mix: str,
    requests: list[Request],
    slow: int,
    seconds: float,
    code: str = "this tree",
) -> Series:
    """``clients`` cheap clients for ``seconds``, beside ``slow`` hostile ones started first."""
    stop = threading.Event()
    slow_threads, slow_answers = in_threads(
        [
            lambda n=n: client(
                url, f"127.0.0.{SLOW_ADDRESSES + n}", [lambda _: tap_path(SLOW)], n, _until(stop)
            )
            for n in range(slow)
        ]
    )
    if slow:
        time.sleep(1.0)  # the slow queries are in the service: running or queued
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    cheap_threads, cheap_answers = in_threads(
        [
            lambda n=n: client(
                url, f"127.0.0.{2 + n}", requests, n, lambda: time.monotonic() < deadline
            )
            for n in range(clients)
        ]
    )
    for thread in cheap_threads:
        thread.join()
    elapsed = time.monotonic() - started
    load = os.getloadavg()[0]
    stop.set()
    for thread in slow_threads:  # drained before the next series: each ends in its limit
        thread.join()
    cheap = Answers()
    for answers in cheap_answers:
        cheap.times_ms += answers.times_ms
        cheap.statuses += answers.statuses
    hostile = sum((answers.statuses for answers in slow_answers), Counter())
    hostile["200"] += sum(len(answers.times_ms) for answers in slow_answers)
    return Series(code, clients, mix, slow, elapsed, cheap, hostile, load)


def _until(stop: threading.Event) -> Callable[[], bool]:
    return lambda: not stop.is_set()


def warm_up(url: str, requests: dict[str, list[Request]]) -> None:
    """Each kind of request a few times: the similarity index is loaded on first use."""
    rng = random.Random(0)
    parts = urllib.parse.urlparse(url)
    link = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    for make in requests["both"] * 3:
        status = call(link, make(rng))
        if status != "200":
            raise RuntimeError(f"warm-up request answered {status}")
    link.close()


def statuses(counts: Counter) -> str:
    """``503: 12, 400: 3``, or 0."""
    shown = {status: n for status, n in counts.items() if status != "200" and n}
    return ", ".join(f"{status}: {n}" for status, n in sorted(shown.items())) or "0"


def print_table(backend: str, rows: list[Series], slow_limit: float) -> None:
    print(
        f"\n{backend}: cheap requests from N clients, closed loop; slow: hostile clients "
        f"(cross joins, sync time limit {slow_limit:g} s); load: 1-minute load average at "
        f"the end of the series; {os.cpu_count()} cores\n"
    )
    print(
        "| backend | code | clients | mix | slow | requests/s | p50 ms | p95 ms | p99 ms "
        "| cheap errors | slow queries' answers | load |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        times = row.cheap.times_ms or [float("nan")]
        rate = len(row.cheap.times_ms) / row.seconds
        hostile = f"200: {row.hostile['200']}, {statuses(row.hostile)}" if row.slow else "–"
        print(
            f"| {backend} | {row.code} | {row.clients} | {row.mix} | {row.slow} | {rate:.1f} "
            f"| {percentile(times, 50):.0f} | {percentile(times, 95):.0f} "
            f"| {percentile(times, 99):.0f} | {statuses(row.cheap.statuses)} | {hostile} "
            f"| {row.load:.2f} |",
            flush=True,
        )


def run_backend(backend: str, vectors: np.ndarray, arguments: argparse.Namespace) -> None:
    rng = np.random.default_rng(3)
    images = [int(i) for i in rng.choice(len(vectors), QUERY_IMAGES, replace=False)]
    requests = mixes(images)
    with installation(backend) as settings:
        started = time.perf_counter()
        prepare(settings, vectors, images)
        print(f"{backend}: catalogue written in {time.perf_counter() - started:.0f} s", flush=True)
        os.environ["VOSIM_TAP_SYNC_DURATION_S"] = str(arguments.slow_limit)
        trees = {"this tree": REPOSITORY}
        if arguments.baseline is not None:
            trees = {"baseline": arguments.baseline.resolve(), **trees}
        rows = []
        for code, tree in trees.items():
            with server(settings, tree) as url:
                warm_up(url, requests)
                for clients in arguments.clients:
                    for mix in arguments.mixes:
                        for slow in (0, arguments.slow):
                            rows.append(
                                run_series(
                                    url, clients, mix, requests[mix], slow, arguments.seconds, code
                                )
                            )
                            print(f"{backend}: {rows[-1]!s:.160}", file=sys.stderr, flush=True)
    print_table(backend, rows, arguments.slow_limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each series")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--slow", type=int, default=10, help="hostile clients beside them")
    parser.add_argument("--mixes", nargs="+", default=["tap", "similarity", "both"])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument(
        "--slow-limit", type=float, default=10.0, help="the served sync time limit, in seconds"
    )
    parser.add_argument("--baseline", type=Path, help="a checkout to serve the catalogue first")
    arguments = parser.parse_args()
    vectors = synthetic_vectors(arguments.images, arguments.dimensions, 1.0)
    for backend in arguments.backends:
        run_backend(backend, vectors, arguments)
    print(f"\nload average at the end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
