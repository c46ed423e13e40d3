"""How fast decompression bombs are refused: by ``vosim serve`` (uploads) and by ingest.

Upload rows: requests to ``POST /similarity/sync`` of a ``vosim serve``
process (its own process, SQLite, the TAP tests' small catalogue), each
timed from the client, with the growth of the server's peak resident memory
(VmHWM) over the whole series. The reference row is a request of the same
size that is refused at once: 1 MB of bytes that are neither gzip nor FITS.

- **bomb**: the issue's 1 MB gzipped FITS, a 16384² float32 image of zeros
  (1.07 GB decompressed), refused from its header;
- **flood**: a gzipped 64×64 header followed by zeros (what no header
  declares), refused when the decompressed bytes pass the upload's bound.

Ingest rows: `read_fits_image` in this process on the same files, beside
a gzipped 128×128 image that is read (the reference).

Run from the repository root (about 30 s)::

    python benchmarks/fits_bombs.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_training.ingest.fits_image import FitsReadError, read_fits_image
from tap_schema import Settings, open_catalogue
from tests.fits_factory import gzip_bomb, gzip_file, gzip_flood, source_image, write_image
from tests.tap import catalogue as small
from tests.tap.server import vosim_serve

MB = 1 << 20


def peak_rss(pid: int) -> int:
    """Peak resident memory of a process (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def timed(action: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Run ``action`` ``repeats`` times; the wall times (ms) and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def upload_rows(repeats: int, folder: Path) -> list[tuple]:
    """Time each upload against a ``vosim serve`` process."""
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(folder / "data")})
    catalogue = open_catalogue(settings)
    small.fill(catalogue)
    catalogue.dispose()
    environ = {**os.environ, "VOSIM_DATA_DIR": str(settings.data_dir)}
    environ.pop("VOSIM_DB_URL", None)
    bodies = {
        "junk of the same size (reference)": b"\x00not gzip" * (MB // 9),
        "bomb: 16384² zeros, gzipped": gzip_bomb(),
        "flood behind a 64² header, gzipped": gzip_flood(200 * MB),
    }
    rows = []
    with vosim_serve(environ) as served, httpx.Client(timeout=120) as client:
        url = f"{served.url}/similarity/sync"
        client.post(url, files={"IMAGE": ("warm.fits", b"junk")})
        for name, body in bodies.items():
            before = peak_rss(served.process.pid)
            times, response = timed(
                lambda body=body: client.post(url, files={"IMAGE": ("x.fits.gz", body)}), repeats
            )
            growth = (peak_rss(served.process.pid) - before) / MB
            rows.append((f"upload {name}", len(body), response.status_code, times, growth))
    return rows


def ingest_rows(repeats: int, folder: Path) -> list[tuple]:
    """Time `read_fits_image` on the same bombs and on a gzipped image that is read."""
    image = gzip_file(write_image(folder / "image.fits", source_image(128, 128)))
    bomb = folder / "bomb.fits.gz"
    bomb.write_bytes(gzip_bomb())
    flood = folder / "flood.fits.gz"
    flood.write_bytes(gzip_flood(300 * MB))

    def read(path: Path) -> str:
        try:
            read_fits_image(path)
        except FitsReadError:
            return "refused"
        return "read"

    rows = []
    for name, path in (
        ("gzipped 128² image (reference)", image),
        ("bomb: 16384² zeros, gzipped", bomb),
        ("flood behind a 64² header, gzipped", flood),
    ):
        times, outcome = timed(lambda path=path: read(path), repeats)
        rows.append((f"ingest {name}", path.stat().st_size, outcome, times, None))
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vosim-bombs-") as folder:
        rows = upload_rows(args.repeats, Path(folder))
        rows += ingest_rows(max(args.repeats // 4, 3), Path(folder))
    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]}, repeats {args.repeats}")
    print("| case | bytes sent | answer | median ms | max ms | server peak RSS growth |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, size, answer, times, growth in rows:
        rss = "" if growth is None else f"{growth:.1f} MiB"
        print(
            f"| {name} | {size:,} | {answer} | {statistics.median(times):.1f} "
            f"| {max(times):.1f} | {rss} |"
        )


if __name__ == "__main__":
    main()
