"""ADQL tree → SQL tree of one backend, with every name resolved and every value typed.

One bottom-up pass over the tree that `dialect.parse_adql` returns. It is also
the validator: a node is only translated if this module knows it as ADQL
(ADQL 2.1 grammar plus the optional features vosim declares), so anything
else sqlglot happens to parse is refused with a message naming it. Each value
comes back with its VOTable metadata, so the output columns' FIELDs are known
without running the query: a plain column keeps its TAP_SCHEMA metadata,
computed values get a datatype (COUNT long, arithmetic double, strings
char ``*``, geometry DALI point/circle/polygon).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlglot import exp

from vo_service.votable.columns import ResultColumn

from .backends import Backend, call
from .catalog import TapSchema, names_match
from .dialect import position
from .errors import AdqlError
from .geometry import GEOMETRY_ARRAYSIZE, Geom, GeometryBackend, box_polygon
from .proprietary import PROPRIETARY_TABLES, public_rows_sql
from .scope import Name, Scope, Source, SourceColumn
from .translated import UploadedTable

__all__ = ["OutputColumn", "Translator"]

_INTEGER = ("short", "int", "long")
_NUMERIC = ("short", "int", "long", "float", "double", "unsignedByte")
_BOOLEAN = "boolean"
_NULL = "null"

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
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _meta(datatype: str, **fields: str | None) -> ResultColumn:
    if datatype == "char" and "arraysize" not in fields:
        fields["arraysize"] = "*"
    return ResultColumn(name="", datatype=datatype, **fields)


@dataclass
class Value:
    """A translated value: its SQL, its metadata and, for geometry, its symbolic form."""

    sql: exp.Expr | None
    meta: ResultColumn
    geom: Geom | None = None

    @property
    def datatype(self) -> str:
        return self.meta.datatype

    @property
    def is_numeric(self) -> bool:
        return self.meta.datatype in _NUMERIC and self.meta.arraysize is None

    @property
    def is_integer(self) -> bool:
        return self.meta.datatype in _INTEGER and self.meta.arraysize is None

    @property
    def is_array(self) -> bool:
        """An array that is not text, such as a similarity vector."""
        return self.meta.arraysize is not None and self.meta.datatype not in ("char", "unicodeChar")

    @property
    def is_timestamp(self) -> bool:
        return self.meta.xtype == "timestamp"

    @property
    def is_string(self) -> bool:
        return self.meta.datatype in ("char", "unicodeChar") and not self.is_timestamp


@dataclass(frozen=True)
class OutputColumn:
    """One column of a (sub)query's result: ADQL name, SQL alias, metadata, geometry kind."""

    name: str
    sql_name: str
    meta: ResultColumn
    generated: bool = False


def _needs_no_cast(sql: exp.Expr, meta: ResultColumn) -> bool:
    """Whether a value already is what its output column declares (no CAST needed)."""
    if isinstance(sql, exp.Column):
        return True
    return (
        meta.datatype == "double"
        and isinstance(sql, exp.Cast)
        and sql.args["to"].this == exp.DataType.Type.DOUBLE
    )


def _geometry_kind(meta: ResultColumn) -> str | None:
    if meta.xtype in GEOMETRY_ARRAYSIZE:
        return meta.xtype
    if meta.xtype is not None and meta.xtype.lower() == "adql:region":
        return "region"
    return None


def _name(identifier: exp.Identifier | str | None) -> Name | None:
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return identifier, False
    return identifier.this, bool(identifier.quoted)


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


