"""Decompression bombs and oversized images are refused from their header, in bounded memory."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import time
import tracemalloc
import zipfile
from pathlib import Path

import httpx
import pytest

from model_training.ingest.fits_image import MAX_DECOMPRESSED_BYTES, FitsReadError, read_fits_image
from model_training.ingest.stage import ingest_folder
from tap_schema import Settings, open_catalogue
from tests.fits_factory import (
    BOMB_CHUNK,
    gzip_bomb,
    gzip_file,
    gzip_flood,
    image_header_bytes,
    source_image,
    write_image,
)
from tests.tap import catalogue as small
from tests.tap.helpers import query_status
from tests.tap.server import vosim_serve
from vo_service.similarity.errors import UploadError, UploadTooLargeError
from vo_service.similarity.image_upload import UPLOAD_MAX_PIXELS, read_uploaded_image

_MB = 1 << 20
_CHUNK = BOMB_CHUNK


def _peak_bytes(action) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_gzip_bomb_upload_is_refused_in_bounded_memory() -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 2 * _MB
    started = time.monotonic()
    peak = _peak_bytes(lambda: _refused(bomb, UploadTooLargeError, "268435456 pixels"))
    assert peak < 100 * _MB
    assert time.monotonic() - started < 5  # refused from its header (was 28 s); a bound only


def _refused(
    content: bytes, error: type[Exception] = UploadError, match: str | None = None
) -> None:
    with pytest.raises(error, match=match):
        read_uploaded_image(content, "x.fits.gz", limit_bytes=50 * _MB)


def test_gzip_bomb_behind_a_small_header_is_cut_off() -> None:
    """A header that declares a small image, followed by a flood of zeros: stopped at a bound."""
    bomb = gzip_flood(64 * _CHUNK)
    peak = _peak_bytes(lambda: _refused(bomb))
    assert peak < 100 * _MB


def test_uncompressed_upload_declaring_too_many_pixels_is_refused() -> None:
    side = 8192  # 2**26 pixels > UPLOAD_MAX_PIXELS
    assert side * side > UPLOAD_MAX_PIXELS
    content = image_header_bytes(side) + bytes(2880)
    with pytest.raises(UploadError, match="pixels"):
        read_uploaded_image(content, "big.fits", limit_bytes=50 * _MB)


def test_ingest_refuses_an_image_larger_than_its_limit_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.fits"
    side = 32768  # 2**30 pixels, 4 GiB of float32: a sparse file, no disk used
    with path.open("wb") as file:
        file.write(image_header_bytes(side))
        file.truncate(len(image_header_bytes(side)) + side * side * 4)
    peak = _peak_bytes(lambda: _ingest_refuses(path))
    assert peak < 100 * _MB


def _ingest_refuses(path: Path) -> None:
    with pytest.raises(FitsReadError, match="pixels"):
        read_fits_image(path)


def test_multi_member_gzip_upload_is_read_whole(tmp_path: Path) -> None:
    """gzip files made of several members (``cat a.gz b.gz``) decompress completely."""
    raw = write_image(tmp_path / "a.fits", source_image(64, 64)).read_bytes()
    content = gzip.compress(raw[:5760]) + gzip.compress(raw[5760:])
    uploaded = read_uploaded_image(content, "a.fits.gz", limit_bytes=50 * _MB)
    assert uploaded.cutout.pixels.shape == (64, 64)


def _ingested(settings: Settings, folder: Path) -> tuple[list[str], int]:
    """Ingest a folder; its report's failure lines and the peak of traced memory."""
    report = []
    peak = _peak_bytes(
        lambda: report.append(ingest_folder(settings, folder, progress=False, workers=1))
    )
    return report[0].failures, peak


def test_ingest_refuses_the_gzip_bomb_from_its_header(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    """The issue's 16384² bomb has 2^28 pixels, within the pixel limit, but is gzipped."""
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "bomb.fits.gz").write_bytes(gzip_bomb())
    write_image(folder / "fine.fits", source_image(64, 64))
    failures, peak = _ingested(sqlite_settings, folder)
    (line,) = failures
    assert line.startswith(f"{folder / 'bomb.fits.gz'}: the file is compressed and declares ")
    assert "1073741824 bytes of data" in line and "decompress it first" in line
    assert peak < 100 * _MB


def test_ingest_refuses_a_flood_behind_a_small_gzipped_header(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    flood = MAX_DECOMPRESSED_BYTES // _CHUNK + 1
    (folder / "flood.fits.gz").write_bytes(gzip_flood(flood * _CHUNK))
    failures, peak = _ingested(sqlite_settings, folder)
    (line,) = failures
    assert "the file is compressed and decompresses to over" in line
    assert peak < 100 * _MB


def _write_compressed(path: Path, method: str, content: bytes) -> None:
    if method == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("image.fits", content)
    else:
        path.write_bytes({"bzip2": bz2.compress, "xz": lzma.compress}[method](content))


@pytest.mark.parametrize("method", ["bzip2", "xz", "zip"])
def test_ingest_refuses_other_compressions_in_a_fits_named_file(
    tmp_path: Path, method: str
) -> None:
    """astropy opens any compression it knows by its magic bytes, whatever the name says."""
    path = tmp_path / "quiet.fits"
    _write_compressed(path, method, image_header_bytes(16384) + bytes(_CHUNK))
    peak = _peak_bytes(lambda: _refused_at_ingest(path))
    assert peak < 100 * _MB


def _refused_at_ingest(path: Path) -> None:
    with pytest.raises(FitsReadError, match="compressed and declares 1073741824 bytes"):
        read_fits_image(path)


def test_ingest_still_reads_a_gzipped_image_within_the_limit(tmp_path: Path) -> None:
    path = gzip_file(write_image(tmp_path / "map.fits", source_image(96, 80)))
    assert read_fits_image(path).shape == (80, 96)


def _peak_rss_bytes(pid: int) -> int:
    """The peak resident memory of a process so far (VmHWM of /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
def test_served_archive_refuses_the_bomb_in_bounded_memory(sqlite_settings: Settings) -> None:
    """The issue's attack on ``vosim serve``: its peak memory grows by less than 100 MB."""
    catalogue = open_catalogue(sqlite_settings)
    small.fill(catalogue)
    catalogue.dispose()
    environ = {**os.environ, "VOSIM_DATA_DIR": str(sqlite_settings.data_dir)}
    environ.pop("VOSIM_DB_URL", None)
    bomb = gzip_bomb()
    with vosim_serve(environ) as served, httpx.Client(timeout=120) as client:
        url = f"{served.url}/similarity/sync"
        small_image = {"IMAGE": ("small.fits.gz", gzip.compress(image_header_bytes(64)))}
        client.post(url, files=small_image)  # warmed up: the peak before is the service's own
        before = _peak_rss_bytes(served.process.pid)
        refused = client.post(url, files={"IMAGE": ("bomb.fits.gz", bomb)})
        json = client.post(url, data={"RESPONSEFORMAT": "json"}, files={"IMAGE": ("b.gz", bomb)})
        growth = _peak_rss_bytes(served.process.pid) - before
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/x-votable+xml")
    [(status, message)] = query_status(refused.content)
    assert status == "ERROR" and "268435456 pixels" in message
    assert json.status_code == 413 and "at most 16777216 pixels" in json.json()["error"]
    assert growth < 100 * _MB, growth
