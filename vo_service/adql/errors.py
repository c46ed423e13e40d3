"""The one error type of the ADQL translator."""

from __future__ import annotations

__all__ = ["AdqlError"]


class AdqlError(ValueError):
    """A query the service refuses, with a message that tells the user what to fix.

    TAP 1.1 (section 2.9) answers such a query with an error document whose
    message the user reads in TOPCAT or pyvo, so the message names the
    offending word and, where possible, what to write instead.

    Parameters
    ----------
    message
        What is wrong and, where possible, how to fix it.
    line, column
        One-based position in the ADQL text, when known.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.message = message
        self.line = line
        self.column = column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")
