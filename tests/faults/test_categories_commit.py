"""``vosim categories`` killed at every commit point: the pairs are the old set or the new.

The stage replaces every row of ``similarity.category_compat`` in one
transaction of one file, so a kill inside it must leave either the pairs
of the previous run or those of the new one, never a mixture or an empty
table (which would make every category compatible only with itself and
so empty most neighbour lists). The sweep SIGKILLs the stage at each
``fdatasync`` on SQLite, and on PostgreSQL just before and just after its
commit (`tests.faults.commit_points`); the next run of the same command
then stores the new pairs and reports no repair.
"""

from __future__ import annotations

import signal
from pathlib import Path

import sqlalchemy as sa

from model_training.categories import (
    GALAXIES,
    ISM,
    STELLAR,
    derive_categories,
    load_compatibility,
    render_matrix,
    store_compatibility,
)
from tap_schema import Settings, open_catalogue
from tests.faults.commit_points import kill_at_point
from tests.faults.strace_faults import kill_forked_at, run_forked
from tests.pg import fresh_database, sessions_ended

MAX_SYNCS = 30
"""More fdatasync calls than one run of the stage makes: the sweep ends before."""

Pairs = set[tuple[str, str, str]]


def _publications(path: Path, together: dict[tuple[str, str], int]) -> Path:
    """A publications file: ``n`` papers using both categories of each pair."""
    lines = ["bibcode,categories"]
    for (a, b), count in together.items():
        lines += [f'"{a[:3]}{b[:3]}{n}","{a};{b}"' for n in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _categories(settings: Settings, publications: Path, report_file: Path) -> None:
    """The stage as ``vosim categories`` runs it, what it prints kept in ``report_file``."""
    report_file.write_text(render_matrix(derive_categories(settings, publications)))


def _pairs(settings: Settings) -> Pairs:
    catalogue = open_catalogue(settings, create=False)
    table = catalogue.table("similarity.category_compat")
    try:
        with catalogue.begin() as conn:
            query = sa.select(
                table.c.scientific_category, table.c.compatible_category, table.c.origin
            )
            return {tuple(row) for row in conn.execute(query)}
    finally:
        catalogue.dispose()


class _Stage:
    """A catalogue whose categories were derived once, and a second publications file."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder = settings, folder
        self.old_file = _publications(folder / "old.csv", {(GALAXIES, ISM): 6})
        self.new_file = _publications(folder / "new.csv", {(ISM, STELLAR): 7, (GALAXIES, ISM): 1})
        self.report = folder / "report.txt"
        self.new = self._derived(self.new_file)
        self.old = self._derived(self.old_file)
        assert self.old != self.new
        catalogue = open_catalogue(settings, create=False)
        self.old_relation = load_compatibility(catalogue)
        catalogue.dispose()

    def _derived(self, publications: Path) -> Pairs:
        run_forked(lambda: _categories(self.settings, publications, self.report))
        return _pairs(self.settings)

    def reset(self) -> None:
        """Back to the old pairs, as the previous run left them (the stage's own write)."""
        catalogue = open_catalogue(self.settings, create=False)
        store_compatibility(catalogue, self.old_relation)
        catalogue.dispose()
        assert {pair[:2] for pair in _pairs(self.settings)} == {pair[:2] for pair in self.old}

    def run_new(self) -> None:
        _categories(self.settings, self.new_file, self.report)

    def check_kill(self) -> bool:
        """After a kill: old pairs or new ones; the next run stores the new. Whether it had."""
        torn = {pair[:2] for pair in _pairs(self.settings)}
        assert torn in ({pair[:2] for pair in self.old}, {pair[:2] for pair in self.new}), torn
        run_forked(lambda: _categories(self.settings, self.new_file, self.report))
        assert "repaired" not in self.report.read_text()
        assert _pairs(self.settings) == self.new
        return torn == {pair[:2] for pair in self.new}


def test_categories_killed_at_every_fdatasync_on_sqlite(tmp_path: Path) -> None:
    stage = _Stage(Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / "data")}), tmp_path)
    outcomes = []
    for when in range(1, MAX_SYNCS):
        stage.reset()
        ended_by = kill_forked_at(stage.run_new, "fdatasync", when)
        if ended_by is None:  # the run got past its last sync: every point was hit
            assert _pairs(stage.settings) == stage.new
            break
        assert ended_by == signal.SIGKILL
        outcomes.append(stage.check_kill())
    else:
        raise AssertionError(f"categories still killed at its {MAX_SYNCS}th fdatasync")
    assert outcomes and False in outcomes  # a kill landed before the commit


def test_categories_killed_at_its_commit_on_postgresql(tmp_path: Path, pg_server_url: str) -> None:
    with fresh_database(pg_server_url, "vosim_categories_kill") as url:
        data = str(tmp_path / "data")
        stage = _Stage(Settings.from_env({"VOSIM_DATA_DIR": data, "VOSIM_DB_URL": url}), tmp_path)
        outcomes = []
        for when in range(1, MAX_SYNCS):
            stage.reset()
            ended_by = kill_at_point(stage.run_new, when)
            if ended_by is None:  # the run got past its commit
                break
            assert ended_by == signal.SIGKILL
            sessions_ended(url)
            outcomes.append(stage.check_kill())
        assert outcomes == [False, True]  # just before its commit, just after
