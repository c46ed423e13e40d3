"""What the translator hands to the TAP service: SQL, parameters, output columns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vo_service.votable.columns import ResultColumn

from .catalog import TapTable
from .ranked_scores import RankedScores
from .similarity_scores import ScoreRequest

__all__ = ["TranslatedQuery", "UploadedTable"]


@dataclass(frozen=True)
class UploadedTable:
    """A TAP_UPLOAD table the service has already loaded into the database."""

    adql_name: str
    """Name the user gave it, used in ADQL as ``TAP_UPLOAD.<adql_name>``."""
    sql_name: str
    """Name of the (temporary) table in the database, already quoted as needed."""
    columns: tuple[ResultColumn, ...] = ()


Decoder = Callable[[Any], Any]


@dataclass(frozen=True)
class TranslatedQuery:
    """SQL ready to execute, with its bind parameters and the output columns' metadata.

    Execute it with SQLAlchemy, after every statement of `setup` in the same
    transaction, as
    ``connection.execute(sqlalchemy.text(query.sql), query.parameters)``: the
    SQL uses ``:name`` bind parameters, and any colon inside a string literal
    is escaped for `sqlalchemy.text`. Then pass the rows through `decode`, which
    gives the same Python values on both backends.
    """

    sql: str
    parameters: Mapping[str, object] = field(default_factory=dict)
    columns: tuple[ResultColumn, ...] = ()
    decoders: tuple[Decoder | None, ...] = field(default=(), repr=False, compare=False)
    """Per output column, how to turn the database's value into the DALI value."""
    setup: tuple[str, ...] = ()
    """Statements to run first, in the same transaction: they create the public rows
    of the image tables the query reads (`vo_service.adql.proprietary`)."""
    public_tables: tuple[TapTable, ...] = field(default=(), repr=False, compare=False)
    """The image tables the query reads, which `setup` makes."""
    scores: tuple[ScoreRequest, ...] = ()
    """The constant similarity arguments whose scores the query reads, which the
    caller makes before running it (`vo_service.adql.similarity_scores`)."""
    ranking: RankedScores | None = None
    """How the query ranks by one of `scores`, so that the caller may cut its rows to
    the best-scored images first (`vo_service.adql.ranked_scores`)."""
    instant: datetime | None = field(default=None, compare=False)
    """The moment (naive UTC) at which `setup` takes the public rows: where the
    SQLite service keeps its copies across queries, it checks they still hold
    at this moment instead of running `setup`."""

    def decode(self, rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
        """Turn database rows into the values the VOTable writer needs, on both backends.

        Arrays (``datatype`` float/double with an ``arraysize``: geometry values
        as DALI 1.1 point/circle/polygon, similarity vectors) become
        `numpy.ndarray`; timestamps already come out of the SQL as ISO-8601
        strings; every other value is left as the database driver gave it.
        """
        if not any(self.decoders):
            for row in rows:
                yield tuple(row)
            return
        decoders = self.decoders
        for row in rows:
            yield tuple(
                value if decoder is None or value is None else decoder(value)
                for decoder, value in zip(decoders, row, strict=True)
            )
