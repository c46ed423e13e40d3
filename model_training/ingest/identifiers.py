"""A product's identifiers: its publisher DID (an IVOA identifier) and its URL key.

An archive's products already have publisher DIDs, and plugin mode joins
the archive's ``ivoa.obscore`` on them, so a DID given by the archive (in
the metadata file) is kept as it is; vosim mints one only when none is
given. Any DID an archive uses must work in vosim's URLs, so the key of
``/preview/{key}.png`` and ``/files/{key}.fits`` is not taken from the DID
or the file name but is a digest of the DID: opaque, URL-safe, the same on
every run. A product ingested before keeps the key it had, so that URLs
already handed out keep working.

IVOA Identifiers 2.0 (section 2): ``ivo://`` (the scheme compared
case-insensitively), an authority of at least three characters, an
optional resource key (path segments), an optional ``?`` query (the local
part, which carries the archive's own dataset name, as in
``ivo://eso.org/ID?uid://A001/X1296/X1d3``) and an optional ``#`` fragment;
all of it RFC 3986 characters, anything else percent-encoded.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["DidError", "check_did", "key_for_did"]

KEY_LENGTH = 32
"""Hexadecimal digits of a product key: 128 bits of SHA-256, no collision in practice."""

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMITERS = r"!$&'()*+,;="
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMITERS}:@]|%[0-9A-Fa-f]{{2}})"
_IVOID = re.compile(
    r"(?i:ivo)://"
    rf"(?P<authority>[A-Za-z0-9][{_UNRESERVED}{_SUB_DELIMITERS}]{{2,}})"
    rf"(?P<path>(?:/{_PCHAR}*)*)"
    rf"(?:\?(?P<query>(?:{_PCHAR}|[/?])*))?"
    rf"(?:#(?P<fragment>(?:{_PCHAR}|[/?])*))?"
)


class DidError(ValueError):
    """A publisher DID that is not an IVOA identifier."""


def check_did(did: str) -> str:
    """Return ``did`` if it is an IVOA Identifiers 2.0 URI, else raise `DidError`.

    Raises
    ------
    DidError
        Saying what is wrong, so that the operator can fix the metadata file.
    """
    if _IVOID.fullmatch(did):
        return did
    if not did.lower().startswith("ivo://"):
        reason = "it does not start with ivo://"
    elif re.search(r"\s", did):
        reason = "it contains white space (percent-encode it as %20)"
    elif re.search(r"%(?![0-9A-Fa-f]{2})", did):
        reason = "it has a % not followed by two hexadecimal digits"
    elif not re.match(
        rf"ivo://[A-Za-z0-9][{_UNRESERVED}{_SUB_DELIMITERS}]{{2,}}(?:[/?#]|$)", did, re.I
    ):
        reason = "its authority (after ivo://) is not at least three letters, digits or . _ ~ -"
    else:
        reason = "it has characters that a URI must percent-encode"
    raise DidError(
        f"obs_publisher_did {did!r} is not an IVOA identifier ({reason}); IVOA Identifiers 2.0"
        " asks for ivo://authority/resource-key?local-part"
    )


def key_for_did(did: str) -> str:
    """Return the URL key of a new product: a SHA-256 digest of its DID, in hexadecimal."""
    return hashlib.sha256(did.encode("utf-8")).hexdigest()[:KEY_LENGTH]
