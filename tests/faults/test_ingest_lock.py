"""``kill -9`` of an ingest: no worker outlives it, and no lock is left that stops the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tap_schema import Settings
from tests.test_ingest import ROOT, assert_consistent, make_archive, run

_SLOW_INGEST = textwrap.dedent(
    """
    import sys, time
    from model_training.ingest import worker_pool
    from model_training.ingest.stage import ingest_folder
    from tap_schema import Settings

    real = worker_pool.prepare_products

    def slow(chunk):
        time.sleep(2)
        return real(chunk)

    worker_pool.prepare_products = slow
    settings = Settings.from_env({"VOSIM_DATA_DIR": sys.argv[2]})
    ingest_folder(settings, sys.argv[1], progress=False, workers=2, batch_size=2)
    """
)

_ORPHAN_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    lock = open(sys.argv[1], "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    lock.write(f"{os.getpid()}\\n")
    lock.flush()
    if os.fork() == 0:  # a worker of an ingest that dies: it keeps the lock
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        time.sleep(300)
        os._exit(0)
    print(os.getpid(), flush=True)
    os._exit(0)
    """
)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_killed_ingest_leaves_no_worker_and_no_lock(tmp_path: Path, sqlite_settings: Settings):
    folder = make_archive(tmp_path / "archive", n_images=10)
    ingest = subprocess.Popen(
        [sys.executable, "-c", _SLOW_INGEST, str(folder), str(sqlite_settings.data_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        assert _wait_for(lambda: len(_children(ingest.pid)) >= 2), "the pool never started"
        workers = _children(ingest.pid)
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(30)
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10), workers
    finally:
        ingest.kill()
        for pid in [*workers, *_children(ingest.pid)]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    report = run(sqlite_settings, folder)
    assert report.failed == 0
    assert_consistent(sqlite_settings, 12)


def test_a_lock_held_by_what_a_dead_ingest_left_is_taken_over(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    folder = make_archive(tmp_path / "archive", n_images=2)
    lock = sqlite_settings.data_dir / "ingest.lock"
    lock.parent.mkdir(parents=True)
    started = subprocess.run(
        [sys.executable, "-c", _ORPHAN_HOLDER, str(lock)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    owner = int(started.stdout)
    holders = [
        int(entry.name)
        for entry in Path("/proc").glob("[0-9]*")
        if _alive(int(entry.name)) and _holds(entry, lock)
    ]
    assert holders and owner not in holders
    try:
        report = run(sqlite_settings, folder)
    finally:
        for pid in holders:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    assert report.failed == 0 and report.ingested == 4
    assert any(line.startswith("repaired") and str(owner) in line for line in report.warnings)
    assert _wait_for(lambda: not any(_alive(pid) for pid in holders), 10)


def _holds(process: Path, path: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(path) for fd in (process / "fd").iterdir())
    except OSError:
        return False
