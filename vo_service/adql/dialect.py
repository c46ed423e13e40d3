"""Reading ADQL text: a sqlglot dialect for ADQL 2.1 and the syntax checks sqlglot leaves out.

sqlglot parses far more than ADQL (it accepts many invalid
queries), so this module only turns text into a tree and refuses what is not
ADQL at the token level (LIMIT, FETCH) and in identifiers (reserved words,
ADQL 2.1 section 2.1.3's regular-identifier syntax). Every ADQL function is
parsed as a plain function call, so that the translator decides what each
name means; only the aggregates, COALESCE and CAST keep sqlglot's parsing
(they have special argument syntax: ``COUNT(*)``, ``COUNT(DISTINCT x)``,
``CAST(x AS type)``).
"""

from __future__ import annotations

import re

from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser, build_coalesce
from sqlglot.tokens import TokenType

from .errors import AdqlError
from .limits import AdqlLimits, check_text, check_tokens, check_tree
from .reserved import RESERVED_WORDS

__all__ = ["Adql", "parse_adql", "position"]

_REGULAR_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class Adql(Dialect):
    """ADQL 2.1 as sqlglot reads it (IVOA Recommendation 2023-12-15)."""

    NORMALIZATION_STRATEGY = NormalizationStrategy.CASE_INSENSITIVE
    # ADQL leaves NULL ordering open; both backends sort as PostgreSQL does.
    NULL_ORDERING = "nulls_are_large"
    # Integer / integer stays an integer, as in SQL and on both backends.
    TYPED_DIVISION = True

    class Tokenizer(tokens.Tokenizer):
        """Only ADQL's quotes: '…' strings, "…" delimited identifiers, 0x hex literals."""

        IDENTIFIERS = ['"']  # noqa: RUF012
        QUOTES = ["'"]  # noqa: RUF012
        HEX_STRINGS = [("0x", ""), ("0X", "")]  # noqa: RUF012
        KEYWORDS = {  # noqa: RUF012
            **{k: v for k, v in tokens.Tokenizer.KEYWORDS.items() if k != "/*+"},
            "TOP": TokenType.TOP,
        }

    class Parser(Parser):
        """Every function is a plain call except the aggregates, COALESCE and CAST."""

        FUNCTIONS = {  # noqa: RUF012
            "COALESCE": build_coalesce,
            **{name: Parser.FUNCTIONS[name] for name in ("COUNT", "SUM", "AVG", "MIN", "MAX")},
        }
        FUNCTION_PARSERS = {"CAST": Parser.FUNCTION_PARSERS["CAST"]}  # noqa: RUF012
        NO_PAREN_FUNCTIONS = {}  # noqa: RUF012


_ADQL = Adql()
_FORBIDDEN_TOKENS = {
    TokenType.LIMIT: "ADQL has no LIMIT: write SELECT TOP n … instead",
    TokenType.FETCH: "ADQL has no FETCH: write SELECT TOP n … instead",
    TokenType.DCOLON: "'::' is not ADQL: write CAST(value AS type)",
}


def parse_adql(adql: str, limits: AdqlLimits | None = None) -> exp.Query:
    """Parse one ADQL query into a sqlglot tree, refusing anything but one SELECT.

    Parameters
    ----------
    adql
        The query text.
    limits
        How large and deep the query may be (`AdqlLimits` defaults when None),
        checked on the text, the tokens and the tree before anything else.

    Raises
    ------
    AdqlError
        For a syntax error (with its line and column, in ADQL's words),
        more than one statement, a statement other than a query, a
        non-ADQL identifier, or a query over a limit.
    """
    limits = limits or AdqlLimits()
    check_text(adql, limits)
    try:
        token_list = _ADQL.tokenize(adql)
    except TokenError:
        raise _token_error(adql) from None
    if not token_list:
        raise AdqlError("the query is empty: an ADQL query starts with SELECT or WITH")
    for token in token_list:
        message = _FORBIDDEN_TOKENS.get(token.token_type)
        if message:
            raise AdqlError(message, *_line_column(adql, token.start))
    check_tokens(token_list, limits, lambda offset: _line_column(adql, offset))
    try:
        statements = _ADQL.parser().parse(token_list, adql)
    except ParseError as error:
        raise _syntax_error(error) from None
    statements = [statement for statement in statements if statement is not None]
    if len(statements) != 1:
        raise AdqlError("send exactly one query: ADQL has no ';'-separated statements")
    query = statements[0]
    if not isinstance(query, exp.Query):
        raise AdqlError(
            "this is not an ADQL query: only SELECT (with optional WITH, UNION, "
            "INTERSECT, EXCEPT) is allowed"
        )
    check_tree(query, limits, lambda node: position(adql, node))
    _check_identifiers(query, adql)
    return query


