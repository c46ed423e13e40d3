"""An archive that fails for a while: 5xx answers and timeouts are retried with back-off.

The served archive (`tests.harvest.conftest`) answers 5xx, or keeps the
harvester waiting past its timeout (before the headers, or between the
headers and the body), the first few times a file, a DataLink document or
the TAP query is asked for. A product is harvested once the archive
answers; after ``--retries`` failures it is reported, the others are
harvested, and nothing of it is left behind.
"""

from __future__ import annotations

from urllib.parse import quote

from model_training.harvest.download import FetchLimits
from model_training.harvest.stage import DOWNLOAD_FOLDER, harvest_archive
from model_training.ingest.cutout_store import CutoutStore
from tap_schema import Settings
from tests.harvest.conftest import Fault, ServedArchive
from tests.harvest.helpers import PER_PRODUCT_TABLES, harvested_rows, options_for, subset

IMAGES = subset()
BACKOFF_S = 0.2


def file_path(image) -> str:
    """The path of a product's file on the served archive."""
    return f"/files/{image.key}.fits"


def links_path(image) -> str:
    """The path and query of a product's DataLink document on the served archive."""
    return f"/datalink?ID={quote(image.did, safe='')}"


def test_5xx_answers_are_retried_with_back_off_until_the_archive_answers(
    archive: ServedArchive, harvester: Settings
) -> None:
    archive.faults.faults.update(
        {
            file_path(IMAGES[0]): Fault(times=2, status=503),
            links_path(IMAGES[2]): Fault(times=1, status=502),
            "/tap/sync": Fault(times=1, status=503),
        }
    )
    limits = FetchLimits(retries=2, backoff_s=BACKOFF_S)
    report = harvest_archive(harvester, archive.tap_url, options_for(IMAGES, limits=limits))

    assert (report.harvested, report.failed) == (len(IMAGES), 0), str(report)
    assert set(harvested_rows(harvester)) == {image.did for image in IMAGES}
    asked = archive.faults.requests[file_path(IMAGES[0])]
    assert len(asked) == 3
    first, second = asked[1] - asked[0], asked[2] - asked[1]
    assert first >= BACKOFF_S and second >= 2 * BACKOFF_S  # waits double
    assert len(archive.faults.requests[links_path(IMAGES[2])]) == 2
    assert len(archive.faults.requests["/tap/sync"]) >= 2


def test_timeouts_are_retried_until_the_archive_answers(
    archive: ServedArchive, harvester: Settings
) -> None:
    archive.faults.faults.update(
        {
            file_path(IMAGES[0]): Fault(times=1, wait_s=2.0),  # no answer in time
            file_path(IMAGES[1]): Fault(times=1, stall_s=2.0),  # headers, then no body
            links_path(IMAGES[2]): Fault(times=1, stall_s=2.0),
            "/tap/sync": Fault(times=1, wait_s=2.0),
        }
    )
    limits = FetchLimits(retries=1, backoff_s=0.05, timeout_s=0.6)
    report = harvest_archive(harvester, archive.tap_url, options_for(IMAGES, limits=limits))

    assert (report.harvested, report.failed) == (len(IMAGES), 0), str(report)
    assert set(harvested_rows(harvester)) == {image.did for image in IMAGES}
    for path in (file_path(IMAGES[0]), file_path(IMAGES[1]), links_path(IMAGES[2]), "/tap/sync"):
        assert len(archive.faults.requests[path]) >= 2, path


def test_a_product_failing_every_retry_is_reported_and_the_others_harvested(
    archive: ServedArchive, harvester: Settings
) -> None:
    failing, stalling = IMAGES[0], IMAGES[1]
    archive.faults.faults.update(
        {
            file_path(failing): Fault(times=10, status=503),
            file_path(stalling): Fault(times=10, stall_s=2.0),
        }
    )
    limits = FetchLimits(retries=2, backoff_s=0.05, timeout_s=0.6)
    options = options_for(IMAGES, limits=limits)
    report = harvest_archive(harvester, archive.tap_url, options)

    assert (report.harvested, report.failed, report.exit_status) == (2, 2, 1), str(report)
    failures = "\n".join(report.failures)
    assert f"{failing.did}: " in failures and "503, 3 times" in failures
    assert f"{stalling.did}: " in failures and "timed out 3 times" in failures
    assert len(archive.faults.requests[file_path(failing)]) == 3
    # nothing of the failed products is left: no rows, cut-out, preview or download
    for table in PER_PRODUCT_TABLES[:3]:
        assert set(harvested_rows(harvester, table)) == {i.did for i in IMAGES[2:]}, table
    records = harvested_rows(harvester, "vosim.harvest_record")
    assert records[failing.did]["state"] == records[stalling.did]["state"] == "failed"
    assert CutoutStore(harvester.cutout_store).n_rows == 2
    previews = {path.stem for path in harvester.preview_dir.iterdir()}
    keys = {row["product_key"] for row in harvested_rows(harvester, "vosim.product").values()}
    assert previews == keys
    assert not (harvester.data_dir / DOWNLOAD_FOLDER).exists()

    archive.faults.clear()
    again = harvest_archive(harvester, archive.tap_url, options)
    assert (again.harvested, again.unchanged, again.failed) == (2, 2, 0), str(again)
    assert set(harvested_rows(harvester)) == {image.did for image in IMAGES}
