"""Ingest killed inside its catalogue commits: the next ingest repairs and completes.

On SQLite each schema is a file and a multi-file commit is atomic per file
only (WAL); these tests kill ``ingest`` on the fdatasync of one file's
commit, for several commits and files, and check what an operator would:
the next plain ``ingest`` exits cleanly, says what it repaired, and every
FITS file is then exactly once in each of ``ivoa.obscore``,
``similarity.image`` and ``vosim.product``, with its cut-out.
"""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import pytest

from model_training.ingest.cutout_store import CUTOUT_FILE_NAME as CUTOUTS
from tap_schema import Settings
from tests.faults.strace_faults import commit_sync, kill_at_fdatasync, require_strace, sync_calls
from tests.test_ingest import ROOT, assert_consistent, catalogue_state, make_archive, run

N_IMAGES = 6
N_FILES = N_IMAGES + 2  # make_archive adds a cube and a gzipped image
BATCH = 3
N_BATCHES = -(-N_FILES // BATCH)

_INGEST = textwrap.dedent(
    """
    import sys
    from model_training.ingest.stage import ingest_folder
    from tap_schema import Settings
    settings = Settings.from_env({"VOSIM_DATA_DIR": sys.argv[2]})
    report = ingest_folder(settings, sys.argv[1], progress=False, workers=1, batch_size=BATCH)
    print(report)
    sys.exit(report.exit_status)
    """
).replace("BATCH", str(BATCH))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archive(tmp_path_factory.mktemp("faults") / "archive", n_images=N_IMAGES)


@pytest.fixture(scope="module")
def syncs(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """The fsync/fdatasync calls of a whole ingest of ``archive`` into a fresh folder."""
    require_strace()
    scratch = tmp_path_factory.mktemp("counted")
    calls = sync_calls(
        _command(archive, scratch / "data"), scratch / "trace", cwd=ROOT, timeout=300
    )
    return [(call, Path(path).name) for call, path in calls]


def _commit_sync(syncs: list[tuple[str, str]], commit: int, schema: str) -> int:
    """Which fdatasync call (1 = first) ends the ``commit``-th batch commit's write of ``schema``.

    A batch fsyncs its cut-outs first (`cutout_store`), then commits its rows
    to ivoa, similarity and vosim in that order.
    """
    cutouts = [i for i, (call, name) in enumerate(syncs) if call == "fsync" and name == CUTOUTS]
    after = cutouts[commit - 1]
    if schema == "vosim":  # the last file of the commit: its first sync
        index = next(i for i, (_, name) in enumerate(syncs) if name == _wal(schema) and i > after)
        return sum(1 for call, _ in syncs[: index + 1] if call == "fdatasync")
    following = {"ivoa": "similarity", "similarity": "vosim"}[schema]
    return commit_sync(syncs, _wal(schema), after, _wal(following))


def _wal(schema: str) -> str:
    return f"catalogue.{schema}.sqlite-wal"


def _command(archive: Path, data_dir: Path) -> list[str]:
    return [sys.executable, "-c", _INGEST, str(archive), str(data_dir)]


@pytest.mark.parametrize(
    ("schema", "commit"),
    [
        ("similarity", 2),  # obscore and image rows committed, product rows not
        ("ivoa", 1),  # only obscore rows committed
        ("vosim", N_BATCHES),  # everything written, killed while syncing the last file
    ],
)
def test_killed_inside_a_batch_commit(
    archive: Path,
    syncs: list[tuple[str, str]],
    sqlite_settings: Settings,
    schema: str,
    commit: int,
) -> None:
    when = _commit_sync(syncs, commit, schema)
    killed = kill_at_fdatasync(
        _command(archive, sqlite_settings.data_dir), when, cwd=ROOT, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    torn = catalogue_state(sqlite_settings)
    if schema == "similarity":  # the fault really tore a commit: the case being repaired
        assert len(torn["ivoa.obscore"]) == len(torn["similarity.image"])
        assert len(torn["ivoa.obscore"]) == len(torn["vosim.product"]) + BATCH

    report = run(sqlite_settings, archive)

    assert report.failed == 0, report.failures
    assert report.ingested + report.unchanged == N_FILES
    repaired = [line for line in report.warnings if line.startswith("repaired")]
    if len(torn["ivoa.obscore"]) > len(torn["vosim.product"]):
        assert repaired and "ivoa.obscore" in repaired[0], report.warnings
    else:
        assert not repaired, report.warnings
    assert_consistent(sqlite_settings, N_FILES)


@pytest.mark.parametrize("when", [1, 5, 12])
def test_killed_while_the_catalogue_is_created(
    archive: Path, sqlite_settings: Settings, when: int
) -> None:
    """Tables and TAP_SCHEMA written in part: the next ingest completes them."""
    killed = kill_at_fdatasync(
        _command(archive, sqlite_settings.data_dir), when, cwd=ROOT, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    report = run(sqlite_settings, archive)

    assert report.failed == 0, report.failures
    assert_consistent(sqlite_settings, N_FILES)
