"""vosim_similarity in ADQL against the similarity service and the neighbour table, over HTTP.

Builds a catalogue of public continuum images with synthetic unit vectors
(`similarity_latency.synthetic_vectors`), serves it with ``vosim serve`` in
its own process (`tap_latency.server`), and times from one keep-alive
connection, for random query images:

- **constrained**: the issue's query, ``TOP 50`` by ``vosim_similarity``
  among Band 7 images observed after an MJD, through ``/tap/sync``;
- **ranking**: an unconstrained ``TOP 100`` by ``vosim_similarity``
  through ``/tap/sync``;
- **service**: the same ranking through ``/similarity/sync?ID=…&MAXREC=100``
  (the reference the issue sets: ranking within 2x of it);
- **neighbours**: the same ranking read from ``similarity.neighbour``
  (precomputed here for the query images only).

It also checks that the ADQL ranking's top 100 are the service's, and that
an unconstrained ``TOP 1000`` is the neighbour table's top 1000 (the same
DIDs in the same order, equal scores in the order of their DIDs).

Run from the repository root::

    python benchmarks/adql_similarity.py [--images 20000] [--dimensions 128]
        [--requests 20] [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from similarity_latency import did, fill_catalogue, synthetic_vectors
from tap_latency import installation, server

from tap_schema import open_catalogue

DEPTH = 100
CHECK_DEPTH = 1000


def prepare(settings, vectors: np.ndarray, queries: list[int]) -> None:
    """Fill the catalogue (bands and dates vary); precompute the query images' neighbours."""
    catalogue = open_catalogue(settings)
    fill_catalogue(catalogue, vectors)
    rows = []
    for query in queries:
        scores = vectors @ vectors[query]
        scores[query] = -np.inf
        for rank, other in enumerate(np.argsort(-scores, kind="stable")[:CHECK_DEPTH], start=1):
            rows.append(
                {
                    "obs_publisher_did": did(query),
                    "rank": rank,
                    "neighbour_did": did(int(other)),
                    "cosine_similarity": float(scores[other]),
                    "model_id": 1,
                }
            )
    with catalogue.begin() as conn:
        conn.execute(catalogue.table("similarity.neighbour").insert(), rows)
        if catalogue.dialect == "postgresql":
            conn.execute(sa.text("ANALYZE"))
    catalogue.dispose()


def constrained(query: str) -> str:
    return (
        "SELECT TOP 50 o.obs_publisher_did, o.target_name, o.band_list, "
        f"vosim_similarity(o.obs_publisher_did, '{query}') AS sim FROM ivoa.obscore AS o "
        "WHERE o.band_list = '7' AND o.t_min > 58000 "
        f"AND vosim_similarity(o.obs_publisher_did, '{query}') IS NOT NULL ORDER BY sim DESC"
    )


def ranking(query: str, depth: int = DEPTH, ties: str = "") -> str:
    return (
        f"SELECT TOP {depth} o.obs_publisher_did, "
        f"vosim_similarity(o.obs_publisher_did, '{query}') AS sim FROM ivoa.obscore AS o "
        f"WHERE o.obs_publisher_did <> '{query}' "
        f"AND vosim_similarity(o.obs_publisher_did, '{query}') IS NOT NULL ORDER BY sim DESC{ties}"
    )


def neighbours(query: str, depth: int = DEPTH) -> str:
    return (
        f"SELECT TOP {depth} n.neighbour_did, n.cosine_similarity FROM similarity.neighbour AS n "
        f"WHERE n.obs_publisher_did = '{query}' ORDER BY n.rank"
    )


@contextmanager
def connection(url: str):
    parts = urllib.parse.urlparse(url)
    link = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        yield link
    finally:
        link.close()


def get(link: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    link.request("GET", path)
    response = link.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200 or b'value="ERROR"' in body:
        raise RuntimeError(body.decode()[:800])
    return elapsed, body


def top_dids(link: http.client.HTTPConnection, adql: str) -> list[str]:
    """The first column of a query's CSV result."""
    _elapsed, body = get(link, tap_path(adql, RESPONSEFORMAT="csv", MAXREC=str(CHECK_DEPTH)))
    return [line.split(",")[0] for line in body.decode().splitlines()[1:]]


def tap_path(adql: str, **extra: str) -> str:
    return "/tap/sync?" + urllib.parse.urlencode({"LANG": "ADQL", "QUERY": adql, **extra})


def service_path(query: str) -> str:
    parameters = {"ID": query, "MAXREC": str(DEPTH), "RESPONSEFORMAT": "application/json"}
    return "/similarity/sync?" + urllib.parse.urlencode(parameters)


def run(backend: str, vectors: np.ndarray, queries: list[int]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in ("constrained", "ranking", "service", "nbr")}
    agree = []
    with installation(backend) as settings:
        started = time.perf_counter()
        prepare(settings, vectors, queries)
        print(f"{backend}: catalogue written in {time.perf_counter() - started:.0f} s")
        with server(settings) as url, connection(url) as link:
            get(link, service_path(did(queries[0])))  # loads the service's index
            for position, query in enumerate(queries):
                text = did(query)
                warm = position == 0
                for name, path in (
                    ("constrained", tap_path(constrained(text))),
                    ("ranking", tap_path(ranking(text), RESPONSEFORMAT="csv")),
                    ("service", service_path(text)),
                    ("nbr", tap_path(neighbours(text), RESPONSEFORMAT="csv")),
                ):
                    if warm:
                        get(link, path)
                    elapsed, body = get(link, path)
                    times[name].append(elapsed)
                    if name == "ranking":
                        adql = [line.split(",")[0] for line in body.decode().splitlines()[1:]]
                    if name == "service":
                        served = [r["obs_publisher_did"] for r in json.loads(body)["results"]]
                agree.append(len(set(adql) & set(served)) / DEPTH)
            same = sum(
                # equal scores in the DIDs' order, as the neighbour table's stable sort
                top_dids(link, ranking(did(q), CHECK_DEPTH, ", o.obs_publisher_did"))
                == top_dids(link, neighbours(did(q), CHECK_DEPTH))
                for q in queries
            )
    print(f"{backend}: ADQL ranking's top {DEPTH} found in the service's: {min(agree):.3f} (min)")
    print(
        f"{backend}: ADQL TOP {CHECK_DEPTH} is the neighbour table's for {same} of {len(queries)}"
    )
    print(f"{backend}: load average after its queries: {Path('/proc/loadavg').read_text().strip()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    arguments = parser.parse_args()
    vectors = synthetic_vectors(arguments.images, arguments.dimensions, 1.0)
    rng = np.random.default_rng(3)
    queries = [int(i) for i in rng.choice(arguments.images, arguments.requests, replace=False)]
    print(f"{arguments.images} images, d = {arguments.dimensions}, {arguments.requests} queries")
    results = {backend: run(backend, vectors, queries) for backend in arguments.backends}
    print(f"\nload average: {Path('/proc/loadavg').read_text().strip()}")
    header = f"{'backend':<11}{'query':<13}{'p50 ms':>9}{'p95 ms':>9}{'/ service':>11}"
    print(header)
    for backend, times in results.items():
        service = float(np.median(times["service"]))
        for name, label in (
            ("constrained", "constrained"),
            ("ranking", "ranking"),
            ("service", "service"),
            ("nbr", "neighbours"),
        ):
            p50, p95 = np.median(times[name]), np.percentile(times[name], 95)
            print(f"{backend:<11}{label:<13}{p50:>9.1f}{p95:>9.1f}{p50 / service:>10.2f}x")


if __name__ == "__main__":
    main()
