"""Kill a command at its N-th ``fdatasync`` of one file, as a crash inside a commit would.

SQLite writes a commit's WAL frames and then fdatasyncs the WAL, so a
SIGKILL delivered on that call (strace's fault injection) stops the process
right after one file's commit and before the next file's: exactly where a
power cut or OOM kill inside a multi-file commit hurts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = [
    "STRACE",
    "commit_sync",
    "fork_and_wait",
    "kill_at_fdatasync",
    "kill_forked_at",
    "require_strace",
    "run_forked",
    "sync_calls",
]

STRACE = shutil.which("strace")
_SYNC_CALL = re.compile(r"\b(fdatasync|fsync)\(\d+<([^>]*)>")


def require_strace() -> str:
    """The strace executable, or skip (scripts/setup-system.sh installs it)."""
    if STRACE is None:
        pytest.skip("strace is not installed (scripts/setup-system.sh installs it)")
    return STRACE


def sync_calls(command: list[str], trace: Path, **run_options: object) -> list[tuple[str, str]]:
    """Run a command to its end under strace: its fsync and fdatasync calls, in order.

    Returns
    -------
    list of (str, str)
        ``(call, path)`` per call, e.g. ``("fdatasync", "/data/catalogue.ivoa.sqlite-wal")``.
    """
    options = ["-f", "--seccomp-bpf", "-y", "-e", "trace=fdatasync,fsync", "-o", str(trace)]
    done = subprocess.run(
        [require_strace(), *options, *command],
        capture_output=True,
        text=True,
        check=False,
        **run_options,
    )
    assert done.returncode == 0, done.stderr
    return _SYNC_CALL.findall(trace.read_text())


def kill_at_fdatasync(
    command: list[str], when: int, **run_options: object
) -> subprocess.CompletedProcess[str]:
    """Run a command and SIGKILL it on its ``when``-th fdatasync call (1 = the first)."""
    inject = f"inject=fdatasync:signal=KILL:when={when}"
    return subprocess.run(
        [require_strace(), "-f", "--seccomp-bpf", "-o", "/dev/null", "-e", inject, *command],
        capture_output=True,
        text=True,
        check=False,
        **run_options,
    )


def kill_forked_at(target: Callable[[], object], syscall: str, when: int) -> int | None:
    """Run ``target`` in a forked child, SIGKILLed on its ``when``-th ``syscall`` call.

    The child is a fork of the calling process, so it starts with every
    module already imported: a sweep over each call of a short command costs
    the command's own work, not an interpreter start each time. strace
    attaches to the child before it starts ``target``.

    Returns
    -------
    int or None
        The signal that ended the child (``signal.SIGKILL`` when the fault
        was reached), or None when ``target`` returned before it.
    """
    inject = f"inject={syscall}:signal=KILL:when={when}"
    return _run_forked(target, ["-o", "/dev/null", "-e", f"trace={syscall}", "-e", inject])


def run_forked(target: Callable[[], object]) -> None:
    """Run ``target`` to its end in a forked child, untraced, as the killed run ran."""
    ended_by = fork_and_wait(target)
    assert ended_by is None, f"the run was killed by signal {ended_by}"


def fork_and_wait(target: Callable[[], object]) -> int | None:
    """Run ``target`` in a forked child: the signal that ended it, or None if it returned.

    Raises an AssertionError if ``target`` raised (the child exits 1).
    """
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            target()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    assert os.WEXITSTATUS(status) == 0, f"the run failed (exit {os.WEXITSTATUS(status)})"
    return None


def _run_forked(target: Callable[[], object], options: list[str]) -> int | None:
    """Fork, attach strace with ``options`` to the child, run ``target`` there; its signal."""
    strace = require_strace()
    start_read, start_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(start_write)
        os.read(start_read, 1)
        try:
            target()
        except BaseException:
            os._exit(1)
        os._exit(0)
    os.close(start_read)
    tracer = subprocess.Popen(
        [strace, "-f", *options, "-p", str(child)], stderr=subprocess.PIPE, text=True
    )
    try:
        attached = tracer.stderr.readline() if tracer.stderr else ""
        assert "attached" in attached, attached
    finally:
        os.write(start_write, b"go")
        os.close(start_write)
        _, status = os.waitpid(child, 0)
        tracer.wait(timeout=60)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    assert os.WEXITSTATUS(status) == 0, f"the command failed before its fault (exit {status})"
    return None


def commit_sync(calls: list[tuple[str, str]], name: str, after: int, following: str) -> int:
    """Which fdatasync call (1 = first) ends the commit of file ``name`` in a multi-file commit.

    That is the last fdatasync of ``name`` before the first one of ``following``
    (the next file of the same commit) after call index ``after``: SQLite may
    sync a WAL's header before the frames, so the first sync is not the commit.
    ``calls`` are `sync_calls` with file names (not paths).
    """
    next_file = next(i for i, (_, file) in enumerate(calls) if file == following and i > after)
    index = max(i for i, (_, file) in enumerate(calls[:next_file]) if file == name and i > after)
    return sum(1 for call, _ in calls[: index + 1] if call == "fdatasync")
