"""Acceptance: ``vosim harvest`` from GAVO DaCHS, through DaCHS' own ObsCore, products and DataLink.

DaCHS (as the plugin tests install it, `tests.publish.dachs_server`) serves
a small archive (``data/dachs_harvest.rd``): continuum images reached
directly (``getproduct``), line cubes through the RD's DataLink service,
DIDs of DaCHS' own form, one product with a release date in the future and
one under DaCHS' embargo (``getproduct`` refuses it). vosim harvests it as
an operator would (the mapping file names the table with the release date);
then publishes its similarity tables back into the same DaCHS, and an ADQL
join of DaCHS' ``ivoa.obscore`` with ``similarity.neighbour`` through
DaCHS' TAP service returns the harvested products' neighbours. A harvest
killed inside a commit resumes with every product exactly once.

Skipped only where DaCHS is not installed; one session at a time (the lock
the plugin tests take), since DaCHS' database and inputs are the machine's.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import sqlalchemy as sa

from model_training.archive_mapping import ArchiveMapping
from model_training.harvest.download import FetchLimits
from model_training.harvest.stage import HarvestOptions, harvest_archive
from model_training.ingest.cutout_store import CutoutStore
from model_training.publish.stage import publish, unpublish
from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture
from tests.fits_factory import source_image, write_cube, write_image
from tests.publish.catalogue import dachs_did
from tests.publish.dachs_server import INPUTS, DachsServer, dachs_database
from tests.tap.server import ROOT

pytestmark = pytest.mark.slow

DATA = Path(__file__).with_name("data")
ARCHIVE_RD = INPUTS / "vosim_harvest" / "q.rd"
VOSIM_RD = INPUTS / "vosim_harvest_similarity" / "similarity.rd"
LOCK = Path("/tmp/vosim-dachs-tests.lock")
PAST = datetime(2020, 1, 1)
FUTURE = datetime.now() + timedelta(days=3650)
CATEGORY = "Galaxies and galactic nuclei"
N_IMAGES, N_CUBES = 5, 3
RELEASE_LATER = "img-04.fits"
"""Release date in the future: held back without a request."""
EMBARGOED = "cube-02.fits"
"""No release date in the table, DaCHS' embargo on the file: getproduct refuses it."""


def accref(name: str) -> str:
    return f"vosim_harvest/data/{name}"


def did(name: str) -> str:
    return dachs_did(accref(name))


def names() -> list[str]:
    return [f"img-{i:02d}.fits" for i in range(N_IMAGES)] + [
        f"cube-{i:02d}.fits" for i in range(N_CUBES)
    ]


HARVESTED = {did(name) for name in names()} - {did(RELEASE_LATER), did(EMBARGOED)}


@pytest.fixture(scope="module")
def dachs(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DachsServer]:
    admin_url, has_obscore = dachs_database(pg_server_url)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = DachsServer(tmp_path_factory.mktemp("dachs"))
        server.engine_url = admin_url.set(query={"options": "-c role=gavoadmin"}).render_as_string(
            hide_password=False
        )
        _forget(server)
        if not has_obscore:
            server.run("imp", "//obscore")
        _write_archive(server)
        server.run("imp", str(ARCHIVE_RD))
        try:
            server.start()
            yield server
        finally:
            server.stop()
            _forget(server)


