"""The SQL functions the SQLite translation calls, registered on each connection.

SQLite's own math functions are optional at compile time and differ from
ADQL's (``log`` is base 10, ``trunc`` takes no digits, ``%`` truncates
floats), so every ADQL function gets an ``adql_`` function here whose result
matches PostgreSQL's: ROUND/TRUNCATE/MOD on the decimal value (as
PostgreSQL's ``numeric``), CAST to an integer rounding half to even (as
PostgreSQL's ``float8`` to ``int``), CAST to REAL
rounding to single precision. Domain errors (``SQRT(-1)``,
``LOG(0)``) give NULL where PostgreSQL raises an error.

The TAP service calls `register` from a SQLAlchemy ``connect`` event::

    sqlalchemy.event.listen(engine, "connect", lambda conn, _: register(conn))
"""

from __future__ import annotations

import math
import random
import sqlite3
import struct
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from . import spherical
from .backends import SQLITE_TIMESTAMP_FORMAT
from .similarity_udf import dot

__all__ = ["register"]


def _guard(function: Callable[..., float]) -> Callable[..., float | None]:
    """NULL in, NULL out; a math domain error gives NULL."""

    def wrapped(*args: float | None) -> float | None:
        if any(arg is None for arg in args):
            return None
        try:
            result = function(*args)
        except (ValueError, ZeroDivisionError, OverflowError, InvalidOperation, TypeError):
            return None
        return result

    wrapped.__name__ = function.__name__
    return wrapped


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value))) if isinstance(value, float) else Decimal(value)


def _quantum(digits: int) -> Decimal:
    return Decimal(1).scaleb(-int(digits))


def _round(value: float, digits: int = 0) -> float:
    return float(_decimal(value).quantize(_quantum(digits), rounding=ROUND_HALF_UP))


def _truncate(value: float, digits: int = 0) -> float:
    return float(_decimal(value).quantize(_quantum(digits), rounding=ROUND_DOWN))


def _mod(dividend: float, divisor: float) -> float | int:
    if isinstance(dividend, int) and isinstance(divisor, int):
        return int(math.fmod(dividend, divisor)) if divisor else None
    return float(_decimal(dividend) % _decimal(divisor))


def _to_integer(value: float | int | str) -> int:
    if isinstance(value, int):
        return value
    return round(float(value))


def _to_real(value: float | str) -> float:
    """Round to single precision, as ADQL's (and PostgreSQL's) REAL is."""
    return struct.unpack("<f", struct.pack("<f", float(value)))[0]


def _cot(value: float) -> float:
    return 1 / math.tan(value)


def _log(value: float) -> float:
    return math.log(value)


def _log10(value: float) -> float:
    return math.log10(value)


def _timestamp(value: str) -> str:
    """Any ISO-8601 text as SQLAlchemy stores timestamps on SQLite."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime(
        SQLITE_TIMESTAMP_FORMAT
    )


def _dali(*coords: float) -> str | None:
    """Coordinates as DALI text (space-separated degrees)."""
    if any(c is None for c in coords):
        return None
    return " ".join(repr(float(c)) for c in coords)


def _coord(packed: str, index: int) -> float:
    return float(packed.split()[int(index) - 1])


_STCS_NAMES = {"point": "POSITION ICRS", "circle": "CIRCLE ICRS", "polygon": "POLYGON ICRS"}


def _geom(kind: str, *coords: float | str) -> str | None:
    """Write a geometry as STC-S, from its coordinates or from its packed DALI text."""
    if any(c is None for c in coords):
        return None
    if len(coords) == 1 and isinstance(coords[0], str):
        numbers = coords[0]
    else:
        numbers = " ".join(repr(float(c)) for c in coords)
    return f"{_STCS_NAMES[kind]} {numbers}"


@lru_cache(maxsize=4096)
def _shape(text: str) -> spherical.Shape:
    return spherical.parse_shape(text)


def _relation(
    test: Callable[[spherical.Shape, spherical.Shape], bool],
) -> Callable[..., int | None]:
    def relation(first: str | None, second: str | None) -> int | None:
        if first is None or second is None:
            return None
        try:
            return int(test(_shape(first), _shape(second)))
        except ValueError:
            return None

    return relation


def _area(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return spherical.area(_shape(text))
    except ValueError:
        return None


_FUNCTIONS: dict[str, tuple[int, Callable[..., object], bool]] = {
    "adql_acos": (1, _guard(math.acos), True),
    "adql_asin": (1, _guard(math.asin), True),
    "adql_atan": (1, _guard(math.atan), True),
    "adql_atan2": (2, _guard(math.atan2), True),
    "adql_ceiling": (1, _guard(lambda x: float(math.ceil(x))), True),
    "adql_cos": (1, _guard(math.cos), True),
    "adql_cot": (1, _guard(_cot), True),
    "adql_degrees": (1, _guard(math.degrees), True),
    "adql_exp": (1, _guard(math.exp), True),
    "adql_floor": (1, _guard(lambda x: float(math.floor(x))), True),
    "adql_log": (1, _guard(_log), True),
    "adql_log10": (1, _guard(_log10), True),
    "adql_mod": (2, _guard(_mod), True),
    "adql_pi": (0, lambda: math.pi, True),
    "adql_power": (2, _guard(lambda x, y: float(x) ** float(y)), True),
    "adql_radians": (1, _guard(math.radians), True),
    "adql_rand": (0, random.random, False),
    "adql_round": (-1, _guard(_round), True),
    "adql_sin": (1, _guard(math.sin), True),
    "adql_sqrt": (1, _guard(math.sqrt), True),
    "adql_tan": (1, _guard(math.tan), True),
    "adql_truncate": (-1, _guard(_truncate), True),
    "adql_to_integer": (1, _guard(_to_integer), True),
    "adql_to_real": (1, _guard(_to_real), True),
    "adql_timestamp": (1, _guard(_timestamp), True),
    "adql_dali": (-1, _dali, True),
    "adql_coord": (2, _guard(_coord), True),
    "adql_geom": (-1, _geom, True),
    "adql_distance": (4, _guard(spherical.distance), True),
    "adql_contains": (2, _relation(spherical.contains), True),
    "adql_intersects": (2, _relation(spherical.intersects), True),
    "adql_area": (1, _area, True),
    "vosim_dot": (2, dot, True),
}


def register(dbapi_connection: sqlite3.Connection) -> None:
    """Install the ``adql_*`` functions and make LIKE case-sensitive, as ADQL's is.

    Parameters
    ----------
    dbapi_connection
        A new ``sqlite3`` connection (what SQLAlchemy's ``connect`` event passes).
    """
    for name, (arity, function, deterministic) in _FUNCTIONS.items():
        dbapi_connection.create_function(name, arity, function, deterministic=deterministic)
    dbapi_connection.execute("PRAGMA case_sensitive_like = ON")
