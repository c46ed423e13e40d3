"""The errors a similarity request can end in, each with a message the user can act on.

As in TAP (DALI 1.1, section 4.2), a request the client can fix is a 4xx
and one the service failed to complete a 5xx. The handlers turn these into
the protocol's error form in one place: a DALI error document for VOTable
requests, ``{"error": message}`` for JSON ones.
"""

from __future__ import annotations

from vo_service.dali import ServiceError

__all__ = [
    "NotFoundError",
    "ParameterError",
    "SimilarityError",
    "UnavailableError",
    "UploadError",
    "UploadTooLargeError",
]


class SimilarityError(ServiceError):
    """A similarity request that ended without a result."""


class ParameterError(SimilarityError):
    """A missing, repeated, malformed or contradictory parameter."""

    status_code = 400


class NotFoundError(SimilarityError):
    """An identifier that names no public image with a similarity vector."""

    status_code = 404


class UploadError(SimilarityError):
    """An uploaded image that cannot be read or cut out."""

    status_code = 400


class UploadTooLargeError(UploadError):
    """An upload over the size the service accepts."""

    status_code = 413


class UnavailableError(SimilarityError):
    """The service cannot rank this kind of image yet (no current model, no vectors)."""

    status_code = 503
