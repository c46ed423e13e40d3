"""The output formats a query result can be written in, and how RESPONSEFORMAT names them.

DALI 1.1 (section 3.2.2) lets a client name a format by MIME type or by a
short form; TAP 1.1 (section 2.3.4) requires VOTable and recommends CSV and
TSV. TAPRegExt 1.0 (section 2.3) lists the formats in the capabilities with
their aliases, and gives the three VOTable serialisations their own
identifiers. This table is the one place all of that is written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "OUTPUT_FORMATS",
    "OutputFormat",
    "ResponseFormat",
    "UnknownFormatError",
    "find_output_format",
]

Writer = Literal["votable", "csv", "tsv", "fits", "json"]
Serialization = Literal["TABLEDATA", "BINARY", "BINARY2"]

_VOTABLE = "application/x-votable+xml"


class UnknownFormatError(ValueError):
    """A RESPONSEFORMAT this service does not write (each protocol reports it its own way)."""


@dataclass(frozen=True)
class OutputFormat:
    """One way of writing a result table.

    Parameters
    ----------
    mime
        The canonical MIME type, as announced in TAPRegExt ``outputFormat/mime``.
    aliases
        Short forms accepted in RESPONSEFORMAT.
    writer
        Which writer produces it.
    serialization
        The VOTable DATA serialisation, for VOTable formats.
    ivo_id
        TAPRegExt identifier of the format, where one is defined.
    extension
        File name extension of async results.
    accepted
        Other MIME types that select this format (e.g. ``text/xml``).
    """

    mime: str
    aliases: tuple[str, ...]
    writer: Writer
    serialization: Serialization | None = None
    ivo_id: str | None = None
    extension: str = "dat"
    accepted: tuple[str, ...] = ()


OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        mime=f"{_VOTABLE};serialization=TABLEDATA",
        aliases=("votable", "votable/td", "votabletd"),
        writer="votable",
        serialization="TABLEDATA",
        ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-td",
        extension="xml",
        accepted=(_VOTABLE, "text/xml", "application/xml"),
    ),
    OutputFormat(
        mime=f"{_VOTABLE};serialization=BINARY",
        aliases=("votable/b", "votableb"),
        writer="votable",
        serialization="BINARY",
        ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary",
        extension="xml",
    ),
    OutputFormat(
        mime=f"{_VOTABLE};serialization=BINARY2",
        aliases=("votable/b2", "votableb2"),
        writer="votable",
        serialization="BINARY2",
        ivo_id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
        extension="xml",
    ),
    OutputFormat(
        mime="text/csv;header=present",
        aliases=("csv",),
        writer="csv",
        extension="csv",
        accepted=("text/csv",),
    ),
    OutputFormat(
        mime="text/tab-separated-values",
        aliases=("tsv",),
        writer="tsv",
        extension="tsv",
    ),
    OutputFormat(mime="application/fits", aliases=("fits",), writer="fits", extension="fits"),
    OutputFormat(mime="application/json", aliases=("json",), writer="json", extension="json"),
)


@dataclass(frozen=True)
class ResponseFormat:
    """The format a request asked for, and the Content-Type to answer with."""

    format: OutputFormat
    content_type: str


def _normalise(value: str) -> str:
    return ";".join(part.strip() for part in value.strip().split(";")).lower()


def _lookup_table() -> dict[str, OutputFormat]:
    table: dict[str, OutputFormat] = {}
    for output in OUTPUT_FORMATS:
        for name in (output.mime, *output.accepted, *output.aliases):
            table.setdefault(_normalise(name), output)
    return table


_BY_NAME = _lookup_table()


def find_output_format(value: str | None) -> ResponseFormat:
    """Resolve a RESPONSEFORMAT (or TAP 1.0 FORMAT) value.

    A short form answers with the format's canonical MIME type; a MIME type
    is echoed in Content-Type as the client wrote it, as DALI 1.1 section
    3.2.2 requires ("the response ... must set that media type").

    Raises
    ------
    UnknownFormatError
        For a format this service does not write.
    """
    if value is None or not value.strip():
        default = OUTPUT_FORMATS[0]
        return ResponseFormat(default, _VOTABLE)
    output = _BY_NAME.get(_normalise(value))
    if output is None:
        known = ", ".join(alias for fmt in OUTPUT_FORMATS for alias in fmt.aliases)
        raise UnknownFormatError(
            f"RESPONSEFORMAT={value!r} is not supported; use one of {known} "
            "or the MIME types listed in /tap/capabilities"
        )
    if "/" in value and not value.strip().lower().startswith("votable/"):
        return ResponseFormat(output, value.strip())
    content_type = _VOTABLE if output.writer == "votable" else output.mime
    if output.serialization not in (None, "TABLEDATA"):
        content_type = output.mime
    return ResponseFormat(output, content_type)
