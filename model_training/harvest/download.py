"""Fetch one product's FITS file from an archive: directly, or through its DataLink ``#this``.

``access_url`` is the file itself when ``access_format`` is FITS, and a
DataLink ``{links}`` document when it is DataLink (DataLink 1.1, section
3); then the ``#this`` row of the product's DID is the file (read with
pyvo's `DatalinkResults`). Downloads stream to a file with a size limit,
are retried with exponential back-off on 5xx answers, timeouts and broken
connections, and end as one of three outcomes: the file, `Proprietary`
(401/403, or a DataLink ``NotAuthorizedFault``: the archive does not serve
it yet), or `FetchFailed` with a sentence for the report.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

__all__ = ["FetchFailed", "FetchLimits", "Fetched", "Fetcher", "Proprietary"]

DATALINK_CONTENT = "content=datalink"
FITS_FORMATS = ("application/fits", "image/fits", "application/x-fits")
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

T = TypeVar("T")


class Proprietary(Exception):  # noqa: N818 (an outcome, not an error)
    """The archive does not serve the product (yet): 401, 403 or NotAuthorizedFault."""


class FetchFailed(Exception):  # noqa: N818 (an outcome of one product, not of the harvest)
    """The product could not be fetched; the message is the report's reason.

    ``refused`` is true when the archive answered and would not serve it (a
    4xx answer, a DataLink fault): for a product without a release date that
    is the archive's proprietary rule, not an error.
    """

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


@dataclass(frozen=True)
class FetchLimits:
    """How hard to try, and how much to accept.

    Parameters
    ----------
    max_bytes
        Largest file accepted; a larger one fails without being stored.
    retries
        Further attempts after a 5xx answer, a timeout or a broken connection.
    backoff_s
        Wait before the first retry; doubled for each further one.
    timeout_s
        Connect and read timeout of one request.
    """

    max_bytes: int = 4 << 30
    retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Fetched:
    """A downloaded file, and the URL it came from."""

    path: Path
    url: str
    size: int


class Fetcher:
    """Downloads products over one pooled HTTP client (thread-safe).

    Parameters
    ----------
    limits
        Size limit, retries, back-off, timeout.
    on_bytes
        Called with each chunk's size, for the progress bar's bytes/s.
    """

    def __init__(self, limits: FetchLimits, on_bytes: Callable[[int], None] | None = None) -> None:
        self.limits = limits
        self.on_bytes = on_bytes or (lambda _n: None)
        self.client = httpx.Client(
            timeout=limits.timeout_s,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def fetch(self, did: str, access_url: str, access_format: str, target: Path) -> Fetched:
        """Download a product's FITS file to ``target`` (``.gz`` appended if it is gzipped).

        Raises
        ------
        Proprietary
            If the archive refuses it as not authorised.
        FetchFailed
            For every other reason, with the sentence to report.
        """
        fmt = access_format.lower()
        url = access_url
        if DATALINK_CONTENT in fmt:
            url = self._this_link(did, access_url)
        elif fmt and not fmt.startswith(FITS_FORMATS):
            raise FetchFailed(f"access_format {access_format!r} is neither FITS nor DataLink")
        return self._download(url, target)

    def _this_link(self, did: str, links_url: str) -> str:
        """Return the ``#this`` access URL of ``did`` in its DataLink document."""
        from astropy.io.votable import parse
        from pyvo.dal.adhoc import DatalinkResults

        document = self._exchange(links_url, lambda response: response.read())
        try:
            links = DatalinkResults(parse(io.BytesIO(document)), url=links_url)
        except Exception as error:  # any parse failure is this product's failure
            raise FetchFailed(f"{links_url} is not a DataLink document ({error})") from None
        this = links.bysemantics("#this", include_narrower=False)  # no vocabulary download
        rows = [row for row in this if _text(row["ID"]) in ("", did)]
        for row in rows:
            message = _text(row["error_message"])
            if not message and _text(row["access_url"]):
                return _text(row["access_url"])
        if not rows:
            raise FetchFailed(f"its DataLink document {links_url} has no #this row")
        message = _text(rows[0]["error_message"])
        if message.startswith("NotAuthorizedFault"):
            raise Proprietary(f"the archive's DataLink says {message}")
        raise FetchFailed(f"its DataLink #this row says {message!r}", refused=True)

    def _download(self, url: str, target: Path) -> Fetched:
        size = self._exchange(url, lambda response: self._store(url, response, target))
        with target.open("rb") as stream:
            if stream.read(2) == _GZIP_MAGIC:
                target = target.rename(target.with_name(target.name + ".gz"))
        return Fetched(target, url, size)

    def _store(self, url: str, response: httpx.Response, target: Path) -> int:
        """Stream a response's body into ``target``; return its size.

        Nothing is left at ``target`` when the body is too large or breaks
        off (the broken one is tried again by `_exchange`).
        """
        limit = self.limits.max_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchFailed(_too_large(url, int(declared), limit))
        size = 0
        try:
            with target.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise FetchFailed(_too_large(url, size, limit))
                    out.write(chunk)
                    self.on_bytes(len(chunk))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return size

    def _exchange(self, url: str, consume: Callable[[httpx.Response], T]) -> T:
        """GET ``url`` and ``consume`` its body, trying again on 5xx, timeouts and broken links.

        A timeout or a broken connection counts the same whether it comes
        before the answer or in the middle of its body: the whole exchange
        is tried again, after ``backoff_s``, then twice as long each time.
        """
        for attempt in range(self.limits.retries + 1):
            times = f"{attempt + 1} time{'s' if attempt else ''}"
            last = attempt == self.limits.retries
            try:
                response = self.client.send(self.client.build_request("GET", url), stream=True)
                try:
                    status = response.status_code
                    if status < 400:
                        return consume(response)
                finally:
                    response.close()
            except httpx.TimeoutException:
                if last:
                    raise FetchFailed(f"{url} timed out {times}") from None
            except httpx.HTTPError as error:
                if last:
                    raise FetchFailed(f"cannot reach {url}, {times} ({error})") from None
            else:
                if status in (401, 403):
                    raise Proprietary(f"the archive answers {status} for {url}")
                if status < 500:
                    raise FetchFailed(f"the archive answers {status} for {url}", refused=True)
                if last:
                    raise FetchFailed(f"{url}: the archive answered {status}, {times}")
            time.sleep(self.limits.backoff_s * 2**attempt)
        raise AssertionError("unreachable")


def _too_large(url: str, size: int, limit: int) -> str:
    return (
        f"{url} is larger than the limit of {limit:,} bytes (at least {size:,});"
        " raise --max-file-size to harvest it"
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = str(value)
    return "" if text == "--" else text.strip()
