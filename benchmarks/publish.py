"""Publication speed: rows per second from vosim's catalogue into an archive's PostgreSQL.

Usage::

    python benchmarks/publish.py                     # 2000 images, 1000 neighbours, d = 2048
    python benchmarks/publish.py --images 5000 --dim 128
    VOSIM_TEST_PG_URL=postgresql+psycopg://u:p@host/db python benchmarks/publish.py

Builds a catalogue on SQLite (every image public in a stand-in archive
``ivoa.obscore``), publishes it into a fresh PostgreSQL database with
`model_training.publish.stage.publish` (binary COPY), and, side by side in the
same run, the reference ways of writing the same rows with psycopg: an
``executemany`` INSERT of neighbour rows, and COPY of vectors through
psycopg's own list-based ``real[]`` dumper. The rate of a table includes
reading the catalogue and filtering the rows, as a real publication does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
import sqlalchemy as sa
from felis.tap_schema import TableManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.publish.archive_rows import ArchiveMapping
from model_training.publish.stage import publish
from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture

PG_URL = os.environ.get(
    "VOSIM_TEST_PG_URL", "postgresql+psycopg://vosim:vosim@127.0.0.1:5432/vosim"
)
RELEASED = datetime(2020, 1, 1)
AUTHORITY = "vosim.example"


def did(index: int) -> str:
    return fixture.did(_key(index), AUTHORITY)


def _key(index: int) -> str:
    return f"member.uid___A001_X{index:06d}_cont"


def build_catalogue(settings: Settings, images: int, neighbours: int, dim: int) -> None:
    """Fixture rows of public continuum images, a current model, vectors, random top-k lists."""
    rng = np.random.default_rng(1)
    catalogue = open_catalogue(settings)
    embedding = catalogue.table("similarity.embedding")
    neighbour = catalogue.table("similarity.neighbour")
    rows = fixture.image_rows(
        [fixture.FixtureImage(key=_key(i), release=RELEASED) for i in range(images)], AUTHORITY
    )
    rows["similarity.model"] = [fixture.model_row(1, "continuum", model_name="bench")]
    fixture.write_rows(catalogue, rows)
    with catalogue.begin() as conn:
        vectors = rng.normal(size=(images, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        conn.execute(
            embedding.insert(),
            [
                {"obs_publisher_did": did(i), "model_id": 1, "vector": vectors[i]}
                for i in range(images)
            ],
        )
        k = min(neighbours, images - 1)
        for i in range(images):
            others = rng.choice(images - 1, size=k, replace=False)
            others[others >= i] += 1
            conn.execute(
                neighbour.insert(),
                [
                    {
                        "obs_publisher_did": did(i),
                        "rank": rank,
                        "neighbour_did": did(int(other)),
                        "cosine_similarity": 1.0 - rank / (k + 1),
                        "model_id": 1,
                    }
                    for rank, other in enumerate(others, start=1)
                ],
            )
    catalogue.dispose()


def make_archive(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA ivoa"))
        conn.execute(
            sa.text(
                "CREATE TABLE ivoa.obscore (obs_publisher_did text, obs_release_date timestamp)"
            )
        )
        conn.execute(sa.text('CREATE SCHEMA "TAP_SCHEMA"'))
        TableManager(engine_url=url).metadata.create_all(conn)
    engine.dispose()


def fill_archive_obscore(url: str, images: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO ivoa.obscore VALUES (:did, :released)"),
            [{"did": did(i), "released": RELEASED} for i in range(images)],
        )
    engine.dispose()


def reference_rates(url: str, images: int, neighbours: int, dim: int) -> dict[str, float]:
    """The same kinds of rows written the plain psycopg ways, into scratch tables."""
    conninfo = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    rng = np.random.default_rng(2)
    rows = [
        (did(i % images), i % 1000 + 1, did((i * 7) % images), 0.5, 1)
        for i in range(min(images * neighbours, 200_000))
    ]
    vectors = rng.normal(size=(min(images, 2000), dim)).astype(np.float32)
    rates = {}
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE n (a varchar(256), r int, b varchar(256), c float8, m int)"
        )
        cursor.execute("CREATE TEMP TABLE e (a varchar(256), m int, v real[])")
        cursor.execute("ALTER TABLE e ALTER COLUMN v SET STORAGE EXTERNAL")
        started = time.perf_counter()
        cursor.executemany("INSERT INTO n VALUES (%s, %s, %s, %s, %s)", rows)
        rates["neighbour"] = len(rows) / (time.perf_counter() - started)
        started = time.perf_counter()
        with cursor.copy("COPY e FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["varchar", "int4", "float4[]"])
            for i, vector in enumerate(vectors):
                copy.write_row((did(i), 1, vector.tolist()))
        rates["embedding"] = len(vectors) / (time.perf_counter() - started)
        conn.rollback()
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--neighbours", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=2048)
    args = parser.parse_args()

    name = f"vosim_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings.from_env(
                {"VOSIM_DATA_DIR": folder, "VOSIM_PUBLIC_URL": "https://archive.example.org/vosim"}
            )
            started = time.perf_counter()
            build_catalogue(settings, args.images, args.neighbours, args.dim)
            print(f"built the catalogue in {time.perf_counter() - started:.1f} s")
            make_archive(url)
            fill_archive_obscore(url, args.images)
            report = publish(settings, url, mapping=ArchiveMapping())
            reference = reference_rates(url, args.images, args.neighbours, args.dim)
        print(
            f"\n{'table':<16} {'rows':>10} {'vosim rows/s':>13} {'reference rows/s':>17}  reference"
        )
        for table, how in (
            ("neighbour", "psycopg executemany INSERT"),
            ("embedding", f"psycopg COPY, list dumper, d = {args.dim}"),
            ("image", ""),
        ):
            ref = f"{reference[table]:>17,.0f}" if table in reference else f"{'':>17}"
            rate = report.copy_rate(table)
            print(f"{table:<16} {report.rows[table]:>10,} {rate:>13,.0f} {ref}  {how}")
        total = sum(report.rows.values())
        print(
            f"\nkeys and indexes rebuilt in {report.rebuild_seconds:.1f} s; whole publication "
            f"{report.seconds:.1f} s, {total / report.seconds:,.0f} rows/s end to end"
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
