"""Run STILTS validators on our services and documents: ``taplint``, ``datalinklint``, ``votlint``.

taplint and datalinklint exit 0 whatever they find, even for a URL where
nothing answers (docs/validators.md), so their JSON report is read instead:
``totals`` gives the number of errors, warnings and failures, ``sections``
(one per stage) the messages. votlint prints one line per ``ERROR`` or
``WARNING`` and nothing for a valid document. Keep taplint's TME and TMS
stages in any subset you run, or MDQ has no metadata to test.

Usage from a test::

    report = run_taplint(f"{url}/tap")
    assert report.errors == 0, report.describe("E")
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

__all__ = [
    "LintReport",
    "needs_stilts",
    "run_datalinklint",
    "run_taplint",
    "run_votlint",
    "taplint_available",
]


@dataclass
class LintReport:
    """Totals and messages of one validator run."""

    errors: int
    warnings: int
    failures: int = 0
    messages: list[dict] = field(default_factory=list)
    """Every reported message: ``stage``, ``type`` (E, W, I, S, F), ``code``, ``text``."""

    def of_type(self, kind: str) -> list[dict]:
        """The messages of one type: ``E`` (error), ``W`` (warning), ``F`` (failure)."""
        return [m for m in self.messages if m["type"] == kind]

    def describe(self, kinds: str = "EWF") -> str:
        """The messages of some types, one per line, for assertion messages."""
        return "\n".join(
            f"{m['type']}-{m['stage']}-{m['code']} {m['text']}"
            for m in self.messages
            if m["type"] in kinds
        )


def taplint_available() -> bool:
    """Whether ``stilts`` is on the PATH."""
    return shutil.which("stilts") is not None


needs_stilts = pytest.mark.skipif(not taplint_available(), reason="stilts is not installed")
"""Mark a test that runs STILTS."""


def run_taplint(
    tap_url: str,
    *,
    stages: Sequence[str] | None = None,
    report: str = "EWF",
    timeout_s: float = 600,
    extra: Sequence[str] = (),
) -> LintReport:
    """Validate the TAP service at ``tap_url`` and return the totals and messages.

    Parameters
    ----------
    tap_url
        Base URL of the service (``…/tap``).
    stages
        taplint stage codes to run (e.g. ``["TME", "TMS", "MDQ"]``); all by default.
    report
        Message types to report: any of ``EWISF``.
    timeout_s
        Give up after this long.
    extra
        Further ``name=value`` arguments for taplint.
    """
    command = [f"tapurl={tap_url}", "format=json", f"report={report}", "maxrepeat=99", *extra]
    if stages:
        command.append("stages=" + " ".join(stages))
    return _json_report("taplint", command, timeout_s)


def run_datalinklint(url: str, *, timeout_s: float = 120) -> LintReport:
    """Validate the ``{links}`` response at ``url`` (datalinklint fetches it itself)."""
    return _json_report("datalinklint", [f"votable={url}", "format=json", "report=EWF"], timeout_s)


def run_votlint(url: str, *, timeout_s: float = 120) -> LintReport:
    """Validate the VOTable at ``url`` (or a file path) against the VOTable schema and rules."""
    done = _stilts("votlint", [f"votable={url}"], timeout_s)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    messages = [{"stage": "", "type": line[:1], "code": "", "text": line} for line in lines]
    return LintReport(
        errors=sum(line.startswith("ERROR") for line in lines),
        warnings=sum(line.startswith("WARNING") for line in lines),
        messages=messages,
    )


def _stilts(tool: str, arguments: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["stilts", tool, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _json_report(tool: str, arguments: list[str], timeout_s: float) -> LintReport:
    """Run a validator with ``format=json`` and read its report (its exit status says nothing)."""
    done = _stilts(tool, arguments, timeout_s)
    start = done.stdout.find("{")
    if start < 0:
        raise RuntimeError(f"{tool} printed no JSON report:\n{done.stdout}\n{done.stderr}")
    document = json.loads(done.stdout[start:])
    totals = document.get("totals", {})
    messages = [
        {
            "stage": section.get("code", "?"),
            "type": message.get("level", "?")[:1],
            "code": message.get("code", ""),
            "text": message.get("text", ""),
        }
        for section in document.get("sections", [])
        for message in section.get("reports", [])
    ]
    return LintReport(
        errors=int(totals.get("ERROR", 0)),
        warnings=int(totals.get("WARNING", 0)),
        failures=int(totals.get("FAILURE", 0)),
        messages=messages,
    )
