"""Bulk writes of ``similarity.neighbour``: rows per second on PostgreSQL and SQLite.

Writes ``--images`` lists of ``--k`` neighbours through
`model_training.neighbours.store.NeighbourWriter`, in one transaction, the
way a full ``vosim neighbours`` run does:

* PostgreSQL, binary COPY into the table with its primary key, foreign keys
  and ``neighbour_did`` index in place;
* PostgreSQL, the same inside `bulk_load` (dropped first, rebuilt after);
* SQLite, executemany, with and without `bulk_load`;

and prints rows/s, the time to encode the binary tuples alone, and what
260 million rows (the paper's 260,000 images x 1000) would take.

    python benchmarks/neighbour_writes.py --images 2000 --k 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.neighbours.store import (
    NeighbourWriter,
    _BinaryRecords,
    bulk_load,
    delete_models,
)
from tap_schema import Settings, open_catalogue

PAPER_ROWS = 260_000_000
BLOCK = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://vosim:vosim@127.0.0.1:5432/vosim")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    dids = [
        f"ivo://vosim.example/alma?uid___A001_X{i:x}_X{i % 97:x}.cont" for i in range(args.images)
    ]
    rng = np.random.default_rng(0)
    neighbours = rng.integers(0, args.images, (args.images, args.k)).astype(np.int32)
    values = -np.sort(-rng.random((args.images, args.k), dtype=np.float32), axis=1)
    n_rows = args.images * args.k
    print(f"{'backend':<28} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'260M rows':>10}")
    encode_s = time_encoding(dids, neighbours, values)
    report("binary COPY encoding only", n_rows, encode_s)
    with ScratchDatabase(args.pg_url) as url:
        catalogue = prepare(
            Settings.from_env({"VOSIM_DATA_DIR": tempfile.mkdtemp(), "VOSIM_DB_URL": url}), dids
        )
        for label, bulk in (
            ("PostgreSQL COPY, indexes kept", False),
            ("PostgreSQL COPY, bulk_load", True),
        ):
            report(label, n_rows, write(catalogue, dids, neighbours, values, bulk))
        catalogue.dispose()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            catalogue = prepare(Settings.from_env({"VOSIM_DATA_DIR": folder}), dids)
            for label, bulk in (("SQLite, indexes kept", False), ("SQLite, bulk_load", True)):
                report(label, n_rows, write(catalogue, dids, neighbours, values, bulk))
            catalogue.dispose()
    print(f"load average after: {os.getloadavg()}")


def time_encoding(dids, neighbours, values) -> float:
    records = _BinaryRecords(dids)
    start = time.perf_counter()
    for first in range(0, len(dids), BLOCK):
        rows = slice(first, first + BLOCK)
        count = neighbours[rows].size
        query = np.repeat(np.arange(first, min(first + BLOCK, len(dids))), neighbours.shape[1])
        rank = np.tile(
            np.arange(1, neighbours.shape[1] + 1, dtype=np.int32), count // neighbours.shape[1]
        )
        for _ in records.encode(query, rank, neighbours[rows].ravel(), values[rows].ravel(), 1):
            pass
    return time.perf_counter() - start


def prepare(settings: Settings, dids):
    catalogue = open_catalogue(settings)
    with catalogue.begin() as conn:
        conn.execute(
            catalogue.table("similarity.model").insert(),
            {"model_id": 1, "model_name": "bench", "image_kind": "continuum", "is_current": 1},
        )
        conn.execute(
            catalogue.table("similarity.image").insert(),
            [
                {"obs_publisher_did": d, "image_kind": "continuum", "cutout_rule": "peak"}
                for d in dids
            ],
        )
    return catalogue


def write(catalogue, dids, neighbours, values, bulk: bool) -> float:
    with catalogue.begin() as conn:
        delete_models(conn, catalogue, [1])
    start = time.perf_counter()
    with catalogue.begin() as conn:
        writer = NeighbourWriter(conn, catalogue, 1, dids)
        with bulk_load(conn, catalogue, neighbours.size if bulk else 0):
            for first in range(0, len(dids), BLOCK):
                rows = slice(first, first + BLOCK)
                writer.write(np.arange(len(dids))[rows], values[rows], neighbours[rows])
    return time.perf_counter() - start


class ScratchDatabase:
    """A scratch PostgreSQL database, dropped afterwards."""

    def __init__(self, url: str) -> None:
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.name = f"vosim_bench_{uuid.uuid4().hex[:8]}"
        self.url = sa.engine.make_url(url).set(database=self.name).render_as_string(False)

    def __enter__(self) -> str:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def __exit__(self, *exc) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def report(label: str, rows: int, seconds: float) -> None:
    rate = rows / seconds
    print(f"{label:<28} {rows:>10} {seconds:>8.1f} {rate:>10,.0f} {PAPER_ROWS / rate / 60:>8.1f} m")


if __name__ == "__main__":
    main()
