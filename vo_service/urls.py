"""Where the service publishes each thing about a product: the URLs in its responses.

One place builds every URL that DataLink, the similarity service and the
page hand out, so that they agree with the route table in `vo_service.app`.
URLs are rooted at the application's public base URL
(`vo_service.public_base`: the configured public URL, a trusted proxy's
forwarded headers, or the URL the client reached, with the path vosim is
mounted at), so that links work under any prefix and behind a proxy.
Identifiers and product keys are percent-encoded whole: a DID contains
``?`` and ``/``, and file names may bring ``+`` (which a query string would
read as a space).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from starlette.requests import Request

from .public_base import public_base_url

__all__ = ["ServiceUrls"]


@lru_cache(maxsize=1 << 17)
def _encoded(text: str) -> str:
    """Percent-encode a whole identifier; cached, as a ranking of 1000 rows repeats them."""
    return quote(text, safe="")


@dataclass(frozen=True)
class ServiceUrls:
    """The URLs of one deployment of the service.

    Parameters
    ----------
    base
        Root URL of the application, without a trailing slash.
    """

    base: str

    @classmethod
    def from_request(cls, request: Request) -> ServiceUrls:
        """Return the URLs as seen by the client of ``request``."""
        return cls(public_base_url(request))

    @property
    def tap(self) -> str:
        """The TAP service's base URL (TAP 1.1 section 2)."""
        return f"{self.base}/tap"

    @property
    def tap_jobs(self) -> str:
        """The async job list (TAP 1.1 section 2.2, UWS 1.1 section 2.2.1)."""
        return f"{self.tap}/async"

    def tap_job(self, job_id: str) -> str:
        """Return the URL of one async job."""
        return f"{self.tap_jobs}/{_encoded(job_id)}"

    @property
    def datalink_service(self) -> str:
        """The DataLink ``{links}`` endpoint."""
        return f"{self.base}/datalink"

    @property
    def similarity_service(self) -> str:
        """The synchronous similarity endpoint."""
        return f"{self.base}/similarity/sync"

    def datalink(self, did: str) -> str:
        """Return the ``{links}`` URL of one product."""
        return f"{self.datalink_service}?ID={_encoded(did)}"

    def preview(self, product_key: str) -> str:
        """Return the URL of a product's PNG preview."""
        return f"{self.base}/preview/{_encoded(product_key)}.png"

    def file(self, product_key: str) -> str:
        """Return the URL of a product's FITS file."""
        return f"{self.base}/files/{_encoded(product_key)}.fits"

    @property
    def similar_page(self) -> str:
        """The similarity page, without a selection."""
        return f"{self.base}/similar"

    def page(self, did: str) -> str:
        """Return the URL of an image's similarity page, for a person."""
        return f"{self.similar_page}?ID={_encoded(did)}"

    def static(self, name: str) -> str:
        """Return the URL of a static file of the pages (script, style sheet, icon)."""
        return f"{self.base}/static/{name}"
