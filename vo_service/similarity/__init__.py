"""The similarity service: rank public images against a combination of selected images.

Handlers (`handlers`: HTTP) call the service (`service`: no HTTP), which
ranks with the in-memory index (`index`, `ranking`) built from what
`storage` reads from the catalogue.
"""

from .index import IndexOptions, KindIndex
from .service import SimilarityLimits, SimilarityQuery, SimilarityResult, SimilarityService

__all__ = [
    "IndexOptions",
    "KindIndex",
    "SimilarityLimits",
    "SimilarityQuery",
    "SimilarityResult",
    "SimilarityService",
]
