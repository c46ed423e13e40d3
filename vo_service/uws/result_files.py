"""Serving a stored job result under the reader's base URL instead of the one it was written under.

A result outlives the request that created its job and may be read by
anyone, through any of the service's public names. So its URLs (DataLink
service descriptors, ``access_url``, previews) are written under the
service's own base URL (`Settings.url_base`: ``VOSIM_PUBLIC_URL``), never a
client's ``Host``, which an attacker could have set to a host of their
choosing, and that base is swapped for the reader's as the file is sent, as
TAP results swap the catalogue's stored base (`tap_schema.stored_urls`).

The swap works on the bytes of text formats (VOTable TABLEDATA and the XML
around binary serializations, CSV, TSV, JSON): the base, followed by ``/``,
is vosim's own prefix and nothing else starts with it. Base64 streams of
BINARY and BINARY2 cannot contain it; a FITS table is sent as written
(its fixed-width strings would not survive the swap), under the service's
own base.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

__all__ = ["REWRITTEN_TYPES_EXCLUDED", "rebased_chunks", "rebased_size"]

REWRITTEN_TYPES_EXCLUDED = ("application/fits",)
"""Result types sent as written: their layout depends on the strings' lengths."""

_CHUNK = 256 * 1024


def rebased_size(path: Path, stored_base: str, public_base: str) -> int | None:
    """Return the size in bytes of the file as `rebased_chunks` sends it; None if it is gone.

    UWS documents give each result's size: it is measured once per file and
    reader's base (a result never changes once written).
    """
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    return _measured(str(path), mtime, stored_base, public_base)


@lru_cache(maxsize=256)
def _measured(path: str, _mtime_ns: int, stored_base: str, public_base: str) -> int:
    return sum(len(chunk) for chunk in rebased_chunks(Path(path), stored_base, public_base))


def rebased_chunks(path: Path, stored_base: str, public_base: str) -> Iterator[bytes]:
    """Yield the file's bytes with ``stored_base/`` replaced by ``public_base/``, in chunks.

    The bytes that could begin an occurrence cut by a chunk boundary are
    kept back for the next chunk; only the file's own bytes are searched,
    never a replacement (one base may extend the other).
    """
    old = stored_base.rstrip("/").encode() + b"/"
    new = public_base.rstrip("/").encode() + b"/"
    pending = b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            buffer = pending + chunk
            decided = len(buffer) - len(old) + 1  # an occurrence starting here or later is cut
            pieces, start = [], 0
            while (found := buffer.find(old, start, len(buffer))) != -1 and found < decided:
                pieces += [buffer[start:found], new]
                start = found + len(old)
            cut = max(start, decided)
            pieces.append(buffer[start:cut])
            pending = buffer[cut:]
            yield b"".join(pieces)
    yield pending
