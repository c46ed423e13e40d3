"""``stilts taplint`` against the real server, on both backends.

GAVO DaCHS 2.7 gets 0 errors, 16 warnings and 1 failure (LOC, for lack of
``ivoa.obsplan``) on this kind of machine (docs/validators.md); vosim must do at least as well:
0 errors, fewer than 16 warnings, and no failure other than LOC.
"""

from __future__ import annotations

from tests.stilts_lint import needs_stilts, run_taplint

from .server import RunningServer

DACHS_WARNINGS = 16


@needs_stilts
def test_taplint_is_clean(tap_server: RunningServer) -> None:
    report = run_taplint(tap_server.tap_url)
    assert report.errors == 0, report.describe("E")
    assert report.warnings < DACHS_WARNINGS, report.describe("W")
    assert {m["stage"] for m in report.of_type("F")} <= {"LOC"}, report.describe("F")
