"""ADQL functions (ADQL 2.1, section 2.3): the mathematical and string functions.

Geometry functions are dispatched to `geometry`; user-defined functions
(``vosim_similarity``) to the backends.
"""

from __future__ import annotations

from sqlglot import exp

from .backends import call, cast
from .ranked_scores import ScoreUse
from .scope import Scope
from .similarity_scores import ScoreRequest, function_name, lookup_join, scalar_lookup
from .similarity_udf import FUNCTIONS as SIMILARITY_FUNCTIONS
from .similarity_udf import embedding_table, similarity_sql
from .translation_types import (
    NULL,
    Value,
    computed_meta,
)

__all__ = ["FunctionTranslation"]

_MATH_ARITY: dict[str, tuple[int, int]] = {
    "ABS": (1, 1),
    "ACOS": (1, 1),
    "ASIN": (1, 1),
    "ATAN": (1, 1),
    "ATAN2": (2, 2),
    "CEILING": (1, 1),
    "COS": (1, 1),
    "COT": (1, 1),
    "DEGREES": (1, 1),
    "EXP": (1, 1),
    "FLOOR": (1, 1),
    "LOG": (1, 1),
    "LOG10": (1, 1),
    "MOD": (2, 2),
    "PI": (0, 0),
    "POWER": (2, 2),
    "RADIANS": (1, 1),
    "RAND": (0, 0),
    "ROUND": (1, 2),
    "SIN": (1, 1),
    "SQRT": (1, 1),
    "TAN": (1, 1),
    "TRUNCATE": (1, 2),
}
_GEOMETRY_FUNCTIONS = {
    "AREA",
    "BOX",
    "CENTROID",
    "CIRCLE",
    "CONTAINS",
    "COORD1",
    "COORD2",
    "COORDSYS",
    "DISTANCE",
    "INTERSECTS",
    "POINT",
    "POLYGON",
}


