"""``vosim publish`` killed at each commit point: the archive has every row or none.

The rows go into the archive's PostgreSQL database in one transaction
(with its TAP_SCHEMA rows, on the generic path); DaCHS then needs the
resource descriptor (RD), a file written after that commit. The sweep
SIGKILLs a publication just before and just after the archive's commit and
the RD's rename (`tests.faults.commit_points`). After each kill the archive
holds every published row or none of vosim's tables, the RD is whole or
absent, and the next run of the same command leaves the archive as a
publication never interrupted does, saying on a line what it repaired when
the tables were committed without their RD.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from model_training.publish.stage import publish, unpublish
from tap_schema import Settings, open_catalogue
from tests.faults.commit_points import kill_at_point
from tests.faults.strace_faults import run_forked
from tests.pg import fresh_database, sessions_ended
from tests.publish import catalogue as cat
from tests.publish.archive import MAPPING, dump, make_archive
from tests.publish.conftest import PUBLIC_URL

MAX_POINTS = 20
"""More commit points than one publication passes: the sweep ends before."""


@pytest.fixture
def dachs_url(pg_server_url: str) -> Iterator[str]:
    """An archive database that looks like DaCHS' (its table registry, empty)."""
    with fresh_database(pg_server_url, "vosim_publish_kill") as url:
        make_archive(url, tap_schema="tap_schema")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA dc"))
            conn.execute(sa.text("CREATE TABLE dc.tablemeta (tablename text, sourcerd text)"))
        engine.dispose()
        yield url


@pytest.fixture
def archive_url(pg_server_url: str) -> Iterator[str]:
    """An archive database with a TAP_SCHEMA of its own, which vosim writes (generic path)."""
    with fresh_database(pg_server_url, "vosim_publish_kill") as url:
        make_archive(url)
        yield url


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    settings = sqlite_settings.with_changes(public_url=PUBLIC_URL)
    catalogue = open_catalogue(settings)
    cat.fill(catalogue)
    catalogue.dispose()
    return settings


class _Publication:
    """One archive, its RD path (DaCHS) or None, and what an uninterrupted publication leaves."""

    def __init__(self, settings: Settings, url: str, folder: Path, *, dachs: bool) -> None:
        self.settings, self.url = settings, url
        self.rd = folder / "inputs" / "vosim" / "similarity.rd" if dachs else None
        self.report = folder / "report.txt"
        self.before = self.state()
        run_forked(self.run)
        self.published = self.state()
        self.rd_text = self.published[1]
        assert self.published[0] != self.before[0]

    def run(self) -> None:
        """The stage as ``vosim publish [--dachs-rd]`` runs it, its report kept in a file."""
        report = publish(self.settings, self.url, mapping=MAPPING, dachs_rd=self.rd, now=cat.NOW)
        self.report.write_text(str(report))

    def state(self) -> tuple[dict[str, list[dict]], str | None]:
        """vosim's tables in the archive and the archive's TAP_SCHEMA; the RD's text."""
        tables = {
            name: rows
            for name, rows in dump(self.url).items()
            if name.startswith(("similarity.", "TAP_SCHEMA.")) or "similarity" in name
        }
        rd_text = self.rd.read_text() if self.rd is not None and self.rd.is_file() else None
        return tables, rd_text

    def reset(self) -> None:
        unpublish(self.url, dachs_rd=self.rd)
        assert self.state() == self.before

    def check_kill(self) -> tuple[bool, bool]:
        """After a kill: all or none, RD whole or absent; the next run repairs and says so.

        Returns whether the killed run had committed the rows, and written the RD.
        """
        tables, rd_text = self.state()
        assert tables in (self.before[0], self.published[0])
        assert rd_text in (None, self.rd_text)
        committed_without_rd = tables == self.published[0] and rd_text != self.rd_text
        run_forked(self.run)
        repaired = [line for line in self.report.read_text().splitlines() if "repaired" in line]
        assert len(repaired) == committed_without_rd, repaired
        assert self.state() == self.published
        assert self.rd is None or not list(self.rd.parent.glob(".*.partial"))
        return tables == self.published[0], rd_text is not None


def _sweep(publication: _Publication, url: str) -> list[tuple[bool, bool]]:
    """Kill a publication at each of its points in turn; check, repair, reset after each."""
    publication.reset()
    outcomes = []
    for when in range(1, MAX_POINTS):
        ended_by = kill_at_point(publication.run, when)
        if ended_by is None:  # the run got past its last point
            assert publication.state() == publication.published
            return outcomes
        assert ended_by == signal.SIGKILL
        sessions_ended(url)
        outcomes.append(publication.check_kill())
        publication.reset()
    raise AssertionError(f"publish still killed at its {MAX_POINTS}th point")


def test_publish_into_dachs_killed_at_its_commit_and_descriptor(
    settings: Settings, dachs_url: str, tmp_path: Path
) -> None:
    outcomes = _sweep(_Publication(settings, dachs_url, tmp_path, dachs=True), dachs_url)
    # before and after the archive's commit; before and after the RD's rename
    assert outcomes == [(False, False), (True, False), (True, False), (True, True)]


def test_publish_with_tap_schema_killed_at_its_commit(
    settings: Settings, archive_url: str, tmp_path: Path
) -> None:
    """The generic path: the rows and the archive's TAP_SCHEMA rows in one transaction."""
    outcomes = _sweep(_Publication(settings, archive_url, tmp_path, dachs=False), archive_url)
    assert outcomes == [(False, False), (True, False)]  # just before its commit, just after
