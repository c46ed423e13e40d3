"""Ingest of one FITS file, up to but not including the catalogue: the work a pool process does.

For each file: read the 2-D map (`read_fits_image`), cut out the paper's
64×64 cut-out (`make_cutout`), write the preview PNG, and build the rows of
``ivoa.obscore`` and ``similarity.image``. Nothing here touches the
database, so any number of these can run in parallel; the parent process
writes what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tap_schema import Settings

from .cutout import make_cutout
from .fits_image import FitsReadError, read_fits_image
from .obscore_row import header_fallbacks, obscore_row, similarity_image_row
from .preview import write_preview
from .release_rule import RELEASE_AFTER_PERIOD

__all__ = [
    "PreparedProduct",
    "ProductFailure",
    "ProductTask",
    "prepare_product",
    "prepare_products",
]


@dataclass(frozen=True)
class ProductTask:
    """One file to ingest and everything needed to do it away from the database.

    Parameters
    ----------
    path
        Absolute path of the FITS file.
    relative_path
        Its path relative to the ingested folder (POSIX), for messages and metadata.
    key
        Its product key (URL-safe, unique in the archive; see `identifiers`).
    did
        Its publisher DID: the metadata's, else the minted one.
    file_size, file_mtime
        What ``stat`` said before reading; stored so that a re-run can skip it.
    metadata
        Typed metadata-file values that override the header.
    metadata_digest
        Fingerprint of the raw metadata values (None without any).
    settings
        The installation's settings (public URL, authority, preview folder).
    stored_path
        Where the catalogue says the file is, when not at ``path``: the
        archive's URL of a harvested file that is not kept.
    release_default
        The rule for its release date when the metadata gives none
        (`model_training.ingest.obscore_row.RELEASE_DEFAULTS`).
    """

    path: Path
    relative_path: str
    key: str
    did: str
    file_size: int
    file_mtime: float
    metadata: dict[str, Any]
    metadata_digest: str | None
    settings: Settings
    stored_path: str | None = None
    release_default: str = RELEASE_AFTER_PERIOD


@dataclass(frozen=True)
class PreparedProduct:
    """A file read and cut out, with its catalogue rows, waiting to be committed.

    ``fallbacks`` are the lines of `header_fallbacks`: ObsCore values that
    took the configured defaults because the header did not say.
    """

    task: ProductTask
    obscore: dict[str, Any]
    image: dict[str, Any]
    cutout: np.ndarray
    cutout_x: int
    cutout_y: int
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductFailure:
    """A file that could not be ingested, and why."""

    task: ProductTask
    reason: str

    @property
    def line(self) -> str:
        """The report line: ``path: reason``."""
        return f"{self.task.path}: {self.reason}"


def prepare_product(task: ProductTask) -> PreparedProduct | ProductFailure:
    """Read, cut out and preview one file and build its rows; never raises.

    A file that cannot be read, or whose header has an unusable value,
    becomes a `ProductFailure`, so one bad file cannot stop an ingest. So
    does an unexpected error, reported with its type to be findable.
    """
    try:
        image = read_fits_image(task.path)
        cutout = make_cutout(image.flux_map, image.wcs, image.noise, guard_edges=not image.is_alma)
        obscore = obscore_row(
            image,
            file_size=task.file_size,
            settings=task.settings,
            metadata=task.metadata,
            release_default=task.release_default,
        )
        write_preview(image.flux_map, task.settings.preview_dir / f"{task.key}.png")
    except FitsReadError as error:
        return ProductFailure(task, error.reason)
    except ValueError as error:
        return ProductFailure(task, str(error))
    except Exception as error:  # one bad file must not stop the ingest
        return ProductFailure(task, f"unexpected {type(error).__name__}: {error}")
    return PreparedProduct(
        task=task,
        obscore=obscore,
        image=similarity_image_row(
            image, cutout, did=obscore["obs_publisher_did"], key=task.key, settings=task.settings
        ),
        cutout=cutout.pixels,
        cutout_x=cutout.x,
        cutout_y=cutout.y,
        fallbacks=header_fallbacks(image, task.settings, task.metadata),
    )


def prepare_products(tasks: list[ProductTask]) -> list[PreparedProduct | ProductFailure]:
    """`prepare_product` for a chunk of files (one round trip to a pool process)."""
    return [prepare_product(task) for task in tasks]
