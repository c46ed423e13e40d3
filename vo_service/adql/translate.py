"""`translate_adql`: validate an ADQL query and write it as SQL of one backend.

The `Translator` turns the tree that `dialect.parse_adql` returns into an SQL
tree of one backend, with every name resolved and every value typed, in one
bottom-up pass. It is also the validator: a node is only translated if the
translator knows it as ADQL
(ADQL 2.1 grammar plus the optional features vosim declares), so anything
else sqlglot happens to parse is refused with a message naming it. Each value
comes back with its VOTable metadata, so the output columns' FIELDs are known
without running the query: a plain column keeps its TAP_SCHEMA metadata,
computed values get a datatype (COUNT long, arithmetic double, strings
char ``*``, geometry DALI point/circle/polygon).

The `Translator` is assembled here from one part per piece of the grammar:
`query_expression`, `from_clause`, `value_expression`, `functions` and
`geometry`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import Literal

import numpy as np
from sqlglot import exp

from tap_schema import decode_float_array
from tap_schema.release import naive_utc, utc_now

from .backends import BACKENDS, Backend
from .catalog import TapSchema, TapTable
from .dialect import parse_adql, position
from .errors import AdqlError
from .from_clause import FromClauseTranslation
from .functions import FunctionTranslation
from .geometry import GeometryBackend, GeometryTranslation
from .proprietary import public_rows_statements
from .query_expression import QueryExpressionTranslation
from .ranked_scores import RANKED_ALIAS, RankedScores, ranking
from .scope import Scope
from .similarity_scores import ScoreRequest
from .translated import Decoder, TranslatedQuery, UploadedTable
from .translation_types import BOOLEAN, OutputColumn, Value
from .value_expression import COMPARISONS, ValueExpressionTranslation

__all__ = ["Dialect", "Translator", "translate_adql"]

Dialect = Literal["sqlite", "postgresql"]


class Translator(
    QueryExpressionTranslation,
    FromClauseTranslation,
    ValueExpressionTranslation,
    FunctionTranslation,
    GeometryTranslation,
):
    """Translate one parsed ADQL query for one backend.

    Parameters
    ----------
    adql
        The query text (for positions in error messages).
    schema
        The published tables.
    backend
        The target database.
    uploads
        TAP_UPLOAD tables by lower-case name.
    score_relations
        The service scores constant similarity arguments before the query
        (`similarity_scores`); otherwise every call is a per-row subquery.
    """

    def __init__(
        self,
        adql: str,
        schema: TapSchema,
        backend: Backend,
        uploads: Mapping[str, UploadedTable],
        score_relations: bool = False,
    ) -> None:
        self.adql = adql
        self.schema = schema
        self.backend = backend
        self.geometry = GeometryBackend(backend)
        self.uploads = uploads
        self.ctes: list[dict[str, tuple[str, list[OutputColumn]]]] = []
        self.public_tables: dict[tuple[str, str], TapTable] = {}
        self.score_relations = score_relations
        self.score_requests: dict[tuple[str, str], ScoreRequest] = {}
        self.indexed_slots: set[int] = set()
        self.lookup_count = 0
        self.score_places: dict[int, set] = {}
        """Where the query reads each scores: (query, DID key) of a lookup, or a subquery."""
        self.outermost: tuple[exp.Select, Scope] | None = None
        """The outermost SELECT of the query and its scope (`ranked_scores.ranking`)."""

    def error(self, message: str, node: exp.Expr | None = None) -> AdqlError:
        """Build an error at a node's position."""
        line, column = position(self.adql, node) if node is not None else (None, None)
        return AdqlError(message, line, column)

    def _adql_text(self, node: exp.Expr) -> str:
        start, end = node.meta.get("start"), node.meta.get("end")
        if start is not None and end is not None:
            return self.adql[start : end + 1]
        return node.sql()

    def unsupported(self, node: exp.Expr) -> AdqlError:
        """Build the error for a construct sqlglot parsed but ADQL does not have."""
        text = node.sql()
        if len(text) > 60:
            text = text[:57] + "..."
        return self.error(f"{text!r} is not part of ADQL 2.1 as this service supports it", node)

    def condition(self, node: exp.Expr, scope: Scope, clause: str) -> exp.Expr:
        """Translate a search condition (WHERE, HAVING, ON, CASE WHEN)."""
        value = self.value(node, scope)
        if value.datatype != BOOLEAN:
            raise self.error(
                f"{clause} needs a condition (a comparison, LIKE, IN, …), not a value", node
            )
        return value.sql

    def value(self, node: exp.Expr, scope: Scope) -> Value:
        """Translate any value expression or condition."""
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise self.unsupported(node)
        try:
            return handler(self, node, scope)
        except AdqlError as error:
            if error.line is None:
                line, column = position(self.adql, node)
                if line is not None:
                    raise AdqlError(error.message, line, column) from None
            raise


