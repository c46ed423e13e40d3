"""TAP_UPLOAD: tables a client sends along with its query (TAP 1.1 section 2.3.8, DALI 1.1 3.2.4).

A request names each table and where its content is: inline
(``UPLOAD=t1,param:t1`` with the content in the multipart part ``t1``) or at
an http(s) URL, which DALI 1.1 requires services to support; the query then
reads it as ``TAP_UPLOAD.t1``. The content may be a VOTable (required by TAP) or a CSV
file with a header line. astropy reads both: its VOTable parser keeps every
FIELD's metadata, which the result of ``SELECT * FROM TAP_UPLOAD.t1`` must
give back unchanged. The tables are loaded into temporary tables of the query's
own transaction by `vo_service.tap.query_database.QuerySession`.
"""

from __future__ import annotations

import io
import ipaddress
import re
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
from astropy.io import ascii as astropy_ascii
from astropy.io.votable import parse_single_table

from vo_service.dali import DaliParameters
from vo_service.votable.columns import ResultColumn

from .errors import UploadError

__all__ = ["UploadTable", "parse_upload_parameter", "read_upload"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_FETCH_TIMEOUT_S = 30.0
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class UploadTable:
    """The content of one uploaded table, ready to be loaded into the database."""

    name: str
    """The name the query uses after ``TAP_UPLOAD.``."""
    columns: tuple[ResultColumn, ...]
    rows: list[tuple[object, ...]]


@dataclass(frozen=True)
class UploadReference:
    """One ``name,URI`` pair of the UPLOAD parameter."""

    name: str
    uri: str


def parse_upload_parameter(values: list[str]) -> list[UploadReference]:
    """Split UPLOAD values into ``(name, URI)`` pairs.

    DALI 1.1 repeats the parameter for several tables; TAP 1.0 clients join
    them with ``;`` in one value. Both are accepted.

    Raises
    ------
    UploadError
        For a malformed pair, an invalid or repeated table name.
    """
    references: list[UploadReference] = []
    for value in values:
        for item in filter(None, (part.strip() for part in value.split(";"))):
            name, comma, uri = item.partition(",")
            name, uri = name.strip(), uri.strip()
            if not comma or not uri:
                raise UploadError(
                    f"UPLOAD={item!r} is not a 'name,URI' pair; write e.g. UPLOAD=t1,param:t1 "
                    "and send the table in the multipart part t1"
                )
            if not _NAME.fullmatch(name):
                raise UploadError(
                    f"upload table name {name!r} is not valid: use a letter followed by up to 63 "
                    "letters, digits or underscores"
                )
            references.append(UploadReference(name, uri))
    seen: set[str] = set()
    for reference in references:
        if reference.name.lower() in seen:
            raise UploadError(f"upload table name {reference.name!r} is used twice")
        seen.add(reference.name.lower())
    return references


def read_upload(
    reference: UploadReference,
    params: DaliParameters,
    *,
    max_bytes: int,
    resolve: Callable[[str], bytes | None] | None = None,
    private_urls: bool = False,
) -> UploadTable:
    """Read the table an UPLOAD pair points to.

    Parameters
    ----------
    reference
        The table name and URI: ``param:`` (inline) or ``http(s):``.
    params
        The request, holding the inline parts.
    max_bytes
        Largest table accepted (TAPRegExt ``uploadLimit``).
    resolve
        Where an async job finds inline content saved at creation time,
        by part name; the request's own parts otherwise.
    private_urls
        Let a URL reach loopback and private addresses (an operator's
        setting, `TapLimits.upload_url_private`); link-local ones (cloud
        metadata services) never.

    Raises
    ------
    UploadError
        When the content is missing, too large, or neither a VOTable nor CSV.
    """
    scheme, _, rest = reference.uri.partition(":")
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        return _table_from_url(reference, max_bytes, private_urls)
    if scheme == "param" and rest:
        content = _inline(reference, rest, params, resolve)
    else:
        raise UploadError(
            f"UPLOAD URI {reference.uri!r} is not supported: give an http(s) URL, or send the "
            f"table inline (UPLOAD={reference.name},param:{reference.name} with a multipart "
            f"part named {reference.name})"
        )
    if len(content) > max_bytes:
        raise UploadError(
            f"upload {reference.name} is larger than the limit of {max_bytes} bytes of this "
            "service (uploadLimit in /tap/capabilities)"
        )
    return _parse_table(reference.name, content)


def _inline(
    reference: UploadReference,
    part_name: str,
    params: DaliParameters,
    resolve: Callable[[str], bytes | None] | None,
) -> bytes:
    content = resolve(part_name) if resolve else None
    if content is None:
        part = params.find_inline(part_name)
        content = part.content if part is not None else None
    if content is None:
        raise UploadError(
            f"UPLOAD {reference.name} refers to the multipart part {part_name!r}, which the "
            "request does not contain; POST it as multipart/form-data"
        )
    return content


def _table_from_url(reference: UploadReference, max_bytes: int, private: bool) -> UploadTable:
    """Fetch and read a table by URL; every failure gives the same message.

    A server that fetches what clients name must not become their probe of
    the networks it can reach: only public addresses are contacted (unless
    the operator allows private ones), each redirect is checked again, the
    connection goes to the address that was checked (no DNS rebinding), the
    size and the total time are bounded, and whether the host refused,
    timed out, answered an error or answered something else than a table,
    the client reads one sentence.
    """
    try:
        return _parse_table(reference.name, _fetch(reference.uri, max_bytes, private))
    except (UploadError, httpx.HTTPError, OSError, ValueError) as error:
        raise UploadError(
            f"upload {reference.name}: no table could be read from its URL; the service reads "
            "a VOTable or CSV file from a public http(s) address that answers within "
            f"{_FETCH_TIMEOUT_S:g} s with at most {max_bytes} bytes"
        ) from error


def _fetch(url: str, max_bytes: int, private: bool) -> bytes:
    """Download ``url`` (following checked redirects), stopping past ``max_bytes``."""
    deadline = time.monotonic() + _FETCH_TIMEOUT_S
    for _ in range(_MAX_REDIRECTS + 1):
        target = httpx.URL(url)
        if target.scheme not in ("http", "https") or not target.host:
            raise UploadError("not an http(s) URL")
        address = _checked_address(target, private)
        pinned = target.copy_with(host=address)
        headers = {"Host": target.netloc.decode("ascii")}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = max(0.1, deadline - time.monotonic())
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = client.send(request, stream=True)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = str(target.join(response.headers["location"]))
                    continue
                if response.status_code != 200:
                    raise UploadError(f"HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise UploadError("too large")
                    if time.monotonic() > deadline:
                        raise UploadError("too slow")
                return bytes(data)
            finally:
                response.close()
    raise UploadError("too many redirects")


def _checked_address(url: httpx.URL, private: bool) -> str:
    """Resolve the URL's host and return one address the service may contact."""
    port = url.port or (443 if url.scheme == "https" else 80)
    infos = socket.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(_allowed(address, private) for address in addresses):
        raise UploadError("address not allowed")
    return str(addresses[0])


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, private: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return False
    if address.is_global:
        return True
    return private and (address.is_loopback or address.is_private)


def _parse_table(name: str, content: bytes) -> UploadTable:
    stripped = content.lstrip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        stripped = stripped[3:].lstrip()
    try:
        if stripped.startswith(b"<"):
            return _parse_votable(name, content)
        return _parse_csv(name, content)
    except UploadError:
        raise
    except Exception as error:  # astropy raises many types for malformed input
        raise UploadError(
            f"upload {name} could not be read as a VOTable or a CSV file with a header line: "
            f"{error}"
        ) from error


def _parse_votable(name: str, content: bytes) -> UploadTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        votable = parse_single_table(io.BytesIO(content), verify="ignore")
    array = votable.array
    columns: list[ResultColumn] = []
    data: list[list[object]] = []
    for field, key in zip(votable.fields, array.dtype.names, strict=True):
        columns.append(
            ResultColumn(
                name=field.name or field.ID,
                datatype=field.datatype,
                # arraysize="1" is deprecated (VOTable 1.3 erratum 3): it means a scalar
                arraysize=None if field.arraysize in (None, "1") else field.arraysize,
                xtype=field.xtype,
                unit=str(field.unit) if field.unit is not None else None,
                ucd=field.ucd,
                utype=field.utype,
                description=field.description,
            )
        )
        data.append(_column_values(array[key], field.datatype, field.arraysize))
    _check_column_names(name, columns)
    return UploadTable(name, tuple(columns), list(zip(*data, strict=True)) if data else [])


def _column_values(column: np.ma.MaskedArray, datatype: str, arraysize: str | None) -> list:
    """Plain Python values of a VOTable column, None where masked."""
    is_text = datatype in ("char", "unicodeChar")
    mask = np.ma.getmaskarray(column)
    values = np.ma.getdata(column)
    if is_text or not arraysize:
        if mask.ndim > 1:
            mask = mask.all(axis=tuple(range(1, mask.ndim)))
        out = values.tolist()
        if is_text:
            out = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in out]
        return [None if masked else value for value, masked in zip(out, mask.tolist(), strict=True)]
    # numeric arrays: stored as text, "1.5 2.5", the TABLEDATA form
    result: list[object] = []
    for value, masked in zip(values, mask, strict=True):
        if np.all(masked):
            result.append(None)
        else:
            flat = np.ma.getdata(value).ravel()
            result.append(" ".join(str(x) for x in flat.tolist()))
    return result


def _parse_csv(name: str, content: bytes) -> UploadTable:
    text = content.decode("utf-8-sig")
    table = astropy_ascii.read(text, format="csv", guess=False, fast_reader=False)
    columns: list[ResultColumn] = []
    data: list[list[object]] = []
    for column_name in table.colnames:
        column = table[column_name]
        kind = column.dtype.kind
        datatype, arraysize = {
            "i": ("long", None),
            "u": ("long", None),
            "f": ("double", None),
            "b": ("boolean", None),
        }.get(kind, ("char", "*"))
        mask = np.ma.getmaskarray(column).tolist()
        values = np.asarray(column).tolist()
        data.append([None if m else v for v, m in zip(values, mask, strict=True)])
        columns.append(ResultColumn(name=column_name, datatype=datatype, arraysize=arraysize))
    _check_column_names(name, columns)
    return UploadTable(name, tuple(columns), list(zip(*data, strict=True)) if data else [])


def _check_column_names(name: str, columns: list[ResultColumn]) -> None:
    seen: set[str] = set()
    if not columns:
        raise UploadError(f"upload {name} has no columns")
    for column in columns:
        if not column.name:
            raise UploadError(f"upload {name} has a column without a name")
        if column.name.lower() in seen:
            raise UploadError(
                f"upload {name} has two columns named {column.name!r} (names are compared "
                "without case)"
            )
        seen.add(column.name.lower())
