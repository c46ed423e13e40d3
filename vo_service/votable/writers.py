"""Write a query result, batch by batch, in the format the request asked for.

A result is written as a head, the rows in batches, and a tail; nothing waits
for the whole table, so a large result streams to the client (or to the job's
result file) in constant memory, and an overflow or an error found while
writing still gets reported in the tail (DALI 1.1, section 4.4.1-4.4.2).

The VOTable frame comes from ``templates/tap/votable.xml``; the rows are
written here. astropy.io.votable could write the whole document, but it
builds the complete table in memory first and took longer than the rest of
a query (see ``benchmarks/tap_latency.py``), so rows are formatted a column
at a time by `vo_service.votable.values` (TABLEDATA by `vo_service.votable.tabledata`).
FITS, which needs the row count in its header before any row, is the
exception and uses astropy.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Protocol

import numpy as np
from astropy.table import Column, MaskedColumn, Table

from vo_service.templating import environment, xml_safe

from .columns import ResultColumn
from .formats import OutputFormat
from .service_descriptor import ServiceDescriptor
from .tabledata import TabledataRows
from .values import binary_field, column_shape, native_formatter, text_formatter

__all__ = ["TAP_STANDARD_ID", "TableWriter", "VOTableFrame", "table_writer"]

Row = Sequence[object]

TAP_STANDARD_ID = "ivo://ivoa.net/std/TAP"


@dataclass(frozen=True)
class VOTableFrame:
    """What a VOTable result says around its table, beyond the columns and rows.

    Parameters
    ----------
    standard_id
        The standard the response follows, as ``INFO name="standardID"``
        (DALI 1.1 section 4.4.3); None for none.
    infos
        Further ``(name, value)`` INFOs of the results RESOURCE.
    field_ids
        XML ``ID`` of the FIELD of some columns (by column name), for the
        ``ref`` of service descriptor parameters.
    service_descriptors
        DataLink service descriptors written after the results RESOURCE.
    overflow_message
        Text of the OVERFLOW status: what to do to get the rest.
    """

    standard_id: str | None = TAP_STANDARD_ID
    infos: tuple[tuple[str, str], ...] = ()
    field_ids: Mapping[str, str] = dataclass_field(default_factory=dict)
    service_descriptors: tuple[ServiceDescriptor, ...] = ()
    overflow_message: str = (
        "The result was truncated at MAXREC rows; raise MAXREC (up to the hard limit in "
        "/tap/capabilities) or narrow the query."
    )


class TableWriter(Protocol):
    """Writes one result table in three parts."""

    def head(self) -> bytes:
        """Everything before the first row."""

    def rows(self, rows: Sequence[Row]) -> bytes:
        """Write a batch of rows."""

    def tail(self, *, overflow: bool, error: str | None) -> bytes:
        """Everything after the last row, reporting truncation or an error where the format can."""


def table_writer(
    output: OutputFormat,
    columns: Sequence[ResultColumn],
    *,
    query: str | None = None,
    frame: VOTableFrame | None = None,
) -> TableWriter:
    """Return the writer of a result with these columns in this format.

    ``frame`` applies to VOTable only: the other formats have no place for
    service descriptors or INFOs.
    """
    if output.writer == "votable":
        return VOTableWriter(columns, output.serialization or "TABLEDATA", query=query, frame=frame)
    if output.writer == "csv":
        return DelimitedWriter(columns, delimiter=",")
    if output.writer == "tsv":
        return DelimitedWriter(columns, delimiter="\t")
    if output.writer == "json":
        return JsonWriter(columns)
    return FitsWriter(columns)


class VOTableWriter:
    """A VOTable 1.4 result in TABLEDATA, BINARY or BINARY2 serialisation."""

    def __init__(
        self,
        columns: Sequence[ResultColumn],
        serialization: str,
        *,
        query: str | None,
        frame: VOTableFrame | None = None,
    ):
        self.columns = tuple(columns)
        self.serialization = serialization
        self.query = query
        self.frame = frame or VOTableFrame()
        self._macros = environment().get_template("tap/votable.xml").module
        if serialization == "TABLEDATA":
            self._tabledata = TabledataRows(self.columns)
            self._null_literals: list[str | None] = [None] * len(self.columns)
        else:
            binary2 = serialization == "BINARY2"
            self._fields = [binary_field(column, binary2=binary2) for column in self.columns]
            self._null_literals = [f.null_literal for f in self._fields]
            self._mask_bytes = (len(self.columns) + 7) // 8 if binary2 else 0
            self._pending = b""

    def head(self) -> bytes:
        """Write the document up to the opening of the data."""
        return str(
            self._macros.head(
                self.columns, self.serialization, self.query, self._null_literals, self.frame
            )
        ).encode("utf-8")

    def rows(self, rows: Sequence[Row]) -> bytes:
        """Rows as TABLEDATA ``<TR>`` elements or as base64 of their binary form."""
        if not rows:
            return b""
        if self.serialization == "TABLEDATA":
            return self._tabledata(rows).encode("utf-8")
        return self._base64(self._binary(rows))

    def tail(self, *, overflow: bool, error: str | None) -> bytes:
        """Write the end of the data, the trailing status INFOs and the end of the document."""
        rest = b""
        if self.serialization != "TABLEDATA" and self._pending:
            rest, self._pending = base64.encodebytes(self._pending), b""
        text = self._macros.tail(
            self.serialization, overflow, xml_safe(error) if error else None, self.frame
        )
        return rest + str(text).encode("utf-8")

    def _binary(self, rows: Sequence[Row]) -> bytes:
        fields = self._fields
        mask_bytes = self._mask_bytes
        top_bit = 8 * mask_bytes - 1
        out = bytearray()
        for row in rows:
            parts = []
            mask = 0
            for index, (value, field) in enumerate(zip(row, fields, strict=True)):
                if value is None:
                    if mask_bytes:
                        mask |= 1 << (top_bit - index)
                    parts.append(field.null)
                else:
                    parts.append(field.encode(value))
            if mask_bytes:
                out += mask.to_bytes(mask_bytes, "big")
            out += b"".join(parts)
        return bytes(out)

    def _base64(self, data: bytes) -> bytes:
        """Base64 of the stream so far, keeping the last incomplete 3-byte group for later."""
        data = self._pending + data
        cut = len(data) - len(data) % 57  # 57 bytes = one 76-character base64 line
        self._pending = data[cut:]
        return base64.encodebytes(data[:cut]) if cut else b""


class DelimitedWriter:
    """CSV (RFC 4180, with a header line) or TSV (IANA text/tab-separated-values)."""

    def __init__(self, columns: Sequence[ResultColumn], *, delimiter: str) -> None:
        self.columns = tuple(columns)
        self.delimiter = delimiter
        self._formatters = [text_formatter(column) for column in self.columns]

    def head(self) -> bytes:
        """Write the header line of column names."""
        return self._lines([[column.name for column in self.columns]])

    def rows(self, rows: Sequence[Row]) -> bytes:
        """One line per row."""
        if not rows:
            return b""
        cells = [
            fmt(values)
            for fmt, values in zip(self._formatters, zip(*rows, strict=True), strict=True)
        ]
        return self._lines(list(zip(*cells, strict=True)))

    def tail(self, *, overflow: bool, error: str | None) -> bytes:
        """Nothing: CSV and TSV cannot report truncation (DALI 1.1, section 4.4.1)."""
        return b""

    def _lines(self, rows: Sequence[Sequence[str]]) -> bytes:
        if self.delimiter == "\t":
            # TSV values may not contain tabs or line breaks (TAP 1.1, section 5.2)
            table = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
            return "".join(
                "\t".join(v.translate(table) for v in row) + "\n" for row in rows
            ).encode()
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue().encode("utf-8")


class JsonWriter:
    """A JSON object with the column metadata and the rows as arrays.

    There is no IVOA JSON table format; this is the layout most TAP services
    that offer JSON use: ``{"metadata": [...], "data": [[...], ...]}``.
    """

    _KEYS = ("name", "datatype", "arraysize", "xtype", "unit", "ucd", "utype", "description")

    def __init__(self, columns: Sequence[ResultColumn]) -> None:
        self.columns = tuple(columns)
        self._formatters = [native_formatter(column) for column in self.columns]
        self._first = True

    def head(self) -> bytes:
        """Write the metadata and the opening of the data array."""
        metadata = [
            {key: getattr(column, key) for key in self._KEYS if getattr(column, key) is not None}
            for column in self.columns
        ]
        return ('{"metadata": ' + json.dumps(metadata) + ', "data": [\n').encode()

    def rows(self, rows: Sequence[Row]) -> bytes:
        """Rows as JSON arrays, comma-separated across batches."""
        if not rows:
            return b""
        lines = [
            json.dumps([fmt(value) for fmt, value in zip(self._formatters, row, strict=True)])
            for row in rows
        ]
        prefix = "" if self._first else ",\n"
        self._first = False
        return (prefix + ",\n".join(lines)).encode()

    def tail(self, *, overflow: bool, error: str | None) -> bytes:
        """Write the end of the data, with ``overflow`` and ``error`` members."""
        extra = ', "overflow": true' if overflow else ""
        if error:
            extra += ', "error": ' + json.dumps(error)
        return ("\n]" + extra + "}\n").encode()


class FitsWriter:
    """A FITS binary table, written by astropy once all rows are in."""

    def __init__(self, columns: Sequence[ResultColumn]) -> None:
        self.columns = tuple(columns)
        self._formatters = [native_formatter(column) for column in self.columns]
        self._values: list[list[object]] = [[] for _ in self.columns]

    def head(self) -> bytes:
        """Nothing yet: the FITS header needs the row count."""
        return b""

    def rows(self, rows: Sequence[Row]) -> bytes:
        """Keep the rows until the tail."""
        for row in rows:
            for values, fmt, value in zip(self._values, self._formatters, row, strict=True):
                values.append(fmt(value))
        return b""

    def tail(self, *, overflow: bool, error: str | None) -> bytes:
        """Write the whole FITS file (an error cannot be reported inside it: it is raised)."""
        if error:
            raise RuntimeError(error)
        table = Table()
        for column, values in zip(self.columns, self._values, strict=True):
            table[column.name] = _fits_column(column, values)
            table[column.name].unit = column.unit or None
            table[column.name].description = column.description
        buffer = io.BytesIO()
        table.meta["QUERYSTA"] = "OVERFLOW" if overflow else "OK"
        table.write(buffer, format="fits")
        return buffer.getvalue()


def _fits_column(column: ResultColumn, values: list[object]) -> Column:
    shape = column_shape(column)
    missing = [v is None for v in values]
    if shape.kind in ("text", "timestamp"):
        return Column(["" if v is None else v for v in values], dtype=str)
    if shape.kind == "array":
        dtype = np.float32 if column.datatype == "float" else np.float64
        arrays = [np.asarray(v if v is not None else [], dtype=dtype) for v in values]
        column_data = np.empty(len(arrays), dtype=object)
        column_data[:] = arrays
        return Column(column_data)
    if shape.kind == "real":
        return Column([np.nan if v is None else v for v in values], dtype=float)
    dtype = bool if shape.kind == "boolean" else _FITS_INTEGERS.get(column.datatype, np.int64)
    return MaskedColumn([0 if v is None else v for v in values], mask=missing, dtype=dtype)


_FITS_INTEGERS = {"unsignedByte": np.uint8, "short": np.int16, "int": np.int32, "long": np.int64}
