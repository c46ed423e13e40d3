"""SQLite's public copies of the image tables, kept on each connection while they still hold.

`vo_service.adql.proprietary` has every TAP query read the image tables
through temporary copies of their public rows, filled before the query's own
statement runs. Filling them for every query cost far more than most
queries (the copy of ``similarity.neighbour`` is most of a neighbours
lookup: benchmarks/README.md), so on SQLite a copy stays on its connection
(temporary tables are per connection) and is used again by later queries as
long as it holds exactly the rows the query would otherwise copy, which is
checked, cheaply, in the query's own transaction:

- no other connection has committed to the databases it was copied from
  (ObsCore's and the table's own): SQLite's ``PRAGMA data_version`` is
  unchanged, read in the query's snapshot as it was read in the copy's;
- no release date lies between the instant of the copy and the query's
  (the first release date after the copy is recorded with it), and the
  query's instant is not before the copy's.

Otherwise the copy is made again in the query's transaction, before the
query runs, exactly as a per-query copy would be, with the indexes of the
stored table (without them every lookup of one image's neighbours read the
whole copy); the session commits it
(after dropping its upload tables) instead of rolling back, so that it
stays. Release dates are compared as `public_rows` compares them, so an
image enters TAP at its release date, never before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from vo_service.adql.backends import SQLITE_TIMESTAMP_FORMAT
from vo_service.adql.catalog import TapTable
from vo_service.adql.proprietary import (
    next_release_statement,
    public_copy_statements,
    public_source,
)

__all__ = ["PublicCopies"]

_INFO_KEY = "vosim.public_copies"
_RELEASE_SCHEMA = "ivoa"


@dataclass(frozen=True)
class _Copy:
    """What a copy on the connection was made from."""

    versions: tuple[int, ...]
    """``PRAGMA data_version`` of each of its source databases, in the copy's snapshot."""
    made_at: str
    """The instant of its public rows, as stored text."""
    next_release: str | None
    """The first release date after ``made_at``; None when there is none."""

    def holds(self, versions: tuple[int, ...], now: str) -> bool:
        """Whether the copy has the public rows at ``now`` of the databases at ``versions``."""
        return (
            self.versions == versions
            and self.made_at <= now
            and (self.next_release is None or now < self.next_release)
        )


class PublicCopies:
    """The public copies on one SQLite connection, made or checked in a query's transaction.

    Parameters
    ----------
    connection
        The session's connection, in its open transaction (before the query runs).
    """

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self._copies: dict[tuple[str, str], _Copy] = connection.connection.info.setdefault(
            _INFO_KEY, {}
        )
        self._made: dict[tuple[str, str], _Copy] = {}

    @property
    def made_any(self) -> bool:
        """Whether this transaction made copies, which the session must commit to keep."""
        return bool(self._made)

    def prepare(self, tables: Iterable[TapTable], now: datetime) -> None:
        """Make sure a copy of each table's public rows at ``now`` is on the connection."""
        tables = tuple(tables)
        if not tables:
            return
        instant = now.strftime(SQLITE_TIMESTAMP_FORMAT)
        schemas = sorted({_RELEASE_SCHEMA, *(table.schema_name.lower() for table in tables)})
        versions = {schema: self._data_version(schema) for schema in schemas}
        next_release: str | None = None
        for table in tables:
            key = (table.schema_name.lower(), table.table_name.lower())
            sources = (versions[_RELEASE_SCHEMA], versions[key[0]])
            copy = self._copies.get(key)
            if copy is not None and copy.holds(sources, instant):
                continue
            self._copies.pop(key, None)  # until this transaction commits its new copy
            for statement in public_copy_statements(table, now):
                self.connection.exec_driver_sql(statement)
            self._index(table)
            if next_release is None:
                next_release = self._next_release(now) or ""
            self._made[key] = _Copy(sources, instant, next_release or None)

    def committed(self) -> None:
        """Record the copies this transaction made, once it has committed."""
        self._copies.update(self._made)
        self._made.clear()

    def _index(self, table: TapTable) -> None:
        """Give the copy of ``table`` the indexes of the stored table, on the same columns.

        An index holds only the copy's rows, the public ones; it changes what
        the planner can do, never what a query answers.
        """
        copy = public_source(table, "sqlite")
        schema, name = _quote(table.schema_name), _quote(table.table_name)
        indexes = self.connection.exec_driver_sql(f"PRAGMA {schema}.index_list({name})").all()
        for number, index in enumerate(indexes):
            info = f"PRAGMA {schema}.index_info({_quote(index[1])})"
            columns = [column for _rank, _cid, column in self.connection.exec_driver_sql(info)]
            if not columns or None in columns:
                continue  # an index on expressions: not worth copying
            index_name = _quote(f"{copy.name}_index_{number}")
            listed = ", ".join(_quote(column) for column in columns)
            self.connection.exec_driver_sql(
                f"CREATE INDEX temp.{index_name} ON {_quote(copy.name)} ({listed})"
            )

    def _data_version(self, schema: str) -> int:
        return int(self.connection.exec_driver_sql(f'PRAGMA "{schema}".data_version').scalar())

    def _next_release(self, now: datetime) -> str | None:
        value = self.connection.exec_driver_sql(next_release_statement(now)).scalar()
        return None if value is None else str(value)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
