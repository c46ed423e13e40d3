"""Value expressions and conditions (ADQL 2.1 ``<value_expression>``, ``<search_condition>``).

Columns, literals, arithmetic, comparisons, LIKE, IN, BETWEEN, CASE,
COALESCE, CAST and aggregates, each typed as its VOTable FIELD will be.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlglot import exp

from vo_service.votable.columns import ResultColumn

from .geometry import geometry_kind
from .scope import Name, Scope, Source, SourceColumn
from .translation_types import (
    BOOLEAN,
    NULL,
    NUMERIC_TYPES,
    Geom,
    Value,
    computed_meta,
    name_of,
)

__all__ = ["COMPARISONS", "ValueExpressionTranslation"]

_CAST_TYPES = {
    "SMALLINT": ("short", None),
    "INT": ("int", None),
    "BIGINT": ("long", None),
    "FLOAT": ("float", None),
    "DOUBLE": ("double", None),
    "CHAR": ("char", None),
    "VARCHAR": ("char", None),
    "TIMESTAMP": ("char", "timestamp"),
}
_CAST_NAMES = {
    "INT": "INTEGER",
    "FLOAT": "REAL",
    "DOUBLE": "DOUBLE PRECISION",
}
COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


class ValueExpressionTranslation:
    """The translation of values and conditions, with their types checked."""

    def _qualifier(self, column: exp.Column) -> list[Name]:
        if column.args.get("catalog") is not None:
            raise self.error("a column name has at most schema.table.column", column)
        return [
            name_of(part)
            for part in (column.args.get("db"), column.args.get("table"))
            if part is not None
        ]

    def _column(self, node: exp.Column, scope: Scope) -> Value:
        if not isinstance(node.this, exp.Identifier):
            raise self.unsupported(node)
        source, column = scope.column(name_of(node.this), self._qualifier(node))
        return self._column_value(source, column)

    def _column_value(self, source: Source | None, column: SourceColumn) -> Value:
        table = source.sql_alias if source is not None else None
        sql = exp.column(column.sql_name, table, quoted=True)
        meta = column.meta
        kind = geometry_kind(meta)
        if kind is not None:
            return Value(sql, meta, Geom(kind, packed=sql))
        if meta.datatype in ("float", "double") and meta.arraysize is not None:
            # A vector: it can be selected, not computed with.
            return Value(sql, meta)
        return Value(sql, meta)

    def _literal(self, node: exp.Literal, scope: Scope) -> Value:
        if node.is_string:
            return Value(exp.Literal.string(node.this.replace(":", "\\:")), computed_meta("char"))
        text = node.this
        if text.isdigit():
            return Value(node.copy(), computed_meta("long" if int(text) > 2**31 - 1 else "int"))
        return Value(node.copy(), computed_meta("double"))

    def _hex(self, node: exp.HexString, scope: Scope) -> Value:
        return Value(exp.Literal.number(int(node.this, 16)), computed_meta("long"))

    def _null(self, node: exp.Null, scope: Scope) -> Value:
        return Value(exp.Null(), computed_meta(NULL))

    def _paren(self, node: exp.Paren, scope: Scope) -> Value:
        inner = self.value(node.this, scope)
        if inner.geom is not None:
            return inner
        return Value(exp.Paren(this=inner.sql), inner.meta)

    def _numeric(self, node: exp.Expr, value: Value, what: str) -> None:
        if not (value.is_numeric or value.datatype == NULL):
            raise self.error(f"{what} needs numbers, not {self._kind(value)}", node)

    @staticmethod
    def _kind(value: Value) -> str:
        if value.datatype == BOOLEAN:
            return "a condition"
        if value.geom is not None:
            return "a geometry"
        if value.is_timestamp:
            return "a timestamp"
        if value.is_string:
            return "text"
        return f"a {value.datatype} value"

    def _arithmetic(self, node: exp.Binary, scope: Scope) -> Value:
        left, right = self.value(node.this, scope), self.value(node.expression, scope)
        symbol = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}[type(node)]
        self._numeric(node, left, f"'{symbol}'")
        self._numeric(node, right, f"'{symbol}'")
        integer = left.is_integer and right.is_integer
        sql = type(node)(this=left.sql, expression=right.sql)
        if isinstance(node, exp.Div):
            sql.set("typed", True)
        return Value(sql, computed_meta("long" if integer else "double"))

    def _negative(self, node: exp.Neg, scope: Scope) -> Value:
        inner = self.value(node.this, scope)
        self._numeric(node, inner, "'-'")
        return Value(
            exp.Neg(this=inner.sql), computed_meta(inner.datatype if inner.is_numeric else "double")
        )

    def _bitwise(self, node: exp.Expr, scope: Scope) -> Value:
        operands = [self.value(node.this, scope)]
        if not isinstance(node, exp.BitwiseNot):
            operands.append(self.value(node.expression, scope))
        for operand in operands:
            if not (operand.is_integer or operand.datatype == NULL):
                raise self.error("bitwise operators need integers", node)
        if isinstance(node, exp.BitwiseNot):
            sql: exp.Expr = exp.BitwiseNot(this=operands[0].sql)
        elif isinstance(node, exp.BitwiseXor):
            sql = self.backend.xor(operands[0].sql, operands[1].sql)
        else:
            sql = type(node)(this=operands[0].sql, expression=operands[1].sql)
        return Value(sql, computed_meta("long"))

    def _concat(self, node: exp.DPipe, scope: Scope) -> Value:
        left, right = self.value(node.this, scope), self.value(node.expression, scope)
        for operand in (left, right):
            if operand.datatype == BOOLEAN or operand.geom is not None:
                raise self.error("'||' joins text, not " + self._kind(operand), node)
        return Value(
            exp.DPipe(this=left.sql, expression=right.sql, safe=True), computed_meta("char")
        )

    def _comparison(self, node: exp.Binary, scope: Scope) -> Value:
        geometric = self._geometric_predicate(node, scope)
        if geometric is not None:
            return geometric
        left, right = self.value(node.this, scope), self.value(node.expression, scope)
        left_sql, right_sql = self._comparable(node, left, right)
        return Value(type(node)(this=left_sql, expression=right_sql), computed_meta(BOOLEAN))

    def _comparable(self, node: exp.Expr, left: Value, *others: Value) -> list[exp.Expr]:
        """Check that values can be compared; turn ISO literals into stored timestamps."""
        values = [left, *others]
        for value in values:
            if value.datatype == BOOLEAN or value.geom is not None or value.is_array:
                raise self.error(f"cannot compare {self._kind(value)}", node)
        timestamp = any(v.is_timestamp for v in values)
        numeric = any(v.is_numeric for v in values)
        text = any(v.is_string for v in values)
        if numeric and (text or timestamp):
            raise self.error("cannot compare a number with text or a timestamp", node)
        if not timestamp:
            return [v.sql for v in values]
        return [self._timestamp_operand(v, node) for v in values]

    def _timestamp_operand(self, value: Value, node: exp.Expr) -> exp.Expr:
        if value.is_timestamp or value.datatype == NULL:
            return value.sql
        if isinstance(value.sql, exp.Literal) and value.sql.is_string:
            text = value.sql.this.replace("\\:", ":")
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise self.error(
                    f"{text!r} is not an ISO-8601 timestamp (YYYY-MM-DDThh:mm:ss)", node
                ) from None
            if moment.tzinfo is not None:
                moment = moment.astimezone(tz=None).replace(tzinfo=None)
            return self.backend.timestamp_literal(moment)
        return self.backend.cast(value.sql, "TIMESTAMP", None)

    def _logical(self, node: exp.Connector, scope: Scope) -> Value:
        left = self.condition(node.this, scope, node.key.upper())
        right = self.condition(node.expression, scope, node.key.upper())
        return Value(type(node)(this=left, expression=right), computed_meta(BOOLEAN))

    def _not(self, node: exp.Not, scope: Scope) -> Value:
        return Value(exp.Not(this=self.condition(node.this, scope, "NOT")), computed_meta(BOOLEAN))

    def _is(self, node: exp.Is, scope: Scope) -> Value:
        if not isinstance(node.expression, exp.Null):
            raise self.unsupported(node)
        value = self.value(node.this, scope)
        if value.datatype == BOOLEAN:
            raise self.error("IS NULL needs a value, not a condition", node)
        sql = value.sql if value.geom is None else self.geometry.pack(value.geom)
        return Value(exp.Is(this=sql, expression=exp.Null()), computed_meta(BOOLEAN))

    def _between(self, node: exp.Between, scope: Scope) -> Value:
        values = [self.value(node.args[k], scope) for k in ("this", "low", "high")]
        this, low, high = self._comparable(node, *values)
        return Value(exp.Between(this=this, low=low, high=high), computed_meta(BOOLEAN))

    def _in(self, node: exp.In, scope: Scope) -> Value:
        for key in ("unnest", "field"):
            if node.args.get(key):
                raise self.unsupported(node)
        left = self.value(node.this, scope)
        query = node.args.get("query")
        if query is not None:
            sql, columns = self.query(
                query.this if isinstance(query, exp.Subquery) else query, scope, False
            )
            if len(columns) != 1:
                raise self.error("the subquery of IN must return exactly one column", node)
            self._comparable(node, left, Value(exp.Null(), columns[0].meta))
            return Value(
                exp.In(this=left.sql, query=exp.Subquery(this=sql)), computed_meta(BOOLEAN)
            )
        values = [self.value(item, scope) for item in node.expressions]
        translated = self._comparable(node, left, *values)
        return Value(exp.In(this=translated[0], expressions=translated[1:]), computed_meta(BOOLEAN))

    def _like(self, node: exp.Like | exp.ILike, scope: Scope) -> Value:
        value, pattern = self.value(node.this, scope), self.value(node.expression, scope)
        for operand in (value, pattern):
            if not (operand.is_string or operand.datatype == NULL):
                raise self.error(f"LIKE compares text, not {self._kind(operand)}", node)
        if isinstance(node, exp.ILike):
            return Value(self.backend.ilike(value.sql, pattern.sql), computed_meta(BOOLEAN))
        return Value(exp.Like(this=value.sql, expression=pattern.sql), computed_meta(BOOLEAN))

    def _exists(self, node: exp.Exists, scope: Scope) -> Value:
        inner = node.this.this if isinstance(node.this, exp.Subquery) else node.this
        sql, _ = self.query(inner, scope, False)
        return Value(exp.Exists(this=sql), computed_meta(BOOLEAN))

    def _subquery(self, node: exp.Subquery, scope: Scope) -> Value:
        if node.args.get("alias"):
            raise self.unsupported(node)
        sql, columns = self.query(node.this, scope, False)
        if len(columns) != 1:
            raise self.error("a subquery used as a value must return exactly one column", node)
        meta = columns[0].meta
        result = exp.Subquery(this=sql)
        kind = geometry_kind(meta)
        return Value(result, meta, Geom(kind, packed=result) if kind else None)

    def _case(self, node: exp.Case, scope: Scope) -> Value:
        subject = node.args.get("this")
        subject_value = self.value(subject, scope) if subject is not None else None
        ifs = []
        results: list[Value] = []
        for branch in node.args.get("ifs") or []:
            if subject_value is not None:
                when = self.value(branch.this, scope)
                left, right = self._comparable(branch, subject_value, when)
                condition: exp.Expr = exp.EQ(this=left, expression=right)
            else:
                condition = self.condition(branch.this, scope, "WHEN")
            result = self.value(branch.args["true"], scope)
            results.append(result)
            ifs.append(exp.If(this=condition, true=result.sql))
        default = node.args.get("default")
        sql = exp.Case(ifs=ifs)
        if default is not None:
            default_value = self.value(default, scope)
            results.append(default_value)
            sql.set("default", default_value.sql)
        return Value(sql, self._result_meta(results, node))

    def _result_meta(self, results: list[Value], node: exp.Expr) -> ResultColumn:
        meta = computed_meta(NULL)
        for result in results:
            if result.datatype == BOOLEAN or result.geom is not None:
                raise self.error(f"cannot return {self._kind(result)} here", node)
            if meta.datatype == NULL:
                meta = replace(result.meta, ucd=None, utype=None, description=None)
            elif result.datatype != NULL and result.datatype != meta.datatype:
                meta = self._common_meta(meta, result.meta, node)
        return meta

    def _coalesce(self, node: exp.Coalesce, scope: Scope) -> Value:
        values = [self.value(node.this, scope)] + [self.value(e, scope) for e in node.expressions]
        meta = self._result_meta(values, node)
        sql = exp.Coalesce(this=values[0].sql, expressions=[v.sql for v in values[1:]])
        return Value(sql, meta)

    def _cast(self, node: exp.Cast, scope: Scope) -> Value:
        value = self.value(node.this, scope)
        to = node.args["to"]
        type_name = to.this.name if hasattr(to.this, "name") else str(to.this)
        type_name = type_name.upper()
        if type_name not in _CAST_TYPES or to.args.get("nested"):
            raise self.error(
                f"CAST to {to.sql()} is not supported: use SMALLINT, INTEGER, BIGINT, REAL, "
                "DOUBLE PRECISION, CHAR(n), VARCHAR(n) or TIMESTAMP",
                node,
            )
        if value.datatype == BOOLEAN or value.geom is not None:
            raise self.error(f"cannot CAST {self._kind(value)}", node)
        length = None
        if to.expressions:
            length = self._row_count(to.expressions[0].this, "CHAR/VARCHAR length")
        datatype, xtype = _CAST_TYPES[type_name]
        adql_type = _CAST_NAMES.get(type_name, type_name)
        if datatype in NUMERIC_TYPES and not (
            value.is_numeric or value.is_string or value.datatype == NULL
        ):
            raise self.error(f"cannot CAST {self._kind(value)} to a number", node)
        if xtype == "timestamp":
            return Value(
                self._timestamp_operand(value, node), computed_meta("char", xtype="timestamp")
            )
        sql = self.backend.cast(value.sql, adql_type, length)
        if datatype == "char":
            return Value(sql, computed_meta("char", arraysize=f"{length}*" if length else "*"))
        return Value(sql, computed_meta(datatype))

    def _aggregate(self, node: exp.AggFunc, scope: Scope) -> Value:
        argument = node.this
        distinct = isinstance(argument, exp.Distinct)
        if distinct:
            if len(argument.expressions) != 1:
                raise self.unsupported(node)
            argument = argument.expressions[0]
        if node.expressions if isinstance(node, exp.Count) else False:
            raise self.unsupported(node)
        cls = type(node)
        if isinstance(node, exp.Count) and isinstance(argument, exp.Star):
            if distinct:
                raise self.unsupported(node)
            return Value(exp.Count(this=exp.Star(), big_int=True), computed_meta("long"))
        value = self.value(argument, scope)
        if value.datatype == BOOLEAN or value.geom is not None or value.is_array:
            raise self.error(f"{cls.key.upper()} cannot take {self._kind(value)}", node)
        inner = exp.Distinct(expressions=[value.sql]) if distinct else value.sql
        if isinstance(node, exp.Count):
            return Value(exp.Count(this=inner, big_int=True), computed_meta("long"))
        if isinstance(node, exp.Min | exp.Max):
            return Value(
                cls(this=inner),
                replace(value.meta, name="", ucd=None, utype=None, description=None),
            )
        self._numeric(node, value, cls.key.upper())
        if isinstance(node, exp.Sum):
            return Value(
                cls(this=inner),
                computed_meta("long" if value.is_integer else "double", unit=value.meta.unit),
            )
        return Value(cls(this=inner), computed_meta("double", unit=value.meta.unit))
