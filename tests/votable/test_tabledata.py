"""TABLEDATA rows as a VOTable reader sees them: exact floats, escaping, NULLs.

The rows are written by `VOTableWriter` (whose TABLEDATA comes from
`vo_service.votable.tabledata`) and read back with astropy.io.votable, the
parser pyvo uses, so each assertion is about what a client gets.
"""

from __future__ import annotations

import io
import math
import random
import struct

import numpy as np
import pytest
from astropy.io.votable import parse_single_table

from vo_service.votable.columns import ResultColumn
from vo_service.votable.formats import OUTPUT_FORMATS
from vo_service.votable.writers import table_writer

TABLEDATA = next(f for f in OUTPUT_FORMATS if f.serialization == "TABLEDATA")
COLUMNS = (
    ResultColumn(name="x", datatype="double"),
    ResultColumn(name="n", datatype="long"),
    ResultColumn(name="name", datatype="char", arraysize="*"),
    ResultColumn(name="t", datatype="char", arraysize="*", xtype="timestamp"),
)


def read_back(columns, batches):
    """Write batches of rows with the VOTable writer; return the table astropy reads."""
    writer = table_writer(TABLEDATA, columns)
    body = writer.head() + b"".join(writer.rows(b) for b in batches)
    body += writer.tail(overflow=False, error=None)
    return parse_single_table(io.BytesIO(body)), body


def random_doubles(rng, count):
    """Doubles of every magnitude, from random bit patterns (finite ones only)."""
    values = []
    while len(values) < count:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            values.append(value)
    return values


@pytest.mark.parametrize("repeated", [False, True])
def test_every_double_reads_back_exactly(repeated: bool) -> None:
    rng = random.Random(5)
    values = [*random_doubles(rng, 300), 5e-324, 1.7976931348623157e308, 0.1, 1e16, 1e-5]
    if repeated:  # a column of few distinct values is written once per value
        values = [rng.choice(values[:5]) for _ in range(400)]
    rows = [(v, 1, "a", None) for v in values]
    table, _ = read_back(COLUMNS, [rows[:150], rows[150:]])
    got = table.array["x"]
    assert [float(v) for v in got] == values
    assert not np.ma.getmaskarray(got).any()


def test_signed_zeros_keep_their_sign_in_a_column_of_repeats() -> None:
    values = [0.0, -0.0] * 50
    table, body = read_back(COLUMNS, [[(v, 1, "a", None) for v in values]])
    assert [math.copysign(1.0, v) for v in table.array["x"]] == [1.0, -1.0] * 50
    assert b"<TD>-0.0</TD>" in body


def test_nulls_nan_and_infinities() -> None:
    rows = [
        (None, None, None, None),
        (math.nan, 3, "x", "2020-01-02T03:04:05"),
        (math.inf, 4, "", "2020-01-02 03:04:05+00:00"),
        (-math.inf, None, "y", "2020-01-02T03:04:05Z"),
        ("-Infinity", 5, "z", None),  # PostgreSQL's text of a float
    ]
    table, body = read_back(COLUMNS, [rows])
    x = table.array["x"].filled(np.nan)  # astropy masks NULL and NaN alike
    assert math.isnan(x[0]) and math.isnan(x[1])
    assert x[2] == math.inf and x[3] == -math.inf and x[4] == -math.inf
    assert list(np.ma.getmaskarray(table.array["n"])) == [True, False, False, True, False]
    assert [int(v) for v in table.array["n"][[1, 2, 4]]] == [3, 4, 5]
    assert b"<TD>+Inf</TD>" in body and b"<TD>-Inf</TD>" in body and b"<TD>NaN</TD>" in body
    times = [str(v) for v in table.array["t"].filled("")]
    assert times == ["", "2020-01-02T03:04:05", "2020-01-02T03:04:05", "2020-01-02T03:04:05", ""]


def test_postgresql_float_text_is_written_as_is() -> None:
    rows = [("204.9133949359964", 1, "a", None), ("1e-05", 2, "b", None), ("NaN", 3, "c", None)]
    table, body = read_back(COLUMNS, [rows])
    assert b"<TD>204.9133949359964</TD>" in body and b"<TD>1e-05</TD>" in body
    x = table.array["x"].filled(np.nan)
    assert list(x[:2]) == [204.9133949359964, 1e-05] and math.isnan(x[2])


def test_markup_and_characters_xml_forbids_in_text() -> None:
    names = ["a & b", "<i>x</i>", "plain", "bell\x07", "tab\tand\nline", "ünïcode ☃", None]
    rows = [(1.5, i, name, None) for i, name in enumerate(names)]
    table, body = read_back(COLUMNS, [rows])
    got = [str(v) for v in table.array["name"].filled("")]
    assert got == ["a & b", "<i>x</i>", "plain", "bell?", "tab\tand\nline", "ünïcode ☃", ""]
    assert b"a &amp; b" in body and b"&lt;i&gt;x&lt;/i&gt;" in body


def test_text_that_looks_like_a_format_is_text() -> None:
    rows = [(1.0, 1, "100% %s %r %d", None), (2.0, 2, "%(x)s", None)]
    table, _ = read_back(COLUMNS, [rows])
    assert [str(v) for v in table.array["name"]] == ["100% %s %r %d", "%(x)s"]


def test_other_value_types_go_through_the_column_formatters() -> None:
    """Integers in a double column, booleans and Decimal-like values keep their values."""
    from decimal import Decimal

    columns = (*COLUMNS, ResultColumn(name="flag", datatype="boolean"))
    rows = [(1, True, b"bytes", None, True), (Decimal("2.5"), 7, "s", None, False)]
    table, _ = read_back(columns, [rows])
    assert list(table.array["x"]) == [1.0, 2.5]
    assert list(table.array["n"]) == [1, 7]
    assert [str(v) for v in table.array["name"]] == ["bytes", "s"]
    assert list(table.array["flag"]) == [True, False]


def test_text_of_special_floats_gets_the_votable_spelling() -> None:
    """SQLite may hold text in a REAL column; PostgreSQL writes 'Infinity'."""
    rows = [("inf", 1, "a", None), ("Infinity", 2, "b", None), ("NaN", 3, "c", None)]
    _, body = read_back(COLUMNS, [rows])
    assert body.count(b"<TD>+Inf</TD>") == 2 and b"<TD>NaN</TD>" in body
