"""ADQL 2.1 → SQL for SQLite and PostgreSQL (pgsphere), with a validator.

The contract between the ADQL translator and the TAP service:

- `TapSchema.load(connection)` reads the published tables and columns from
  TAP_SCHEMA; load it once and reuse it (translation never reflects the
  database).
- `translate_adql(adql, schema=…, dialect="sqlite"|"postgresql", uploads=…,
  max_rows=…, now=…)` returns a `TranslatedQuery`: ``sql`` (for
  ``sqlalchemy.text``), its bind ``parameters``, the output ``columns``
  (`vo_service.votable.columns.ResultColumn`, VOTable FIELD metadata) and
  ``decode(rows)``, which gives the same Python values on both backends.
  Anything that is not a valid, permitted ADQL query raises `AdqlError`
  with a message for the user (and line/column when known).
- On SQLite, `sqlite_functions.register(dbapi_connection)` must run on every
  connection (a SQLAlchemy ``connect`` event); on PostgreSQL,
  `postgres_setup.install(connection)` once at start-up (idempotent).

Modules: `dialect` reads the text; `translate` validates, resolves and types
the tree, with one part per piece of the grammar (`query_expression`,
`from_clause`, `value_expression`, `functions`, `geometry`) on the types of
`translation_types`; `backends` and `geometry` write each backend's SQL;
`proprietary` hides the similarity rows of unreleased images; `catalog` and
`scope` hold the names; `translated` is what comes out.
"""

from __future__ import annotations

from .catalog import TapSchema, TapTable
from .errors import AdqlError
from .translate import Dialect, translate_adql
from .translated import TranslatedQuery, UploadedTable

__all__ = [
    "AdqlError",
    "Dialect",
    "TapSchema",
    "TapTable",
    "TranslatedQuery",
    "UploadedTable",
    "translate_adql",
]