def _write_archive(server: DachsServer) -> None:
    folder = ARCHIVE_RD.parent
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "dachs_harvest.rd", ARCHIVE_RD)
    rows = []
    for index, name in enumerate(names()):
        path = folder / "data" / name
        cube = name.startswith("cube")
        if cube:
            values = np.random.default_rng(index).normal(0.0, 1e-3, size=(8, 48, 48))
            values[3:5, 20 + index, 24] += 0.02
            write_cube(path, values, freq_hz=100e9, channel_width_hz=1e6, date_obs="2019-01-01")
        else:
            plane = source_image(64, 64, snr=20.0 + index, seed=index)
            write_image(path, plane, target=f"source{index}", date_obs="2019-01-01")
        datalink = f"{server.url}/vosim_harvest/q/dl/dlmeta?ID={quote(did(name), safe='')}"
        release = {RELEASE_LATER: FUTURE, EMBARGOED: None}.get(name, PAST)
        rows.append(
            {
                "accref": accref(name),
                "fsize": path.stat().st_size,
                "embargo": FUTURE.date().isoformat() if name == EMBARGOED else "",
                "obs_id": f"uid://A001/X{index:03d}",
                "dataproduct_type": "cube" if cube else "image",
                "access_url": datalink if cube else f"{server.url}/getproduct/{accref(name)}",
                "access_format": "application/x-votable+xml;content=datalink"
                if cube
                else "image/fits",
                "target_name": f"source-{index}",
                "s_ra": 10.0 + index,
                "s_dec": -5.0,
                "obs_release_date": release.isoformat() if release else "",
                "scientific_category": CATEGORY,
            }
        )
    with (folder / "images.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _forget(server: DachsServer) -> None:
    for rd in (VOSIM_RD, ARCHIVE_RD):
        if rd.is_file():
            with contextlib.suppress(RuntimeError):
                server.run("drop", str(rd))
    unpublish(server.engine_url, dachs_rd=VOSIM_RD)
    for rd in (VOSIM_RD, ARCHIVE_RD):
        shutil.rmtree(rd.parent, ignore_errors=True)


def options() -> HarvestOptions:
    return HarvestOptions(
        mapping=ArchiveMapping.from_toml(DATA / "dachs_mapping.toml"),
        workers=2,
        progress=False,
        limits=FetchLimits(retries=1, backoff_s=0.1),
    )


def test_harvest_from_dachs_then_publish_back(dachs: DachsServer, tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "VOSIM_DATA_DIR": str(tmp_path / "vosim"),
            "VOSIM_PUBLIC_URL": "https://archive.example/vosim",
        }
    )
    report = harvest_archive(settings, dachs.tap_url, options())
    assert (report.harvested, report.held_back, report.failed) == (len(HARVESTED), 2, 0), str(
        report
    )
    held = "\n".join(report.held)
    assert did(RELEASE_LATER) in held and "proprietary until" in held
    assert did(EMBARGOED) in held and ("403" in held or "401" in held)

    catalogue = open_catalogue(settings)
    obscore = catalogue.table("ivoa.obscore")
    with catalogue.begin() as conn:
        rows = {
            row.obs_publisher_did: row
            for row in conn.execute(
                sa.select(obscore.c.obs_publisher_did, obscore.c.image_kind, obscore.c.obs_id)
            )
        }
    assert set(rows) == HARVESTED  # DaCHS' own DIDs, kept
    for name in names():
        if did(name) in rows:
            expected = "peak_flux" if name.startswith("cube") else "continuum"
            assert rows[did(name)].image_kind == expected

    again = harvest_archive(settings, dachs.tap_url, options())
    assert (again.harvested, again.updated, again.unchanged) == (0, 0, len(HARVESTED))
    assert again.fetched_bytes == 0

    # vectors and neighbour lists as the pipeline would write them, then back into DaCHS
    _write_neighbours(catalogue, sorted(rows), {d: r.image_kind for d, r in rows.items()})
    catalogue.dispose()
    mapping = ArchiveMapping.from_toml(DATA / "dachs_mapping.toml")
    published = publish(settings, dachs.engine_url, mapping=mapping, dachs_rd=VOSIM_RD)
    assert published.rows["image"] == len(HARVESTED)
    dachs.run("imp", "-m", str(VOSIM_RD))
    import pyvo

    joined = (
        pyvo.dal.TAPService(dachs.tap_url)
        .run_sync(
            "SELECT o.obs_publisher_did, n.neighbour_did FROM ivoa.obscore AS o"
            " JOIN similarity.neighbour AS n ON n.obs_publisher_did = o.obs_publisher_did"
        )
        .to_table()
    )
    pairs = {(str(row["obs_publisher_did"]), str(row["neighbour_did"])) for row in joined}
    assert pairs == _expected_pairs(rows)


def _write_neighbours(catalogue, dids: list[str], kinds: dict[str, str]) -> None:
    models = {"continuum": 1, "peak_flux": 2}
    neighbours = []
    for kind, model_id in models.items():
        members = [d for d in dids if kinds[d] == kind]
        for d in members:
            others = [o for o in members if o != d]
            neighbours += [
                {
                    "obs_publisher_did": d,
                    "rank": rank,
                    "neighbour_did": other,
                    "cosine_similarity": 0.9 - 0.1 * rank,
                    "model_id": model_id,
                }
                for rank, other in enumerate(others, start=1)
            ]
    fixture.write_rows(
        catalogue,
        {
            "similarity.model": [
                fixture.model_row(1, "continuum", embedding_dim=4, trained_at=PAST),
                fixture.model_row(2, "peak_flux", embedding_dim=4, trained_at=PAST),
            ],
            "similarity.embedding": [
                {
                    "obs_publisher_did": d,
                    "model_id": models[kinds[d]],
                    "vector": np.ones(4, dtype=np.float32) / 2,
                }
                for d in dids
            ],
            "similarity.neighbour": neighbours,
        },
    )


def _expected_pairs(rows: dict) -> set[tuple[str, str]]:
    return {
        (a, b) for a in rows for b in rows if a != b and rows[a].image_kind == rows[b].image_kind
    }


def test_killed_harvest_from_dachs_resumes_with_every_product_once(
    dachs: DachsServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "vosim"
    environ = {**os.environ, "VOSIM_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    environ.pop("VOSIM_DB_URL", None)
    arguments = [dachs.tap_url, "--mapping", str(DATA / "dachs_mapping.toml"), "--workers", "1"]
    killed = subprocess.run(
        [sys.executable, "-m", "tests.harvest.killed_harvest", "3", *arguments],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    done = subprocess.run(
        [sys.executable, "-m", "vo_service.cli", "harvest", *arguments],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.splitlines()[0]
    assert summary.startswith(f"{len(HARVESTED) - 2} harvested, 0 updated, 2 unchanged, 2 held"), (
        done.stdout
    )
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(data_dir)})
    catalogue = open_catalogue(settings)
    try:
        with catalogue.begin() as conn:
            for name in ("ivoa.obscore", "similarity.image", "vosim.product"):
                table = catalogue.table(name)
                dids = conn.execute(sa.select(table.c.obs_publisher_did)).scalars().all()
                assert sorted(dids) == sorted(HARVESTED), name
            product = catalogue.table("vosim.product")
            rows = conn.execute(sa.select(product.c.cutout_index)).scalars().all()
    finally:
        catalogue.dispose()
    assert sorted(rows) == list(range(len(HARVESTED)))
    assert CutoutStore(settings.cutout_store).n_rows == len(HARVESTED)
