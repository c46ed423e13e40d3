"""``vosim harvest`` from another vosim installation's TAP and DataLink, as a user runs it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pyvo
import sqlalchemy as sa

from model_training.harvest.stage import harvest_archive
from model_training.ingest.cutout_store import CutoutStore
from tap_schema import Settings, open_catalogue
from tests import served_archive
from tests.harvest.helpers import OPTIONS, harvested_key, harvested_rows
from tests.tap.server import RunningServer, running_server

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {image.did for image in served_archive.PUBLIC}
HELD = {image.did for image in served_archive.PROPRIETARY}


def test_harvest_keeps_the_archive_dids_and_holds_back_proprietary(
    archive: RunningServer, harvester: Settings
) -> None:
    report = harvest_archive(harvester, archive.tap_url, OPTIONS)

    assert (report.harvested, report.failed, report.held_back) == (len(PUBLIC), 0, len(HELD)), str(
        report
    )
    rows = harvested_rows(harvester)
    assert set(rows) == PUBLIC
    for image in served_archive.PUBLIC:
        assert rows[image.did]["scientific_category"] == image.category
        assert rows[image.did]["image_kind"] == image.image_kind
    held = "\n".join(report.held)
    assert all(did in held for did in HELD)
    # the harvester serves what it harvested under its own DataLink, with the archive's DIDs
    service = pyvo.dal.TAPService(archive.tap_url)
    archive_ids = {
        row["obs_id"]
        for row in service.run_sync("SELECT obs_id, obs_publisher_did FROM ivoa.obscore")
        if row["obs_publisher_did"] in PUBLIC
    }
    assert {row["obs_id"] for row in rows.values()} == archive_ids


def test_second_harvest_fetches_nothing_and_takes_a_released_product(
    archive: RunningServer, harvester: Settings
) -> None:
    harvest_archive(harvester, archive.tap_url, OPTIONS)
    again = harvest_archive(harvester, archive.tap_url, OPTIONS)
    assert (again.harvested, again.updated, again.unchanged) == (0, 0, len(PUBLIC)), str(again)
    assert again.fetched_bytes == 0
    assert again.held_back == len(HELD)

    released = next(image for image in served_archive.PROPRIETARY if image.release is not None)
    obscore = archive.catalogue.table("ivoa.obscore")
    with archive.catalogue.begin() as conn:
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == released.did)
            .values(obs_release_date=served_archive.PAST)
        )
    try:
        third = harvest_archive(harvester, archive.tap_url, OPTIONS)
    finally:
        with archive.catalogue.begin() as conn:
            conn.execute(
                obscore.update()
                .where(obscore.c.obs_publisher_did == released.did)
                .values(obs_release_date=released.release)
            )
    assert (third.harvested, third.unchanged, third.held_back) == (
        1,
        len(PUBLIC),
        len(HELD) - 1,
    ), str(third)
    assert released.did in harvested_rows(harvester)


def test_killed_harvest_resumes_with_every_product_once(
    archive: RunningServer, harvester: Settings, tmp_path: Path
) -> None:
    environ = {
        **os.environ,
        "VOSIM_DATA_DIR": str(harvester.data_dir),
        "VOSIM_AUTHORITY": "harvester.test",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "vo_service.cli", "harvest", archive.tap_url, "--workers", "1"]
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(_committed(harvester)) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, (tmp_path / "killed.log").read_text()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    log.close()
    first = _committed(harvester)
    assert 3 <= len(first) < len(PUBLIC), f"killed after {len(first)} products"

    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(PUBLIC) - len(first)} harvested" in done.stdout, done.stdout
    catalogue = open_catalogue(harvester)
    try:
        with catalogue.begin() as conn:
            for name in ("ivoa.obscore", "similarity.image", "vosim.product"):
                table = catalogue.table(name)
                dids = conn.execute(sa.select(table.c.obs_publisher_did)).scalars().all()
                assert sorted(dids) == sorted(PUBLIC), name
            product = catalogue.table("vosim.product")
            rows = conn.execute(sa.select(product.c.cutout_index)).scalars().all()
    finally:
        catalogue.dispose()
    assert sorted(rows) == list(range(len(PUBLIC)))
    assert CutoutStore(harvester.cutout_store).n_rows == len(PUBLIC)


def _committed(settings: Settings) -> list[str]:
    """DIDs the harvest has committed so far, read straight from the bookkeeping file."""
    path = settings.data_dir / "catalogue.vosim.sqlite"
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute(
                "SELECT obs_publisher_did FROM harvest_record WHERE state = 'harvested'"
            ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    return [did for (did,) in rows]


def test_harvested_products_are_served_with_the_archive_file(
    archive: RunningServer, harvester: Settings
) -> None:
    harvest_archive(harvester, archive.tap_url, OPTIONS)
    image = next(i for i in served_archive.PUBLIC if i.archive_did and "uid://" in i.archive_did)
    with running_server(harvester) as mirror:
        links = pyvo.dal.adhoc.DatalinkResults.from_result_url(
            f"{mirror.url}/datalink?ID={quote(image.did, safe='')}"
        )
        this = next(links.bysemantics("#this", include_narrower=False))
        assert this["access_url"].startswith(archive.url + "/files/")
        key = harvested_key(harvester, image.did)
        answer = httpx.get(f"{mirror.url}/files/{key}.fits", follow_redirects=True)
    assert answer.status_code == 200
    assert answer.content.startswith(b"SIMPLE  =")


@pytest.mark.slow
def test_demo_from_an_archive_runs_the_pipeline(archive: RunningServer, tmp_path: Path) -> None:
    environ = {**os.environ, "VOSIM_DATA_DIR": str(tmp_path / "demo"), "PYTHONPATH": str(ROOT)}
    environ.pop("VOSIM_DB_URL", None)
    command = [sys.executable, "-m", "vo_service.cli", "demo", "--from", archive.tap_url]
    command += ["--epochs", "1", "--no-serve"]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(PUBLIC)} harvested" in done.stdout
    assert "demo pipeline done" in done.stdout
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "demo")})
    catalogue = open_catalogue(settings)
    try:
        neighbour = catalogue.table("similarity.neighbour")
        with catalogue.begin() as conn:
            listed = set(conn.execute(sa.select(neighbour.c.obs_publisher_did)).scalars())
    finally:
        catalogue.dispose()
    assert listed and listed <= PUBLIC  # the archive's DIDs, public ones only
