"""The base URL of the URLs stored in the catalogue, and their rewriting for a response.

Ingest stores absolute URLs in published columns (ObsCore 1.1 section 4.7
asks ``access_url`` to be a URL a client can follow; ``similarity.image``
has ``preview_url``), yet the URL at which a deployment is reached may
change after ingest: a new public host, a mount under
``/archive/vosim``, a reverse proxy, or several of them at once (each
request's own base). Rather than store relative URLs (which a reader of
the database, or of a copy of the tables in an archive's own TAP service,
could not follow), the catalogue records, in vosim's unpublished
``vosim.setting`` table, the one base under which all its stored URLs
were written, and every response that shows them (TAP results) swaps
that base for the response's own (`StoredUrls`).

Ingest writes new rows under the recorded base (`claim_stored_url_base`),
so that one base holds for the whole catalogue whatever ``VOSIM_PUBLIC_URL``
said on later runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .database import Catalogue

__all__ = [
    "STORED_URL_BASE",
    "StoredUrlBase",
    "StoredUrls",
    "claim_stored_url_base",
    "read_stored_url_base",
    "stored_urls_for",
]

STORED_URL_BASE = "stored_url_base"
"""Name of the ``vosim.setting`` row holding the base of the stored URLs."""


def read_stored_url_base(catalogue: Catalogue) -> str | None:
    """Return the base under which the catalogue's URLs were stored; None before any ingest."""
    setting = catalogue.table("vosim.setting")
    with catalogue.begin() as conn:
        return conn.execute(
            sa.select(setting.c.value).where(setting.c.name == STORED_URL_BASE)
        ).scalar_one_or_none()


def claim_stored_url_base(catalogue: Catalogue, proposed: str) -> str:
    """Return the base new rows must be stored under: the recorded one, else ``proposed``.

    The first ingest records ``proposed`` (the configured public URL);
    later ones keep the recorded base, so that all stored URLs share it and
    one rewrite on output fits them all.
    """
    setting = catalogue.table("vosim.setting")
    proposed = proposed.rstrip("/")
    with catalogue.begin() as conn:
        recorded = conn.execute(
            sa.select(setting.c.value).where(setting.c.name == STORED_URL_BASE)
        ).scalar_one_or_none()
        if recorded is not None:
            return recorded
        conn.execute(setting.insert().values(name=STORED_URL_BASE, value=proposed))
    return proposed


@dataclass(frozen=True)
class StoredUrls:
    """Rewrites stored URLs from the catalogue's stored base to a response's base.

    Any text value that starts with the stored base followed by ``/`` is
    one of vosim's own stored URLs (nothing else starts with the exact base
    of this deployment), whatever the ADQL query did to select it: a
    column renamed with ``AS``, taken through a JOIN or a UNION is rewritten
    as well. A query that *compares* a stored URL (``WHERE access_url =
    '…'``) still sees the stored form; identify products by
    ``obs_publisher_did``.

    Parameters
    ----------
    stored_base
        The base the URLs were stored under (`read_stored_url_base`).
    public_base
        The base of the response (`vo_service.public_base`).
    """

    stored_base: str
    public_base: str

    @property
    def changes_anything(self) -> bool:
        """Whether the two bases differ."""
        return self.stored_base.rstrip("/") != self.public_base.rstrip("/")

    def rows(
        self, rows: Sequence[Sequence[object]], text_columns: Sequence[int]
    ) -> Sequence[Sequence[object]]:
        """Rewrite the text columns (their positions) of a batch of rows."""
        if not self.changes_anything or not text_columns or not rows:
            return rows
        prefix = self.stored_base.rstrip("/") + "/"
        start = len(prefix) - 1
        public = self.public_base.rstrip("/")
        rewritten = []
        for row in rows:
            values = list(row)
            for position in text_columns:
                value = values[position]
                if isinstance(value, str) and value.startswith(prefix):
                    values[position] = public + value[start:]
            rewritten.append(tuple(values))
        return rewritten


def stored_urls_for(catalogue: Catalogue, public_base: str) -> StoredUrls | None:
    """Return the rewriting of the stored URLs to ``public_base``; None if none is due."""
    return _rewriting(read_stored_url_base(catalogue), public_base)


def _rewriting(stored_base: str | None, public_base: str) -> StoredUrls | None:
    if stored_base is None:
        return None
    rewriting = StoredUrls(stored_base, public_base)
    return rewriting if rewriting.changes_anything else None


class StoredUrlBase:
    """The catalogue's stored URL base, for a service that answers many requests.

    Reading it is a transaction on the catalogue; a query service needs it
    for every response. Once recorded the base never changes (the first
    ingest records it and later ones keep it), so it is kept for good; until
    then it is looked up again at most every ``recheck_s`` seconds, the same
    delay after which the query database sees new TAP_SCHEMA entries.

    Parameters
    ----------
    catalogue
        The catalogue whose ``vosim.setting`` table records the base.
    recheck_s
        How long "no base recorded yet" is believed.
    """

    def __init__(self, catalogue: Catalogue, *, recheck_s: float = 30.0) -> None:
        self._catalogue = catalogue
        self._recheck_s = recheck_s
        self._base: str | None = None
        self._checked_at = -float("inf")
        self._lock = threading.Lock()

    def rewriting(self, public_base: str) -> StoredUrls | None:
        """Return the rewriting of the stored URLs to ``public_base``; None if none is due."""
        with self._lock:
            now = time.monotonic()
            if self._base is None and now - self._checked_at > self._recheck_s:
                self._base = read_stored_url_base(self._catalogue)
                self._checked_at = now
            stored_base = self._base
        return _rewriting(stored_base, public_base)
