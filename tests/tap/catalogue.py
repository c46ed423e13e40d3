"""A small catalogue for the TAP tests: a few ObsCore rows and their similarity rows.

Written directly with SQLAlchemy (the ingest and demo generator live
elsewhere): 6 public images of two kinds, 2 proprietary ones (one release
date in the future, one NULL), a current model, vectors and neighbour lists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from tap_schema import Catalogue

AUTHORITY = "vosim.test"
PAST = datetime(2021, 3, 4, 5, 6, 7)
FUTURE = datetime.now() + timedelta(days=3650)
CATEGORIES = ("Galaxies and galactic nuclei", "ISM, star formation and astrochemistry")


def did(index: int) -> str:
    return f"ivo://{AUTHORITY}/alma?image-{index:03d}"


PUBLIC = [did(i) for i in range(1, 7)]
PROPRIETARY = [did(7), did(8)]


def obscore_row(index: int, *, release: datetime | None) -> dict:
    kind = "continuum" if index % 2 else "peak_flux"
    band = "7" if index % 3 else "3"
    ra, dec = 83.8 + 0.01 * index, -5.4 - 0.01 * index
    frequency = 345e9 if band == "7" else 100e9
    return {
        "dataproduct_type": "image" if kind == "continuum" else "cube",
        "calib_level": 2,
        "obs_collection": "ALMA",
        "obs_id": f"uid://A001/X{index:03d}/X1",
        "obs_publisher_did": did(index),
        "access_url": f"http://127.0.0.1/datalink?ID={did(index)}",
        "access_format": "application/x-votable+xml;content=datalink",
        "access_estsize": 1000 + index,
        "target_name": "HH212" if index <= 4 else "SPT2145-40",
        "s_ra": ra,
        "s_dec": dec,
        "s_fov": 0.01,
        "s_region": f"POLYGON ICRS {ra - 0.005} {dec - 0.005} {ra + 0.005} {dec - 0.005} "
        f"{ra + 0.005} {dec + 0.005} {ra - 0.005} {dec + 0.005}",
        "s_resolution": 0.1 * (9 - index),
        "s_xel1": 64,
        "s_xel2": 64,
        "t_min": 59000.0 + index,
        "t_max": 59000.1 + index,
        "t_exptime": 3600.0,
        "t_resolution": 3600.0,
        "t_xel": 1,
        "em_min": 299792458.0 / (frequency + 4e9),
        "em_max": 299792458.0 / (frequency - 4e9),
        "em_res_power": 100.0,
        "em_xel": 1 if kind == "continuum" else 128,
        "o_ucd": "phot.flux.density;phys.polarization.stokes.I",
        "pol_states": "/I/",
        "pol_xel": 1,
        "facility_name": "ALMA",
        "instrument_name": f"ALMA-BAND{band}",
        "obs_release_date": release,
        "scientific_category": CATEGORIES[index % 2],
        "image_kind": kind,
        "band_list": band,
    }


def vector(index: int, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(index)
    values = rng.normal(size=dim).astype(np.float32)
    return values / np.linalg.norm(values)


def fill(catalogue: Catalogue) -> None:
    """Insert the small catalogue (idempotent: call on an empty catalogue only)."""
    obscore = catalogue.table("ivoa.obscore")
    image = catalogue.table("similarity.image")
    model = catalogue.table("similarity.model")
    embedding = catalogue.table("similarity.embedding")
    neighbour = catalogue.table("similarity.neighbour")
    compat = catalogue.table("similarity.category_compat")
    indexes = list(range(1, 9))
    release = {i: PAST for i in range(1, 7)} | {7: FUTURE, 8: None}
    with catalogue.begin() as conn:
        conn.execute(obscore.insert(), [obscore_row(i, release=release[i]) for i in indexes])
        conn.execute(
            model.insert(),
            [
                {
                    "model_id": 1,
                    "model_name": "simclr-test",
                    "image_kind": "continuum",
                    "is_current": 1,
                    "backbone": "resnet18",
                    "embedding_dim": 8,
                    "n_images": 8,
                    "n_epochs": 2,
                    "recall_at_1": 0.5,
                    "recall_at_10": 0.9,
                    "mean_average_precision": 0.6,
                    "trained_at": PAST,
                },
                {
                    "model_id": 2,
                    "model_name": "simclr-test-peak",
                    "image_kind": "peak_flux",
                    "is_current": 1,
                    "backbone": "resnet18",
                    "embedding_dim": 8,
                    "n_images": 4,
                    "n_epochs": 2,
                    "recall_at_1": None,
                    "recall_at_10": None,
                    "mean_average_precision": None,
                    "trained_at": None,
                },
            ],
        )
        conn.execute(
            image.insert(),
            [
                {
                    "obs_publisher_did": did(i),
                    "image_kind": "continuum" if i % 2 else "peak_flux",
                    "cutout_ra": 83.8 + 0.01 * i,
                    "cutout_dec": -5.4 - 0.01 * i,
                    "cutout_rule": "peak",
                    "peak_snr": 10.0 + i,
                    "preview_url": f"http://127.0.0.1/preview/{i}.png",
                }
                for i in indexes
            ],
        )
        conn.execute(
            embedding.insert(),
            [
                {"obs_publisher_did": did(i), "model_id": 1 if i % 2 else 2, "vector": vector(i)}
                for i in indexes
            ],
        )
        rows = []
        for i in indexes:
            same_kind = [j for j in indexes if j != i and j % 2 == i % 2]
            for rank, j in enumerate(same_kind, start=1):
                rows.append(
                    {
                        "obs_publisher_did": did(i),
                        "rank": rank,
                        "neighbour_did": did(j),
                        "cosine_similarity": float(vector(i) @ vector(j)),
                        "model_id": 1 if i % 2 else 2,
                    }
                )
        conn.execute(neighbour.insert(), rows)
        conn.execute(
            compat.insert(),
            [
                {
                    "scientific_category": a,
                    "compatible_category": b,
                    "n_publications": 10 if a == b else 2,
                    "origin": "derived",
                }
                for a in CATEGORIES
                for b in CATEGORIES
            ],
        )
