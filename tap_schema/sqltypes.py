"""Database types that Felis has no datatype for.

Felis describes a vector column as ``datatype: float`` with
``votable:arraysize: "*"`` and would create a scalar ``FLOAT`` column from it.
The catalogue needs one value per row that holds the whole vector: PostgreSQL
has ``REAL[]`` for that; SQLite has no arrays, so the vector is stored as the
little-endian float32 bytes, which is also the most compact form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import LargeBinary
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import REAL, TypeDecorator, TypeEngine

__all__ = ["FloatArray", "decode_float_array", "encode_float_array"]


def encode_float_array(values: Any) -> bytes:
    """Pack a vector as the little-endian float32 bytes stored on SQLite."""
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def decode_float_array(blob: bytes | memoryview) -> np.ndarray:
    """Unpack bytes written by `encode_float_array` into a float32 vector."""
    return np.frombuffer(bytes(blob), dtype="<f4").astype(np.float32)


class FloatArray(TypeDecorator):
    """A variable-length float32 vector: ``REAL[]`` on PostgreSQL, a BLOB on SQLite.

    Values are read back as `numpy.ndarray` of dtype float32 on both backends.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Pick the storage type of the connected database."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(REAL))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Convert a vector to what the database stores."""
        if value is None:
            return None
        if dialect.name == "postgresql":
            return np.asarray(value, dtype=np.float32).tolist()
        return encode_float_array(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        """Convert what the database stored back to a float32 vector."""
        if value is None:
            return None
        if dialect.name == "postgresql":
            return np.asarray(value, dtype=np.float32)
        return decode_float_array(value)
