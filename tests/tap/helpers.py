"""Small helpers shared by the TAP tests: read a VOTable response, its status INFOs, TAP_SCHEMA."""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET

import httpx
import sqlalchemy as sa
from astropy.io.votable import parse
from astropy.io.votable.tree import VOTableFile

from tap_schema import Catalogue

VOTABLE_NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"

http = httpx.Client(timeout=60)
"""One client for all tests: a new httpx client per request costs about 0.1 s."""


def votable(content: bytes) -> VOTableFile:
    """Parse a VOTable with astropy, strictly (warnings become failures)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse(io.BytesIO(content), verify="exception")


def query_status(content: bytes) -> list[tuple[str, str]]:
    """The ``(value, text)`` of every INFO name="QUERY_STATUS" in the results RESOURCE, in order."""
    root = ET.fromstring(content)
    resource = root.find(f"{VOTABLE_NS}RESOURCE")
    assert resource is not None and resource.get("type") == "results"
    return [
        (info.get("value"), (info.text or "").strip())
        for info in resource.iter(f"{VOTABLE_NS}INFO")
        if info.get("name") == "QUERY_STATUS"
    ]


def sync(tap_url: str, query: str, **params: object) -> httpx.Response:
    """GET a synchronous ADQL query."""
    return http.get(f"{tap_url}/sync", params={"LANG": "ADQL", "QUERY": query, **params})


def tap_schema_columns(catalogue: Catalogue, table: str) -> dict[str, dict]:
    """The TAP_SCHEMA.columns rows of one table, by column name."""
    columns = catalogue.table("TAP_SCHEMA.columns")
    with catalogue.begin() as conn:
        rows = conn.execute(sa.select(columns).where(columns.c.table_name == table)).all()
    return {row.column_name: dict(row._mapping) for row in rows}
