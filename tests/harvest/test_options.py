"""``vosim harvest``'s options as an operator uses them: --where, --max-file-size, --keep-files."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import tqdm.std

from model_training.harvest.stage import DOWNLOAD_FOLDER, harvest_archive
from tap_schema import Settings
from tests.harvest.conftest import Fault, ServedArchive
from tests.harvest.helpers import (
    archive_values,
    harvested_key,
    harvested_rows,
    only,
    options_for,
    subset,
)
from tests.tap.server import running_server
from vo_service.cli.command import main

IMAGES = subset()
CUBE = next(image for image in IMAGES if image.image_kind == "peak_flux")


@dataclass(frozen=True)
class Ran:
    """What ``vosim harvest`` said, and its exit status."""

    returncode: int
    stdout: str
    stderr: str


def vosim_harvest(settings: Settings, capsys: pytest.CaptureFixture[str], *arguments: str) -> Ran:
    """Run ``vosim harvest`` on the installation, as an operator would (in this process)."""
    with pytest.MonkeyPatch.context() as environ:
        environ.setenv("VOSIM_DATA_DIR", str(settings.data_dir))
        environ.setenv("VOSIM_AUTHORITY", settings.authority)
        environ.delenv("VOSIM_DB_URL", raising=False)
        capsys.readouterr()
        status = main(["harvest", *arguments])
    said = capsys.readouterr()
    return Ran(status, said.out, said.err)


def test_where_selects_the_rows_and_a_file_over_the_size_limit_is_reported(
    archive: ServedArchive, harvester: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    done = vosim_harvest(
        harvester,
        capsys,
        archive.tap_url,
        *("--where", only(IMAGES), "--max-file-size", "0.05", "--workers", "2"),
    )

    assert done.returncode == 1, done.stdout + done.stderr  # one product failed
    assert f"{len(IMAGES) - 1} harvested" in done.stdout, done.stdout
    [failure] = [line for line in done.stdout.splitlines() if line.startswith("failed: ")]
    assert failure.startswith(f"failed: {CUBE.did}: ")
    assert "larger than the limit of 50,000 bytes" in failure and "--max-file-size" in failure
    assert set(harvested_rows(harvester)) == {image.did for image in IMAGES} - {CUBE.did}
    asked = {path for path in archive.faults.requests if path.startswith("/files/")}
    assert asked == {f"/files/{image.key}.fits" for image in IMAGES}  # no other row fetched


def test_without_keep_files_files_send_clients_to_the_archive(
    archive: ServedArchive, harvester: Settings
) -> None:
    harvest_archive(harvester, archive.tap_url, options_for(IMAGES))
    assert not (harvester.data_dir / DOWNLOAD_FOLDER).exists()
    assert not list(harvester.data_dir.rglob("*.fits*"))  # no copy anywhere
    with running_server(harvester) as mirror:
        for image in IMAGES:
            key = harvested_key(harvester, image.did)
            answer = httpx.get(f"{mirror.url}/files/{key}.fits")
            assert answer.status_code == 307
            assert answer.headers["location"] == f"{archive.url}/files/{image.key}.fits"


def test_keep_files_keeps_each_file_and_serves_it(
    archive: ServedArchive, harvester: Settings, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    options = options_for(IMAGES, keep_files=kept)
    report = harvest_archive(harvester, archive.tap_url, options)
    assert (report.harvested, report.failed) == (len(IMAGES), 0), str(report)
    again = harvest_archive(harvester, archive.tap_url, options)
    assert again.unchanged == len(IMAGES)

    keys = {image.did: harvested_key(harvester, image.did) for image in IMAGES}
    assert sorted(path.name for path in kept.iterdir()) == sorted(
        f"{k}.fits" for k in keys.values()
    )
    with running_server(harvester) as mirror:
        for image in IMAGES:
            original = httpx.get(f"{archive.url}/files/{image.key}.fits")
            served = httpx.get(f"{mirror.url}/files/{keys[image.did]}.fits")
            assert served.status_code == 200, image.did
            assert (
                served.content
                == original.content
                == (kept / f"{keys[image.did]}.fits").read_bytes()
            )

    lost = kept / f"{keys[IMAGES[0].did]}.fits"  # deleted by hand, or a kill before its move
    copy = lost.read_bytes()
    lost.unlink()
    repaired = harvest_archive(harvester, archive.tap_url, options)
    assert (repaired.updated, repaired.unchanged) == (1, len(IMAGES) - 1), str(repaired)
    assert lost.read_bytes() == copy


def test_progress_bar_shows_products_and_megabytes_per_second(
    archive: ServedArchive, harvester: Settings, capsys, monkeypatch
) -> None:
    elapsed_s = 0.5  # as the bar sees it: its clock starts at 1000 s and stops at 1000.5 s
    clock = itertools.chain([1000.0], itertools.repeat(1000.0 + elapsed_s))
    monkeypatch.setattr(tqdm.std, "time", lambda: next(clock))  # the bar's clock, frozen
    report = harvest_archive(harvester, archive.tap_url, options_for(IMAGES, progress=True))

    sizes = [len(httpx.get(f"{archive.url}/files/{image.key}.fits").content) for image in IMAGES]
    assert report.fetched_bytes == sum(sizes)
    last = capsys.readouterr().err.strip().split("\r")[-1]
    assert f"{len(IMAGES)}/{len(IMAGES)}" in last, last
    products_per_s = float(re.search(r"([0-9.]+) ?product/s", last)[1])
    megabytes_per_s = float(re.search(r"([0-9.]+) MB/s", last)[1])
    assert abs(products_per_s - len(IMAGES) / elapsed_s) < 0.01, last
    assert abs(megabytes_per_s - sum(sizes) / elapsed_s / 1e6) < 0.05, last  # as shown


def test_a_where_the_archive_refuses_is_said_in_one_line(
    archive: ServedArchive, harvester: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    done = vosim_harvest(harvester, capsys, archive.tap_url, "--where", "o.no_such_column = 1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("vosim harvest: error: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no_such_column" in done.stderr, done.stderr


def test_keep_files_keeps_no_file_of_a_product_that_failed(
    archive: ServedArchive, harvester: Settings, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    first = harvest_archive(harvester, archive.tap_url, options_for(IMAGES[:3], keep_files=kept))
    assert first.harvested == 3, str(first)
    before = {path.name: path.read_bytes() for path in kept.iterdir()}
    updated, new = IMAGES[0], IMAGES[3]
    for image in (updated, new):  # the archive sends something that is not FITS
        archive.faults.faults[f"/files/{image.key}.fits"] = Fault(times=5, body=b"not FITS")
    with archive_values(archive, updated.did, target_name="changed"):
        again = harvest_archive(harvester, archive.tap_url, options_for(IMAGES, keep_files=kept))

    assert (again.harvested, again.updated, again.failed) == (0, 0, 2), str(again)
    after = {path.name: path.read_bytes() for path in kept.iterdir()}
    assert after == before  # the new product left nothing, the updated one kept its file
    key = harvested_key(harvester, updated.did)
    with running_server(harvester) as mirror:
        served = httpx.get(f"{mirror.url}/files/{key}.fits")
    assert served.status_code == 200 and served.content == before[f"{key}.fits"]


def test_retries_option_sets_the_attempts(
    archive: ServedArchive, harvester: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    image = IMAGES[0]
    archive.faults.faults[f"/files/{image.key}.fits"] = Fault(times=1, status=503)
    done = vosim_harvest(
        harvester, capsys, archive.tap_url, "--where", only([image]), "--retries", "0"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"failed: {image.did}: " in done.stdout and "503, 1 time" in done.stdout, done.stdout
    assert len(archive.faults.requests[f"/files/{image.key}.fits"]) == 1
