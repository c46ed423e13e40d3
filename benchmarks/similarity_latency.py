"""Server-side latency of a similarity refinement: vosim's two-stage ranking against two references.

A refinement ranks every public image of a kind against the combination of
1, 3 or 10 selected images and keeps the best 1000 (the page's list). Three
ways of doing it are timed in the same run, on the same vectors and queries:

- **exact scan** (the reference): every vector times the query, float32;
- **vosim** (`vo_service.similarity.index.KindIndex.rank`): a first pass on
  the vectors reduced to their leading principal axes selects a candidate
  set whose size was calibrated on the data, which is re-ranked exactly;
- **paper**: only the union of the selected images' precomputed lists of
  their 1000 nearest is ranked (what the ALMA interface does); the lists
  are computed here by exact scans before the timing.

Each timing covers what the service does in memory per request: the query
vector, the mask of eligible images (public, compatible category, not
selected) and the ranking. A fourth row adds ``MIN_SEPARATION`` (other
targets only, the page's default of 30 arcsec) to vosim's ranking: the
images near a selected one found in the k-d tree of the cut-out centres
and left out; the centres are spread over the sky with every image one of
four observations of a field. Recall is the fraction of the exact scan's top
1000 that a method returns. Queries are refinements as the page makes them:
a random image and images from the top 50 of its own ranking.

Vectors are synthetic (a real archive's are not available here): clustered,
unit length, with variance decaying along the axes as ``k ** -alpha`` (the
spectrum of learned representations decays, how fast depends on the model;
``--alpha`` sets it, and the reduced copy's recall depends on it). They
are generated directly in their principal axes, which changes nothing for
any of the three methods: all are invariant under rotations.

Run from the repository root (about 3 GB of memory at the default size)::

    python benchmarks/similarity_latency.py [--images 260000] [--dimensions 2048]
        [--alpha 1.0] [--queries 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture
from vo_service.similarity import SimilarityQuery, SimilarityService
from vo_service.similarity.index import IndexOptions, KindIndex
from vo_service.similarity.ranking import query_vector, top_positions
from vo_service.similarity.responses import json_response
from vo_service.urls import ServiceUrls

DEPTH = 1000
SIZES = (1, 3, 10)
NOW = datetime(2026, 1, 1)
MJD_ZERO = datetime(1858, 11, 17)
AUTHORITY = "bench"


def synthetic_vectors(n: int, d: int, alpha: float, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors whose variance along axis ``k`` decays as ``k ** -alpha``."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, d + 1, dtype=np.float32) ** (-alpha / 2)).astype(np.float32)
    centres = rng.standard_normal((500, d), dtype=np.float32)
    vectors = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 16_384):
        block = vectors[start : start + 16_384]
        rng.standard_normal(block.shape, dtype=np.float32, out=block)
        block += centres[rng.integers(len(centres), size=len(block))]
        block *= scale
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return vectors


def synthetic_centres(n: int, seed: int = 0) -> list[tuple[float, float]]:
    """Cut-out centres: n / 4 fields uniform on the sky, four observations each within 5 arcsec."""
    rng = np.random.default_rng(seed)
    fields = (n + 3) // 4
    ra = rng.uniform(0.0, 360.0, fields)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, fields)))
    which = np.arange(n) // 4
    spread = rng.normal(0.0, 5.0 / 3600.0, size=(n, 2))
    dec_all = np.clip(dec[which] + spread[:, 1], -90.0, 90.0)
    ra_all = (ra[which] + spread[:, 0] / np.maximum(np.cos(np.radians(dec_all)), 1e-6)) % 360.0
    return list(zip(ra_all.tolist(), dec_all.tolist(), strict=True))


def exact_top(vectors: np.ndarray, query: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    positions = np.flatnonzero(eligible)
    scores = (vectors @ query)[positions]
    return positions[top_positions(scores, positions, DEPTH)]


def make_queries(
    vectors: np.ndarray, count: int, rng: np.random.Generator
) -> dict[int, list[np.ndarray]]:
    """Refinements: a random image plus images from the top 50 of its own ranking."""
    n = len(vectors)
    queries: dict[int, list[np.ndarray]] = {size: [] for size in SIZES}
    for size in SIZES:
        for _ in range(count):
            first = int(rng.integers(n))
            scores = vectors @ vectors[first]
            scores[first] = -np.inf
            nearest = np.argpartition(scores, n - 50)[-50:]
            others = rng.choice(nearest, size=size - 1, replace=False)
            queries[size].append(np.concatenate([[first], others]).astype(np.int64))
    return queries


def neighbour_lists(vectors: np.ndarray, selections: list[np.ndarray]) -> dict[int, np.ndarray]:
    """The precomputed list of the 1000 nearest of every selected image (the paper's table)."""
    lists = {}
    everyone = np.ones(len(vectors), dtype=bool)
    for selection in selections:
        for image in selection.tolist():
            if image not in lists:
                everyone[image] = False
                lists[image] = exact_top(vectors, vectors[image], everyone)
                everyone[image] = True
    return lists


def timed(function, *arguments) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = function(*arguments)
    return (time.perf_counter() - started) * 1000.0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=260_000)
    parser.add_argument("--dimensions", type=int, default=2048)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument(
        "--reduced", type=int, nargs="+", default=[384], help="axes of the reduced copy (each)"
    )
    parser.add_argument("--queries", type=int, default=40, help="queries per selection size")
    parser.add_argument("--threads", type=int, default=2, help="BLAS and numba threads")
    parser.add_argument(
        "--min-separation", type=float, default=30.0, help="arcsec, for the MIN_SEPARATION row"
    )
    parser.add_argument(
        "--service",
        type=int,
        default=0,
        help="also time SimilarityService.search on a SQLite catalogue of this many images",
    )
    args = parser.parse_args()
    threadpool_limits(args.threads)
    numba.set_num_threads(args.threads)
    n, d = args.images, args.dimensions

    started = time.perf_counter()
    vectors = synthetic_vectors(n, d, args.alpha)
    print(
        f"{n} vectors of d={d} (alpha={args.alpha}) made in {time.perf_counter() - started:.1f} s"
    )
    indexes = {}
    for dimensions in args.reduced:
        started = time.perf_counter()
        index = KindIndex(
            "continuum",
            1,
            [did(i) for i in range(n)],
            vectors,
            [None] * n,
            [NOW - timedelta(days=1)] * n,
            IndexOptions(reduce_from=0, reduced_dimensions=dimensions),
        )
        seconds = time.perf_counter() - started
        if index.reduced is None:
            print(f"r={dimensions}: calibration dropped the reduced copy (exact scans only)")
        else:
            print(
                f"r={dimensions}: index built (PCA, calibration) in {seconds:.1f} s; "
                f"{index.candidate_factor * DEPTH:.0f} candidates per query; recall measured "
                f"at load {index.measured_recall:.4f}"
            )
        indexes[dimensions] = index
    public = np.ones(n, dtype=bool)  # every index says so at NOW: released yesterday
    compatible = np.ones(n, dtype=bool)  # no categories
    rng = np.random.default_rng(7)
    queries = make_queries(vectors, args.queries, rng)
    lists = neighbour_lists(vectors, [s for size in SIZES for s in queries[size]])

    def eligible_for(selection: np.ndarray) -> np.ndarray:
        eligible = public & compatible
        eligible[selection] = False
        return eligible

    def exact(selection: np.ndarray) -> np.ndarray:
        return exact_top(vectors, query_vector(vectors[selection]), eligible_for(selection))

    def vosim(index: KindIndex):
        def rank(selection: np.ndarray) -> np.ndarray:
            query = query_vector(vectors[selection])
            return index.rank(query, eligible_for(selection), DEPTH).positions

        return rank

    def paper(selection: np.ndarray) -> np.ndarray:
        query = query_vector(vectors[selection])
        union = np.unique(np.concatenate([lists[i] for i in selection.tolist()]))
        union = union[eligible_for(selection)[union]]
        scores = vectors[union] @ query
        return union[top_positions(scores, union, DEPTH)]

    started = time.perf_counter()
    first = next(iter(indexes.values()))
    placed = first.with_metadata(first.categories, first.release_dates, synthetic_centres(n))
    print(f"k-d tree of {n} cut-out centres built in {time.perf_counter() - started:.2f} s")
    separation_deg = args.min_separation / 3600.0

    def vosim_other_targets(selection: np.ndarray) -> np.ndarray:
        query = query_vector(vectors[selection])
        eligible = eligible_for(selection) & ~placed.near(selection, separation_deg)
        return placed.rank(query, eligible, DEPTH).positions

    methods = {"exact scan (reference)": exact}
    methods |= {f"vosim two-stage r={r}": vosim(index) for r, index in indexes.items()}
    methods[f'vosim + MIN_SEPARATION {args.min_separation:g}"'] = vosim_other_targets
    methods["paper: union of lists"] = paper
    rows = []
    for size in SIZES:
        times: dict[str, list[float]] = {name: [] for name in methods}
        recalls: dict[str, list[float]] = {name: [] for name in methods}
        for selection in queries[size]:
            truth = None
            for name, method in methods.items():  # interleaved: the same load for all three
                elapsed, found = timed(method, selection)
                times[name].append(elapsed)
                if truth is None:
                    truth = set(found.tolist())
                recalls[name].append(len(truth.intersection(found.tolist())) / len(truth))
        for name in methods:
            rows.append(
                (
                    name,
                    size,
                    float(np.median(times[name])),
                    float(np.percentile(times[name], 95)),
                    float(np.mean(recalls[name])),
                    float(np.min(recalls[name])),
                )
            )

    gib = 1024**3
    lists_bytes = n * DEPTH * 8  # DID row number + similarity per entry, at least
    memory = {
        "exact scan (reference)": vectors.nbytes,
        "paper: union of lists": vectors.nbytes + lists_bytes,
    }
    for r, index in indexes.items():
        memory[f"vosim two-stage r={r}"] = index.nbytes
    memory[f'vosim + MIN_SEPARATION {args.min_separation:g}"'] = (
        placed.nbytes + placed.sky.vectors.nbytes
    )
    print()
    print(
        f"refinement latency, top {DEPTH} of {n} x {d}, {args.queries} queries per size, "
        f"{args.threads} threads on {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'method':<30} {'selected':>8} {'p50 ms':>8} {'p95 ms':>8} {'recall':>8} "
        f"{'min':>7} {'memory GiB':>11}"
    )
    for name, size, p50, p95, recall, lowest in rows:
        print(
            f"{name:<30} {size:>8} {p50:>8.1f} {p95:>8.1f} {recall:>8.4f} {lowest:>7.3f} "
            f"{memory[name] / gib:>11.2f}"
        )
    print()
    print(
        "memory: vectors, plus vosim's reduced copy, plus the paper's neighbour lists (1000 "
        "per image, which the paper's archive reads from its database per request)"
    )

    if args.service:
        del indexes, lists
        service_latency(vectors[: args.service], args.queries)


