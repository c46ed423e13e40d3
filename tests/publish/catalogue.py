"""A small vosim catalogue, and the archive's own description of the same images.

Twelve images, written straight into the catalogue (ingest and the neighbour
stage live elsewhere), each with a role the publication tests check:

- 1–8: public in the archive, classified alike: published;
- 9: release date in the future in the archive (2031, see `LATER`): held back,
  until a refresh after that date;
- 10: no release date in the archive: held back;
- 11: public, but the archive gives another scientific category: held back;
- 12: vosim has it, the archive has no row for it: held back.

vosim's catalogue holds every image's rows (vectors and neighbour lists of
all images, proprietary or not), as the pipeline writes them; two current
models (one per image kind) and one retired model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import numpy as np
import sqlalchemy as sa

from tap_schema import Catalogue
from tests import fixture_archive as fixture

AUTHORITY = "vosim.example"
CATEGORIES = ("Galaxies and galactic nuclei", "ISM, star formation and astrochemistry")
PAST = datetime(2019, 6, 1, 12, 0, 0)
NOW = datetime(2025, 1, 1)
LATER = datetime(2031, 1, 1)
"""Release date of image 9: after `NOW`, so proprietary until a refresh after it."""
AFTER_LATER = datetime(2032, 1, 1)
DIMENSION = 16
CURRENT_MODELS = {"continuum": 1, "peak_flux": 2}
RETIRED_MODEL = 3

PUBLISHED = tuple(range(1, 9))
FUTURE, UNKNOWN, DISAGREEING, NOT_IN_ARCHIVE = 9, 10, 11, 12
ALL = tuple(range(1, 13))


DACHS_AUTHORITY = "dc.vosim.test"
"""The ``[ivoa]authority`` of the test DaCHS: its DIDs are ``ivo://{authority}/~?{accref}``."""


def accref(index: int) -> str:
    """The file's path under DaCHS's inputs folder, from which DaCHS makes its DID."""
    return f"vosim_test_archive/data/img-{index:02d}.fits"


def dachs_did(accref: str) -> str:
    """The DID DaCHS gives a file (``getStandardPubDID``), which vosim keeps."""
    return f"ivo://{DACHS_AUTHORITY}/~?{accref}"


def did(index: int) -> str:
    """The DID of a test image in DaCHS's own form."""
    return dachs_did(accref(index))


def index_of(did: str) -> int:
    """The image a DID names."""
    return int(did.rsplit("img-", 1)[1][:2])


def key(index: int) -> str:
    return f"img-{index:02d}"


def kind(index: int) -> str:
    return "continuum" if index % 2 else "peak_flux"


def category(index: int) -> str:
    return CATEGORIES[(index // 2) % 2]


def vector(index: int, model_id: int) -> np.ndarray:
    return fixture.unit_vector(100 * model_id + index, DIMENSION)


@dataclass(frozen=True)
class ArchiveRow:
    """What the archive's own product table says of one image."""

    index: int
    release: datetime | None
    category: str
    dataproduct_type: str

    @property
    def did(self) -> str:
        return did(self.index)


def archive_rows() -> list[ArchiveRow]:
    """The archive's description of images 1–11 (it has no row for 12)."""
    rows = []
    for index in ALL:
        if index == NOT_IN_ARCHIVE:
            continue
        release = {FUTURE: LATER, UNKNOWN: None}.get(index, PAST)
        described = category(index) if index != DISAGREEING else "Stellar evolution and the Sun"
        product_type = "image" if kind(index) == "continuum" else "cube"
        rows.append(ArchiveRow(index, release, described, product_type))
    return rows


def neighbour_lists(model_id: int, images: list[int]) -> list[dict]:
    """Every image's ranked neighbours among the others of its kind, best first."""
    return [
        row
        for image_kind in ("continuum", "peak_flux")
        for row in fixture.neighbour_rows(
            model_id, {did(i): vector(i, model_id) for i in images if kind(i) == image_kind}
        )
    ]


def fill(catalogue: Catalogue) -> None:
    """Write the twelve images, three models, vectors, neighbours and category pairs."""
    images = [
        fixture.FixtureImage(
            key=key(index),
            image_kind=kind(index),
            ra=10.0 + index,
            dec=-5.0 - index,
            release=PAST,
            category=category(index),
            obscore={"obs_publisher_did": did(index)},
        )
        for index in ALL
    ]
    rows = fixture.image_rows(images, AUTHORITY)
    for index, image in zip(ALL, rows["similarity.image"], strict=True):
        image["peak_snr"] = 20.0 + index
        # written with another public URL, as if ingested long ago
        image["preview_url"] = f"http://old.example/preview/{key(index)}.png"
    rows |= {"similarity.model": [], "similarity.embedding": [], "similarity.neighbour": []}
    for image_kind, model_id in [*CURRENT_MODELS.items(), ("continuum", RETIRED_MODEL)]:
        rows["similarity.model"].append(
            fixture.model_row(
                model_id,
                image_kind,
                current=model_id != RETIRED_MODEL,
                embedding_dim=DIMENSION,
                trained_at=PAST,
            )
        )
        images_of_kind = [index for index in ALL if kind(index) == image_kind]
        rows["similarity.embedding"] += [
            {"obs_publisher_did": did(i), "model_id": model_id, "vector": vector(i, model_id)}
            for i in images_of_kind
        ]
        rows["similarity.neighbour"] += neighbour_lists(model_id, images_of_kind)
    rows["similarity.category_compat"] = fixture.category_pairs(
        pairwise((*CATEGORIES, CATEGORIES[0])), symmetric=False
    )
    fixture.write_rows(catalogue, {name: rows[name] for name in TABLES})


TABLES = (
    "ivoa.obscore",
    "vosim.product",
    "similarity.image",
    "similarity.model",
    "similarity.embedding",
    "similarity.neighbour",
    "similarity.category_compat",
)


def expected_neighbours(published: set[int]) -> set[tuple[str, int, str]]:
    """(query DID, model, neighbour DID) of every row an archive may hold."""
    expected = set()
    for image_kind, model_id in CURRENT_MODELS.items():
        images = [index for index in ALL if kind(index) == image_kind]
        for row in neighbour_lists(model_id, images):
            ends = {row["obs_publisher_did"], row["neighbour_did"]}
            if ends <= {did(i) for i in published}:
                expected.add((row["obs_publisher_did"], model_id, row["neighbour_did"]))
    return expected


def select_all(conn: sa.Connection, table: sa.Table) -> list[dict]:
    """Every row of a table, as dicts, in a stable order."""
    rows = [dict(row._mapping) for row in conn.execute(sa.select(table))]
    return sorted(rows, key=lambda row: repr(sorted((k, repr(v)) for k, v in row.items())))
