"""The page tests' archive: a tiny synthetic archive, ingested, plus vectors written directly.

The images, previews, files and ObsCore rows are real (the demo generator and
ingest); the vectors are not trained (training is another stage): each image
gets a random unit vector near the centre of its morphology class and of its
source, so that the ranking has structure to look at. Proprietary images get
vectors too, as a trained model would give them: hiding them is the
service's job, and the tests check that it does.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from model_training.categories import DISKS, GALAXIES, SCIENTIFIC_CATEGORIES
from model_training.demo_archive.generator import synthesize_archive
from model_training.ingest.obscore_row import product_key, publisher_did
from model_training.ingest.stage import ingest_folder
from tap_schema import Catalogue, Settings
from tests import fixture_archive as fixture

MODEL_IDS = {"continuum": 1, "peak_flux": 2}
INCOMPATIBLE = {(GALAXIES, DISKS), (DISKS, GALAXIES)}
"""The paper's example: no galactic disc beside a protoplanetary disc; all else compatible."""
EMBEDDING_DIM = 32


@dataclass(frozen=True)
class PageArchive:
    """What the tests need to know about the archive they browse."""

    public: dict[str, str]
    """Identifier of every public image with a vector, to its kind."""
    proprietary: set[str]
    """Identifiers of the images still proprietary (release in the future or unknown)."""
    product_keys: dict[str, str]
    """Identifier to product key (the name in /preview and /files URLs), for every image."""
    files: dict[str, Path]
    """Identifier to the FITS file ingest read, for every image."""

    def of_kind(self, kind: str) -> list[str]:
        return sorted(did for did, image_kind in self.public.items() if image_kind == kind)


class BlockEmbedder:
    """Stands in for the network on uploads: the 4x8 block means of the cut-out, unit length.

    The test models have random vectors and no weights; like the real
    embedder this answers with the current model of the kind, with vectors
    of the archive's dimension.
    """

    def embed(self, image_kind: str, cutout: np.ndarray) -> tuple[int, np.ndarray]:
        values = cutout.reshape(4, 16, 8, 8).mean(axis=(1, 3)).ravel().astype(np.float64)
        values = values + 1e-3  # a flat cut-out still has a direction
        return MODEL_IDS[image_kind], (values / np.linalg.norm(values)).astype(np.float32)


def build(
    settings: Settings, catalogue: Catalogue, folder: Path, n_sources: int, n_views: int
) -> PageArchive:
    """Synthesize, ingest and add vectors; return what was made."""
    summary = synthesize_archive(folder, n_sources, n_views, seed=11, workers=1, progress=False)
    report = ingest_folder(
        settings, folder, summary.metadata_csv, catalogue=catalogue, progress=False, workers=1
    )
    assert report.exit_status == 0, report
    with summary.truth_csv.open() as stream:
        truth = list(csv.DictReader(stream))
    keys = {product_key(Path(row["file"]).name): row for row in truth}
    by_did = {publisher_did(settings, key): row for key, row in keys.items()}
    _add_vectors(catalogue, by_did)
    files = {did: folder / row["file"] for did, row in by_did.items()}
    return _describe(catalogue, {publisher_did(settings, key): key for key in keys}, files)


def _add_vectors(catalogue: Catalogue, truth: dict[str, dict[str, str]]) -> None:
    rng = np.random.default_rng(5)
    classes = sorted({row["morphology_class"] for row in truth.values()})
    class_centre = {name: rng.normal(size=EMBEDDING_DIM) for name in classes}
    image = catalogue.table("similarity.image")
    with catalogue.begin() as conn:
        kinds = dict(conn.execute(sa.select(image.c.obs_publisher_did, image.c.image_kind)).all())
    models = [
        fixture.model_row(
            model_id,
            kind,
            model_name=f"page-test-{kind}",
            backbone="none (random vectors)",
            embedding_dim=EMBEDDING_DIM,
            n_images=sum(k == kind for k in kinds.values()),
            n_epochs=0,
            trained_at=datetime.now(UTC).replace(tzinfo=None),
        )
        for kind, model_id in MODEL_IDS.items()
    ]
    rows = []
    source_centre: dict[str, np.ndarray] = {}
    for did in sorted(kinds):
        row = truth[did]
        source = source_centre.setdefault(row["source_id"], rng.normal(size=EMBEDDING_DIM) * 0.6)
        vector = class_centre[row["morphology_class"]] + source
        vector = vector + rng.normal(size=EMBEDDING_DIM) * 0.4
        rows.append(
            {
                "obs_publisher_did": did,
                "model_id": MODEL_IDS[kinds[did]],
                "vector": (vector / np.linalg.norm(vector)).astype(np.float32),
            }
        )
    compatible = [
        (a, b)
        for a in SCIENTIFIC_CATEGORIES
        for b in SCIENTIFIC_CATEGORIES
        if (a, b) not in INCOMPATIBLE
    ]
    fixture.write_rows(
        catalogue,
        {
            "similarity.model": models,
            "similarity.embedding": rows,
            "similarity.category_compat": fixture.category_pairs(compatible),
        },
    )


def _describe(
    catalogue: Catalogue, product_keys: dict[str, str], files: dict[str, Path]
) -> PageArchive:
    obscore = catalogue.table("ivoa.obscore")
    image = catalogue.table("similarity.image")
    now = datetime.now(UTC).replace(tzinfo=None)
    with catalogue.begin() as conn:
        rows = conn.execute(
            sa.select(
                obscore.c.obs_publisher_did, obscore.c.obs_release_date, image.c.image_kind
            ).join(image, image.c.obs_publisher_did == obscore.c.obs_publisher_did)
        ).all()
    public = {did: kind for did, release, kind in rows if release is not None and release <= now}
    proprietary = {did for did, *_ in rows} - set(public)
    return PageArchive(public, proprietary, product_keys, files)
