"""Turn database values into the text and bytes of a result table, one column at a time.

TAP 1.1 (section 5) and DALI 1.1 (section 3) fix how values are written:
numbers as in VOTable, booleans ``T``/``F``, timestamps as
``YYYY-MM-DDThh:mm:ss[.SSS]`` without a time zone, arrays as their values
separated by spaces, NULL as an empty cell. The database driver decides how
values arrive (SQLite: timestamps as text and vectors as float32 bytes;
PostgreSQL: ``datetime`` and lists), so the conversion is chosen per column
from its `ResultColumn` metadata, and applied to a whole column at once: a
list comprehension over a column is several times faster than a Python call
per value, which matters because this runs for every cell of every result.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from tap_schema import decode_float_array
from tap_schema.release import naive_utc

from .columns import ResultColumn

__all__ = [
    "FLOAT_SPELLINGS",
    "BinaryField",
    "ColumnShape",
    "binary_field",
    "column_shape",
    "native_formatter",
    "text_formatter",
]

TextFormatter = Callable[[Sequence[object]], list[str]]
NativeFormatter = Callable[[object], object]

_INTEGER_TYPES = frozenset({"unsignedByte", "short", "int", "long"})
_REAL_TYPES = frozenset({"float", "double"})
_CHAR_TYPES = frozenset({"char", "unicodeChar"})
FLOAT_SPELLINGS = {  # text of special floats -> their VOTable spelling
    "nan": "NaN",
    "inf": "+Inf",
    "-inf": "-Inf",
    "Infinity": "+Inf",  # PostgreSQL's text of its floats (see tap.database)
    "-Infinity": "-Inf",
}


@dataclass(frozen=True)
class ColumnShape:
    """What a column holds, read from its VOTable datatype, arraysize and xtype."""

    kind: str
    """``boolean``, ``integer``, ``real``, ``timestamp``, ``text`` or ``array``."""
    datatype: str
    fixed_length: int | None
    """Number of elements of a fixed-size array or string; None when variable or scalar."""
    variable: bool
    """True for arraysize ``*`` or ``n*``."""


def column_shape(column: ResultColumn) -> ColumnShape:
    """Classify a result column by its VOTable metadata."""
    arraysize = (column.arraysize or "").strip()
    variable = arraysize.endswith("*")
    fixed = None
    if arraysize and not variable:
        fixed = math.prod(int(part) for part in arraysize.split("x"))
    datatype = column.datatype
    if datatype in _CHAR_TYPES:
        kind = "timestamp" if (column.xtype or "").lower() == "timestamp" else "text"
        if not arraysize:
            fixed = 1
    elif arraysize:
        kind = "array"
    elif datatype == "boolean":
        kind = "boolean"
    elif datatype in _INTEGER_TYPES:
        kind = "integer"
    else:
        kind = "real"
    return ColumnShape(kind, datatype, fixed, variable)


# --- text (TABLEDATA, CSV, TSV) -------------------------------------------------------------


def text_formatter(column: ResultColumn) -> TextFormatter:
    """Return the function that writes a column's values as VOTable TABLEDATA text.

    The text is not XML-escaped; the VOTable writer escapes ``text`` columns,
    the only ones whose values can contain markup characters.
    """
    shape = column_shape(column)
    if shape.kind == "text":
        return _text_column
    if shape.kind == "real":
        return _real_column
    if shape.kind == "integer":
        return _integer_column
    if shape.kind == "boolean":
        return _boolean_column
    if shape.kind == "timestamp":
        return _timestamp_column
    single = shape.datatype == "float"
    return lambda values: ["" if v is None else _array_text(v, single) for v in values]


def _text_column(values: Sequence[object]) -> list[str]:
    return ["" if v is None else (v if v.__class__ is str else _any_text(v)) for v in values]


def _real_column(values: Sequence[object]) -> list[str]:
    out = [
        "" if v is None else (repr(v) if v.__class__ is float else _real_text(v)) for v in values
    ]
    if not FLOAT_SPELLINGS.keys().isdisjoint(out):
        out = [FLOAT_SPELLINGS.get(text, text) for text in out]
    return out


def _integer_column(values: Sequence[object]) -> list[str]:
    return [
        "" if v is None else (str(v) if v.__class__ is int else _integer_text(v)) for v in values
    ]


def _boolean_column(values: Sequence[object]) -> list[str]:
    return ["" if v is None else ("T" if v else "F") for v in values]


def _timestamp_column(values: Sequence[object]) -> list[str]:
    return ["" if v is None else _timestamp_text(v) for v in values]


def _any_text(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _real_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return repr(float(value))  # int, Decimal, numpy scalars


def _integer_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    return str(int(value))


def _timestamp_text(value: object) -> str:
    """Write a timestamp the DALI 1.1 way (section 3.3.3): ISO-8601, 'T', no time zone."""
    if isinstance(value, str):
        text = value.replace(" ", "T", 1)
        return text[:-6] if text.endswith("+00:00") else text.removesuffix("Z")
    if isinstance(value, datetime):
        return naive_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _array_values(value: object, single: bool) -> np.ndarray:
    if isinstance(value, bytes | memoryview):
        return decode_float_array(value)
    return np.asarray(value, dtype=np.float32 if single else None)


def _array_text(value: object, single: bool) -> str:
    if isinstance(value, str):
        return value
    array = _array_values(value, single)
    if array.dtype.kind == "f":
        text = " ".join(map(str, array))
        return text.replace("nan", "NaN").replace("inf", "Inf")
    return " ".join(map(str, array))


# --- native values (JSON, FITS) -------------------------------------------------------------


def native_formatter(column: ResultColumn) -> NativeFormatter:
    """Return a function giving a value as a plain Python object (for JSON and FITS)."""
    shape = column_shape(column)
    if shape.kind == "timestamp":
        return lambda v: None if v is None else _timestamp_text(v)
    if shape.kind == "text":
        return lambda v: None if v is None else (v if v.__class__ is str else _any_text(v))
    if shape.kind == "real":
        return _native_real
    if shape.kind == "integer":
        return lambda v: None if v is None else int(v)
    if shape.kind == "boolean":
        return lambda v: None if v is None else bool(v)
    single = shape.datatype == "float"

    def array(value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            return [float(x) for x in value.split()]
        values = _array_values(value, single)
        if values.dtype == np.float32:
            # the shortest text of each float32, not the float64 it widens to
            return [float(str(x)) for x in values]
        return values.tolist()

    return array


def _native_real(value: object) -> float | None:
    """Return the value as a float (from a number or PostgreSQL's text of one); NaN as None."""
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


# --- binary (BINARY, BINARY2) ---------------------------------------------------------------

_STRUCT = {
    "boolean": "c",
    "unsignedByte": "B",
    "short": ">h",
    "int": ">i",
    "long": ">q",
    "float": ">f",
    "double": ">d",
}
_NUMPY = {"unsignedByte": ">u1", "short": ">i2", "int": ">i4", "long": ">i8", "float": ">f4"}
_INTEGER_NULL = {"unsignedByte": 255, "short": -(2**15), "int": -(2**31), "long": -(2**63)}
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class BinaryField:
    """How one column is packed in a VOTable BINARY or BINARY2 stream (VOTable 1.4, §5.4-5.5)."""

    encode: Callable[[object], bytes]
    """Packs a non-NULL value."""
    null: bytes
    """Bytes written for NULL (BINARY2 also sets the column's bit in the NULL mask)."""
    null_literal: str | None
    """Value of ``<VALUES null="...">``: in BINARY, integers need one to express NULL."""


def binary_field(column: ResultColumn, *, binary2: bool) -> BinaryField:
    """Return the packer of a column for BINARY (``binary2=False``) or BINARY2."""
    shape = column_shape(column)
    if shape.kind in ("text", "timestamp"):
        return _string_field(shape, shape.kind == "timestamp")
    if shape.kind == "array":
        return _array_field(shape)
    if shape.kind == "boolean":
        return BinaryField(lambda v: b"T" if v else b"F", b"?", None)
    packer = struct.Struct(_STRUCT.get(shape.datatype, ">d"))
    if shape.kind == "integer":
        null_value = 0 if binary2 else _INTEGER_NULL[shape.datatype]
        return BinaryField(
            lambda v: packer.pack(int(v)),
            packer.pack(null_value),
            None if binary2 else str(null_value),
        )
    return BinaryField(lambda v: packer.pack(float(v)), packer.pack(math.nan), None)


def _string_field(shape: ColumnShape, timestamp: bool) -> BinaryField:
    wide = shape.datatype == "unicodeChar"
    encoding, width = ("utf-16-be", 2) if wide else ("utf-8", 1)

    def to_bytes(value: object) -> bytes:
        text = _timestamp_text(value) if timestamp else _text_column((value,))[0]
        return text.encode(encoding, "replace")

    if shape.fixed_length is not None:
        size = shape.fixed_length * width

        def fixed(value: object) -> bytes:
            return to_bytes(value)[:size].ljust(size, b"\0")

        return BinaryField(fixed, b"\0" * size, None)

    def variable(value: object) -> bytes:
        data = to_bytes(value)
        return _LENGTH.pack(len(data) // width) + data

    return BinaryField(variable, _LENGTH.pack(0), None)


def _array_field(shape: ColumnShape) -> BinaryField:
    dtype = np.dtype(_NUMPY.get(shape.datatype, ">f8"))
    single = shape.datatype == "float"

    def values(value: object) -> np.ndarray:
        if isinstance(value, str):
            return np.array([float(x) for x in value.split()], dtype=dtype)
        return _array_values(value, single).astype(dtype)

    if shape.fixed_length is not None:
        count = shape.fixed_length
        empty = np.full(count, np.nan if dtype.kind == "f" else 0, dtype=dtype)

        def fixed(value: object) -> bytes:
            array = values(value)[:count]
            if len(array) < count:
                array = np.concatenate([array, empty[len(array) :]])
            return array.tobytes()

        return BinaryField(fixed, empty.tobytes(), None)

    def variable(value: object) -> bytes:
        array = values(value)
        return _LENGTH.pack(len(array)) + array.tobytes()

    return BinaryField(variable, _LENGTH.pack(0), None)
