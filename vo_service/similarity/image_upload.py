"""An uploaded FITS image, turned into what the archive's own images are: a 64×64 cut-out.

Search by an uploaded image (``POST /similarity/sync`` with a multipart file
field ``IMAGE``) must see the upload exactly as ingest saw every archive
image, or its vector would not be comparable: the same reader
(`model_training.ingest.fits_image.read_fits_image`: continuum image or peak-flux
map of a cube, CASA's axes, blanking, scaling, gzip) and the paper's cut-out
rule (`model_training.ingest.cutout.make_cutout`: centred on the brightest pixel if
its S/N exceeds 5, else on the image centre; normalised). Whatever makes a
file unusable is reported with ingest's own sentence (`FitsReadError`).

Why a plain file field rather than DALI's ``UPLOAD=name,param:name``: DALI
(and TAP 1.1 section 3.3) define UPLOAD for tables, which the service joins
by name; an image is neither a table nor named in a query. A file field is
what an HTML form, ``curl -F IMAGE=@map.fits`` and ``requests.post(files=…)``
send without further ado.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from model_training.ingest.cutout import Cutout, make_cutout
from model_training.ingest.fits_image import FitsReadError, read_fits_image

from .errors import UploadError, UploadTooLargeError

__all__ = ["IMAGE_FIELD", "UploadedImage", "read_uploaded_image"]

IMAGE_FIELD = "IMAGE"
"""Name of the multipart file field that carries the uploaded FITS image."""


@dataclass(frozen=True)
class UploadedImage:
    """The cut-out of an uploaded image and what kind of map it was cut from."""

    image_kind: str
    cutout: Cutout
    file_name: str | None


def read_uploaded_image(
    content: bytes, file_name: str | None, *, limit_bytes: int
) -> UploadedImage:
    """Read an uploaded FITS file and cut out its 64×64 cut-out as ingest does.

    Raises
    ------
    UploadTooLargeError
        When the file is larger than ``limit_bytes``.
    UploadError
        When it is empty or not an image ingest could read.
    """
    if len(content) > limit_bytes:
        raise UploadTooLargeError(
            f"the uploaded image has {len(content)} bytes; this service accepts at most "
            f"{limit_bytes} bytes"
        )
    if not content:
        raise UploadError(f"the {IMAGE_FIELD} part is empty: upload a FITS image")
    with tempfile.TemporaryDirectory(prefix="vosim-upload-") as folder:
        path = Path(folder) / "upload.fits"
        path.write_bytes(content)
        try:
            image = read_fits_image(path)
            cutout = make_cutout(image.flux_map, image.wcs, image.noise)
        except FitsReadError as error:
            raise UploadError(f"the uploaded image cannot be used: {error.reason}") from error
        except ValueError as error:
            raise UploadError(f"the uploaded image cannot be used: {error}") from error
    return UploadedImage(image.image_kind, cutout, file_name)