class Translator:
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
    """

    def __init__(
        self,
        adql: str,
        schema: TapSchema,
        backend: Backend,
        uploads: Mapping[str, UploadedTable],
    ) -> None:
        self.adql = adql
        self.schema = schema
        self.backend = backend
        self.geometry = GeometryBackend(backend)
        self.uploads = uploads
        self.ctes: list[dict[str, tuple[str, list[OutputColumn]]]] = []

    # -- errors ---------------------------------------------------------------

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

    # -- queries --------------------------------------------------------------

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
        name = _name(alias.this)
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
                replace(column, name=_name(rename)[0])
                for column, rename in zip(columns, renames, strict=True)
            ]
        sql_name = name[0] if name[1] else name[0].lower()
        self.ctes[-1][key] = (sql_name, columns)
        return exp.CTE(
            this=sql,
            alias=exp.TableAlias(
                this=_quoted(sql_name), columns=[_quoted(c.sql_name) for c in columns]
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
        if first.datatype == _NULL:
            return second
        if second.datatype == _NULL:
            return first
        numeric = first.datatype in _NUMERIC and second.datatype in _NUMERIC
        if numeric:
            both_integer = first.datatype in _INTEGER and second.datatype in _INTEGER
            return _meta("long" if both_integer else "double")
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
                name = _name(target.this)
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

    # -- SELECT ---------------------------------------------------------------

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
        self._limits(node, sql, max_rows)
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
                alias = _name(projection.args["alias"])
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
            if value.datatype == _BOOLEAN:
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
        if meta.datatype == _NULL:
            meta = _meta("char")
        if value.geom is not None and value.geom.kind != "region":
            return self.geometry.pack(value.geom), meta
        sql = value.sql
        if output and value.is_timestamp:
            sql = self.backend.timestamp_output(sql)
        elif output and meta.arraysize is None and not _needs_no_cast(sql, meta):
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
                name = _name(item.this)
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
                name = _name(target.this)
                found = [c for c in columns if names_match(c.name, name)]
                if len(found) == 1:
                    items.append(self._ordered(ordered, exp.column(found[0].sql_name, quoted=True)))
                    continue
            value = self.value(target, scope)
            if value.datatype == _BOOLEAN or value.geom is not None:
                raise self.error("ORDER BY needs a value that can be sorted", target)
            items.append(self._ordered(ordered, value.sql))
        return exp.Order(expressions=items)

    # -- FROM -----------------------------------------------------------------

    def _from_item(self, item: exp.Expr, scope: Scope) -> exp.Expr:
        if isinstance(item, exp.Table):
            return self._table(item, scope)
        if isinstance(item, exp.Subquery):
            alias = item.args.get("alias")
            if alias is None:
                raise self.error("a subquery in FROM needs a name: ( SELECT … ) AS name", item)
            sql, columns = self.query(item.this, scope.parent, output=False)
            name = _name(alias.this)
            source = Source(
                sql_alias=name[0] if name[1] else name[0].lower(),
                columns=[SourceColumn(c.name, c.sql_name, c.meta) for c in columns],
                alias=name,
            )
            scope.add(source)
            return exp.Subquery(this=sql, alias=exp.TableAlias(this=_quoted(source.sql_alias)))
        raise self.unsupported(item)

    def _table(self, table: exp.Table, scope: Scope) -> exp.Expr:
        if table.args.get("catalog") is not None or table.args.get("joins"):
            raise self.unsupported(table)
        name = _name(table.this)
        if not isinstance(table.this, exp.Identifier):
            raise self.unsupported(table)
        schema_name = _name(table.args.get("db"))
        alias_node = table.args.get("alias")
        alias = _name(alias_node.this) if alias_node is not None else None
        if alias_node is not None and alias_node.columns:
            raise self.error("renaming a table's columns in FROM is not part of ADQL", table)
        if schema_name is None:
            for level in reversed(self.ctes):
                found = level.get(name[0].lower())
                if found is not None:
                    sql_name, columns = found
                    return self._add_source(
                        scope,
                        exp.Table(this=_quoted(sql_name)),
                        [SourceColumn(c.name, c.sql_name, c.meta) for c in columns],
                        alias,
                        table_name=sql_name,
                    )
        if schema_name is not None and schema_name[0].upper() == "TAP_UPLOAD":
            return self._upload(name, alias, scope, table)
        try:
            tap_table = self.schema.find(schema_name, name)
        except AdqlError as error:
            raise self.error(error.message, table) from None
        columns = [SourceColumn(c.name, c.name, c) for c in tap_table.columns]
        key = (tap_table.schema_name, tap_table.table_name)
        if key in PROPRIETARY_TABLES:
            text = public_rows_sql(tap_table, PROPRIETARY_TABLES[key], self.backend.sql_dialect)
            sql: exp.Expr = exp.Subquery(this=exp.Var(this=text))
        else:
            sql = exp.Table(this=_quoted(tap_table.table_name), db=_quoted(tap_table.schema_name))
        return self._add_source(
            scope, sql, columns, alias, tap_table.table_name, tap_table.schema_name
        )

    def _upload(self, name: Name, alias: Name | None, scope: Scope, node: exp.Expr) -> exp.Expr:
        upload = self.uploads.get(name[0].lower())
        if upload is None or not names_match(upload.adql_name, name):
            known = ", ".join(sorted(u.adql_name for u in self.uploads.values())) or "none"
            raise self.error(
                f"no uploaded table TAP_UPLOAD.{name[0]} (uploaded tables: {known})", node
            )
        from sqlglot import parse_one

        sql = parse_one(upload.sql_name, read=self.backend.sql_dialect, into=exp.Table)
        columns = [SourceColumn(c.name, c.name, c) for c in upload.columns]
        return self._add_source(scope, sql, columns, alias, upload.adql_name, "TAP_UPLOAD")

    def _add_source(
        self,
        scope: Scope,
        sql: exp.Expr,
        columns: list[SourceColumn],
        alias: Name | None,
        table_name: str,
        schema_name: str | None = None,
    ) -> exp.Expr:
        sql_alias = (alias[0] if alias[1] else alias[0].lower()) if alias else table_name
        source = Source(
            sql_alias=sql_alias,
            columns=columns,
            alias=alias,
            table_name=table_name,
            schema_name=schema_name,
        )
        scope.add(source)
        if isinstance(sql, exp.Subquery):
            sql.set("alias", exp.TableAlias(this=_quoted(sql_alias)))
            return sql
        return exp.alias_(sql, sql_alias, table=True, quoted=True)

    def _join(self, join: exp.Join, scope: Scope) -> exp.Join:
        for key, value in join.args.items():
            if value and key not in ("this", "on", "using", "side", "kind", "method"):
                raise self.unsupported(join)
        side = join.args.get("side")
        kind = join.args.get("kind")
        method = join.args.get("method")
        if method and str(method).upper() != "NATURAL":
            raise self.unsupported(join)
        left_columns = {c.name.lower(): c for s in scope.sources for c in s.columns}
        left_columns.update(scope.merged)
        item = self._from_item(join.this, scope)
        new_source = scope.sources[-1]
        sql = exp.Join(this=item)
        for key, arg in (("side", side), ("kind", kind), ("method", method)):
            if arg:
                sql.set(key, arg)
        using = join.args.get("using")
        if using:
            names = []
            for identifier in using:
                name = _name(identifier)
                column = left_columns.get(name[0].lower())
                right = new_source.find(name)
                if column is None or not names_match(column.name, name) or len(right) != 1:
                    raise self.error(
                        f"USING ({name[0]}) needs a column of that name on both sides of the JOIN",
                        identifier,
                    )
                scope.merged[name[0].lower()] = column
                names.append(_quoted(column.sql_name))
            sql.set("using", names)
        elif method:
            for column in new_source.columns:
                left = left_columns.get(column.name.lower())
                if left is not None and left.name == column.name:
                    scope.merged[column.name.lower()] = left
        on = join.args.get("on")
        if on is not None:
            sql.set("on", self.condition(on, scope, "ON"))
        elif not using and not method and str(kind or "").upper() != "CROSS" and side:
            raise self.error("an OUTER JOIN needs ON or USING", join)
        return sql

    # -- values ---------------------------------------------------------------

    def condition(self, node: exp.Expr, scope: Scope, clause: str) -> exp.Expr:
        """Translate a search condition (WHERE, HAVING, ON, CASE WHEN)."""
        value = self.value(node, scope)
        if value.datatype != _BOOLEAN:
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

    def _qualifier(self, column: exp.Column) -> list[Name]:
        if column.args.get("catalog") is not None:
            raise self.error("a column name has at most schema.table.column", column)
        return [
            _name(part)
            for part in (column.args.get("db"), column.args.get("table"))
            if part is not None
        ]

    def _column(self, node: exp.Column, scope: Scope) -> Value:
        if not isinstance(node.this, exp.Identifier):
            raise self.unsupported(node)
        source, column = scope.column(_name(node.this), self._qualifier(node))
        return self._column_value(source, column)

    def _column_value(self, source: Source | None, column: SourceColumn) -> Value:
        table = source.sql_alias if source is not None else None
        sql = exp.column(column.sql_name, table, quoted=True)
        meta = column.meta
        kind = _geometry_kind(meta)
        if kind is not None:
            return Value(sql, meta, Geom(kind, packed=sql))
        if meta.datatype in ("float", "double") and meta.arraysize is not None:
            # A vector: it can be selected, not computed with.
            return Value(sql, meta)
        return Value(sql, meta)

    def _literal(self, node: exp.Literal, scope: Scope) -> Value:
        if node.is_string:
            return Value(exp.Literal.string(node.this.replace(":", "\\:")), _meta("char"))
        text = node.this
        if text.isdigit():
            return Value(node.copy(), _meta("long" if int(text) > 2**31 - 1 else "int"))
        return Value(node.copy(), _meta("double"))

    def _hex(self, node: exp.HexString, scope: Scope) -> Value:
        return Value(exp.Literal.number(int(node.this, 16)), _meta("long"))

    def _null(self, node: exp.Null, scope: Scope) -> Value:
        return Value(exp.Null(), _meta(_NULL))

    def _paren(self, node: exp.Paren, scope: Scope) -> Value:
        inner = self.value(node.this, scope)
        if inner.geom is not None:
            return inner
        return Value(exp.Paren(this=inner.sql), inner.meta)

    def _numeric(self, node: exp.Expr, value: Value, what: str) -> None:
        if not (value.is_numeric or value.datatype == _NULL):
            raise self.error(f"{what} needs numbers, not {self._kind(value)}", node)

    @staticmethod
    def _kind(value: Value) -> str:
        if value.datatype == _BOOLEAN:
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
        return Value(sql, _meta("long" if integer else "double"))

    def _negative(self, node: exp.Neg, scope: Scope) -> Value:
        inner = self.value(node.this, scope)
        self._numeric(node, inner, "'-'")
        return Value(
            exp.Neg(this=inner.sql), _meta(inner.datatype if inner.is_numeric else "double")
        )

    def _bitwise(self, node: exp.Expr, scope: Scope) -> Value:
        operands = [self.value(node.this, scope)]
        if not isinstance(node, exp.BitwiseNot):
            operands.append(self.value(node.expression, scope))
        for operand in operands:
            if not (operand.is_integer or operand.datatype == _NULL):
                raise self.error("bitwise operators need integers", node)
        if isinstance(node, exp.BitwiseNot):
            sql: exp.Expr = exp.BitwiseNot(this=operands[0].sql)
        elif isinstance(node, exp.BitwiseXor):
            sql = self.backend.xor(operands[0].sql, operands[1].sql)
        else:
            sql = type(node)(this=operands[0].sql, expression=operands[1].sql)
        return Value(sql, _meta("long"))

    def _concat(self, node: exp.DPipe, scope: Scope) -> Value:
        left, right = self.value(node.this, scope), self.value(node.expression, scope)
        for operand in (left, right):
            if operand.datatype == _BOOLEAN or operand.geom is not None:
                raise self.error("'||' joins text, not " + self._kind(operand), node)
        return Value(exp.DPipe(this=left.sql, expression=right.sql, safe=True), _meta("char"))

    def _comparison(self, node: exp.Binary, scope: Scope) -> Value:
        geometric = self._geometric_predicate(node, scope)
        if geometric is not None:
            return geometric
        left, right = self.value(node.this, scope), self.value(node.expression, scope)
        left_sql, right_sql = self._comparable(node, left, right)
        return Value(type(node)(this=left_sql, expression=right_sql), _meta(_BOOLEAN))

    def _comparable(self, node: exp.Expr, left: Value, *others: Value) -> list[exp.Expr]:
        """Check that values can be compared; turn ISO literals into stored timestamps."""
        values = [left, *others]
        for value in values:
            if value.datatype == _BOOLEAN or value.geom is not None or value.is_array:
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
        if value.is_timestamp or value.datatype == _NULL:
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
        return Value(type(node)(this=left, expression=right), _meta(_BOOLEAN))

    def _not(self, node: exp.Not, scope: Scope) -> Value:
        return Value(exp.Not(this=self.condition(node.this, scope, "NOT")), _meta(_BOOLEAN))

    def _is(self, node: exp.Is, scope: Scope) -> Value:
        if not isinstance(node.expression, exp.Null):
            raise self.unsupported(node)
        value = self.value(node.this, scope)
        if value.datatype == _BOOLEAN:
            raise self.error("IS NULL needs a value, not a condition", node)
        sql = value.sql if value.geom is None else self.geometry.pack(value.geom)
        return Value(exp.Is(this=sql, expression=exp.Null()), _meta(_BOOLEAN))

    def _between(self, node: exp.Between, scope: Scope) -> Value:
        values = [self.value(node.args[k], scope) for k in ("this", "low", "high")]
        this, low, high = self._comparable(node, *values)
        return Value(exp.Between(this=this, low=low, high=high), _meta(_BOOLEAN))

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
            return Value(exp.In(this=left.sql, query=exp.Subquery(this=sql)), _meta(_BOOLEAN))
        values = [self.value(item, scope) for item in node.expressions]
        translated = self._comparable(node, left, *values)
        return Value(exp.In(this=translated[0], expressions=translated[1:]), _meta(_BOOLEAN))

    def _like(self, node: exp.Like | exp.ILike, scope: Scope) -> Value:
        value, pattern = self.value(node.this, scope), self.value(node.expression, scope)
        for operand in (value, pattern):
            if not (operand.is_string or operand.datatype == _NULL):
                raise self.error(f"LIKE compares text, not {self._kind(operand)}", node)
        if isinstance(node, exp.ILike):
            return Value(self.backend.ilike(value.sql, pattern.sql), _meta(_BOOLEAN))
        return Value(exp.Like(this=value.sql, expression=pattern.sql), _meta(_BOOLEAN))

    def _exists(self, node: exp.Exists, scope: Scope) -> Value:
        inner = node.this.this if isinstance(node.this, exp.Subquery) else node.this
        sql, _ = self.query(inner, scope, False)
        return Value(exp.Exists(this=sql), _meta(_BOOLEAN))

    def _subquery(self, node: exp.Subquery, scope: Scope) -> Value:
        if node.args.get("alias"):
            raise self.unsupported(node)
        sql, columns = self.query(node.this, scope, False)
        if len(columns) != 1:
            raise self.error("a subquery used as a value must return exactly one column", node)
        meta = columns[0].meta
        result = exp.Subquery(this=sql)
        kind = _geometry_kind(meta)
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
        meta = _meta(_NULL)
        for result in results:
            if result.datatype == _BOOLEAN or result.geom is not None:
                raise self.error(f"cannot return {self._kind(result)} here", node)
            if meta.datatype == _NULL:
                meta = replace(result.meta, ucd=None, utype=None, description=None)
            elif result.datatype != _NULL and result.datatype != meta.datatype:
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
        if value.datatype == _BOOLEAN or value.geom is not None:
            raise self.error(f"cannot CAST {self._kind(value)}", node)
        length = None
        if to.expressions:
            length = self._row_count(to.expressions[0].this, "CHAR/VARCHAR length")
        datatype, xtype = _CAST_TYPES[type_name]
        adql_type = _CAST_NAMES.get(type_name, type_name)
        if datatype in _NUMERIC and not (
            value.is_numeric or value.is_string or value.datatype == _NULL
        ):
            raise self.error(f"cannot CAST {self._kind(value)} to a number", node)
        if xtype == "timestamp":
            return Value(self._timestamp_operand(value, node), _meta("char", xtype="timestamp"))
        sql = self.backend.cast(value.sql, adql_type, length)
        if datatype == "char":
            return Value(sql, _meta("char", arraysize=f"{length}*" if length else "*"))
        return Value(sql, _meta(datatype))

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
            return Value(exp.Count(this=exp.Star(), big_int=True), _meta("long"))
        value = self.value(argument, scope)
        if value.datatype == _BOOLEAN or value.geom is not None or value.is_array:
            raise self.error(f"{cls.key.upper()} cannot take {self._kind(value)}", node)
        inner = exp.Distinct(expressions=[value.sql]) if distinct else value.sql
        if isinstance(node, exp.Count):
            return Value(exp.Count(this=inner, big_int=True), _meta("long"))
        if isinstance(node, exp.Min | exp.Max):
            return Value(
                cls(this=inner),
                replace(value.meta, name="", ucd=None, utype=None, description=None),
            )
        self._numeric(node, value, cls.key.upper())
        if isinstance(node, exp.Sum):
            return Value(
                cls(this=inner),
                _meta("long" if value.is_integer else "double", unit=value.meta.unit),
            )
        return Value(cls(this=inner), _meta("double", unit=value.meta.unit))

    # -- functions ------------------------------------------------------------

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
            if not (value.is_string or value.datatype == _NULL):
                raise self.error(f"{name} needs text, not {self._kind(value)}", node)
            return Value(call(name.lower(), value.sql), _meta("char"))
        if name in _GEOMETRY_FUNCTIONS:
            return self._geometry_function(name, node, scope)
        raise self.error(
            f"{name} is not an ADQL function: see the service's capabilities for the "
            "functions it supports",
            node,
        )

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
            and not (values[1].is_integer or values[1].datatype == _NULL)
        ):
            raise self.error(f"the second argument of {name} is a whole number of digits", node)
        integer = all(v.is_integer for v in values)
        sql = self.backend.function(name, [v.sql for v in values], integer)
        if name == "ABS" or (name == "MOD" and integer):
            return Value(sql, _meta(values[0].datatype if values[0].is_numeric else "double"))
        unit = (
            values[0].meta.unit
            if name in ("ROUND", "TRUNCATE", "CEILING", "FLOOR") and values
            else None
        )
        if name == "DEGREES":
            unit = "deg"
        return Value(sql, _meta("double", unit=unit))

    # -- geometry -------------------------------------------------------------

    def _geometry_function(self, name: str, node: exp.Anonymous, scope: Scope) -> Value:
        arguments = list(node.expressions)
        if name in ("POINT", "CIRCLE", "BOX", "POLYGON") and arguments:
            first = arguments[0]
            if isinstance(first, exp.Literal) and first.is_string:
                frame = first.this.strip().upper()
                if frame and not frame.startswith("ICRS"):
                    raise self.error(
                        f"coordinate system {first.this!r} is not supported: use 'ICRS'", first
                    )
                arguments = arguments[1:]
        if name in ("CONTAINS", "INTERSECTS"):
            self._arity(node, name, 2, 2)
            condition = self._geometric_condition(name, arguments, scope, node)
            return Value(
                exp.Case(
                    ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                    default=exp.Literal.number(0),
                ),
                _meta("int"),
            )
        if name == "POINT":
            coords = self._numbers(name, node, arguments, scope, 2, 2)
            return self._geom_value(Geom("point", coords=coords))
        if name == "CIRCLE":
            coords = self._centred_shape(name, node, arguments, scope, 1)
            return self._geom_value(Geom("circle", coords=coords))
        if name == "BOX":
            coords = self._centred_shape(name, node, arguments, scope, 2)
            return self._geom_value(box_polygon(*coords))
        if name == "POLYGON":
            values = [self.value(argument, scope) for argument in arguments]
            if values and all(v.geom is not None and v.geom.kind == "point" for v in values):
                coords = tuple(
                    c
                    for v in values
                    for c in (self.geometry.coord(v.geom, 1), self.geometry.coord(v.geom, 2))
                )
            else:
                for value in values:
                    self._numeric(node, value, name)
                coords = tuple(v.sql for v in values)
            if len(coords) < 6 or len(coords) % 2:
                raise self.error("POLYGON needs at least three vertices (ra, dec pairs)", node)
            return self._geom_value(Geom("polygon", coords=coords))
        if name in ("COORD1", "COORD2"):
            self._arity(node, name, 1, 1)
            point = self._geom_argument(arguments[0], scope, node, ("point",))
            index = 1 if name == "COORD1" else 2
            return Value(self.geometry.coord(point, index), _meta("double", unit="deg"))
        if name == "COORDSYS":
            self._arity(node, name, 1, 1)
            self._geom_argument(arguments[0], scope, node, ("point", "circle", "polygon", "region"))
            return Value(exp.Literal.string("ICRS"), _meta("char"))
        if name == "DISTANCE":
            if len(arguments) == 4:
                numbers = self._numbers(name, node, arguments, scope, 4, 4)
                first, second = Geom("point", coords=numbers[:2]), Geom("point", coords=numbers[2:])
            else:
                self._arity(node, name, 2, 2)
                first = self._geom_argument(arguments[0], scope, node, ("point",))
                second = self._geom_argument(arguments[1], scope, node, ("point",))
            return Value(self.geometry.distance(first, second), _meta("double", unit="deg"))
        if name == "AREA":
            self._arity(node, name, 1, 1)
            geom = self._geom_argument(
                arguments[0], scope, node, ("point", "circle", "polygon", "region")
            )
            return Value(self.geometry.area(geom), _meta("double", unit="deg**2"))
        self._arity(node, name, 1, 1)
        geom = self._geom_argument(
            arguments[0], scope, node, ("point", "circle", "polygon", "region")
        )
        try:
            return self._geom_value(self.geometry.centroid(geom))
        except AdqlError as error:
            raise self.error(error.message, node) from None

    def _geom_value(self, geom: Geom) -> Value:
        meta = _meta("double", arraysize=GEOMETRY_ARRAYSIZE[geom.kind], xtype=geom.kind, unit="deg")
        return Value(None, meta, geom)

    def _numbers(
        self,
        name: str,
        node: exp.Expr,
        arguments: list[exp.Expr],
        scope: Scope,
        low: int,
        high: int,
    ) -> tuple[exp.Expr, ...]:
        if not low <= len(arguments) <= high:
            raise self.error(
                f"{name} takes {low} numbers (after an optional coordinate system)", node
            )
        values = [self.value(argument, scope) for argument in arguments]
        for value in values:
            self._numeric(node, value, name)
        return tuple(v.sql for v in values)

    def _centred_shape(
        self, name: str, node: exp.Expr, arguments: list[exp.Expr], scope: Scope, sizes: int
    ) -> tuple[exp.Expr, ...]:
        """Coordinates of a CIRCLE or BOX given by a centre POINT or by two numbers, then sizes."""
        if len(arguments) == sizes + 1:
            centre = self._geom_argument(arguments[0], scope, node, ("point",))
            size = self._numbers(name, node, arguments[1:], scope, sizes, sizes)
            return (self.geometry.coord(centre, 1), self.geometry.coord(centre, 2), *size)
        return self._numbers(name, node, arguments, scope, sizes + 2, sizes + 2)

    def _geom_argument(
        self, argument: exp.Expr, scope: Scope, node: exp.Expr, kinds: tuple[str, ...]
    ) -> Geom:
        value = self.value(argument, scope)
        if value.geom is None or value.geom.kind not in kinds:
            wanted = " or ".join(k.upper() for k in kinds if k != "region")
            raise self.error(
                f"{str(node.this).upper()} needs a {wanted} here, not {self._kind(value)}", node
            )
        return value.geom

    def _geometric_condition(
        self, name: str, arguments: list[exp.Expr], scope: Scope, node: exp.Expr
    ) -> exp.Expr:
        regions = ("point", "circle", "polygon", "region")
        first = self._geom_argument(arguments[0], scope, node, regions)
        second = self._geom_argument(arguments[1], scope, node, regions)
        try:
            if name == "CONTAINS":
                return self.geometry.contains(first, second)
            return self.geometry.intersects(first, second)
        except AdqlError as error:
            raise self.error(error.message, node) from None

    def _geometric_predicate(self, node: exp.Binary, scope: Scope) -> Value | None:
        """``CONTAINS(…) = 1`` and its variants as a plain condition, so indexes apply."""
        if not isinstance(node, exp.EQ | exp.NEQ):
            return None
        sides = (node.this, node.expression)
        for function, other in (sides, sides[::-1]):
            if (
                isinstance(function, exp.Anonymous)
                and str(function.this).upper() in ("CONTAINS", "INTERSECTS")
                and isinstance(other, exp.Literal)
                and not other.is_string
                and other.this in ("0", "1")
            ):
                name = str(function.this).upper()
                self._arity(function, name, 2, 2)
                condition = self._geometric_condition(
                    name, list(function.expressions), scope, function
                )
                wanted = (other.this == "1") == isinstance(node, exp.EQ)
                sql = condition if wanted else exp.Not(this=exp.Paren(this=condition))
                return Value(sql, _meta(_BOOLEAN))
        return None


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
    **{cls: Translator._comparison for cls in _COMPARISONS},
}
