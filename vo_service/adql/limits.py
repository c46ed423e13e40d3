"""How large and how deep a query may be: checked on the text and the tree, before any SQL.

A query is text from anyone, and the parser, the translator and the
database all work through it recursively or hold it whole: a query nested a
few thousand levels deep, a chain of 60,000 ``OR``, 200 nested ``IN``
subqueries or a 600-fold ``UNION`` would exhaust Python's recursion limit
(an internal error) or occupy the service for seconds before the database
refused it in its own words. Each of these limits is refused first, as an
ADQL error that says which limit and what to write instead; none is close
to what a real query needs (an archive's longest lists belong in a
``TAP_UPLOAD`` table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .errors import AdqlError

__all__ = ["AdqlLimits", "check_text", "check_tokens", "check_tree"]

Locate = Callable[[exp.Expr], tuple[int | None, int | None]]
"""Where a node is in the query text: (line, column), or (None, None)."""
LocateOffset = Callable[[int], tuple[int, int]]
"""Where a character offset is in the query text: (line, column)."""

_UPLOAD_HINT = "send long lists of values as a TAP_UPLOAD table and JOIN it"


@dataclass(frozen=True)
class AdqlLimits:
    """The size limits of one ADQL query.

    Parameters
    ----------
    max_characters
        Length of the query text.
    max_parentheses
        Parentheses open at once (the parser descends through every level
        of precedence for each).
    max_depth
        Depth of the parsed expression tree (a chain of ``OR`` or ``+``
        is as deep as it is long).
    max_selects
        ``SELECT`` s in the query: subqueries, ``WITH`` queries and the
        branches of ``UNION``, ``INTERSECT`` and ``EXCEPT`` together.
    max_tables
        Table references in the whole query (each JOIN adds one).
    max_in_values
        Values of one ``IN ( … )`` list.
    """

    max_characters: int = 100_000
    max_parentheses: int = 25
    max_depth: int = 128
    max_selects: int = 32
    max_tables: int = 32
    max_in_values: int = 5_000


def check_text(adql: str, limits: AdqlLimits) -> None:
    """Refuse a query text longer than ``limits.max_characters``."""
    if len(adql) > limits.max_characters:
        raise AdqlError(
            f"the query has {len(adql)} characters; this service reads queries of at most "
            f"{limits.max_characters}: {_UPLOAD_HINT}"
        )


def check_tokens(tokens: Sequence[Token], limits: AdqlLimits, locate: LocateOffset) -> None:
    """Refuse parentheses nested deeper than ``limits.max_parentheses``, before parsing."""
    depth = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > limits.max_parentheses:
                raise AdqlError(
                    f"parentheses are nested more than {limits.max_parentheses} deep; this "
                    "service reads queries nested at most that deep: write the conditions "
                    "without the extra parentheses, or the subqueries as joins",
                    *locate(token.start),
                )
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1


def check_tree(query: exp.Expr, limits: AdqlLimits, locate: Locate) -> None:
    """Refuse a parsed query over a limit, at the position ``locate`` gives the node.

    Walks the tree without recursion, so that any depth is measured safely.
    """

    def _at(node: exp.Expr, message: str) -> AdqlError:
        return AdqlError(message, *locate(node))

    selects = tables = 0
    stack: list[tuple[exp.Expr, int]] = [(query, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_depth:
            raise _at(
                node,
                f"the query is nested more than {limits.max_depth} levels deep (a long chain "
                "of OR, AND or arithmetic counts as deep as it is long); this service reads "
                "queries nested at most that deep: write a list of values as IN ( … ), or "
                f"{_UPLOAD_HINT}",
            )
        if isinstance(node, exp.Select):
            selects += 1
            if selects > limits.max_selects:
                raise _at(
                    node,
                    f"the query has more than {limits.max_selects} SELECTs (subqueries, WITH "
                    "queries and UNION branches together), the most this service reads in one "
                    "query",
                )
        elif isinstance(node, exp.Table):
            tables += 1
            if tables > limits.max_tables:
                raise _at(
                    node,
                    f"the query reads more than {limits.max_tables} tables (each JOIN and "
                    "each FROM item counts), the most this service reads in one query",
                )
        elif isinstance(node, exp.In) and len(node.expressions) > limits.max_in_values:
            raise _at(
                node,
                f"an IN list has {len(node.expressions)} values; this service reads at most "
                f"{limits.max_in_values} in one list: {_UPLOAD_HINT}",
            )
        stack.extend((child, depth + 1) for child in node.iter_expressions())
