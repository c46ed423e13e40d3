"""The ingested images of one kind, as the training, embedding and evaluation stages see them.

Ingest leaves three things per image: its ObsCore row (``ivoa.obscore``),
its similarity row (``similarity.image``: which kind of map) and its
bookkeeping row (``vosim.product``: file and row of the cut-out store). An
`ImageSet` is the join of the three for one image kind, in cut-out store
order, together with the cut-outs themselves.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from model_training.ingest.cutout_store import CutoutStore
from tap_schema import Catalogue, Settings
from tap_schema.release import released, utc_now

__all__ = [
    "IMAGE_KINDS",
    "ImageSet",
    "SourceLabels",
    "load_image_set",
    "read_truth",
    "source_labels",
]

IMAGE_KINDS = ("continuum", "peak_flux")


@dataclass(frozen=True)
class ImageSet:
    """Images of one or more kinds, one entry per image, ordered by cut-out row.

    Attributes
    ----------
    obs_publisher_did
        IVOA dataset identifiers.
    image_kind
        ``continuum`` or ``peak_flux`` of each image.
    cutout_index
        Row of each image in the cut-out store.
    product_key
        URL-safe key of the product (ingest's name for previews and files).
    file_name
        Name of the FITS file (without its folder).
    target_name
        ObsCore target name (the observer's name for the source).
    is_public
        Whether the image's release date has passed.
    """

    obs_publisher_did: np.ndarray
    image_kind: np.ndarray
    cutout_index: np.ndarray
    product_key: np.ndarray
    file_name: np.ndarray
    target_name: np.ndarray
    is_public: np.ndarray

    def __len__(self) -> int:
        return len(self.obs_publisher_did)

    def subset(self, mask: np.ndarray) -> ImageSet:
        """Return the images that ``mask`` (booleans or positions) selects."""
        return ImageSet(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})

    def cutouts(self, settings: Settings) -> np.ndarray:
        """Read these images' cut-outs ``(N, 64, 64)`` float32 into memory."""
        store = CutoutStore(settings.cutout_store).open_memmap()
        return np.ascontiguousarray(store[self.cutout_index], dtype=np.float32)


def load_image_set(
    catalogue: Catalogue, kinds: str | tuple[str, ...], *, public_only: bool = False
) -> ImageSet:
    """Load the images of some kinds from the catalogue.

    Parameters
    ----------
    catalogue
        The open catalogue.
    kinds
        One image kind or several (a model may be trained on both).
    public_only
        Leave out images whose release date is in the future or unknown:
        their vectors must never be published.

    Returns
    -------
    ImageSet
        The images, ordered by cut-out row.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = set(kinds) - set(IMAGE_KINDS)
    if unknown:
        raise ValueError(f"unknown image kind {sorted(unknown)}; use {' or '.join(IMAGE_KINDS)}")
    image = catalogue.table("similarity.image")
    product = catalogue.table("vosim.product")
    obscore = catalogue.table("ivoa.obscore")
    public = released(obscore.c.obs_release_date, utc_now())
    query = (
        sa.select(
            image.c.obs_publisher_did,
            image.c.image_kind,
            product.c.cutout_index,
            product.c.product_key,
            product.c.file_path,
            obscore.c.target_name,
            sa.case((public, True), else_=False).label("is_public"),
        )
        .join(product, product.c.obs_publisher_did == image.c.obs_publisher_did)
        .join(obscore, obscore.c.obs_publisher_did == image.c.obs_publisher_did)
        .where(image.c.image_kind.in_(kinds))
        .order_by(product.c.cutout_index)
    )
    if public_only:
        query = query.where(public)
    with catalogue.begin() as conn:
        rows = conn.execute(query).all()
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    return ImageSet(
        obs_publisher_did=np.array(columns[0], dtype=object),
        image_kind=np.array(columns[1], dtype=object),
        cutout_index=np.array(columns[2], dtype=np.int64),
        product_key=np.array(columns[3], dtype=object),
        file_name=np.array([Path(path).name for path in columns[4]], dtype=object),
        target_name=np.array(["" if t is None else t for t in columns[5]], dtype=object),
        is_public=np.array(columns[6], dtype=bool),
    )


@dataclass(frozen=True)
class SourceLabels:
    """What is known about each image's source, for the retrieval score.

    Attributes
    ----------
    source
        Source identifier of each image; images of one source are the
        "relevant" answers to each other.
    morphology
        Morphology class of each image, or ``None`` where unknown.
    origin
        ``truth`` (a truth file) or ``target_name`` (ObsCore).
    """

    source: np.ndarray
    morphology: np.ndarray | None
    origin: str


def source_labels(images: ImageSet, truth: Path | None = None) -> SourceLabels:
    """Label each image with its source: from a truth file, else by target name.

    In a real archive the same source is often observed several times under
    the same target name (the paper's outlook); a demo archive's truth file
    knows the sources and their morphology classes exactly.
    """
    if truth is None:
        return SourceLabels(images.target_name.astype(str), None, "target_name")
    rows = read_truth(truth)
    source = np.empty(len(images), dtype=object)
    morphology = np.empty(len(images), dtype=object)
    for position, (name, key) in enumerate(zip(images.file_name, images.product_key, strict=True)):
        row = rows.get(name) or rows.get(f"{key}.fits")
        if row is None:
            raise ValueError(f"{truth} has no row for the ingested image {name}")
        source[position], morphology[position] = row
    return SourceLabels(source.astype(str), morphology.astype(str), "truth")


def read_truth(path: Path) -> dict[str, tuple[str, str]]:
    """Read a demo archive's ``truth.csv``: file name → (source_id, morphology_class).

    The ``file`` column is the path of the image inside the archive; images
    are matched to ingested products by file name (``vosim.product.file_path``),
    or else by product key plus ``.fits``.
    """
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "source_id", "morphology_class"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks the columns {', '.join(sorted(missing))}")
        return {
            Path(row["file"]).name: (
                row["source_id"],
                row["morphology_class"],
            )
            for row in reader
        }
