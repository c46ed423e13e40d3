"""The rows of a fixture archive, written straight into a catalogue: one builder for the tests.

The TAP, ADQL and publish tests need catalogues whose every value they know,
without running ingest and the stages (seconds each). Each suite declares
its images (`FixtureImage`); this module turns them into the rows the
pipeline would write, in the production's own form:

- ``ivoa.obscore`` by ingest's `model_training.ingest.obscore_row`, from
  the header of a small CASA-style FITS file of the image (position, band,
  observation date, target), with the suite's exact values laid over it;
- ``similarity.image``, ``vosim.product``, models, unit vectors, neighbour
  lists ranked by cosine similarity, and category pairs.

Suites that need real files (DataLink, the pages) ingest real FITS files
instead (`tests.served_archive`, `tests.pages.catalogue`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from model_training.ingest.fits_image import FitsImage, read_fits_image
from model_training.ingest.obscore_row import access_url, obscore_row, publisher_did
from tap_schema import Catalogue, Settings
from tests.fits_factory import source_image, write_image

__all__ = [
    "FixtureImage",
    "category_pairs",
    "did",
    "fixture_settings",
    "image_rows",
    "model_row",
    "neighbour_rows",
    "unit_vector",
    "write_rows",
]

BAND_FREQUENCY_HZ = {"3": 100e9, "6": 230e9, "7": 345e9, "9": 680e9}
"""A frequency inside each ALMA band the fixtures use."""


def fixture_settings(authority: str) -> Settings:
    """Settings that name the fixtures' products (authority; URLs as ingest writes them)."""
    return Settings(data_dir=Path("/nonexistent"), db_url="sqlite://", authority=authority)


def did(key: str, authority: str = "vosim.test") -> str:
    """The publisher DID of a product, as ingest names it: ``ivo://{authority}/products?{key}``."""
    return publisher_did(fixture_settings(authority), key)


def unit_vector(seed: int, dimension: int) -> np.ndarray:
    """A random unit vector (float32), fixed by its seed."""
    values = np.random.default_rng(seed).normal(size=dimension).astype(np.float32)
    return values / np.linalg.norm(values)


@dataclass(frozen=True)
class FixtureImage:
    """One image of a fixture archive: what its FITS header and the metadata file would say."""

    key: str
    """Product key (the name in /preview and /files URLs)."""
    image_kind: str = "continuum"
    ra: float = 83.8
    dec: float = -5.4
    band: str = "7"
    target: str = "HH212"
    observed: str | None = "2019-01-01T00:00:00"
    """DATE-OBS; None for a header without one."""
    release: datetime | None = None
    """The operator's release date; None: ingest's default (observation + 12 months), if any."""
    category: str | None = None
    obscore: Mapping[str, Any] = field(default_factory=dict)
    """ObsCore values laid over ingest's (what the operator's metadata file would give)."""


def image_rows(images: Iterable[FixtureImage], authority: str) -> dict[str, list[dict]]:
    """The ``ivoa.obscore``, ``similarity.image`` and ``vosim.product`` rows of the images."""
    settings = fixture_settings(authority)
    rows: dict[str, list[dict]] = {"ivoa.obscore": [], "similarity.image": [], "vosim.product": []}
    for index, image in enumerate(images):
        # the archive's own DID when the image's metadata gives one, as ingest keeps it
        product_did = image.obscore.get("obs_publisher_did") or publisher_did(settings, image.key)
        header = _header_row(
            image.image_kind, image.ra, image.dec, image.band, image.target, image.observed
        ) | {
            "obs_id": image.key,
            "obs_publisher_did": product_did,
            "access_url": access_url(settings, product_did),
            "obs_collection": settings.collection,
        }
        metadata = {"scientific_category": image.category, **image.obscore}
        if image.release is not None:
            metadata["obs_release_date"] = image.release
        row = {**header, **metadata}
        rows["ivoa.obscore"].append(row)
        rows["similarity.image"].append(
            {
                "obs_publisher_did": row["obs_publisher_did"],
                "image_kind": image.image_kind,
                "cutout_ra": row["s_ra"],
                "cutout_dec": row["s_dec"],
                "cutout_rule": "peak",
                "peak_snr": 10.0 + index,
                "noise_rms": 1e-4,
                "preview_url": f"{settings.url_base}/preview/{image.key}.png",
            }
        )
        rows["vosim.product"].append(
            {
                "obs_publisher_did": row["obs_publisher_did"],
                "product_key": image.key,
                "file_path": f"/archive/{image.key}.fits",
                "file_size": 1000,
                "file_mtime": 0.0,
                "cutout_index": index,
                "cutout_x": 32,
                "cutout_y": 32,
                "ingested_at": datetime(2024, 1, 1),
            }
        )
    return rows


