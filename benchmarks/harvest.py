"""Harvest speed in products per second, from a local archive, against plain ``vosim ingest``.

Usage::

    python benchmarks/harvest.py                 # 300 CASA-like images (benchmarks/ingest.py's)
    python benchmarks/harvest.py --files 1000 --workers 4

Builds a folder of CASA-like FITS images, makes it an archive (a second
vosim installation that ingested them, served by ``vosim serve`` in its own
process, so its TAP, DataLink and ``/files`` answer as they would over the
network), and then, in the same run and into fresh data directories:

- ``vosim ingest`` of the same folder (the reference: no network at all);
- ``vosim harvest`` of the archive's TAP URL, first run (every product
  listed, fetched through DataLink ``#this``, ingested);
- ``vosim harvest`` again (nothing changed: listing only).

Printed: products/s, MB/s fetched, and the load average, which on shared
machines says how many cores the runs really had.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import build_archive  # noqa: E402 (benchmarks/ingest.py, the same images)

from model_training.harvest.stage import HarvestOptions, harvest_archive  # noqa: E402
from model_training.ingest.stage import ingest_folder  # noqa: E402
from tap_schema import Settings, open_catalogue  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_archive(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """``vosim serve`` on an ingested data directory, in its own process; wait until it answers."""
    port = free_port()
    environ = {**os.environ, "VOSIM_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    environ.pop("VOSIM_DB_URL", None)
    command = [sys.executable, "-m", "vo_service.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/tap/availability", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("vosim serve did not start")


def fresh(root: Path, name: str) -> Settings:
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(root / name)})
    open_catalogue(settings).dispose()  # table creation is not harvest or ingest time
    return settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="images to build (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="vosim-bench-harvest-") as scratch:
        root = Path(scratch)
        folder = build_archive(root / "files", args.files, args.seed)
        archive = fresh(root, "archive")
        ingest_folder(archive, folder, progress=False, workers=args.workers)
        server, url = serve_archive(archive.data_dir)
        try:
            started = time.perf_counter()
            report = ingest_folder(
                fresh(root, "ingested"), folder, progress=False, workers=args.workers
            )
            rows.append(
                ("vosim ingest (folder)", report.ingested, time.perf_counter() - started, 0)
            )
            harvester = fresh(root, "harvested")
            options = HarvestOptions(workers=args.workers, progress=False)
            for label in ("vosim harvest, first run", "vosim harvest, second run"):
                done = harvest_archive(harvester, f"{url}/tap", options)
                if done.failed:
                    print("\n".join(done.failures[:5]), file=sys.stderr)
                products = done.harvested + done.updated + done.unchanged
                rows.append((label, products, done.seconds, done.fetched_bytes))
        finally:
            server.terminate()
            server.wait(timeout=30)

    load = os.getloadavg()
    cores = len(os.sched_getaffinity(0))
    print(f"\n{'run':<28} {'products':>8} {'seconds':>8} {'products/s':>11} {'MB/s':>6}")
    for label, products, seconds, fetched in rows:
        print(
            f"{label:<28} {products:>8} {seconds:>8.2f} {products / seconds:>11.1f}"
            f" {fetched / seconds / 1e6:>6.1f}"
        )
    print(
        f"\n{cores} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end;"
        " the archive's server ran on the same cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
