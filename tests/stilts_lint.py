"""Run STILTS validators on our documents: ``datalinklint`` and ``votlint``.

Like taplint (`tests.taplint`), datalinklint exits 0 whatever it finds, so
its JSON report is read instead; votlint prints one line per ``ERROR`` or
``WARNING`` and nothing for a valid document.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

__all__ = ["LintReport", "run_datalinklint", "run_votlint"]


@dataclass
class LintReport:
    """Totals and messages of one validator run."""

    errors: int
    warnings: int
    failures: int = 0
    messages: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "\n".join(self.messages)


def run_datalinklint(url: str, *, timeout_s: float = 120) -> LintReport:
    """Validate the ``{links}`` response at ``url`` (datalinklint fetches it itself)."""
    done = subprocess.run(
        ["stilts", "datalinklint", f"votable={url}", "format=json", "report=EWF"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    start = done.stdout.find("{")
    if start < 0:
        raise RuntimeError(f"datalinklint printed no JSON report:\n{done.stdout}\n{done.stderr}")
    document = json.loads(done.stdout[start:])
    totals = document.get("totals", {})
    messages = [
        f"{report.get('level', '?')[:1]}-{report.get('code', '')} {report.get('text', '')}"
        for section in document.get("sections", [])
        for report in section.get("reports", [])
    ]
    return LintReport(
        errors=int(totals.get("ERROR", 0)),
        warnings=int(totals.get("WARNING", 0)),
        failures=int(totals.get("FAILURE", 0)),
        messages=messages,
    )


def run_votlint(url: str, *, timeout_s: float = 120) -> LintReport:
    """Validate the VOTable at ``url`` (or a file path) against the VOTable schema and rules."""
    done = subprocess.run(
        ["stilts", "votlint", f"votable={url}"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return LintReport(
        errors=sum(line.startswith("ERROR") for line in lines),
        warnings=sum(line.startswith("WARNING") for line in lines),
        messages=lines,
    )
