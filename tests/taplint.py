"""Run ``stilts taplint`` against a TAP service and read its verdict.

taplint exits 0 even when it reports errors, and even for a dead URL
(docs/validators.md), so its JSON report is parsed instead: ``totals`` gives the
number of errors, warnings and failures, ``sections`` (one per stage) the
messages. Keep the
TME and TMS stages in any subset you run, or MDQ has no metadata to test.

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

__all__ = ["TaplintReport", "run_taplint", "taplint_available"]


@dataclass
class TaplintReport:
    """The parsed JSON report of one taplint run."""

    errors: int
    warnings: int
    failures: int
    messages: list[dict] = field(default_factory=list)
    """Every reported message: ``stage``, ``type`` (E, W, F, I, S), ``code``, ``text``."""

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


def run_taplint(
    tap_url: str,
    *,
    stages: Sequence[str] | None = None,
    report: str = "EWF",
    timeout_s: float = 600,
    extra: Sequence[str] = (),
) -> TaplintReport:
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
    command = [
        "stilts",
        "taplint",
        f"tapurl={tap_url}",
        "format=json",
        f"report={report}",
        "maxrepeat=99",
        *extra,
    ]
    if stages:
        command.append("stages=" + " ".join(stages))
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    start = done.stdout.find("{")
    if start < 0:
        raise RuntimeError(f"taplint printed no JSON report:\n{done.stdout}\n{done.stderr}")
    document = json.loads(done.stdout[start:])
    totals = document.get("totals", {})
    messages = [
        {
            "stage": section.get("code", "?"),
            "type": report.get("level", "?")[:1],
            "code": report.get("code", ""),
            "text": report.get("text", ""),
        }
        for section in document.get("sections", [])
        for report in section.get("reports", [])
    ]
    return TaplintReport(
        errors=int(totals.get("ERROR", 0)),
        warnings=int(totals.get("WARNING", 0)),
        failures=int(totals.get("FAILURE", 0)),
        messages=messages,
    )
