"""The TAP tests' fixture archive: 8 images of two kinds, 2 of them proprietary.

Images 1–6 are public; 7 has a release date ten years ahead and 8 none
(no DATE-OBS, no release date). Odd images are continuum, even ones peak
flux; every third is band 3, the others band 7. A current model of each
kind, a vector of every image, and each image's neighbours among those of
its kind, proprietary ones included: hiding them is the service's job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from tap_schema import Catalogue
from tests import fixture_archive as fixture

AUTHORITY = "vosim.test"
PAST = datetime(2021, 3, 4, 5, 6, 7)
FUTURE = datetime.now() + timedelta(days=3650)
CATEGORIES = ("Galaxies and galactic nuclei", "ISM, star formation and astrochemistry")
INDEXES = range(1, 9)
MODEL_IDS = {"continuum": 1, "peak_flux": 2}


def did(index: int) -> str:
    return fixture.did(f"image-{index:03d}", AUTHORITY)


PUBLIC = [did(i) for i in range(1, 7)]
PROPRIETARY = [did(7), did(8)]


def kind(index: int) -> str:
    return "continuum" if index % 2 else "peak_flux"


def vector(index: int) -> np.ndarray:
    return fixture.unit_vector(index, 8)


def image(index: int) -> fixture.FixtureImage:
    """Image ``index`` as its header and the operator's metadata describe it."""
    return fixture.FixtureImage(
        key=f"image-{index:03d}",
        image_kind=kind(index),
        ra=83.8 + 0.01 * index,
        dec=-5.4 - 0.01 * index,
        band="7" if index % 3 else "3",
        target="HH212" if index <= 4 else "SPT2145-40",
        observed=None if index == 8 else "2020-03-04T05:06:07",
        release={7: FUTURE, 8: None}.get(index, PAST),
        category=CATEGORIES[index % 2],
        obscore={"s_resolution": 0.1 * (9 - index), "t_exptime": 3600.0},
    )


def fill(catalogue: Catalogue) -> None:
    """Write the archive into an empty catalogue."""
    rows = fixture.image_rows([image(i) for i in INDEXES], AUTHORITY)
    rows["similarity.model"] = [
        fixture.model_row(
            1,
            "continuum",
            model_name="simclr-test",
            backbone="resnet18",
            embedding_dim=8,
            n_images=8,
            n_epochs=2,
            recall_at_1=0.5,
            recall_at_10=0.9,
            mean_average_precision=0.6,
            trained_at=PAST,
        ),
        fixture.model_row(
            2, "peak_flux", model_name="simclr-test-peak", backbone="resnet18", embedding_dim=8
        ),
    ]
    rows["similarity.embedding"] = [
        {"obs_publisher_did": did(i), "model_id": MODEL_IDS[kind(i)], "vector": vector(i)}
        for i in INDEXES
    ]
    rows["similarity.neighbour"] = [
        row
        for image_kind, model_id in MODEL_IDS.items()
        for row in fixture.neighbour_rows(
            model_id, {did(i): vector(i) for i in INDEXES if kind(i) == image_kind}
        )
    ]
    rows["similarity.category_compat"] = fixture.category_pairs(
        (a, b) for a in CATEGORIES for b in CATEGORIES
    )
    fixture.write_rows(catalogue, rows)


def public_neighbours(index: int) -> list[tuple[int, str]]:
    """(rank, DID) of image ``index``'s public neighbours, best first: ranks keep their gaps."""
    same_kind = {did(i): vector(i) for i in INDEXES if kind(i) == kind(index)}
    rows = fixture.neighbour_rows(MODEL_IDS[kind(index)], same_kind)
    return [
        (row["rank"], row["neighbour_did"])
        for row in rows
        if row["obs_publisher_did"] == did(index) and row["neighbour_did"] in PUBLIC
    ]
