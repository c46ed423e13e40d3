"""Where the service publishes each thing about a product: the URLs in its responses.

One place builds every URL that DataLink, the similarity service and the
page hand out, so that they agree with the route table in `vo_service.app`.
URLs are rooted at the base URL the client reached (as the TAP endpoints
do), so that links work behind whatever host name or port the client used.
Identifiers and product keys are percent-encoded whole: a DID contains
``?`` and ``/``, and file names may bring ``+`` (which a query string would
read as a space).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from starlette.requests import Request

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
        return cls(str(request.base_url).rstrip("/"))

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

    def page(self, did: str) -> str:
        """Return the URL of an image's similarity page, for a person."""
        return f"{self.base}/similar?ID={_encoded(did)}"