class FunctionTranslation:
    """The translation of function calls."""

    def _function(self, node: exp.Anonymous, scope: Scope) -> Value:
        name = str(node.this).upper()
        if not isinstance(node.this, str):
            raise self.unsupported(node)
        for argument in node.expressions:
            if isinstance(argument, exp.Alias | exp.Star | exp.Distinct):
                raise self.unsupported(node)
        if name in _MATH_ARITY:
            return self._math(name, node, scope)
        if name in ("LOWER", "UPPER"):
            self._arity(node, name, 1, 1)
            value = self.value(node.expressions[0], scope)
            if not (value.is_string or value.datatype == NULL):
                raise self.error(f"{name} needs text, not {self._kind(value)}", node)
            return Value(call(name.lower(), value.sql), computed_meta("char"))
        if name in _GEOMETRY_FUNCTIONS:
            return self._geometry_function(name, node, scope)
        if name in SIMILARITY_FUNCTIONS:
            return self._similarity(name, node, scope)
        raise self.error(
            f"{name} is not an ADQL function: see the service's capabilities for the "
            "functions it supports",
            node,
        )

    def _similarity(self, name: str, node: exp.Anonymous, scope: Scope) -> Value:
        """``vosim_similarity`` and ``vosim_similarity_vector`` (`similarity_udf`)."""
        label = name.lower()
        self._arity(node, label, 2, 2)
        did, other = (self.value(argument, scope) for argument in node.expressions)
        if not (did.is_string or did.datatype == NULL):
            raise self.error(
                f"the first argument of {label} is an image's obs_publisher_did (text), "
                f"not {self._kind(did)}",
                node,
            )
        by_did = name == "VOSIM_SIMILARITY"
        if by_did and not (other.is_string or other.datatype == NULL):
            raise self.error(
                f"the second argument of {label} is an image's obs_publisher_did (text), "
                f"not {self._kind(other)}; vosim_similarity_vector takes a vector",
                node,
            )
        vector = other.is_string or (
            other.is_array and other.datatype in ("float", "double") and other.geom is None
        )
        if not by_did and not (vector or other.datatype == NULL):
            raise self.error(
                f"the second argument of {label} is a vector (a float array column, or its "
                f"values as space-separated text), not {self._kind(other)}",
                node,
            )
        constant = self._constant_similarity(node, by_did, did, other, scope)
        if constant is not None:
            return constant
        other_sql = other.sql
        if not by_did and other.is_string:
            # one overload of vosim_dot per stored form: say which
            other_sql = cast(other_sql, "TEXT")
        vectors = embedding_table(self.schema)
        self.public_tables[(vectors.schema_name, vectors.table_name)] = vectors
        sql = similarity_sql(
            self.schema, self.backend.sql_dialect, self.adql, did.sql, other_sql, by_did
        )
        return Value(sql, computed_meta("double"))

    def _constant_similarity(
        self, node: exp.Anonymous, by_did: bool, did: Value, other: Value, scope: Scope
    ) -> Value | None:
        """Translate a call with a constant DID or vector as a lookup in its scores.

        See `similarity_scores`.

        None when the service has no scores to give (the translation is then
        the per-row subquery) or neither argument is a constant.
        """
        if not self.score_relations:
            return None
        first, second = node.expressions
        if _is_text(second):
            key, constant = did.sql, second.this
        elif by_did and _is_text(first):
            key, constant = other.sql, first.this
        else:
            return None
        request = self._score_request(("did" if by_did else "vector", constant))
        if self.backend.sql_dialect == "sqlite":
            sql = call(function_name(request.slot), key)
        else:
            sql = self._postgres_lookup(request, key, scope)
        self._score_use(request.slot, key, sql, scope)
        return Value(sql, computed_meta("double"))

    def _score_use(self, slot: int, key: exp.Expr, sql: exp.Expr, scope: Scope) -> None:
        """Note where the query reads scores ``slot``, for `ranked_scores.ranking`."""
        own = {source.sql_alias for source in scope.sources}
        columns = list(key.find_all(exp.Column))
        is_own = bool(columns) and all(column.table in own for column in columns)
        scope.score_uses[sql.sql()] = ScoreUse(slot, key, is_own)
        place = (id(scope), key.sql()) if isinstance(sql, exp.Column | exp.Anonymous) else id(sql)
        self.score_places.setdefault(slot, set()).add(place)

    def _score_request(self, constant: tuple[str, str]) -> ScoreRequest:
        """Return the scores of one constant, shared by every call with it in the query."""
        request = self.score_requests.get(constant)
        if request is None:
            slot = len(self.score_requests) + 1
            kind, value = constant
            request = ScoreRequest(slot, **{kind: value})
            self.score_requests[constant] = request
        return request

    def _postgres_lookup(self, request: ScoreRequest, key: exp.Expr, scope: Scope) -> exp.Expr:
        """Return a column of a LEFT JOIN added to the query, or a scalar subquery if not."""
        own = {source.sql_alias for source in scope.sources}
        joinable = (
            not scope.grouped
            and not scope.in_join
            and key.find(exp.Subquery, exp.Select) is None
            and all(column.table in own for column in key.find_all(exp.Column))
        )
        alias = self._lookup_alias()
        if not joinable:
            self.indexed_slots.add(request.slot)
            return scalar_lookup(request.slot, key, alias)
        text = key.sql(dialect="postgres")
        joined = scope.lookup_aliases.get((request.slot, text))
        if joined is None:
            joined = scope.lookup_aliases[(request.slot, text)] = alias
            scope.lookups.append(lookup_join(request.slot, key.copy(), alias))
        return exp.column("score", joined, quoted=True)

    def _lookup_alias(self) -> str:
        self.lookup_count += 1
        base = f"vosim_score_{self.lookup_count}"
        name, counter = base, 0
        while name.lower() in self.adql.lower():
            counter += 1
            name = f"{base}_{counter}"
        return name

    def _arity(self, node: exp.Anonymous, name: str, low: int, high: int) -> None:
        count = len(node.expressions)
        if not low <= count <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"{name} takes {expected} arguments, not {count}", node)

    def _math(self, name: str, node: exp.Anonymous, scope: Scope) -> Value:
        low, high = _MATH_ARITY[name]
        if name == "RAND" and node.expressions:
            raise self.error("RAND with a seed is not supported: write RAND()", node)
        self._arity(node, name, low, high)
        values = [self.value(argument, scope) for argument in node.expressions]
        for value in values:
            self._numeric(node, value, name)
        if (
            name in ("ROUND", "TRUNCATE")
            and len(values) == 2
            and not (values[1].is_integer or values[1].datatype == NULL)
        ):
            raise self.error(f"the second argument of {name} is a whole number of digits", node)
        integer = all(v.is_integer for v in values)
        sql = self.backend.function(name, [v.sql for v in values], integer)
        if name == "ABS" or (name == "MOD" and integer):
            return Value(
                sql, computed_meta(values[0].datatype if values[0].is_numeric else "double")
            )
        unit = (
            values[0].meta.unit
            if name in ("ROUND", "TRUNCATE", "CEILING", "FLOOR") and values
            else None
        )
        if name == "DEGREES":
            unit = "deg"
        return Value(sql, computed_meta("double", unit=unit))


def _is_text(node: exp.Expr) -> bool:
    """Whether an argument, as written in ADQL, is a string constant."""
    return isinstance(node, exp.Literal) and node.is_string
