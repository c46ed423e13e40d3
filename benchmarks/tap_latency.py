"""Latency of synchronous TAP queries over HTTP, on SQLite and PostgreSQL.

Builds a catalogue of realistic size with the tests' fixture archive (5,000 of
ingest's ObsCore rows, 5,000 images with
10 neighbours each: 50,000 neighbour rows), serves it with ``vosim serve`` in
its own process, and times four kinds of query from one keep-alive HTTP
connection: the first 1000 ObsCore rows (all columns), the neighbours of an
image joined with ObsCore, a COUNT, and a cone search. It also times how
long astropy takes to write the 1000-row result as a VOTable, against
vosim's own writer, since that choice is what the latency goal rests on.

Run from the repository root::

    python benchmarks/tap_latency.py [--requests 200] [--backends sqlite postgresql]
        [--baseline DIR]

With ``--baseline``, the same catalogue is also served by the code of
another checkout (e.g. ``git archive main | tar -x -C DIR``), one server
after the other, and both are printed side by side with the load average
measured during each.

The reference, GAVO DaCHS 2.7 on this kind of machine (docs/validators.md), took
80-250 ms per query for the same kinds of query; it is not installed here,
so its figure is quoted, not measured.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture
from tests.tap.server import vosim_serve

N_IMAGES = 5_000
N_NEIGHBOURS = 10
PG_SERVER = os.environ.get(
    "VOSIM_TEST_PG_URL", "postgresql+psycopg://vosim:vosim@127.0.0.1:5432/vosim"
)
CATEGORIES = (
    "Cosmology and the high-redshift universe",
    "Galaxies and galactic nuclei",
    "ISM, star formation and astrochemistry",
    "Circumstellar disks, exoplanets and the solar system",
    "Stellar evolution and the Sun",
)
BANDS = ("3", "6", "7", "9")
AUTHORITY = "vosim.bench"


def build_catalogue(settings: Settings, seed: int = 1) -> list[tuple[str, float, float]]:
    """Fill an empty catalogue with the fixture archive's rows; return the public (did, ra, dec)."""
    rng = random.Random(seed)
    catalogue = open_catalogue(settings)
    now = datetime(2025, 1, 1)
    images = []
    for index in range(N_IMAGES):
        proprietary = rng.random() < 0.05
        images.append(
            fixture.FixtureImage(
                key=f"uid___A001_X{index:05d}",
                image_kind="continuum" if index % 3 else "peak_flux",
                ra=rng.uniform(0, 360),
                dec=float(np.degrees(np.arcsin(rng.uniform(-1, 0.5)))),
                band=rng.choice(BANDS),
                target=f"SRC-{index // 4:04d}",
                observed=(now - timedelta(days=rng.randint(400, 3400))).isoformat(),
                release=(
                    now + timedelta(days=400)
                    if proprietary
                    else now - timedelta(days=rng.randint(1, 3000))
                ),
                category=rng.choice(CATEGORIES),
            )
        )
    rows = fixture.image_rows(images, AUTHORITY)
    dids = [row["obs_publisher_did"] for row in rows["ivoa.obscore"]]
    rows["similarity.model"] = [fixture.model_row(1, "continuum", model_name="bench")]
    rows["similarity.neighbour"] = [
        {
            "obs_publisher_did": did,
            "rank": rank,
            "neighbour_did": other,
            "cosine_similarity": 1.0 - 0.01 * rank,
            "model_id": 1,
        }
        for did in dids
        for rank, other in enumerate(rng.sample(dids, N_NEIGHBOURS), start=1)
    ]
    fixture.write_rows(catalogue, rows)
    if catalogue.dialect == "postgresql":
        with catalogue.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    catalogue.dispose()
    return [
        (row["obs_publisher_did"], row["s_ra"], row["s_dec"])
        for row, image in zip(rows["ivoa.obscore"], images, strict=True)
        if image.release <= now
    ]


def queries(public: list[tuple[str, float, float]], rng: random.Random) -> dict[str, callable]:
    """The four kinds of query; each call gives one query text (a new image or position)."""

    def neighbours() -> str:
        did = rng.choice(public)[0]
        return (
            "SELECT n.rank, n.cosine_similarity, o.obs_publisher_did, o.target_name, o.band_list, "
            "o.s_resolution, o.obs_release_date, o.access_url FROM similarity.neighbour AS n "
            "JOIN ivoa.obscore AS o ON o.obs_publisher_did = n.neighbour_did "
            f"WHERE n.obs_publisher_did = '{did}' ORDER BY n.rank"
        )

    def cone() -> str:
        _, ra, dec = rng.choice(public)
        return (
            "SELECT obs_publisher_did, target_name, s_ra, s_dec, band_list FROM ivoa.obscore "
            f"WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, 0.5))"
        )

    return {
        "TOP 1000 * from ivoa.obscore": lambda: "SELECT TOP 1000 * FROM ivoa.obscore",
        "neighbours of an image JOIN obscore": neighbours,
        "COUNT(*) of a band": lambda: (
            f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE band_list = '{rng.choice(list(BANDS))}'"
        ),
        "cone of 0.5 deg": cone,
    }


REPOSITORY = Path(__file__).resolve().parent.parent


@contextmanager
def server(settings: Settings, tree: Path = REPOSITORY):
    """Run ``vosim serve`` of the code in ``tree`` in its own process; yield its base URL."""
    environ = {
        **os.environ,
        "VOSIM_DATA_DIR": str(settings.data_dir),
        "VOSIM_DB_URL": settings.db_url,
        "VOSIM_TAP_HARD_MAXREC": "100000",
        "PYTHONPATH": str(tree),
    }
    with vosim_serve(environ, cwd=tree) as served:
        yield served.url


