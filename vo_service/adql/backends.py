"""How each ADQL operation is written in SQLite and in PostgreSQL (pgsphere).

The translator decides *what* a query means; a `Backend` decides how to say
it in one database's SQL. Where the two databases disagree on a function's
meaning, the SQL here makes them agree, so that the same ADQL gives the same
rows on both (the shared query tests check it):

- ADQL ``LOG`` is the natural logarithm; in both databases ``log()`` is base 10.
- ``ROUND``/``TRUNCATE``/``MOD`` work on the decimal value, as PostgreSQL's
  ``numeric`` does; SQLite's ``trunc(x)`` takes no digits argument,
  so SQLite calls the functions of `sqlite_functions`.
- SQLite's ``LIKE`` ignores case unless ``case_sensitive_like`` is on, which
  `sqlite_functions.register` sets; ``ILIKE`` becomes ``LOWER(a) LIKE LOWER(b)``.
- SQLite has no ``^`` (exclusive or): it becomes ``(a | b) & ~(a & b)``.
- Timestamps: SQLAlchemy stores ``YYYY-MM-DD HH:MM:SS.ffffff`` text on
  SQLite, so ISO-8601 literals are rewritten into that form before they are
  compared; results come out as ISO-8601 (DALI 1.1 timestamp) on both.

Geometry is in `geometry`; the SQL helpers it calls are installed by
`sqlite_functions.register` and `postgres_setup.install`.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

__all__ = ["BACKENDS", "Backend", "PostgresBackend", "SqliteBackend", "call"]

SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    """Build a plain SQL function call."""
    return exp.Anonymous(this=name, expressions=list(args))


def cast(value: exp.Expr, sql_type: str) -> exp.Cast:
    """``CAST(value AS sql_type)``."""
    return exp.Cast(this=value, to=exp.DataType.build(sql_type))


def paren(value: exp.Expr) -> exp.Expr:
    """Parenthesise unless the value is atomic."""
    if isinstance(value, exp.Column | exp.Literal | exp.Paren | exp.Anonymous | exp.Func):
        return value
    return exp.Paren(this=value)


class Backend:
    """One target database: how to write functions, casts, timestamps and outputs."""

    name: str
    sql_dialect: str

    def function(self, adql_name: str, args: list[exp.Expr], integer: bool) -> exp.Expr:
        """Apply an ADQL math function (ADQL 2.1, section 2.3.1) to translated arguments.

        ``integer`` says whether all arguments are integers (for MOD).
        """
        raise NotImplementedError

    def cast(self, value: exp.Expr, adql_type: str, length: int | None) -> exp.Expr:
        """ADQL 2.1 ``CAST`` (section 2.3.4) to one of its types."""
        raise NotImplementedError

    def output_cast(self, value: exp.Expr, datatype: str) -> exp.Expr:
        """Make a computed output column come out with its declared VOTable datatype."""
        if datatype in ("double", "float"):
            return cast(value, "DOUBLE")
        if datatype in ("long", "int", "short"):
            return cast(value, "BIGINT")
        return value

    def ilike(self, value: exp.Expr, pattern: exp.Expr) -> exp.Expr:
        """Case-insensitive LIKE (ADQL 2.1, section 2.2.4)."""
        return exp.ILike(this=value, expression=pattern)

    def xor(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        """Bitwise exclusive or (ADQL 2.1 ``^``)."""
        return exp.BitwiseXor(this=left, expression=right)

    def timestamp_literal(self, moment: datetime) -> exp.Expr:
        """Write a timestamp constant as the database compares it with stored values."""
        raise NotImplementedError

    def timestamp_output(self, value: exp.Expr) -> exp.Expr:
        """Format a stored timestamp as DALI 1.1 ISO-8601 text (``YYYY-MM-DDThh:mm:ss.sss``)."""
        raise NotImplementedError

    def now_parameter(self, moment: datetime) -> object:
        """Return the bind value of ``:now``, compared with ``obs_release_date``."""
        raise NotImplementedError


class SqliteBackend(Backend):
    """SQLite 3.39+ with the functions of `sqlite_functions` registered."""

    name = "sqlite"
    sql_dialect = "sqlite"

    def function(self, adql_name: str, args: list[exp.Expr], integer: bool) -> exp.Expr:
        """See `Backend`."""
        if adql_name == "ABS":
            return call("abs", *args)
        return call(f"adql_{adql_name.lower()}", *args)

    def cast(self, value: exp.Expr, adql_type: str, length: int | None) -> exp.Expr:
        """See `Backend`."""
        if adql_type in ("SMALLINT", "INTEGER", "BIGINT"):
            # PostgreSQL rounds a float half to even when casting to an integer;
            # SQLite would truncate.
            return call("adql_to_integer", value)
        if adql_type == "REAL":
            return call("adql_to_real", value)
        if adql_type == "DOUBLE PRECISION":
            return cast(value, "DOUBLE")
        if adql_type == "TIMESTAMP":
            return call("adql_timestamp", value)
        text = cast(value, "TEXT")
        return (
            call("substr", text, exp.Literal.number(1), exp.Literal.number(length))
            if length
            else text
        )

    def output_cast(self, value: exp.Expr, datatype: str) -> exp.Expr:
        """See `Backend`."""
        if datatype in ("double", "float"):
            return cast(value, "DOUBLE")
        if datatype in ("long", "int", "short"):
            return cast(value, "INTEGER")
        return value

    def ilike(self, value: exp.Expr, pattern: exp.Expr) -> exp.Expr:
        """See `Backend`."""
        return exp.Like(this=call("lower", value), expression=call("lower", pattern))

    def xor(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        """See `Backend`."""
        left, right = paren(left), paren(right)
        either = exp.Paren(this=exp.BitwiseOr(this=left, expression=right))
        both = exp.Paren(this=exp.BitwiseAnd(this=left.copy(), expression=right.copy()))
        return exp.Paren(this=exp.BitwiseAnd(this=either, expression=exp.BitwiseNot(this=both)))

    def timestamp_literal(self, moment: datetime) -> exp.Expr:
        """See `Backend`."""
        return exp.Literal.string(moment.strftime(SQLITE_TIMESTAMP_FORMAT))

    def timestamp_output(self, value: exp.Expr) -> exp.Expr:
        """See `Backend`."""
        return call("strftime", exp.Literal.string("%Y-%m-%dT%H:%M:%f"), value)

    def now_parameter(self, moment: datetime) -> object:
        """See `Backend`."""
        return moment.strftime(SQLITE_TIMESTAMP_FORMAT)


_PG_FUNCTIONS = {
    "CEILING": "ceil",
    "LOG": "ln",
    "LOG10": "log",
    "RAND": "random",
}


class PostgresBackend(Backend):
    """PostgreSQL 12+ with pgsphere and the helpers of `postgres_setup`."""

    name = "postgresql"
    sql_dialect = "postgres"

    def function(self, adql_name: str, args: list[exp.Expr], integer: bool) -> exp.Expr:
        """See `Backend`."""
        if adql_name in ("ROUND", "TRUNCATE"):
            # round(double) rounds half to even and trunc(double) takes no
            # digits: work on numeric, as ADQL's decimal rounding means.
            digits = [cast(args[1], "INT")] if len(args) > 1 else []
            name = "round" if adql_name == "ROUND" else "trunc"
            return cast(call(name, cast(args[0], "DECIMAL"), *digits), "DOUBLE")
        if adql_name == "MOD":
            if integer:
                return call("mod", *args)
            return cast(call("mod", *(cast(a, "DECIMAL") for a in args)), "DOUBLE")
        if adql_name == "ABS":
            return call("abs", *args)
        name = _PG_FUNCTIONS.get(adql_name, adql_name.lower())
        return call(name, *(cast(a, "DOUBLE") for a in args))

    def cast(self, value: exp.Expr, adql_type: str, length: int | None) -> exp.Expr:
        """See `Backend`."""
        if adql_type in ("CHAR", "VARCHAR"):
            return cast(value, f"VARCHAR({length})" if length else "VARCHAR")
        return cast(value, adql_type)

    def timestamp_literal(self, moment: datetime) -> exp.Expr:
        """See `Backend`."""
        return cast(exp.Literal.string(moment.isoformat(sep=" ")), "TIMESTAMP")

    def timestamp_output(self, value: exp.Expr) -> exp.Expr:
        """See `Backend`."""
        return call("to_char", value, exp.Literal.string('YYYY-MM-DD"T"HH24:MI:SS.MS'))

    def now_parameter(self, moment: datetime) -> object:
        """See `Backend`."""
        return moment


BACKENDS: dict[str, Backend] = {"sqlite": SqliteBackend(), "postgresql": PostgresBackend()}
