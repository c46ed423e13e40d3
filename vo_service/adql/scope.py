"""Name resolution: which table, derived table or column an ADQL name means.

ADQL 2.1 (section 2.1.3): regular identifiers are case-insensitive,
delimited ("quoted") ones are case-sensitive. A `Scope` is one query's FROM
clause (its sources, innermost first, then the enclosing queries' for
correlated subqueries); every name is resolved here, and the SQL always uses
the exact stored names, quoted, so that SQLite (which ignores the case of
quoted identifiers) and PostgreSQL (which does not) read the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from vo_service.votable.columns import ResultColumn

from .catalog import names_match, suggestion
from .errors import AdqlError
from .ranked_scores import ScoreUse

__all__ = ["Name", "Scope", "Source", "SourceColumn"]

Name = tuple[str, bool]
"""An ADQL identifier: its text and whether it was quoted."""


@dataclass(frozen=True)
class SourceColumn:
    """A column a source offers: ADQL name, name in the SQL, and metadata."""

    name: str
    sql_name: str
    meta: ResultColumn


@dataclass
class Source:
    """One table, upload, derived table or common table expression in a FROM clause.

    Parameters
    ----------
    sql_alias
        The correlation name used in the SQL.
    columns
        What the source offers, in order.
    alias
        The user's correlation name; when given, only it names the source.
    table_name, schema_name
        The stored names of a table without alias, which then name it.
    """

    sql_alias: str
    columns: list[SourceColumn]
    alias: Name | None = None
    table_name: str | None = None
    schema_name: str | None = None

    def is_named(self, qualifier: list[Name]) -> bool:
        """Whether ``qualifier`` ([table] or [schema, table]) designates this source."""
        if self.alias is not None:
            return len(qualifier) == 1 and names_match(self.alias[0], qualifier[0])
        if self.table_name is None or not names_match(self.table_name, qualifier[-1]):
            return False
        if len(qualifier) == 1:
            return True
        return (
            len(qualifier) == 2
            and self.schema_name is not None
            and names_match(self.schema_name, qualifier[0])
        )

    def find(self, name: Name) -> list[SourceColumn]:
        """Return the columns an identifier may mean (an exact match wins over a folded one)."""
        matches = [c for c in self.columns if names_match(c.name, name)]
        if len(matches) > 1:
            exact = [c for c in matches if c.name == name[0]]
            return exact or matches
        return matches

    @property
    def display_name(self) -> str:
        """How the user wrote the source, for messages."""
        if self.alias is not None:
            return self.alias[0]
        if self.schema_name:
            return f"{self.schema_name}.{self.table_name}"
        return self.table_name or self.sql_alias


@dataclass
class Scope:
    """The sources visible in one query (SELECT), and the enclosing query's scope."""

    parent: Scope | None = None
    sources: list[Source] = field(default_factory=list)
    merged: dict[str, SourceColumn] = field(default_factory=dict)
    """Columns merged by JOIN … USING or NATURAL JOIN, by lower-case name."""
    grouped: bool = False
    """The query has GROUP BY or HAVING (a joined column would have to be grouped)."""
    in_join: bool = False
    """An ON condition is being translated (a join added after it cannot be named there)."""
    lookups: list[exp.Join] = field(default_factory=list)
    """Joins of constant-argument similarity scores to add to this query's FROM."""
    lookup_aliases: dict[tuple[int, str], str] = field(default_factory=dict)
    """Alias of the join of each (scores, key SQL) already added."""
    score_uses: dict[str, ScoreUse] = field(default_factory=dict)
    """Constant-argument similarity scores read in this query, by their SQL (`ranked_scores`)."""

    def add(self, source: Source) -> None:
        """Add a source, refusing a second source of the same name."""
        for other in self.sources:
            if other.sql_alias.lower() == source.sql_alias.lower():
                raise AdqlError(
                    f"{source.display_name!r} appears twice in FROM: give each occurrence "
                    "its own alias (… AS a, … AS b)"
                )
        self.sources.append(source)

    def column(self, name: Name, qualifier: list[Name]) -> tuple[Source | None, SourceColumn]:
        """Resolve a column reference; the source is None for a USING/NATURAL column.

        Raises
        ------
        AdqlError
            For an unknown or ambiguous name, with the closest names as hint.
        """
        if qualifier:
            return self._qualified(name, qualifier)
        scope: Scope | None = self
        while scope is not None:
            merged = scope.merged.get(name[0].lower())
            if merged is not None and names_match(merged.name, name):
                return None, merged
            found = [(s, c) for s in scope.sources for c in s.find(name)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                where = " and ".join(sorted({s.display_name for s, _ in found}))
                raise AdqlError(
                    f"column name {name[0]!r} is ambiguous (it is in {where}): prefix it with "
                    "the table name or alias"
                )
            scope = scope.parent
        known = [c.name for s in self.sources for c in s.columns]
        raise AdqlError(f"unknown column {name[0]!r}" + suggestion(name[0], known))

    def _qualified(self, name: Name, qualifier: list[Name]) -> tuple[Source, SourceColumn]:
        scope: Scope | None = self
        while scope is not None:
            for source in scope.sources:
                if source.is_named(qualifier):
                    columns = source.find(name)
                    if len(columns) == 1:
                        return source, columns[0]
                    if columns:
                        raise AdqlError(f"column name {name[0]!r} is ambiguous")
                    raise AdqlError(
                        f"{source.display_name} has no column {name[0]!r}"
                        + suggestion(name[0], [c.name for c in source.columns])
                    )
            scope = scope.parent
        written = ".".join(part for part, _ in qualifier)
        known = [s.display_name for s in self.sources]
        raise AdqlError(
            f"{written!r} in {written}.{name[0]} is not a table or alias of this query"
            + suggestion(written, known)
        )

    def star(self, qualifier: list[Name]) -> list[tuple[Source | None, SourceColumn]]:
        """Return the columns of ``*`` (merged ones first, as SQL-92 7.5 says) or ``t.*``."""
        if qualifier:
            for source in self.sources:
                if source.is_named(qualifier):
                    return [(source, column) for column in source.columns]
            written = ".".join(part for part, _ in qualifier)
            raise AdqlError(f"{written!r} in {written}.* is not a table or alias of this query")
        columns: list[tuple[Source | None, SourceColumn]] = [
            (None, column) for column in self.merged.values()
        ]
        for source in self.sources:
            columns.extend(
                (source, column)
                for column in source.columns
                if self.merged.get(column.name.lower()) is None
            )
        return columns