def _header_row(
    image_kind: str, ra: float, dec: float, band: str, target: str, observed: str | None
) -> dict[str, Any]:
    """Ingest's ObsCore row of a 33×33-pixel CASA image with this header (its centre at ra, dec).

    One FITS file per band is written and read (`_band_image`); each row
    gives it its own OBJECT and DATE-OBS and points its WCS at the image's
    position, so that ingest derives the footprint there. The product's
    names are filled in by the caller.
    """
    image = _band_image(band)
    image.wcs.wcs.crval = [ra, dec]  # rows are built one at a time
    image.wcs.wcs.set()
    header = dataclasses.replace(image, target_name=target, date_obs=observed)
    row = obscore_row(header, file_size=1000, settings=fixture_settings("x"))
    if image_kind == "peak_flux":
        row["dataproduct_type"] = "cube"
    row["image_kind"] = image_kind
    row["s_ra"], row["s_dec"] = ra, dec  # exact, not as the WCS rounds it
    return row


@cache
def _band_image(band: str) -> FitsImage:
    """A small CASA image at a frequency of this band, as ingest reads it."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_image(
            Path(folder) / "image.fits",
            source_image(33, 33, x0=16, y0=16),
            freq_hz=BAND_FREQUENCY_HZ[band],
        )
        return read_fits_image(path)


def model_row(model_id: int, image_kind: str, *, current: bool = True, **values: Any) -> dict:
    """A ``similarity.model`` row; ``values`` give its other columns."""
    return {
        "model_id": model_id,
        "model_name": f"run-{model_id}",
        "image_kind": image_kind,
        "is_current": int(current),
        **values,
    }


def neighbour_rows(
    model_id: int, vectors: Mapping[str, np.ndarray], *, k: int | None = None
) -> list[dict]:
    """Every image's ranked neighbours among the others, by cosine similarity, best first."""
    rows = []
    for query, vector in vectors.items():
        scored = sorted(
            (
                (float(vector @ other_vector), other)
                for other, other_vector in vectors.items()
                if other != query
            ),
            key=lambda pair: (-pair[0], pair[1]),
        )
        rows += [
            {
                "obs_publisher_did": query,
                "rank": rank,
                "neighbour_did": other,
                "cosine_similarity": score,
                "model_id": model_id,
            }
            for rank, (score, other) in enumerate(scored[:k], start=1)
        ]
    return rows


def category_pairs(pairs: Iterable[tuple[str, str]], *, symmetric: bool = True) -> list[dict]:
    """``similarity.category_compat`` rows of the pairs (both ways unless told otherwise)."""
    pairs = set(pairs)
    if symmetric:
        pairs |= {(b, a) for a, b in pairs}
    return [
        {
            "scientific_category": a,
            "compatible_category": b,
            "n_publications": 10 if a == b else 2,
            "origin": "derived",
        }
        for a, b in sorted(pairs)
    ]


def write_rows(catalogue: Catalogue, rows: Mapping[str, Sequence[dict]]) -> None:
    """Insert rows by table name, in the order given, in one transaction."""
    with catalogue.begin() as conn:
        for name, table_rows in rows.items():
            by_columns: dict[tuple[str, ...], list[dict]] = {}
            for row in table_rows:  # one statement per set of columns given
                by_columns.setdefault(tuple(sorted(row)), []).append(row)
            for group in by_columns.values():
                conn.execute(catalogue.table(name).insert(), group)
