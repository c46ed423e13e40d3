"""The operator's metadata file: ObsCore values the FITS headers do not carry.

ALMA image headers say where and when, but not the scientific category of
the proposal or when the data become public. The archive knows those; ingest
takes them from a CSV file with one row per FITS file::

    file,scientific_category,obs_release_date,t_exptime
    2016.1.00001.S/uid___A001_X1_X2.cont.fits,"Galaxies and galactic nuclei",2018-03-01,3024

``file`` is the path relative to the ingested folder or the bare file name.
Every other column is an ``ivoa.obscore`` column, typed by its Felis
description; a non-empty value replaces what the header gives, an empty one
leaves it. Unknown columns are reported once and ignored. A value that does
not parse as its column's type is an error for that file only.

``obs_publisher_did`` and ``obs_id`` are the archive's own identifiers of the
product: given, they are kept (a DID must be an IVOA identifier, see
`model_training.ingest.identifiers`); without them vosim mints its own.
``t_min`` and ``t_max`` are MJD numbers, or ISO dates that are converted.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tap_schema import load_schema
from tap_schema.release import naive_utc

from .identifiers import DidError, check_did

__all__ = [
    "DERIVED_COLUMNS",
    "MetadataError",
    "MetadataFile",
    "MetadataValueError",
    "metadata_digest",
    "obscore_column_types",
    "read_metadata",
    "typed_value",
]

FILE_COLUMN = "file"
"""The key column: a file's path relative to the ingested folder, or its bare name."""

DERIVED_COLUMNS = frozenset({"access_url", "access_format", "image_kind"})
"""ObsCore columns vosim derives itself: DataLink, previews and the similarity
tables depend on them, so a metadata file cannot replace them."""

_STRING_TYPES = frozenset({"string", "char", "unicode", "text"})
_INTEGER_TYPES = frozenset({"byte", "short", "int", "long"})
_FLOAT_TYPES = frozenset({"float", "double"})
_MJD_COLUMNS = frozenset({"t_min", "t_max"})
_MJD_EPOCH = datetime(1858, 11, 17)


class MetadataError(ValueError):
    """The metadata file as a whole cannot be used (missing, unreadable, no ``file`` column)."""


class MetadataValueError(ValueError):
    """A metadata value that does not fit its column; an error for that one file."""


@dataclass
class MetadataFile:
    """The rows of a metadata file, by file, with their columns checked against ObsCore.

    Parameters
    ----------
    path
        The CSV file.
    column_types
        Felis datatype of each usable column.
    rows
        Raw, non-empty values of each row, by the row's ``file`` value.
    warnings
        One line per problem that does not stop any file: unknown or derived
        columns, duplicate rows.
    """

    path: Path
    column_types: dict[str, str]
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _used: set[str] = field(default_factory=set)

    def raw_values(self, relative_path: str) -> dict[str, str]:
        """Return a file's raw values: by relative path first, then by bare name."""
        for key in (relative_path, relative_path.rsplit("/", 1)[-1]):
            if key in self.rows:
                self._used.add(key)
                return self.rows[key]
        return {}

    def values_for(self, relative_path: str) -> dict[str, Any]:
        """Return a file's typed values, ready to override its ObsCore row.

        Raises
        ------
        MetadataValueError
            If a value does not parse as its column's type.
        """
        return {
            name: _typed(name, self.column_types[name], raw)
            for name, raw in self.raw_values(relative_path).items()
        }

    def unused_rows(self) -> list[str]:
        """Row keys that matched no file (call after every file was looked up)."""
        return sorted(set(self.rows) - self._used)


