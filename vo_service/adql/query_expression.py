"""Query expressions (ADQL 2.1 ``<query_expression>``).

WITH, set operations, SELECT and its clauses, ORDER BY, TOP and OFFSET.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from vo_service.votable.columns import ResultColumn

from .catalog import names_match
from .errors import AdqlError
from .scope import Scope
from .translation_types import (
    BOOLEAN,
    INTEGER_TYPES,
    NULL,
    NUMERIC_TYPES,
    OutputColumn,
    Value,
    computed_meta,
    name_of,
    needs_no_cast,
    quoted,
)

__all__ = ["QueryExpressionTranslation"]

_SELECT_PARTS = {
    "expressions",
    "distinct",
    "from_",
    "joins",
    "where",
    "group",
    "having",
    "order",
    "limit",
    "offset",
    "with_",
    "kind",
}


class QueryExpressionTranslation:
    """The translation of a query: its clauses, its output columns, its limits."""

    def query(
        self, node: exp.Expr, parent: Scope | None, output: bool, limit: int | None = None
    ) -> tuple[exp.Expr, list[OutputColumn]]:
        """Translate a query expression (SELECT, set operation, WITH).

        Parameters
        ----------
        output
            Whether its columns are the final result (timestamps become ISO
            text, geometry its DALI value, computed numbers their declared type).
        limit
            ``max_rows`` of the final result.
        """
        with_ = node.args.get("with_")
        if with_ is not None:
            if with_.args.get("recursive"):
                raise self.error("WITH RECURSIVE is not part of ADQL", with_)
            self.ctes.append({})
            try:
                new_ctes = [self._cte(cte, parent) for cte in with_.expressions]
                sql, columns = self._query_body(node, parent, output, limit)
            finally:
                self.ctes.pop()
            sql.set("with_", exp.With(expressions=new_ctes))
            return sql, columns
        return self._query_body(node, parent, output, limit)

    def _cte(self, cte: exp.CTE, parent: Scope | None) -> exp.CTE:
        alias = cte.args.get("alias")
        name = name_of(alias.this)
        key = name[0].lower()
        if key in self.ctes[-1]:
            raise self.error(f"WITH defines {name[0]!r} twice", cte)
        sql, columns = self.query(cte.this, parent, output=False)
        renames = alias.columns
        if renames:
            if len(renames) != len(columns):
                raise self.error(
                    f"WITH {name[0]} names {len(renames)} columns but its query has {len(columns)}",
                    cte,
                )
            columns = [
                replace(column, name=name_of(rename)[0])
                for column, rename in zip(columns, renames, strict=True)
            ]
        sql_name = name[0] if name[1] else name[0].lower()
        self.ctes[-1][key] = (sql_name, columns)
        return exp.CTE(
            this=sql,
            alias=exp.TableAlias(
                this=quoted(sql_name), columns=[quoted(c.sql_name) for c in columns]
            ),
        )

    def _query_body(
        self, node: exp.Expr, parent: Scope | None, output: bool, limit: int | None
    ) -> tuple[exp.Expr, list[OutputColumn]]:
        if isinstance(node, exp.Select):
            return self.select(node, parent, output, limit)
        if isinstance(node, exp.Subquery) and not node.args.get("alias"):
            inner, columns = self.query(node.this, parent, output, limit)
            return inner, columns
        if isinstance(node, exp.Union | exp.Intersect | exp.Except):
            return self.set_operation(node, parent, output, limit)
        raise self.unsupported(node)

    def set_operation(
        self, node: exp.SetOperation, parent: Scope | None, output: bool, limit: int | None
    ) -> tuple[exp.Expr, list[OutputColumn]]:
        """UNION, INTERSECT, EXCEPT [ALL] (ADQL 2.1, section 2.2.5)."""
        left, left_columns = self.query(node.this, parent, output)
        right, right_columns = self.query(node.expression, parent, output)
        if len(left_columns) != len(right_columns):
            raise self.error(
                f"both sides of {node.key.upper()} must have the same number of columns "
                f"({len(left_columns)} and {len(right_columns)})",
                node,
            )
        columns = []
        for first, second in zip(left_columns, right_columns, strict=True):
            meta = first.meta
            if first.meta.datatype != second.meta.datatype:
                meta = self._common_meta(first.meta, second.meta, node)
            columns.append(replace(first, meta=meta))
        sql = type(node)(this=left, expression=right, distinct=node.args.get("distinct"))
        order = node.args.get("order")
        if order is not None:
            sql.set("order", self._set_order(order, columns))
        self._limits(node, sql, limit)
        return sql, columns

    def _common_meta(
        self, first: ResultColumn, second: ResultColumn, node: exp.Expr
    ) -> ResultColumn:
        if first.datatype == NULL:
            return second
        if second.datatype == NULL:
            return first
        numeric = first.datatype in NUMERIC_TYPES and second.datatype in NUMERIC_TYPES
        if numeric:
            both_integer = first.datatype in INTEGER_TYPES and second.datatype in INTEGER_TYPES
            return computed_meta("long" if both_integer else "double")
        raise self.error(
            f"cannot combine {first.datatype} and {second.datatype} values in one column", node
        )

    def _set_order(self, order: exp.Order, columns: list[OutputColumn]) -> exp.Order:
        items = []
        for ordered in order.expressions:
            target = ordered.this
            if isinstance(target, exp.Literal) and not target.is_string:
                items.append(ordered.copy())
                continue
            if isinstance(target, exp.Column) and not target.args.get("table"):
                name = name_of(target.this)
                found = [c for c in columns if names_match(c.name, name)]
                if len(found) == 1:
                    items.append(self._ordered(ordered, exp.column(found[0].sql_name, quoted=True)))
                    continue
            raise self.error(
                "ORDER BY of a UNION, INTERSECT or EXCEPT can only name result columns "
                "(or give their position)",
                ordered,
            )
        return exp.Order(expressions=items)

    @staticmethod
    def _ordered(ordered: exp.Ordered, sql: exp.Expr) -> exp.Ordered:
        return exp.Ordered(
            this=sql, desc=ordered.args.get("desc"), nulls_first=ordered.args.get("nulls_first")
        )

    def _limits(self, node: exp.Expr, sql: exp.Expr, max_rows: int | None) -> None:
        top = None
        limit = node.args.get("limit")
        if limit is not None:
            top = self._row_count(limit.expression, "TOP")
        if max_rows is not None:
            top = max_rows if top is None else min(top, max_rows)
        if top is not None:
            sql.set("limit", exp.Limit(expression=exp.Literal.number(top)))
        offset = node.args.get("offset")
        if offset is not None:
            rows = self._row_count(offset.expression, "OFFSET")
            sql.set("offset", exp.Offset(expression=exp.Literal.number(rows)))

    def _row_count(self, node: exp.Expr, keyword: str) -> int:
        if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
            return int(node.this)
        raise self.error(f"{keyword} needs a whole number of rows", node)

    def select(
        self, node: exp.Select, parent: Scope | None, output: bool, max_rows: int | None
    ) -> tuple[exp.Select, list[OutputColumn]]:
        """One query specification (ADQL 2.1, section 2.2)."""
        for key, value in node.args.items():
            if value and key not in _SELECT_PARTS:
                raise self.unsupported(value if isinstance(value, exp.Expr) else node)
        distinct = node.args.get("distinct")
        if distinct is not None and distinct.args.get("on") is not None:
            raise self.error("DISTINCT ON is not part of ADQL", distinct)
        scope = Scope(parent=parent)
        scope.grouped = node.args.get("group") is not None or node.args.get("having") is not None
        sql = exp.Select()
        from_ = node.args.get("from_")
        if from_ is None:
            raise self.error("an ADQL query needs a FROM clause", node)
        sql.set("from_", exp.From(this=self._from_item(from_.this, scope)))
        joins = [self._join(join, scope) for join in node.args.get("joins") or []]
        if joins:
            sql.set("joins", joins)
        where = node.args.get("where")
        if where is not None:
            sql.set("where", exp.Where(this=self.condition(where.this, scope, "WHERE")))
        projections, columns = self._projections(node, scope, output)
        sql.set("expressions", projections)
        group = node.args.get("group")
        if group is not None:
            items = [
                self._group_item(item, scope, columns, projections) for item in group.expressions
            ]
            sql.set("group", exp.Group(expressions=items))
        having = node.args.get("having")
        if having is not None:
            sql.set("having", exp.Having(this=self.condition(having.this, scope, "HAVING")))
        order = node.args.get("order")
        if order is not None:
            sql.set("order", self._order(order, scope, columns))
        if distinct is not None:
            sql.set("distinct", exp.Distinct())
        if scope.lookups:  # `similarity_scores`: one row of scores at most per row
            sql.set("joins", [*(sql.args.get("joins") or []), *scope.lookups])
        self._limits(node, sql, max_rows)
        if output and parent is None:
            self.outermost = (sql, scope)
        return sql, columns

    def _projections(
        self, node: exp.Select, scope: Scope, output: bool
    ) -> tuple[list[exp.Expr], list[OutputColumn]]:
        items: list[tuple[str, bool, Value]] = []
        for projection in node.expressions:
            if isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            ):
                qualifier = (
                    self._qualifier(projection) if isinstance(projection, exp.Column) else []
                )
                for source, column in scope.star(qualifier):
                    items.append((column.name, False, self._column_value(source, column)))
                continue
            if isinstance(projection, exp.Alias):
                value = self.value(projection.this, scope)
                alias = name_of(projection.args["alias"])
                items.append((alias[0], False, value))
                continue
            value = self.value(projection, scope)
            if isinstance(projection, exp.Column):
                items.append((value.meta.name or projection.name, False, value))
            else:
                items.append((self._generated_name(projection), True, value))
        taken: set[str] = set()
        names = [name for name, generated, _ in items if not generated]
        projections: list[exp.Expr] = []
        columns: list[OutputColumn] = []
        for index, (name, generated, value) in enumerate(items):
            if generated:
                base, suffix = name, 1
                while name.lower() in {n.lower() for n in names} or name.lower() in taken:
                    suffix += 1
                    name = f"{base}_{suffix}"
            sql_name = name
            if sql_name.lower() in taken:
                sql_name = f"{name}_{index + 1}"
            taken.add(sql_name.lower())
            if value.datatype == BOOLEAN:
                raise self.error(
                    f"column {name!r} is a condition, which ADQL cannot return: "
                    "write CASE WHEN … THEN 1 ELSE 0 END"
                )
            sql, meta = self._projection_sql(value, output)
            projections.append(exp.alias_(sql, sql_name, quoted=True))
            columns.append(
                OutputColumn(
                    name=name, sql_name=sql_name, meta=replace(meta, name=name), generated=generated
                )
            )
        return projections, columns

    def _projection_sql(self, value: Value, output: bool) -> tuple[exp.Expr, ResultColumn]:
        meta = value.meta
        if meta.datatype == NULL:
            meta = computed_meta("char")
        if value.geom is not None and value.geom.kind != "region":
            return self.geometry.pack(value.geom), meta
        sql = value.sql
        if output and value.is_timestamp:
            sql = self.backend.timestamp_output(sql)
        elif output and meta.arraysize is None and not needs_no_cast(sql, meta):
            sql = self.backend.output_cast(sql, meta.datatype)
        return sql, meta

    @staticmethod
    def _generated_name(node: exp.Expr) -> str:
        if isinstance(node, exp.Anonymous):
            return str(node.this).lower()
        if isinstance(node, exp.Func):
            return node.key.lower()
        return "expr"

    def _group_item(
        self,
        item: exp.Expr,
        scope: Scope,
        columns: list[OutputColumn],
        projections: list[exp.Expr],
    ) -> exp.Expr:
        if isinstance(item, exp.Column) and not item.args.get("table"):
            try:
                return self.value(item, scope).sql
            except AdqlError:
                name = name_of(item.this)
                for column, projection in zip(columns, projections, strict=True):
                    if names_match(column.name, name):
                        return projection.this.copy()
                raise
        return self.value(item, scope).sql

    def _order(self, order: exp.Order, scope: Scope, columns: list[OutputColumn]) -> exp.Order:
        items = []
        for ordered in order.expressions:
            target = ordered.this
            if isinstance(target, exp.Literal) and not target.is_string:
                index = self._row_count(target, "ORDER BY")
                if not 1 <= index <= len(columns):
                    raise self.error(
                        f"ORDER BY {index}: the query has {len(columns)} columns", target
                    )
                items.append(self._ordered(ordered, exp.Literal.number(index)))
                continue
            if isinstance(target, exp.Column) and not target.args.get("table"):
                name = name_of(target.this)
                found = [c for c in columns if names_match(c.name, name)]
                if len(found) == 1:
                    items.append(self._ordered(ordered, exp.column(found[0].sql_name, quoted=True)))
                    continue
            value = self.value(target, scope)
            if value.datatype == BOOLEAN or value.geom is not None:
                raise self.error("ORDER BY needs a value that can be sorted", target)
            items.append(self._ordered(ordered, value.sql))
        return exp.Order(expressions=items)
