"""Floor 1: the published tables, described once in Felis YAML, and the data layer.

Everything that touches the catalogue database goes through here: the
configuration (`Settings`), opening the database (`open_catalogue`) and the
SQLAlchemy tables built from the Felis files. Imports nothing from
``model_training`` or ``vo_service``.
"""

from .config import Settings
from .database import (
    Catalogue,
    WriteLockTimeoutError,
    build_metadata,
    create_catalogue_engine,
    open_catalogue,
)
from .felis_files import INTERNAL_SCHEMAS, PUBLISHED_SCHEMAS, TAP_SCHEMA_NAME, load_schema
from .sqltypes import FloatArray, decode_float_array, encode_float_array

__all__ = [
    "INTERNAL_SCHEMAS",
    "PUBLISHED_SCHEMAS",
    "TAP_SCHEMA_NAME",
    "Catalogue",
    "FloatArray",
    "Settings",
    "WriteLockTimeoutError",
    "build_metadata",
    "create_catalogue_engine",
    "decode_float_array",
    "encode_float_array",
    "load_schema",
    "open_catalogue",
]