def time_queries(url: str, make_query, requests: int, warmup: int = 10) -> list[float]:
    """Milliseconds per request, from one keep-alive connection."""
    parts = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    times = []
    for index in range(warmup + requests):
        path = "/tap/sync?" + urllib.parse.urlencode({"LANG": "ADQL", "QUERY": make_query()})
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(body.decode()[:500])
        if index >= warmup:
            times.append(elapsed)
    connection.close()
    return times


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def writer_comparison(settings: Settings, repeat: int = 20) -> tuple[float, float]:
    """Median ms to write the TOP 1000 result as TABLEDATA: astropy vs vosim's writer."""
    from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile

    from vo_service.adql import translate_adql
    from vo_service.tap.query_database import QueryDatabase
    from vo_service.votable.formats import OUTPUT_FORMATS
    from vo_service.votable.writers import table_writer

    database = QueryDatabase(settings.db_url, pool_size=1)
    translated = translate_adql(
        "SELECT TOP 1000 * FROM ivoa.obscore", schema=database.schema(), dialect=database.dialect
    )
    with database.session(timeout_s=60) as session:
        rows = [row for batch in session.rows(translated, limit=1000) for row in batch]
    database.dispose()
    columns = translated.columns

    def ours() -> bytes:
        writer = table_writer(OUTPUT_FORMATS[0], columns)
        return writer.head() + writer.rows(rows) + writer.tail(overflow=False, error=None)

    def astropy() -> bytes:
        votable = VOTableFile()
        resource = Resource()
        votable.resources.append(resource)
        table = TableElement(votable)
        resource.tables.append(table)
        for column in columns:
            table.fields.append(
                Field(
                    votable,
                    name=column.name,
                    datatype=column.datatype,
                    arraysize=column.arraysize,
                    unit=column.unit,
                    ucd=column.ucd,
                    utype=column.utype,
                    xtype=column.xtype,
                )
            )
        table.create_arrays(len(rows))
        dtype = table.array.dtype
        fillers = ["" if dtype[name].kind in "OSU" else 0 for name in dtype.names]
        for index, row in enumerate(rows):  # NULL: a masked cell, written empty
            values = zip(row, fillers, strict=True)
            table.array[index] = tuple(filler if v is None else v for v, filler in values)
            table.array.mask[index] = tuple(v is None for v in row)
        buffer = io.BytesIO()
        votable.to_xml(buffer, tabledata_format="tabledata")
        return buffer.getvalue()

    def median_ms(function) -> float:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            function()
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    return median_ms(astropy), median_ms(ours)


@contextmanager
def installation(backend: str):
    folder = Path(tempfile.mkdtemp(prefix=f"vosim-bench-{backend}-"))
    environ = {"VOSIM_DATA_DIR": str(folder)}
    admin = name = None
    if backend == "postgresql":
        name = f"vosim_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        environ["VOSIM_DB_URL"] = (
            sa.engine.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
        )
    try:
        yield Settings.from_env(environ)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def time_trees(
    settings: Settings, public: list, trees: dict[str, Path], requests: int
) -> list[tuple[str, str, float, float, float]]:
    """(tree label, query label, p50, p95, load average) of each tree's server in turn."""
    results = []
    for tree_label, tree in trees.items():
        with server(settings, tree) as url:
            rng = random.Random(7)
            for label, make in queries(public, rng).items():
                times = time_queries(url, make, requests)
                load = os.getloadavg()[0]
                results.append(
                    (tree_label, label, percentile(times, 50), percentile(times, 95), load)
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query kind")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--baseline", type=Path, help="a checkout to serve the same catalogue too")
    args = parser.parse_args()
    trees = {"this tree": REPOSITORY}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    results = {}
    writers = {}
    for backend in args.backends:
        with installation(backend) as settings:
            print(
                f"[{backend}] building {N_IMAGES} ObsCore rows, "
                f"{N_IMAGES * N_NEIGHBOURS} neighbours",
                file=sys.stderr,
            )
            public = build_catalogue(settings)
            writers[backend] = writer_comparison(settings)
            for tree, label, p50, p95, load in time_trees(settings, public, trees, args.requests):
                results.setdefault((backend, label), {})[tree] = (p50, p95, load)
    cores = os.cpu_count()
    print(
        f"\nSync TAP query latency over HTTP, {args.requests} requests each, {cores} cores "
        f"(reference: GAVO DaCHS 2.7, 80-250 ms per query on this kind of machine; "
        f"goal p50 <= 20 ms); load: 1-minute load average after each series\n"
    )
    head = "".join(f" {tree} p50 ms | p95 ms | load |" for tree in trees)
    print(f"| {'backend':10} | {'query':38} |{head}")
    print(f"|{'-' * 12}|{'-' * 40}|" + "---|---|---|" * len(trees))
    for (backend, label), by_tree in results.items():
        cells = "".join(
            f" {p50:7.1f} | {p95:7.1f} | {load:4.2f} |"
            for p50, p95, load in (by_tree[tree] for tree in trees)
        )
        print(f"| {backend:10} | {label:38} |{cells}")
    print("\nWriting the 1000-row, 34-column result as VOTable TABLEDATA (median ms, in process)\n")
    print(f"| {'backend':10} | {'astropy.io.votable':>18} | {'vosim writer':>12} |")
    print(f"|{'-' * 12}|{'-' * 20}|{'-' * 14}|")
    for backend, (astropy_ms, ours_ms) in writers.items():
        print(f"| {backend:10} | {astropy_ms:18.1f} | {ours_ms:12.1f} |")
    print(f"\nload average at the end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
