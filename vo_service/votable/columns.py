"""The metadata of a result column: what a VOTable FIELD says of it.

Every result vosim writes (TAP, DataLink ``{links}``, similarity) describes
its columns this way; the ADQL translator works out these values from
TAP_SCHEMA, and the writers turn them into FIELD attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResultColumn"]


@dataclass(frozen=True)
class ResultColumn:
    """Metadata of one output column, for the VOTable FIELD (as in TAP_SCHEMA.columns)."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
