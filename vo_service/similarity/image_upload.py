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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from astropy.io import fits

from model_training.ingest.cutout import Cutout, make_cutout
from model_training.ingest.fits_image import FitsReadError, declared_pixels, read_fits_image

from .errors import UploadError, UploadTooLargeError

__all__ = ["IMAGE_FIELD", "UploadedImage", "read_uploaded_image"]

IMAGE_FIELD = "IMAGE"
"""Name of the multipart file field that carries the uploaded FITS image."""

UPLOAD_MAX_PIXELS = 1 << 24
"""Most pixels (all axes) of an uploaded image: 64 MiB of float32, a 4096² map or a
512² cube of 64 channels; far more than a 64×64 cut-out needs."""

_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 2880
_MAX_HEADER_BYTES = 100 * _BLOCK
_CHUNK = 1 << 16
_EXTENSIONS_MARGIN = 1 << 20


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
        When the file is larger than ``limit_bytes``, or its image (gzipped or
        not) has more than `UPLOAD_MAX_PIXELS` pixels.
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
        with path.open("wb") as file:
            if content.startswith(_GZIP_MAGIC):
                _gunzip(content, file)
            else:
                file.write(content)
        try:
            image = read_fits_image(
                path, max_pixels=UPLOAD_MAX_PIXELS, max_decompressed_bytes=UPLOAD_MAX_PIXELS * 8
            )
            cutout = make_cutout(
                image.flux_map, image.wcs, image.noise, guard_edges=not image.is_alma
            )
        except FitsReadError as error:
            raise UploadError(f"the uploaded image cannot be used: {error.reason}") from error
        except ValueError as error:
            raise UploadError(f"the uploaded image cannot be used: {error}") from error
    return UploadedImage(image.image_kind, cutout, file_name)


def _gunzip(content: bytes, file: BinaryIO) -> None:
    """Decompress a gzipped upload into ``file``, refusing a decompression bomb early.

    astropy decompresses a whole ``.fits.gz`` to open it (13 s for 1 GB of
    zeros), so the upload is decompressed here, chunk by chunk: the first
    header is read first and an image larger than `UPLOAD_MAX_PIXELS`
    refused at once; then at most what that header declares (plus room for
    small extensions, or for an image in an extension) is written out.
    """
    inflater = zlib.decompressobj(wbits=31)
    try:
        head = inflater.decompress(content, _MAX_HEADER_BYTES)
        pixels = declared_pixels(_first_header(head))
        if pixels > UPLOAD_MAX_PIXELS:
            raise UploadTooLargeError(_too_many_pixels(pixels))
        budget = UPLOAD_MAX_PIXELS * 8 + _MAX_HEADER_BYTES + _EXTENSIONS_MARGIN
        written = len(head)
        file.write(head)
        pending = inflater.unconsumed_tail
        while pending or (inflater.eof and inflater.unused_data):
            if inflater.eof:  # the next member of a multi-member gzip file
                pending = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            written += len(chunk)
            if written > budget:
                raise UploadTooLargeError(
                    f"the uploaded file decompresses to more than {budget} bytes; this "
                    f"service accepts images of at most {UPLOAD_MAX_PIXELS} pixels"
                )
            file.write(chunk)
    except zlib.error as error:
        raise UploadError(f"the uploaded file is not valid gzip: {error}") from error


def _first_header(head: bytes) -> fits.Header:
    """Parse the primary header from the first decompressed bytes of a FITS file."""
    for end in range(_BLOCK, len(head) + 1, _BLOCK):
        block = head[end - _BLOCK : end]
        for card in range(0, _BLOCK, 80):
            if block[card : card + 80].rstrip() == b"END":
                try:
                    return fits.Header.fromstring(head[:end].decode("ascii"))
                except (UnicodeDecodeError, ValueError) as error:
                    raise UploadError(
                        f"the uploaded file's FITS header cannot be read: {error}"
                    ) from error
    raise UploadError("the uploaded file is not FITS: no END card in its first header")


def _too_many_pixels(pixels: int) -> str:
    return (
        f"the uploaded image has {pixels} pixels; this service accepts images of at most "
        f"{UPLOAD_MAX_PIXELS} pixels: cut out the region of interest first"
    )
