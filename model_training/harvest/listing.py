"""The archive's list of image products: ``ivoa.obscore`` read in ADQL through pyvo.

One query per page of rows, keyset-paged on the publisher DID (``TOP n …
WHERE did > last ORDER BY did``), so that any archive size is read with
bounded memory and no service row limit truncates the list silently. The
release date, category and kind come from the columns the mapping file
names (`model_training.archive_mapping`); when it names another table than
``ivoa.obscore`` (DaCHS 2.7's obscore has no release date), that table is
joined on the DID.

Each row becomes an `ArchiveRecord`: the ObsCore values the archive knows
better than a FITS header (identifiers, target, times, bands, release
date, category), as raw text for the ingest's metadata parser, and a
digest of everything read, so that a changed row is harvested again.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import requests

from model_training.archive_mapping import ArchiveMapping, ArchiveMappingError
from model_training.ingest.metadata import MetadataValueError, typed_value

__all__ = ["PAGE_SIZE", "ArchiveRecord", "ListingError", "list_records", "pyvo_query"]

PAGE_SIZE = 5000
"""Rows per ADQL query: well under the default MAXREC of common services."""

IMAGE_TYPES = ("image", "cube")
"""``dataproduct_type`` values harvested: vosim compares 2-D maps (cubes as peak flux)."""

CARRIED = (
    "obs_id",
    "obs_collection",
    "facility_name",
    "instrument_name",
    "target_name",
    "t_min",
    "t_max",
    "t_exptime",
    "em_min",
    "em_max",
)
"""``ivoa.obscore`` columns (mandatory in ObsCore 1.1) taken over from the archive."""

_ACCESS = ("access_url", "access_format", "access_estsize", "dataproduct_type")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?")


class ListingError(RuntimeError):
    """The archive's TAP service refused or failed the query."""


@dataclass(frozen=True)
class ArchiveRecord:
    """One product as the archive lists it.

    Parameters
    ----------
    did
        Its publisher DID.
    access_url, access_format
        Where the file is, and whether that is the file or a DataLink document.
    estimated_size
        ``access_estsize`` in bytes (the archive gives kB), or None.
    release_date
        Naive UTC; None when the archive gives none.
    values
        Raw text of the ObsCore values to apply over the header (as in a
        metadata file row), with ``obs_publisher_did``.
    digest
        SHA-256 of every value read: another digest is a changed product.
    """

    did: str
    access_url: str
    access_format: str
    estimated_size: int | None
    release_date: datetime | None
    values: dict[str, str]
    digest: str

    def is_proprietary(self, now: datetime) -> bool:
        """Whether the archive's release date is still to come (unknown counts as public)."""
        return self.release_date is not None and self.release_date > now


Query = Callable[[str], list[dict[str, Any]]]
"""Run one ADQL query on the archive and return its rows as dictionaries."""


