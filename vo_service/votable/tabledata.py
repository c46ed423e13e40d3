"""Write a batch of result rows as VOTable TABLEDATA ``<TR>`` elements.

VOTable 1.4 section 5.1: one ``<TR>`` per row, one ``<TD>`` per cell, the
cell's text XML-escaped, NULL as an empty cell. A 1000-row ObsCore result
has 35,000 cells; a Python call per cell costs more than the query itself,
so a batch is written with one ``%`` format of a row template repeated for
every row, whose conversions are C code: ``%r`` of a Python float is its
shortest text that reads back as the same double (the same as `repr`), and
``%d`` and ``%s`` write integers and strings. A column goes through the
template as it came from the driver only when every value of the batch can
be written that way (floats all finite, integers, strings); otherwise it is
first written as text by `vo_service.votable.values.text_formatter`, which
handles NULLs, NaN and infinities, arrays and timestamps.

Markup and characters XML forbids can only come from the text of the
database's values, never from the numbers written here, so those cells are
checked once per batch, as one string, and escaped only when that finds
anything.

Neither astropy.io.votable nor any other library writes TABLEDATA from
rows without building the whole table first, which took longer than the
rest of a query (``benchmarks/tap_latency.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

from vo_service.templating import xml_safe

from .columns import ResultColumn
from .values import FLOAT_SPELLINGS, column_shape, text_formatter

__all__ = ["TabledataRows"]

_MARKUP = ("&", "<", ">")
_PROBE = 64
"""Values of a float column looked at to guess whether it repeats a few values."""


class TabledataRows:
    """Writes batches of rows of one result as TABLEDATA text.

    Parameters
    ----------
    columns
        The result's columns, in row order.
    """

    def __init__(self, columns: Sequence[ResultColumn]) -> None:
        self._formatters = [text_formatter(column) for column in columns]
        self._kinds = [column_shape(column).kind for column in columns]

    def __call__(self, rows: Sequence[Sequence[object]]) -> str:
        """Return the ``<TR>`` elements of ``rows``, escaped, one per line."""
        if not rows:
            return ""
        cells: list[Sequence[object]] = []
        conversions: list[str] = []
        texts: list[int] = []  # positions of the cells that are text from the database
        for position, (kind, values) in enumerate(
            zip(self._kinds, zip(*rows, strict=True), strict=True)
        ):
            column, conversion = _as_is(kind, values)
            if column is None:
                column, conversion = self._formatters[position](values), "%s"
            if conversion == "%s" and kind not in ("boolean", "integer"):
                texts.append(position)
            cells.append(column)
            conversions.append(conversion)
        if not _plain_text(cells[position] for position in texts):
            for position in texts:
                cells[position] = _escaped(cells[position])
        template = "<TR><TD>" + "</TD><TD>".join(conversions) + "</TD></TR>\n"
        return (template * len(rows)) % tuple(chain.from_iterable(zip(*cells, strict=True)))


def _as_is(kind: str, values: tuple[object, ...]) -> tuple[Sequence[object] | None, str]:
    """Return the column as the template takes it (None: write it first) and its conversion."""
    if kind == "text":
        return (values, "%s") if set(map(type, values)) == {str} else (None, "%s")
    if kind == "integer":
        return (values, "%d") if set(map(type, values)) == {int} else (None, "%s")
    if kind == "real":
        return _real_as_is(values)
    if kind == "timestamp" and set(map(type, values)) == {str}:
        # the SQL wrote them in the DALI form; text_formatter would only
        # turn a space into 'T' and drop a UTC offset of zero
        joined = "".join(values)
        if " " not in joined and "+" not in joined and "Z" not in joined:
            return values, "%s"
    return None, "%s"


def _real_as_is(values: tuple[object, ...]) -> tuple[Sequence[object] | None, str]:
    """Floats through ``%r``; text a database wrote (PostgreSQL's shortest exact text) as is."""
    types = set(map(type, values))
    if types == {float}:
        total = sum(values)
        if total - total != 0.0:  # NaN or an infinity among them: text_formatter's spelling
            return None, "%s"
        return _repeated_floats(values)
    if types == {str} and FLOAT_SPELLINGS.keys().isdisjoint(values):
        return values, "%s"  # PostgreSQL's NaN is already the VOTable spelling
    return None, "%s"


def _repeated_floats(values: tuple[float, ...]) -> tuple[Sequence[object], str]:
    """Write each distinct value once where a column repeats a few (a field of view, a band).

    0.0 and -0.0 are equal keys of a dict but different texts: a column
    holding a zero is written value by value.
    """
    if len(set(values[:_PROBE])) * 4 > min(len(values), _PROBE):
        return values, "%r"
    distinct = dict.fromkeys(values)
    if len(distinct) * 4 > len(values) or 0.0 in distinct:
        return values, "%r"
    text = {value: repr(value) for value in distinct}
    return [text[value] for value in values], "%s"


def _plain_text(columns: Iterable[Sequence[str]]) -> bool:
    """Whether text cells need neither escaping nor replacement of characters XML forbids."""
    joined = "".join(chain.from_iterable(columns))
    return not any(character in joined for character in _MARKUP) and xml_safe(joined) == joined


def _escaped(texts: Sequence[str]) -> list[str]:
    """XML-escape cells (``&``, ``<``, ``>``), with forbidden characters replaced by '?'."""
    return [
        xml_safe(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
        for text in texts
    ]