def position(adql: str, node: exp.Expr) -> tuple[int | None, int | None]:
    """Line and column of a node in the ADQL text, when the parser recorded it."""
    start = node.meta.get("start") if node.meta else None
    if start is None:
        for child in node.iter_expressions():
            line, column = position(adql, child)
            if line is not None:
                return line, column
        return None, None
    return _line_column(adql, start)


def _line_column(adql: str, offset: int) -> tuple[int, int]:
    line = adql.count("\n", 0, offset) + 1
    column = offset - (adql.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _syntax_error(error: ParseError) -> AdqlError:
    """Say what sqlglot's parser found wrong in ADQL's words, at the offending word."""
    details = error.errors[0] if error.errors else {}
    near = (details.get("highlight") or "").strip()
    before = (details.get("start_context") or "").split()
    previous = before[-1].upper() if before else None
    description = details.get("description") or ""
    line, column = details.get("line"), details.get("col")
    if line is not None and column is not None and near:
        column = max(1, column - len(near) + 1)  # sqlglot gives the word's last column
    return AdqlError(f"syntax error: {_phrase(description, near, previous)}", line, column)


_EXPECTED = re.compile(
    r"Expected (?P<what>.+?) but got <Token token_type: TokenType\.(?P<type>\w+)"
)
_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*\.(?P<node>\w+)'>")
_COMPLETIONS = {
    "Where": "a condition is expected after WHERE",
    "Having": "a condition is expected after HAVING",
    "And": "a condition is expected after AND",
    "Or": "a condition is expected after OR",
    "Not": "a condition is expected after NOT",
    "Between": "BETWEEN needs two values: x BETWEEN low AND high",
    "Like": "a pattern is expected after LIKE",
    "ILike": "a pattern is expected after ILIKE",
    "Limit": "TOP needs a number of rows: SELECT TOP 10 …",
    "Union": "a query is expected after UNION",
    "Intersect": "a query is expected after INTERSECT",
    "Except": "a query is expected after EXCEPT",
}


def _phrase(description: str, near: str, previous: str | None) -> str:
    """Return the ADQL wording of one of sqlglot's parse error descriptions."""
    after = f" after {previous}" if previous else ""
    expected = _EXPECTED.match(description)
    if expected:
        what = expected["what"]
        article = "an" if what[:1] in "aeiou" else "a"
        if expected["type"] == "SENTINEL":
            return f"the query ends where {article} {what} is expected after {near.upper()}"
        return f"{article} {what} is expected{after}, not {near!r}"
    missing = _MISSING.match(description)
    if missing:
        node = missing["node"]
        if node in _COMPLETIONS:
            return _COMPLETIONS[node]
        return f"a value is expected after {near!r}"
    if description.startswith("Expecting )"):
        return f"a closing parenthesis ')' is missing after {near!r}"
    if description.startswith("Failed to parse any statement following CTE"):
        return "WITH name AS ( … ) must be followed by the query that uses it (SELECT …)"
    if description.startswith("Expected TYPE after CAST"):
        return "CAST needs a type: CAST(value AS type), e.g. CAST(x AS INTEGER)"
    if near:
        return f"{near!r} is not expected here{after}"
    return "the query does not follow ADQL's grammar"


def _token_error(adql: str) -> AdqlError:
    """Return the error of a text the tokenizer could not read: usually an unclosed quote."""
    opened = _unclosed_quote(adql)
    if opened is not None:
        quote = adql[opened]
        what = "a string ('…')" if quote == "'" else 'a delimited name ("…")'
        return AdqlError(
            f"syntax error: {what} is not closed: its closing {quote} is missing",
            *_line_column(adql, opened),
        )
    return AdqlError("syntax error: the query contains text that is not ADQL")


def _unclosed_quote(adql: str) -> int | None:
    """Return the offset of a quote that opens a string or name never closed, or None."""
    opened: int | None = None
    for offset, character in enumerate(adql):
        if opened is None:
            if character in "'\"":
                opened = offset
        elif character == adql[opened]:
            opened = None  # a doubled quote closes and reopens: the same in the end
    return opened


def _check_identifiers(query: exp.Expr, adql: str) -> None:
    """Unquoted identifiers must be regular identifiers and not reserved words."""
    for identifier in query.find_all(exp.Identifier):
        if identifier.quoted:
            continue
        name = identifier.this
        if name.upper() in RESERVED_WORDS:
            raise AdqlError(
                f"{name!r} is an ADQL reserved word: to use it as a name, write it in double "
                f'quotes ("{name}")',
                *position(adql, identifier),
            )
        if not _REGULAR_IDENTIFIER.match(name):
            raise AdqlError(
                f"{name!r} is not a valid ADQL name: names start with a letter and contain "
                "letters, digits and '_' (or are written in double quotes)",
                *position(adql, identifier),
            )