_HANDLERS = {
    exp.Column: Translator._column,
    exp.Literal: Translator._literal,
    exp.HexString: Translator._hex,
    exp.Null: Translator._null,
    exp.Paren: Translator._paren,
    exp.Add: Translator._arithmetic,
    exp.Sub: Translator._arithmetic,
    exp.Mul: Translator._arithmetic,
    exp.Div: Translator._arithmetic,
    exp.Neg: Translator._negative,
    exp.BitwiseAnd: Translator._bitwise,
    exp.BitwiseOr: Translator._bitwise,
    exp.BitwiseXor: Translator._bitwise,
    exp.BitwiseNot: Translator._bitwise,
    exp.DPipe: Translator._concat,
    exp.And: Translator._logical,
    exp.Or: Translator._logical,
    exp.Not: Translator._not,
    exp.Is: Translator._is,
    exp.Between: Translator._between,
    exp.In: Translator._in,
    exp.Like: Translator._like,
    exp.ILike: Translator._like,
    exp.Exists: Translator._exists,
    exp.Subquery: Translator._subquery,
    exp.Case: Translator._case,
    exp.Coalesce: Translator._coalesce,
    exp.Cast: Translator._cast,
    exp.Count: Translator._aggregate,
    exp.Sum: Translator._aggregate,
    exp.Avg: Translator._aggregate,
    exp.Min: Translator._aggregate,
    exp.Max: Translator._aggregate,
    exp.Anonymous: Translator._function,
    **{cls: Translator._comparison for cls in COMPARISONS},
}


def translate_adql(
    adql: str,
    *,
    schema: TapSchema,
    dialect: Dialect,
    uploads: Mapping[str, UploadedTable] | None = None,
    max_rows: int | None = None,
    now: datetime | None = None,
    score_relations: bool = False,
) -> TranslatedQuery:
    """Validate an ADQL query and translate it to SQL of one backend.

    Parameters
    ----------
    adql
        The query text (ADQL 2.0 or 2.1).
    schema
        The published tables (`TapSchema.load`, cached by the caller).
    dialect
        Target database.
    uploads
        TAP_UPLOAD tables by (case-insensitive) name.
    max_rows
        Upper bound on rows to return (the service passes MAXREC + 1 to detect
        overflow); combined with the query's own TOP (the smaller wins).
    now
        The moment against which release dates are compared (defaults to the
        current UTC time); rows of ``similarity`` tables that belong to
        images whose release date is later are invisible. Only the query's
        ``setup`` depends on it, so translations are cached whatever its value.
    score_relations
        The caller fills the scores of constant similarity arguments that
        ``scores`` lists (`similarity_scores`) before running the query.

    Raises
    ------
    AdqlError
        For anything that is not a valid, permitted ADQL query.
    """
    if dialect not in BACKENDS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    if max_rows is not None and max_rows < 0:
        raise ValueError("max_rows must not be negative")
    upload_key = tuple(sorted((key.lower(), table) for key, table in (uploads or {}).items()))
    try:
        translated = _translate(adql, schema, dialect, upload_key, max_rows, score_relations)
    except RecursionError:  # a limit of `AdqlLimits` too generous for this query's shape
        raise AdqlError(
            "the query is nested too deeply for this service to read: write it with fewer "
            "levels of parentheses and subqueries"
        ) from None
    moment = utc_now() if now is None else naive_utc(now)
    setup = public_rows_statements(translated.public_tables, BACKENDS[dialect].sql_dialect, moment)
    return TranslatedQuery(
        sql=translated.sql,
        columns=translated.columns,
        decoders=translated.decoders,
        setup=setup,
        public_tables=translated.public_tables,
        scores=translated.scores,
        ranking=translated.ranking,
        instant=moment,
    )


