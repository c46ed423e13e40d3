"""A trained model's rows torn across SQLite files: the next registration repairs them.

``similarity.model`` and ``vosim.model_file`` are two files; killed between
their commits, a new model is current but has no weights on record, so
nothing could embed with it. The next ``train`` (its `register_model`)
removes that row and makes the previous model current again.
"""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from model_training.learn.checkpoints import current_model_id, register_model
from tap_schema import Settings, open_catalogue
from tests.faults.strace_faults import commit_sync, kill_at_fdatasync, sync_calls
from tests.test_ingest import ROOT

_REGISTER = textwrap.dedent(
    """
    import sys
    from model_training.learn.checkpoints import register_model
    from tap_schema import Settings, open_catalogue
    catalogue = open_catalogue(Settings.from_env({"VOSIM_DATA_DIR": sys.argv[1]}))
    with catalogue.begin() as conn:
        row = {"model_name": "second", "image_kind": "continuum"}
        print(register_model(conn, catalogue, row, sys.argv[1] + "/second.pt", current=True))
    """
)


def _register(settings: Settings, name: str, *, current: bool) -> int:
    catalogue = open_catalogue(settings)
    try:
        with catalogue.begin() as conn:
            row = {"model_name": name, "image_kind": "continuum"}
            path = settings.data_dir / f"{name}.pt"
            return register_model(conn, catalogue, row, path, current=current)
    finally:
        catalogue.dispose()


def _models(settings: Settings) -> list[tuple[int, int, str | None]]:
    """``(model_id, is_current, checkpoint_path)`` of every model."""
    catalogue = open_catalogue(settings)
    model, model_file = catalogue.table("similarity.model"), catalogue.table("vosim.model_file")
    try:
        with catalogue.begin() as conn:
            query = (
                sa.select(model.c.model_id, model.c.is_current, model_file.c.checkpoint_path)
                .outerjoin(model_file, model_file.c.model_id == model.c.model_id)
                .order_by(model.c.model_id)
            )
            return [tuple(row) for row in conn.execute(query)]
    finally:
        catalogue.dispose()


def test_torn_model_registration_is_removed_and_the_old_model_served(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    first = _register(sqlite_settings, "first", current=True)
    command = [sys.executable, "-c", _REGISTER, str(sqlite_settings.data_dir)]
    rehearsal = tmp_path / "rehearsal"
    _register(Settings.from_env({"VOSIM_DATA_DIR": str(rehearsal)}), "first", current=True)
    calls = sync_calls(
        [sys.executable, "-c", _REGISTER, str(rehearsal)], tmp_path / "trace", cwd=ROOT
    )
    names = [(call, Path(path).name) for call, path in calls]
    opened = -1  # opening an unchanged catalogue writes nothing
    when = commit_sync(
        names, "catalogue.similarity.sqlite-wal", opened, "catalogue.vosim.sqlite-wal"
    )
    killed = kill_at_fdatasync(command, when, cwd=ROOT, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    torn = _models(sqlite_settings)
    assert torn[-1][1:] == (1, None)  # current, but no weights on record: the fault hit

    third = _register(sqlite_settings, "third", current=False)

    models = _models(sqlite_settings)
    assert [row[0] for row in models] == [first, third]
    assert all(path is not None for _, _, path in models)
    catalogue = open_catalogue(sqlite_settings)
    with catalogue.begin() as conn:
        assert current_model_id(conn, "continuum") == first
    catalogue.dispose()