def service_latency(vectors: np.ndarray, count: int) -> None:
    """Time `SimilarityService.search` and the page's JSON, catalogue on SQLite, per MAXREC."""
    n = len(vectors)
    with tempfile.TemporaryDirectory(prefix="vosim-similarity-bench-") as folder:
        settings = Settings.from_env({"VOSIM_DATA_DIR": folder})
        catalogue = open_catalogue(settings)
        started = time.perf_counter()
        fill_catalogue(catalogue, vectors)
        print(f"\ncatalogue of {n} images written in {time.perf_counter() - started:.0f} s")
        service = SimilarityService(catalogue)
        started = time.perf_counter()
        service.refresh(force=True)
        print(
            f"service loaded its index (vectors, PCA, calibration) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        urls = ServiceUrls("http://127.0.0.1:8000")
        rng = np.random.default_rng(11)
        dids = [did(i) for i in range(n)]
        print(
            f"{'MAXREC':>6} {'selected':>8} {'search p50':>11} {'p95':>6} {'+JSON p50':>10} "
            f"{'p95':>6}"
        )
        for maxrec in (100, 1000):
            for size in SIZES:
                searches, answers = [], []
                for selection in make_queries(vectors, count, rng)[size]:
                    query = SimilarityQuery(tuple(dids[i] for i in selection), maxrec=maxrec)
                    started = time.perf_counter()
                    result = service.search(query)
                    searched = time.perf_counter()
                    json_response(result, urls, maxrec=maxrec, offset=0)
                    searches.append((searched - started) * 1000)
                    answers.append((time.perf_counter() - started) * 1000)
                print(
                    f"{maxrec:>6} {size:>8} {np.median(searches):>11.1f} "
                    f"{np.percentile(searches, 95):>6.1f} {np.median(answers):>10.1f} "
                    f"{np.percentile(answers, 95):>6.1f}"
                )
        catalogue.dispose()


def did(index: int) -> str:
    """The DID of the benchmark's image ``index``, as the fixture archive names it."""
    return fixture.did(f"p{index:07d}", AUTHORITY)


def fill_catalogue(catalogue, vectors: np.ndarray) -> None:
    """One public continuum image per vector: the fixture archive's rows, and the vectors.

    The images lie along the equator of RA (every 0.37 degrees at Dec -30), one
    in five in band 3, the others in band 7, observed between MJD 57000 and
    60600 as RA grows.
    """
    released = NOW - timedelta(days=1)
    fixture.write_rows(
        catalogue, {"similarity.model": [fixture.model_row(1, "continuum", model_name="bench")]}
    )
    for start in range(0, len(vectors), 10_000):
        block = range(start, min(start + 10_000, len(vectors)))
        images = [_image(i, released) for i in block]
        rows = fixture.image_rows(images, AUTHORITY)
        rows["similarity.embedding"] = [
            {"obs_publisher_did": row["obs_publisher_did"], "model_id": 1, "vector": vectors[i]}
            for i, row in zip(block, rows["ivoa.obscore"], strict=True)
        ]
        fixture.write_rows(catalogue, rows)


def _image(index: int, released: datetime) -> fixture.FixtureImage:
    ra = (index * 0.37) % 360
    observed = MJD_ZERO + timedelta(days=57000 + 10 * ra)
    return fixture.FixtureImage(
        key=f"p{index:07d}",
        ra=ra,
        dec=-30.0,
        band="3" if index % 10 in (1, 4) else "7",
        target=f"SRC-{index}",
        observed=observed.isoformat(),
        release=released,
    )


if __name__ == "__main__":
    main()