@lru_cache(maxsize=512)
def _translate(
    adql: str,
    schema: TapSchema,
    dialect: Dialect,
    uploads: tuple[tuple[str, UploadedTable], ...],
    max_rows: int | None,
    score_relations: bool,
) -> TranslatedQuery:
    backend = BACKENDS[dialect]
    tree = parse_adql(adql)
    translator = Translator(adql, schema, backend, dict(uploads), score_relations)
    sql, columns = translator.query(tree, None, output=True, limit=max_rows)
    text = _escape_name_colons(sql.sql(dialect=backend.sql_dialect, comments=False))
    ranked = _ranking(translator, sql, backend.sql_dialect)
    result_columns = tuple(column.meta for column in columns)
    decoders = tuple(
        _decoder(column.meta.datatype, column.meta.arraysize, column.meta.xtype, dialect)
        for column in columns
    )
    return TranslatedQuery(
        sql=text,
        columns=result_columns,
        decoders=decoders,
        public_tables=tuple(translator.public_tables.values()),
        scores=tuple(
            replace(request, indexed=request.slot in translator.indexed_slots)
            for request in translator.score_requests.values()
        ),
        ranking=ranked,
    )


def _ranking(translator: Translator, sql: exp.Expr, sql_dialect: str) -> RankedScores | None:
    """How the query ranks by a constant's scores (`ranked_scores`); None if it does not."""
    if translator.outermost is None or translator.outermost[0] is not sql:
        return None
    if RANKED_ALIAS in translator.adql.lower():  # the name of its DIDs in the SQL
        return None
    select, scope = translator.outermost
    places = {slot: len(found) for slot, found in translator.score_places.items()}
    found = ranking(select, scope.score_uses, places, sql_dialect)
    if found is None:
        return None
    ranked, cut = found
    if cut is None:
        return ranked
    text = _escape_name_colons(cut.sql(dialect=sql_dialect, comments=False))
    return replace(ranked, cut_sql=text)


def _escape_name_colons(sql: str) -> str:
    """Escape colons in the SQL's delimited names, as they are in its string literals.

    The SQL runs through `sqlalchemy.text`, which takes ``":foo"`` (a name
    that ADQL allows) for a bind parameter.
    """
    if ":" not in sql:
        return sql
    return _QUOTED.sub(_escaped_name, sql)


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
"""A string literal or a delimited name, each as a whole (a doubled quote inside)."""


def _escaped_name(match: re.Match[str]) -> str:
    text = match.group()
    return text.replace(":", "\\:") if text.startswith('"') else text


def _decoder(
    datatype: str, arraysize: str | None, xtype: str | None, dialect: str
) -> Decoder | None:
    if arraysize is None or datatype not in ("float", "double"):
        return None
    if xtype in ("point", "circle", "polygon"):
        if dialect == "sqlite":
            return _dali_text
        return _float64_array
    if dialect == "sqlite":
        return decode_float_array
    return _float32_array


def _dali_text(value: str) -> np.ndarray:
    return np.array(value.split(), dtype=np.float64)


def _float64_array(value: list[float]) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _float32_array(value: list[float]) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)
