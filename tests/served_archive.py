"""A small ingested archive with vectors, for the DataLink and similarity tests.

Real FITS files go through the real ingest (so product keys, previews,
files and ObsCore rows are what the service will see in production): 14
continuum images and 4 cubes, in three scientific categories plus one image
without a category, some public, some proprietary (release date in the
future) and one with no release date at all (no DATE-OBS, no metadata).
File names carry ``+`` and ``_`` as ALMA's do. Some products have the
archive's own DIDs from the metadata file, in ALMA's form (a ``uid://``
inside the query part) and in DaCHS's (``~`` as resource key); the others
have the DIDs vosim mints. Models, vectors and the
category table are then written directly (training and embedding are other
stages): every image gets a vector, proprietary ones included, so that the
tests see that the service hides them however they are stored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from model_training.ingest.identifiers import key_for_did
from model_training.ingest.stage import ingest_folder
from tap_schema import Catalogue, Settings, open_catalogue
from tests import fixture_archive as fixture
from tests.fits_factory import gzip_file, source_image, write_cube, write_image

GALAXIES = "Galaxies and galactic nuclei"
ISM = "ISM, star formation and astrochemistry"
DISKS = "Circumstellar disks, exoplanets and the solar system"
COMPATIBLE = {(GALAXIES, ISM), (ISM, DISKS)}
"""Pairs of compatible categories (both ways); galaxies and disks are not."""

DIMENSIONS = 16
AUTHORITY = "vosim.test"
PAST = datetime(2020, 1, 1)
FUTURE = datetime.now() + timedelta(days=3650)


@dataclass(frozen=True)
class ArchiveImage:
    """One image of the archive as the tests know it."""

    file_name: str
    image_kind: str
    category: str | None
    release: datetime | None
    archive_did: str | None = None

    @property
    def stem(self) -> str:
        return self.file_name.removesuffix(".gz").removesuffix(".fits").replace("+", "_")

    @property
    def did(self) -> str:
        return self.archive_did or fixture.did(self.stem, AUTHORITY)

    @property
    def key(self) -> str:
        """Its URL key, as ingest derives it from the DID."""
        return key_for_did(self.did)

    def is_public(self) -> bool:
        return self.release is not None and self.release <= datetime.now()


def _images() -> list[ArchiveImage]:
    categories = [GALAXIES, ISM, DISKS]
    images = []
    for i in range(14):
        category = None if i == 13 else categories[i % 3]
        release = FUTURE if i in (4, 9) else PAST
        did = f"ivo://eso.org/ID?uid://A001/X1296/X{i:x}d3" if i % 3 == 1 else None
        images.append(
            ArchiveImage(f"J05{i:02d}+0012_{i}.cont.fits", "continuum", category, release, did)
        )
    images.append(ArchiveImage("J0600+0012_nodate.cont.fits", "continuum", ISM, None))
    for i in range(4):
        release = FUTURE if i == 3 else PAST
        did = f"ivo://org.gavo.dc/~?alma/q/uid___A001_X1296_X{i}e7" if i % 2 else None
        images.append(
            ArchiveImage(f"J07{i:02d}-2200_{i}.cube.fits", "peak_flux", ISM, release, did)
        )
    images.append(ArchiveImage("J0800+0100_packed.cont.fits.gz", "continuum", GALAXIES, PAST))
    return images


IMAGES = _images()
BY_KEY = {image.key: image for image in IMAGES}
PUBLIC = [image for image in IMAGES if image.is_public()]
PROPRIETARY = [image for image in IMAGES if not image.is_public()]


def vector(image: ArchiveImage) -> np.ndarray:
    """The test vector of an image: random, unit length, fixed by its name."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(image.stem))
    values = np.random.default_rng(seed).normal(size=DIMENSIONS).astype(np.float32)
    return values / np.linalg.norm(values)


def write_files(folder: Path) -> Path:
    """Write the FITS files and the metadata CSV; return the CSV."""
    rows = []
    for index, image in enumerate(IMAGES):
        path = folder / image.file_name.removesuffix(".gz")
        date_obs = None if image.release is None else "2019-01-01T00:00:00"
        if image.image_kind == "peak_flux":
            cube = np.random.default_rng(index).normal(0.0, 1e-3, size=(8, 48, 48))
            cube[3:5, 20 + index, 24] += 0.02
            write_cube(path, cube, freq_hz=100e9, channel_width_hz=1e6, date_obs=date_obs)
        else:
            plane = source_image(64, 64, snr=20.0 + index, seed=index)
            write_image(path, plane, target=f"source{index % 5}", date_obs=date_obs)
        if image.file_name.endswith(".gz"):
            gzip_file(path)
        release = "" if image.release is None else image.release.isoformat()
        rows.append(
            {
                "file": image.file_name,
                "scientific_category": image.category or "",
                "obs_release_date": release,
                "obs_publisher_did": image.archive_did or "",
            }
        )
    metadata = folder / "metadata.csv"
    with metadata.open("w", newline="") as out:
        columns = ["file", "scientific_category", "obs_release_date", "obs_publisher_did"]
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(rows)
    return metadata


