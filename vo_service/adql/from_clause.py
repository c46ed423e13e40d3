"""The FROM clause (ADQL 2.1 ``<from_clause>``): published tables, uploads, subqueries, joins.

Every reference to a table of image data becomes the per-query copy of its
public rows (`proprietary`), wherever in the query it appears.
"""

from __future__ import annotations

from sqlglot import exp

from .catalog import names_match
from .errors import AdqlError
from .proprietary import PROPRIETARY_TABLES, public_source
from .scope import Name, Scope, Source, SourceColumn
from .translation_types import (
    name_of,
    quoted,
)

__all__ = ["FromClauseTranslation"]


class FromClauseTranslation:
    """The translation of the tables a query reads, and their joins."""

    def _from_item(self, item: exp.Expr, scope: Scope) -> exp.Expr:
        if isinstance(item, exp.Table):
            return self._table(item, scope)
        if isinstance(item, exp.Subquery):
            alias = item.args.get("alias")
            if alias is None:
                raise self.error("a subquery in FROM needs a name: ( SELECT … ) AS name", item)
            sql, columns = self.query(item.this, scope.parent, output=False)
            name = name_of(alias.this)
            source = Source(
                sql_alias=name[0] if name[1] else name[0].lower(),
                columns=[SourceColumn(c.name, c.sql_name, c.meta) for c in columns],
                alias=name,
            )
            scope.add(source)
            return exp.Subquery(this=sql, alias=exp.TableAlias(this=quoted(source.sql_alias)))
        raise self.unsupported(item)

    def _table(self, table: exp.Table, scope: Scope) -> exp.Expr:
        if table.args.get("catalog") is not None or table.args.get("joins"):
            raise self.unsupported(table)
        if not isinstance(table.this, exp.Identifier):
            raise self.error(
                f"{self._adql_text(table)!r} is not a table: FROM takes table names "
                "(schema.table), subqueries (with AS name) and their joins; ADQL has no "
                "table-valued functions",
                table,
            )
        name = name_of(table.this)
        schema_name = name_of(table.args.get("db"))
        alias_node = table.args.get("alias")
        alias = name_of(alias_node.this) if alias_node is not None else None
        if alias_node is not None and alias_node.columns:
            raise self.error("renaming a table's columns in FROM is not part of ADQL", table)
        if schema_name is None:
            for level in reversed(self.ctes):
                found = level.get(name[0].lower())
                if found is not None:
                    sql_name, columns = found
                    return self._add_source(
                        scope,
                        exp.Table(this=quoted(sql_name)),
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
            self.public_tables[key] = tap_table
            sql: exp.Expr = public_source(tap_table, self.backend.sql_dialect)
        else:
            sql = exp.Table(this=quoted(tap_table.table_name), db=quoted(tap_table.schema_name))
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
            sql.set("alias", exp.TableAlias(this=quoted(sql_alias)))
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
                name = name_of(identifier)
                column = left_columns.get(name[0].lower())
                right = new_source.find(name)
                if column is None or not names_match(column.name, name) or len(right) != 1:
                    raise self.error(
                        f"USING ({name[0]}) needs a column of that name on both sides of the JOIN",
                        identifier,
                    )
                scope.merged[name[0].lower()] = column
                names.append(quoted(column.sql_name))
            sql.set("using", names)
        elif method:
            for column in new_source.columns:
                left = left_columns.get(column.name.lower())
                if left is not None and left.name == column.name:
                    scope.merged[column.name.lower()] = left
        on = join.args.get("on")
        if on is not None:
            scope.in_join = True
            try:
                sql.set("on", self.condition(on, scope, "ON"))
            finally:
                scope.in_join = False
        elif not using and not method and str(kind or "").upper() != "CROSS" and side:
            raise self.error("an OUTER JOIN needs ON or USING", join)
        return sql
