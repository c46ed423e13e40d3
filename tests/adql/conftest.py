"""A small archive loaded identically into SQLite and PostgreSQL, for the ADQL tests.

Nine images: five public, one released exactly at 2020-01-01T00:00:00 (the
timestamp trap), one proprietary until 2099, one with no release date, and
one that has similarity rows but no ObsCore row at all. Every similarity
table has rows of every one of them, so a query that can see a proprietary
image's vector, neighbour list or presence in a list shows up as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tap_schema import Catalogue, Settings, open_catalogue
from tests import fixture_archive as fixture
from tests.pg import fresh_database
from vo_service.adql import TapSchema, postgres_setup, sqlite_functions

NOW = datetime(2024, 6, 1, 12, 0, 0)
AUTHORITY = "vosim.example"


def did(number: int) -> str:
    return fixture.did(f"img{number}", AUTHORITY)


# number: (ra, dec, release, target, band, category, exptime, xel1)
IMAGES = {
    1: (10.0, -30.0, datetime(2019, 3, 1), "HH212", "7", "ISM", 1200.0, 256),
    2: (10.02, -30.01, datetime(2021, 7, 15, 8, 30), "hh212-b", "7", "ISM", 600.0, 512),
    3: (10.5, -29.5, datetime(2022, 1, 1), "SPT2145-40", "3", "Cosmology", None, 128),
    4: (200.0, 45.0, datetime(2018, 11, 30), "M31 core", "6", "Galaxies", 3600.0, None),
    5: (200.01, 45.02, datetime(2023, 5, 5), "BHR71_IRS1", "7", "ISM", 2400.0, 256),
    6: (10.01, -30.0, datetime(2099, 1, 1), "Secret disk", "7", "Disks", 900.0, 256),
    7: (10.03, -29.99, None, "Undated", "7", "Disks", 100.0, 64),
    8: (359.99, 0.0, datetime(2020, 1, 1), "Edge case", "9", "Stellar", 50.0, 1024),
}
PUBLIC = {1, 2, 3, 4, 5, 8}
NO_OBSCORE = 9
ALL_IMAGES = [*IMAGES, NO_OBSCORE]


def stcs_square(ra: float, dec: float, half: float = 0.01) -> str:
    corners = [
        (ra - half, dec - half),
        (ra + half, dec - half),
        (ra + half, dec + half),
        (ra - half, dec + half),
    ]
    return "POLYGON ICRS " + " ".join(f"{a % 360:.6f} {d:.6f}" for a, d in corners)


def fixture_image(number: int) -> fixture.FixtureImage:
    """Image ``number`` of `IMAGES`, with the exact values the queries test."""
    ra, dec, release, target, band, category, exptime, xel1 = IMAGES[number]
    return fixture.FixtureImage(
        key=f"img{number}",
        ra=ra,
        dec=dec,
        band=band,
        target=target,
        observed=None,
        release=release,
        category=category,
        obscore={
            "obs_id": f"uid://A001/X{number % 3}",
            "access_estsize": 1000 * number,
            "s_fov": 0.02,
            "s_region": stcs_square(ra, dec),
            "s_resolution": 0.1 * number,
            "s_xel1": xel1,
            "s_xel2": xel1,
            "t_min": 58000.0 + number,
            "t_max": 58000.5 + number,
            "t_exptime": exptime,
            "em_min": 0.00087 if band == "7" else 0.003,
            "em_max": 0.00092 if band == "7" else 0.0035,
            "instrument_name": f"BAND{band}",
        },
    )


def archive_rows() -> dict[str, list[dict]]:
    """Every row of the archive, by table: ObsCore rows of 1–8, similarity rows of 1–9."""
    rows = fixture.image_rows([fixture_image(n) for n in IMAGES], AUTHORITY)
    del rows["vosim.product"]
    rows["similarity.image"].append(
        {**rows["similarity.image"][0], "obs_publisher_did": did(NO_OBSCORE)}
        | {"cutout_ra": 11.0, "cutout_dec": -31.0}
    )
    for number, image in zip(ALL_IMAGES, rows["similarity.image"], strict=True):
        image |= {
            "cutout_rule": "peak" if number % 2 else "centre",
            "peak_snr": 3.0 + number,
            "noise_rms": 1e-4 * number,
        }
    rows["similarity.model"] = [
        fixture.model_row(
            1,
            "continuum",
            model_name="demo",
            embedding_dim=4,
            n_images=9,
            trained_at=datetime(2024, 1, 2, 3, 4, 5),
        )
    ]
    rows["similarity.category_compat"] = [
        {"scientific_category": "ISM", "compatible_category": "Disks", "n_publications": 3}
        | {"origin": "derived"}
    ]
    rng = np.random.default_rng(7)
    rows["similarity.embedding"] = [
        {"obs_publisher_did": did(n), "model_id": 1, "vector": _unit(rng.normal(size=4))}
        for n in ALL_IMAGES
    ]
    rows["similarity.neighbour"] = [
        {
            "obs_publisher_did": did(number),
            "rank": rank,
            "neighbour_did": did(other),
            "cosine_similarity": round(1.0 - 0.1 * rank - 0.01 * number, 4),
            "model_id": 1,
        }
        for number in ALL_IMAGES
        for rank, other in enumerate([n for n in ALL_IMAGES if n != number][:4], start=1)
    ]
    return rows


def _unit(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32)
    return values / np.linalg.norm(values)


@dataclass
class Archive:
    """One backend with the small archive loaded."""

    dialect: str
    catalogue: Catalogue
    schema: TapSchema

    def connect(self) -> sa.Connection:
        return self.catalogue.engine.connect()


def open_archive(settings: Settings) -> Archive:
    catalogue = open_catalogue(settings)
    if catalogue.dialect == "sqlite":
        sa.event.listen(
            catalogue.engine, "connect", lambda conn, _: sqlite_functions.register(conn)
        )
        catalogue.engine.dispose()
    else:
        with catalogue.begin() as conn:
            postgres_setup.install(conn)
    fixture.write_rows(catalogue, archive_rows())
    with catalogue.begin() as conn:
        schema = TapSchema.load(conn)
    return Archive(catalogue.dialect, catalogue, schema)


@pytest.fixture(scope="module")
def sqlite_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    settings = Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path_factory.mktemp("adql") / "data")})
    archive = open_archive(settings)
    yield archive
    archive.catalogue.dispose()


@pytest.fixture(scope="module")
def pg_archive(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """The archive in a PostgreSQL database of its own, shared by one test module."""
    data_dir: Path = tmp_path_factory.mktemp("adql-pg") / "data"
    with fresh_database(pg_server_url, "vosim_adql") as url:
        archive = open_archive(
            Settings.from_env({"VOSIM_DATA_DIR": str(data_dir), "VOSIM_DB_URL": url})
        )
        try:
            yield archive
        finally:
            archive.catalogue.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest) -> Archive:
    """The archive on each backend in turn."""
    return request.getfixturevalue("sqlite_archive" if request.param == "sqlite" else "pg_archive")