def installation(folder: Path, **environ: str) -> Settings:
    """A new installation in ``folder``: the archive's files in ``files/``, ingested with vectors.

    ``environ`` adds settings (``VOSIM_DB_URL`` for PostgreSQL).
    """
    settings = Settings.from_env(
        {"VOSIM_DATA_DIR": str(folder / "data"), "VOSIM_AUTHORITY": AUTHORITY, **environ}
    )
    catalogue = open_catalogue(settings)
    try:
        build(settings, catalogue, folder / "files")
    finally:
        catalogue.dispose()
    return settings


def build(settings: Settings, catalogue: Catalogue, folder: Path) -> None:
    """Ingest the archive into an empty catalogue and give every image a vector."""
    metadata = write_files(folder)
    report = ingest_folder(
        settings, folder, metadata, catalogue=catalogue, progress=False, workers=1
    )
    assert report.failed == 0, str(report)
    pairs = {(c, c) for c in (GALAXIES, ISM, DISKS)} | COMPATIBLE
    models = {"continuum": 2, "peak_flux": 3}
    fixture.write_rows(
        catalogue,
        {
            "similarity.model": [
                fixture.model_row(1, "continuum", current=False, model_name="old"),
                fixture.model_row(2, "continuum", model_name="cont"),
                fixture.model_row(3, "peak_flux", model_name="peak"),
            ],
            "similarity.embedding": [
                {
                    "obs_publisher_did": image.did,
                    "model_id": models[image.image_kind],
                    "vector": vector(image),
                }
                for image in IMAGES
            ]
            + [  # the old model's vectors must never be used
                {"obs_publisher_did": image.did, "model_id": 1, "vector": -vector(image)}
                for image in IMAGES
                if image.image_kind == "continuum"
            ],
            "similarity.category_compat": fixture.category_pairs(pairs),
        },
    )


def stored_categories(catalogue: Catalogue) -> dict[str, str | None]:
    """The category ingest stored for each image, by DID."""
    obscore = catalogue.table("ivoa.obscore")
    with catalogue.begin() as conn:
        rows = conn.execute(sa.select(obscore.c.obs_publisher_did, obscore.c.scientific_category))
        return dict(rows.all())


BY_DID = {image.did: image for image in IMAGES}


def compatible(category: str | None, other: str | None) -> bool:
    """The test archive's category rule: unknown is compatible with all, else the table."""
    if category is None or other is None or category == other:
        return True
    return (category, other) in COMPATIBLE or (other, category) in COMPATIBLE


def expected_ranking(
    selection: list[str], excluded: list[str] = ()
) -> list[tuple[ArchiveImage, float]]:
    """Brute-force ranking: every public candidate, scored in float64, ties by DID."""
    first = BY_DID[selection[0]]
    query = np.mean([vector(BY_DID[did]) for did in selection], axis=0, dtype=np.float64)
    if excluded:
        query -= 0.5 * np.mean([vector(BY_DID[did]) for did in excluded], axis=0, dtype=np.float64)
    query /= np.linalg.norm(query)
    candidates = [
        image
        for image in PUBLIC
        if image.image_kind == first.image_kind
        and image.did not in selection
        and image.did not in excluded
        and compatible(first.category, image.category)
    ]
    scored = [(image, float(vector(image).astype(np.float64) @ query)) for image in candidates]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0].did))


class PooledEmbedder:
    """Stands in for the network: the 4x4 block means of the cut-out, unit length (16 values).

    Like the real embedder it answers with the current model of the kind;
    the vectors differ from the archive's random ones, which is all a test of
    the plumbing needs.
    """

    def __init__(self) -> None:
        self.model_ids = {"continuum": 2, "peak_flux": 3}

    def embed(self, image_kind: str, cutout: np.ndarray) -> tuple[int, np.ndarray]:
        values = cutout.reshape(4, 16, 4, 16).mean(axis=(1, 3)).ravel().astype(np.float32)
        return self.model_ids[image_kind], values / np.linalg.norm(values)


def expected_upload_ranking(
    uploaded: np.ndarray, image_kind: str, excluded: list[str] = ()
) -> list[tuple[ArchiveImage, float]]:
    """Brute-force ranking of an uploaded image: its kind, every category, public only."""
    query = uploaded.astype(np.float64)
    if excluded:
        query = query - 0.5 * np.mean([vector(BY_DID[did]) for did in excluded], axis=0)
    query /= np.linalg.norm(query)
    scored = [
        (image, float(vector(image).astype(np.float64) @ query))
        for image in PUBLIC
        if image.image_kind == image_kind and image.did not in excluded
    ]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0].did))
