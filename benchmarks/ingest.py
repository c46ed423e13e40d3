"""Ingest speed in images per second, on a folder of CASA-like FITS images.

Usage::

    python benchmarks/ingest.py                  # builds 300 CASA-like 4-D images, 128-256 px
    python benchmarks/ingest.py --files 1000
    python benchmarks/ingest.py --archive DIR    # any folder of FITS files (e.g. from vosim synth)

Each run ingests into a fresh temporary data directory (SQLite), so the
first pass measures a full ingest; the second pass re-runs it on the same
folder and measures the idempotent skip. The goal is >= 100 images/s on two
cores for the first pass.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.ingest.stage import ingest_folder
from tap_schema import Settings, open_catalogue


def casa_like_image(path: Path, rng: np.random.Generator) -> None:
    """Write one CASA exportfits-like continuum image: 4-D, NaN outside the primary beam."""
    n = int(rng.integers(128, 257))
    rms = float(rng.uniform(2e-5, 5e-4))
    y, x = np.mgrid[0:n, 0:n]
    plane = rng.normal(0.0, rms, size=(n, n))
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(0.3 * n, 0.7 * n, size=2)
        sx, sy = rng.uniform(1.5, 0.08 * n, size=2)
        angle = rng.uniform(0, np.pi)
        dx, dy = x - x0, y - y0
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        plane += rng.uniform(3, 300) * rms * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    plane[(x - n / 2) ** 2 + (y - n / 2) ** 2 > (0.48 * n) ** 2] = np.nan
    cell = float(rng.uniform(0.02, 0.3))
    freq = float(rng.choice([97.5e9, 145e9, 233e9, 343.5e9, 405e9, 670e9]))
    header = fits.Header()
    header["BMAJ"] = 4 * cell / 3600
    header["BMIN"] = 3 * cell / 3600
    header["BPA"] = float(rng.uniform(-90, 90))
    header["BTYPE"] = "Intensity"
    header["OBJECT"] = f"J{rng.integers(0, 24):02d}{rng.integers(0, 60):02d}"
    header["BUNIT"] = "Jy/beam"
    header["RADESYS"] = "ICRS"
    header["LONPOLE"] = 180.0
    header["LATPOLE"] = -30.0
    for i, (ctype, crval, cdelt, crpix, cunit) in enumerate(
        [
            ("RA---SIN", float(rng.uniform(0, 360)), -cell / 3600, n / 2 + 1, "deg"),
            ("DEC--SIN", float(rng.uniform(-80, 30)), cell / 3600, n / 2 + 1, "deg"),
            ("FREQ", freq, 7.5e9, 1.0, "Hz"),
            ("STOKES", 1.0, 1.0, 1.0, ""),
        ],
        start=1,
    ):
        header[f"CTYPE{i}"] = ctype
        header[f"CRVAL{i}"] = crval
        header[f"CDELT{i}"] = cdelt
        header[f"CRPIX{i}"] = crpix
        header[f"CUNIT{i}"] = cunit
    for i in range(1, 5):
        for j in range(1, 5):
            header[f"PC{i:02d}_{j:02d}"] = 1.0 if i == j else 0.0
    header["PV2_1"] = 0.0
    header["PV2_2"] = 0.0
    header["RESTFRQ"] = freq
    header["SPECSYS"] = "LSRK"
    header["ALTRVAL"] = 0.0
    header["ALTRPIX"] = 1.0
    header["VELREF"] = 257
    header["TELESCOP"] = "ALMA"
    header["OBSERVER"] = "benchmark"
    header["DATE-OBS"] = f"20{rng.integers(12, 24)}-{rng.integers(1, 13):02d}-11T04:23:11.5"
    header["TIMESYS"] = "UTC"
    header["OBSRA"] = header["CRVAL1"]
    header["OBSDEC"] = header["CRVAL2"]
    header["OBSGEO-X"] = 2.225142180269e06
    header["OBSGEO-Y"] = -5.440307370349e06
    header["OBSGEO-Z"] = -2.481029851874e06
    header["INSTRUME"] = "ALMA"
    header["DISTANCE"] = 0.0
    header["DATE"] = "2024-01-01T00:00:00.000"
    header["ORIGIN"] = "CASA 6.5.4-9"
    for line in range(8):
        header.add_history(f"CASA tclean step {line}: deconvolver=hogbom niter=1000")
    data = plane.astype(np.float32).reshape(1, 1, n, n)
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)


def build_archive(folder: Path, n_files: int, seed: int) -> Path:
    """A folder of ``n_files`` CASA-like images in a few project sub-folders."""
    rng = np.random.default_rng(seed)
    for i in range(n_files):
        project = folder / f"2019.1.{i % 7:05d}.S"
        project.mkdir(parents=True, exist_ok=True)
        casa_like_image(project / f"member.uid___A001_X{i:04x}.cont.I.pbcor.fits", rng)
    return folder


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(folder: Path, workers: int | None) -> list[tuple[str, int, float, float]]:
    """Ingest twice into a fresh data directory; return (pass, files, seconds, CPU seconds)."""
    with tempfile.TemporaryDirectory(prefix="vosim-bench-") as data_dir:
        settings = Settings.from_env({"VOSIM_DATA_DIR": data_dir})
        catalogue = open_catalogue(settings)  # table creation is not ingest time
        rows = []
        for label in ("first ingest", "re-run (unchanged)"):
            started, cpu_started = time.perf_counter(), cpu_seconds()
            report = ingest_folder(
                settings, folder, catalogue=catalogue, progress=False, workers=workers
            )
            seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
            if report.failed:
                print("\n".join(report.failures[:10]), file=sys.stderr)
            files = report.ingested + report.updated + report.unchanged + report.failed
            rows.append((label, files, seconds, cpu))
        catalogue.dispose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="ingest this folder instead of building one")
    parser.add_argument("--files", type=int, default=300, help="images to build (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: cores)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vosim-bench-archive-") as scratch:
        folder = args.archive
        if folder is None:
            started = time.perf_counter()
            folder = build_archive(Path(scratch), args.files, args.seed)
            print(f"built {args.files} CASA-like images in {time.perf_counter() - started:.1f} s")
        rows = measure(folder, args.workers)

    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    print(f"\n{'pass':<20} {'files':>6} {'images/s':>9} {'seconds':>8} {'CPU ms/image':>13}")
    for label, files, seconds, cpu in rows:
        print(
            f"{label:<20} {files:>6} {files / seconds:>9.1f} {seconds:>8.2f}"
            f" {1000 * cpu / files:>13.2f}"
        )
    label, files, seconds, cpu = rows[0]
    print(
        f"\n{cores} cores, load average {load:.2f} at the end; the first ingest used"
        f" {cpu / seconds:.2f} cores. With {cores} idle cores its CPU time per image would"
        f" allow about {cores * files / cpu:.0f} images/s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