def list_records(
    query: Query,
    mapping: ArchiveMapping,
    where: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[ArchiveRecord | tuple[str, str]]:
    """Yield the archive's image and cube products, by DID, page after page.

    Parameters
    ----------
    query
        Runs ADQL on the archive (`pyvo_query` for a TAP URL).
    mapping
        Where the DID, release date, category and kind are.
    where
        An extra ADQL condition on ``ivoa.obscore`` (alias ``o``), e.g.
        ``o.obs_collection = 'ALMA'``; plain column names work too when unambiguous.
    page_size
        Rows per query.

    Yields
    ------
    ArchiveRecord or tuple of str
        A record, or ``(did, reason)`` for a row that cannot be harvested.
    """
    last: str | None = None
    while True:
        rows = query(_adql(mapping, where, last, page_size))
        for row in rows:
            yield _record(row)
        if len(rows) < page_size:
            return
        last = _text(rows[-1]["obs_publisher_did"])


def pyvo_query(
    tap_url: str, retries: int = 4, backoff_s: float = 1.0, timeout_s: float = 60.0
) -> Query:
    """Return a `Query` on a TAP service (synchronous, pyvo), retried on 5xx and timeouts.

    pyvo's synchronous queries wait for ever by default; each request here
    times out after ``timeout_s`` and is tried again like a 5xx answer.
    """
    import pyvo
    from pyvo.dal.exceptions import DALFormatError, DALQueryError, DALServiceError

    service = pyvo.dal.TAPService(tap_url, session=_TimedSession(timeout_s))

    def run(adql: str) -> list[dict[str, Any]]:
        for attempt in range(retries + 1):
            try:
                table = service.run_sync(adql).to_table()
            except DALQueryError as error:  # the service understood and refused
                raise ListingError(f"{tap_url} refused the query: {error}") from None
            except (DALServiceError, DALFormatError) as error:
                status = getattr(getattr(error, "cause", None), "response", None)
                code = getattr(status, "status_code", None)
                if (code is not None and code < 500) or attempt == retries:
                    raise ListingError(f"{tap_url}: the query failed: {error}") from None
                time.sleep(backoff_s * 2**attempt)
                continue
            names = table.colnames
            return [{name: row[name] for name in names} for row in table]
        raise AssertionError("unreachable")

    return run


class _TimedSession(requests.Session):
    """pyvo's session (its User-Agent), with a timeout on every request that sets none."""

    def __init__(self, timeout_s: float) -> None:
        from pyvo.utils.http import create_session

        super().__init__()
        self.headers.update(create_session().headers)
        self.timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().request(*args, **kwargs)


def _adql(mapping: ArchiveMapping, where: str | None, after: str | None, top: int) -> str:
    did = _column("o", mapping.publisher_did)
    joined = mapping.table.lower() != "ivoa.obscore"
    source = "m" if joined else "o"
    selected = [f"{did} AS obs_publisher_did"]
    selected += [f"o.{name}" for name in (*CARRIED, *_ACCESS)]
    selected.append(f"{_column(source, mapping.release_date)} AS obs_release_date")
    if mapping.category:
        selected.append(f"{_column(source, mapping.category)} AS scientific_category")
    tables = "ivoa.obscore AS o"
    if joined:
        table = _identifier(mapping.table)
        tables += f" JOIN {table} AS m ON m.{_identifier(mapping.publisher_did)} = {did}"
    kinds = ", ".join(f"'{kind}'" for kind in IMAGE_TYPES)
    conditions = [f"o.dataproduct_type IN ({kinds})"]
    if where:
        conditions.append(f"({where})")
    if after is not None:
        conditions.append(f"{did} > '{after.replace(chr(39), chr(39) * 2)}'")
    return (
        f"SELECT TOP {int(top)} {', '.join(selected)} FROM {tables}"
        f" WHERE {' AND '.join(conditions)} ORDER BY {did}"
    )


def _column(alias: str, name: str) -> str:
    return f"{alias}.{_identifier(name)}"


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ArchiveMappingError(
            f"{name!r} in the mapping file is not a plain ADQL name (letters, digits, _)"
        )
    return name


def _record(row: dict[str, Any]) -> ArchiveRecord | tuple[str, str]:
    raw = {name: _text(value) for name, value in row.items()}
    did = raw.get("obs_publisher_did") or ""
    if not did or not raw.get("access_url"):
        return did or "(no DID)", "the archive lists it without obs_publisher_did or access_url"
    try:
        release = (
            typed_value("obs_release_date", "timestamp", raw["obs_release_date"])
            if raw["obs_release_date"]
            else None
        )
    except MetadataValueError as error:
        return did, str(error).replace("fix the metadata file", "the archive's value")
    values = {
        name: raw[name]
        for name in ("obs_publisher_did", *CARRIED, "obs_release_date", "scientific_category")
        if raw.get(name)
    }
    size = raw.get("access_estsize")
    digest = hashlib.sha256(json.dumps(sorted(raw.items())).encode("utf-8")).hexdigest()
    return ArchiveRecord(
        did=did,
        access_url=raw["access_url"],
        access_format=raw.get("access_format") or "",
        estimated_size=int(float(size) * 1024) if size else None,
        release_date=release,
        values=values,
        digest=digest,
    )


def _text(value: Any) -> str:
    """Return a VOTable cell as the text a metadata file would hold ('' for NULL)."""
    if value is None or value is np.ma.masked or np.ma.is_masked(value):
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    if hasattr(value, "isot"):  # astropy Time
        return str(value.isot)
    return str(value).strip()
