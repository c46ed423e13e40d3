"""The Felis descriptions of every table vosim creates, read from ``yaml/``.

The YAML files are the single source of truth: the database layer builds its
SQLAlchemy tables from them and fills ``TAP_SCHEMA`` from them, so a column is
described exactly once.
"""

from __future__ import annotations

import io
from functools import cache
from importlib import resources

from felis.datamodel import Schema
from felis.tap_schema import TableManager

__all__ = [
    "INTERNAL_SCHEMAS",
    "PUBLISHED_SCHEMAS",
    "TAP_SCHEMA_NAME",
    "load_schema",
    "tap_schema_schema",
]

PUBLISHED_SCHEMAS: tuple[str, ...] = ("ivoa", "similarity")
"""Schemas described in TAP_SCHEMA and so reachable by ADQL, in TAP_SCHEMA order."""

INTERNAL_SCHEMAS: tuple[str, ...] = ("vosim",)
"""Schemas for vosim's own bookkeeping; never published, never reachable by ADQL."""

TAP_SCHEMA_NAME = "TAP_SCHEMA"


@cache
def load_schema(name: str) -> Schema:
    """Read and validate the Felis description of one schema.

    Parameters
    ----------
    name
        Schema name, one of `PUBLISHED_SCHEMAS` or `INTERNAL_SCHEMAS`.

    Returns
    -------
    felis.datamodel.Schema
        The validated schema. Cached: treat it as read-only.
    """
    if name not in PUBLISHED_SCHEMAS + INTERNAL_SCHEMAS:
        raise KeyError(f"no Felis description for schema {name!r}")
    text = resources.files("tap_schema").joinpath("yaml", f"{name}.yaml").read_text("utf-8")
    return Schema.from_stream(io.StringIO(text))


@cache
def tap_schema_schema() -> Schema:
    """Return the Felis description of TAP_SCHEMA 1.1 itself, as shipped with Felis."""
    return TableManager.load_schema_resource()
