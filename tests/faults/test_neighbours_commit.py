"""``vosim neighbours`` killed inside its commit: the next run heals the lists.

One model's lists (``similarity``) and their bookkeeping (``vosim``) are
two SQLite files; killed between the two commits, the lists are new and the
bookkeeping old. The next run, incremental or with a new k, must finish
without error, say it repaired the model, and leave exactly the lists a
full recomputation gives.
"""

from __future__ import annotations

import shutil
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from tap_schema import Settings
from tests.faults.strace_faults import commit_sync, kill_at_fdatasync, sync_calls
from tests.test_ingest import ROOT
from tests.test_neighbours import PAST, Archive, assert_same_rows, run

_NEIGHBOURS = textwrap.dedent(
    """
    import sys
    from model_training.neighbours.stage import compute_neighbours
    from tap_schema import Settings
    from tests.test_neighbours import NOW
    settings = Settings.from_env({"VOSIM_DATA_DIR": sys.argv[1]})
    reports = compute_neighbours(
        settings, k=int(sys.argv[2]), full=sys.argv[3] == "full", now=NOW, progress=False,
        device="cpu",
    )
    print("\\n".join(map(str, reports)))
    """
)


_CATALOGUE, _WAL = "catalogue", ".sqlite-wal"


def _command(data_dir: Path, k: int, full: bool) -> list[str]:
    return [sys.executable, "-c", _NEIGHBOURS, str(data_dir), str(k), "full" if full else "-"]


def _kill_inside_first_commit(archive: Archive, tmp_path: Path, k: int, full: bool) -> None:
    """Run the stage and SIGKILL it between the lists' and the bookkeeping's commit."""
    archive.catalogue.dispose()
    data = archive.settings.data_dir
    rehearsal = tmp_path / "rehearsal"
    shutil.copytree(data, rehearsal)
    calls = sync_calls(_command(rehearsal, k, full), tmp_path / "trace", cwd=ROOT, timeout=300)
    names = [(call, Path(path).name) for call, path in calls]
    # opening an unchanged catalogue writes nothing: the first model's commit comes first
    opened = -1
    when = commit_sync(names, f"{_CATALOGUE}.similarity{_WAL}", opened, f"{_CATALOGUE}.vosim{_WAL}")
    killed = kill_at_fdatasync(_command(data, k, full), when, cwd=ROOT, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


@pytest.fixture
def archive(sqlite_settings: Settings) -> Archive:
    archive = Archive(sqlite_settings, seed=5)
    archive.add(range(0, 40), "continuum", PAST)
    archive.add(range(100, 120), "peak_flux", PAST)
    run(archive)
    return archive


def test_torn_incremental_commit_heals_on_the_next_run(archive: Archive, tmp_path: Path) -> None:
    archive.add(range(40, 52), "continuum", PAST)
    _kill_inside_first_commit(archive, tmp_path, k=12, full=False)

    reports = {report.model_id: report for report in run(archive)}

    assert reports[1].repaired and reports[1].mode == "full"
    assert "repaired" in str(reports[1])
    assert not reports[2].repaired
    assert_same_rows(archive.rows(1), archive.expected_rows(1, "continuum", 12))
    assert run(archive)[0].mode == "unchanged"


def test_torn_full_run_with_a_new_k_heals_on_the_next_run(archive: Archive, tmp_path: Path) -> None:
    _kill_inside_first_commit(archive, tmp_path, k=5, full=True)

    reports = {report.model_id: report for report in run(archive, k=5)}

    assert reports[1].repaired and reports[1].mode == "full"
    assert_same_rows(archive.rows(1), archive.expected_rows(1, "continuum", 5))
    assert_same_rows(archive.rows(2), archive.expected_rows(2, "peak_flux", 5))