def read_metadata(path: Path | str) -> MetadataFile:
    """Read a metadata CSV (UTF-8, a header line, comma-separated).

    Raises
    ------
    MetadataError
        If the file cannot be read or has no ``file`` column.
    """
    path = Path(path)
    known = obscore_column_types()
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            header = [name.strip() for name in reader.fieldnames or []]
            if FILE_COLUMN not in header:
                raise MetadataError(
                    f"{path}: no '{FILE_COLUMN}' column in the header line {header}: the first"
                    " line must name the columns, one of them 'file' (path relative to the"
                    " ingested folder, or the file name)"
                )
            metadata = MetadataFile(path=path, column_types={})
            for name in header:
                if name == FILE_COLUMN:
                    continue
                if name in DERIVED_COLUMNS:
                    metadata.warnings.append(
                        f"{path}: column '{name}' is derived by vosim and cannot be set; ignored"
                    )
                elif name in known:
                    metadata.column_types[name] = known[name]
                else:
                    metadata.warnings.append(
                        f"{path}: column '{name}' is not an ivoa.obscore column; ignored"
                    )
            for line, raw in enumerate(reader, start=2):
                values = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
                key = values.pop(FILE_COLUMN, "").replace("\\", "/").removeprefix("./")
                if not key:
                    metadata.warnings.append(f"{path}:{line}: no file name; row ignored")
                    continue
                if key in metadata.rows:
                    metadata.warnings.append(
                        f"{path}:{line}: a second row for '{key}'; the last one is used"
                    )
                metadata.rows[key] = {
                    name: value
                    for name, value in values.items()
                    if value and name in metadata.column_types
                }
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MetadataError(f"{path}: cannot read the metadata file ({error})") from error
    return metadata


def metadata_digest(values: Mapping[str, str]) -> str | None:
    """Fingerprint a file's metadata values, so that a changed row re-ingests the file."""
    if not values:
        return None
    text = json.dumps(sorted(values.items()), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def obscore_column_types() -> dict[str, str]:
    """Felis datatype of every ``ivoa.obscore`` column, by name."""
    obscore = next(table for table in load_schema("ivoa").tables if table.name == "obscore")
    return {column.name: column.datatype.value for column in obscore.columns}


def typed_value(name: str, datatype: str, raw: str) -> Any:
    """Parse one raw value (text, as in a CSV or a VOTable cell) as its ObsCore column's type.

    Raises
    ------
    MetadataValueError
        If the value does not parse.
    """
    return _typed(name, datatype, raw)


def _typed(name: str, datatype: str, raw: str) -> Any:
    if name == "obs_publisher_did":
        try:
            return check_did(raw)
        except DidError as error:
            raise MetadataValueError(f"metadata column {error}") from None
    if name in _MJD_COLUMNS:
        return _mjd(name, raw)
    try:
        if datatype in _STRING_TYPES:
            return raw
        if datatype in _INTEGER_TYPES:
            number = float(raw)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if datatype in _FLOAT_TYPES:
            return float(raw)
        if datatype == "timestamp":
            return _parse_timestamp(raw)
    except ValueError:
        expected = {
            **dict.fromkeys(_INTEGER_TYPES, "an integer"),
            **dict.fromkeys(_FLOAT_TYPES, "a number"),
            "timestamp": "an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss, UTC)",
        }[datatype]
        raise MetadataValueError(
            f"metadata column '{name}' has {raw!r}, which is not {expected}; fix the metadata file"
        ) from None
    raise MetadataValueError(
        f"metadata column '{name}' is of type {datatype}, which a CSV value cannot fill;"
        " remove the column from the metadata file"
    )


def _mjd(name: str, raw: str) -> float:
    """Return a time column's value: an MJD number as is, an ISO date converted to MJD (UTC)."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return (_parse_timestamp(raw) - _MJD_EPOCH) / timedelta(days=1)
    except ValueError:
        raise MetadataValueError(
            f"metadata column '{name}' has {raw!r}, which is neither an MJD (a number of days,"
            " e.g. 58849.5) nor an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss, UTC);"
            " fix the metadata file"
        ) from None


def _parse_timestamp(raw: str) -> datetime:
    text = raw[:-1] if raw.endswith("Z") else raw
    parsed = datetime.fromisoformat(text)
    return naive_utc(parsed)
