"""The user-defined functions ``vosim_similarity`` and ``vosim_similarity_vector``.

``vosim_similarity(did_a, did_b)`` is the cosine similarity of the current
model's vectors of two images (their dot product: the vectors are
L2-normalised); ``vosim_similarity_vector(did, vector)`` the same against a
given vector, typically a column of an uploaded table. A call with a
constant argument is a lookup in scores the service makes once per query
(`similarity_scores`); any other call becomes a scalar subquery over the
*public rows* of ``similarity.embedding`` (the same filter `proprietary`
puts on every reference to the table), joined with the current model of
``similarity.model``. So a proprietary image has no vector to find and
gives NULL exactly as an unknown DID does, and two images of different
kinds give NULL because no model holds both. The row's own vector is one
primary-key lookup.

The dot product is ``vosim_dot`` (`dot`, registered on SQLite by
`sqlite_functions.register`, a SQL function installed by
`postgres_setup.install` on PostgreSQL); NULL when the lengths differ.
"""

from __future__ import annotations

import re

import numpy as np
from sqlglot import exp

from .backends import call
from .catalog import TapSchema, TapTable
from .proprietary import public_source
from .translation_types import quoted

__all__ = ["FUNCTIONS", "dot", "embedding_table", "similarity_sql", "vector_from_text"]

FUNCTIONS: dict[str, tuple[str, str]] = {
    "VOSIM_SIMILARITY": (
        "vosim_similarity(did_a VARCHAR, did_b VARCHAR) -> DOUBLE",
        "Cosine similarity of the current model's vectors of two images of the same kind "
        "(ivoa.obscore.obs_publisher_did); NULL when either image is unknown, not public, "
        "has no vector, or the kinds differ.",
    ),
    "VOSIM_SIMILARITY_VECTOR": (
        "vosim_similarity_vector(did VARCHAR, vector VARCHAR) -> DOUBLE",
        "Cosine similarity of the current model's vector of an image and a vector of the "
        "model's dimension: a float array column (e.g. TAP_UPLOAD.mine.vector, as the "
        "similarity service's upload search returns it) or its values as space-separated "
        "text; NULL when the image is unknown, not public or has no vector, or the lengths "
        "differ.",
    ),
}
"""ADQL name: (TAPRegExt form, description) of each function."""

_SCHEMA = "similarity"


def dot(a: bytes | str | None, b: bytes | str | None) -> float | None:
    """Return the dot product of two vectors as SQLite holds them (NULL if lengths differ).

    A stored vector is little-endian float32 bytes (`tap_schema.encode_float_array`);
    an uploaded array column is space-separated text (the TABLEDATA form).
    """
    if a is None or b is None:
        return None
    try:
        left, right = _vector(a), _vector(b)
    except ValueError:
        return None
    if left.shape != right.shape or left.size == 0:
        return None
    return float(np.dot(left, right))


_NUMBER = re.compile(r"[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?")


def _vector(value: bytes | str) -> np.ndarray:
    if isinstance(value, bytes | memoryview):
        return np.frombuffer(bytes(value), dtype="<f4").astype(np.float64)
    return vector_from_text(str(value))


def vector_from_text(text: str) -> np.ndarray:
    """Read a vector's space-separated text as float32 values; ValueError if not numbers."""
    words = text.split()
    if not all(_NUMBER.fullmatch(word) for word in words):
        raise ValueError("not a list of numbers")  # as PostgreSQL's vosim_dot: NULL
    return np.array(words, dtype=np.float32).astype(np.float64)


def _alias(adql: str, base: str) -> str:
    """Pick a table alias the query text cannot name, so no outer column is captured."""
    name, counter = base, 0
    while name.lower() in adql.lower():
        counter += 1
        name = f"{base}{counter}"
    return name


def embedding_table(schema: TapSchema) -> TapTable:
    """Return the published ``similarity.embedding``, whose public rows every call reads."""
    return schema.find((_SCHEMA, False), ("embedding", False))


def _public_embedding(schema: TapSchema, sql_dialect: str) -> exp.Expr:
    """Return the query's own copy of the public vectors (`proprietary.public_source`)."""
    return public_source(embedding_table(schema), sql_dialect)


def similarity_sql(
    schema: TapSchema,
    sql_dialect: str,
    adql: str,
    did: exp.Expr,
    other: exp.Expr,
    other_is_did: bool,
) -> exp.Expr:
    """Build the scalar subquery of one call.

    Parameters
    ----------
    schema
        The published tables (``similarity.embedding`` and ``similarity.model``).
    sql_dialect
        The backend's sqlglot dialect.
    adql
        The query text, to pick aliases it does not use.
    did
        The translated first argument (an image's publisher DID).
    other
        The translated second argument: a DID, or a vector.
    other_is_did
        Whether ``other`` is a DID (``vosim_similarity``) or a vector.
    """
    model_table = schema.find((_SCHEMA, False), ("model", False))
    first = _alias(adql, "vosim_udf_a")
    model = _alias(adql, "vosim_udf_m")

    def column(alias: str, name: str) -> exp.Column:
        return exp.column(name, alias, quoted=True)

    select = (
        exp.select()
        .from_(_public_embedding(schema, sql_dialect).as_(first, quoted=True))
        .join(
            exp.Table(this=quoted(model_table.table_name), db=quoted(model_table.schema_name)).as_(
                model, quoted=True
            ),
            on=exp.EQ(this=column(model, "model_id"), expression=column(first, "model_id")),
        )
        .where(exp.EQ(this=column(model, "is_current"), expression=exp.Literal.number(1)))
        .where(exp.EQ(this=column(first, "obs_publisher_did"), expression=did))
    )
    if other_is_did:
        second = _alias(adql, "vosim_udf_b")
        select = select.join(
            _public_embedding(schema, sql_dialect).as_(second, quoted=True),
            on=exp.EQ(this=column(second, "model_id"), expression=column(first, "model_id")),
        ).where(exp.EQ(this=column(second, "obs_publisher_did"), expression=other))
        vector: exp.Expr = column(second, "vector")
        if sql_dialect == "postgres":
            return exp.Subquery(this=_postgres_dot(select, column(first, "vector"), vector, adql))
    else:
        vector = other
    select = select.select(call("vosim_dot", column(first, "vector"), vector))
    return exp.Subquery(this=select)


def _postgres_dot(select: exp.Select, left: exp.Column, right: exp.Column, adql: str) -> exp.Select:
    """Write the dot product of two ``real[]`` columns into the subquery itself.

    PostgreSQL cannot inline ``vosim_dot`` (its body is a query), and calling
    it costs about as much again as the sum; the lengths must agree
    (``unnest`` of two arrays pads the shorter one with NULLs).
    """
    pairs = _alias(adql, "vosim_udf_t")
    arrays = f"{left.sql(dialect='postgres')}, {right.sql(dialect='postgres')}"
    product = f'sum(CAST("{pairs}"."x" AS DOUBLE PRECISION) * "{pairs}"."y")'
    return (
        select.join(exp.Var(this=f'unnest({arrays}) AS "{pairs}"("x", "y")'), join_type="cross")
        .select(exp.Var(this=product))
        .having(exp.Var(this=f'count("{pairs}"."x") = count("{pairs}"."y")'))
    )
