"""How many threads the network's CPU work uses: this process's fair share of the cores it may use.

PyTorch starts one OpenMP thread per core it sees, whoever else uses them.
On shared cores that is ruinous: three trainings of two threads each on two
cores ran about 30 times slower each than one alone, because every
parallel region waits for its slowest, preempted thread. So `vosim train`,
`embed` and `demo` choose their thread count, in this order:

1. ``--threads N`` (the ``requested`` argument);
2. ``OMP_NUM_THREADS`` when it is set: whoever set it chose;
3. the fair share, re-evaluated during training (`ThreadBudget.refresh`).

The cores this process may use are the fewest of: its CPU affinity
(``os.sched_getaffinity``, which a cpuset also narrows) and its cgroup's CPU
quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``; the
tightest along the cgroup's path, fractional cores allowed).

The fair share divides those cores max-min fairly between this process and
every other process with runnable threads (`fair_share`): a process that
wants less than an equal part keeps what it wants, the others split the
rest. Demands are the runnable threads of each process, read from
``/proc/<pid>/task/<tid>/stat`` and averaged over five samples (0.1 s).
The 1-minute load average is not used to decide, only reported beside the
choice: it lags a minute behind, counts this very command's earlier stages
(``vosim demo``'s ingest workers) and counts threads, so one process of 16
threads would look like 16 users. Only processes visible in ``/proc`` count
(in a container with its own PID namespace: the container's own).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "ThreadBudget",
    "ThreadChoice",
    "available_cores",
    "cgroup_cpu_quota",
    "choose_threads",
    "fair_share",
    "load_average",
    "other_demands",
]

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
REFRESH_SECONDS = 10.0
"""Training re-evaluates its share at the first step this long after the last time."""
MAX_OVERHEAD = 0.01
"""At most this fraction of the time goes to sampling ``/proc`` (many processes: less often)."""


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why.

    Attributes
    ----------
    threads
        Threads for PyTorch's intra-op (OpenMP) pool.
    reason
        ``--threads``, ``OMP_NUM_THREADS`` or ``fair share``.
    cores
        Cores this process may use (affinity and cgroup quota).
    others
        Runnable threads of every other process that has some (averaged).
    """

    threads: int
    reason: str
    cores: float = 0.0
    others: tuple[float, ...] = ()

    @property
    def count(self) -> str:
        """``1 thread``, ``2 threads``: for progress bars."""
        return f"{self.threads} thread{'' if self.threads == 1 else 's'}"

    def __str__(self) -> str:
        count = self.count
        if self.reason != "fair share":
            return f"{count} ({self.reason})"
        return (
            f"{count} (fair share of {self.cores:g} cores beside {len(self.others)} busy "
            f"processes, {sum(self.others):.1f} runnable threads)"
        )


def available_cores(
    proc_cgroup: Path = PROC / "self" / "cgroup", cgroup_root: Path = CGROUP_ROOT
) -> float:
    """Return the cores this process may use: its affinity, capped by its cgroup's CPU quota."""
    try:
        cores: float = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(proc_cgroup, cgroup_root)
    return cores if quota is None else max(min(cores, quota), 0.01)


def cgroup_cpu_quota(
    proc_cgroup: Path = PROC / "self" / "cgroup", cgroup_root: Path = CGROUP_ROOT
) -> float | None:
    """Return the CPU quota of this process's cgroup in cores, None where there is none.

    Looks at the process's cgroup and each of its ancestors (a parent's quota
    binds its children too) and returns the tightest; under cgroup v2 in
    ``cpu.max`` (``"max 100000"`` or ``"150000 100000"``), under v1 in the
    ``cpu`` controller's ``cpu.cfs_quota_us`` (-1 for none) and
    ``cpu.cfs_period_us``. A container usually sees its own cgroup as the
    mount's root, whatever ``/proc/self/cgroup`` says, so the root is read too.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if controllers == "":
            quotas += _quotas_along(cgroup_root, path, _v2_quota)
        elif "cpu" in controllers.split(","):
            for mount in (
                cgroup_root / controllers,
                cgroup_root / "cpu",
                cgroup_root / "cpu,cpuacct",
            ):
                if mount.is_dir():
                    quotas += _quotas_along(mount, path, _v1_quota)
                    break
    return min(quotas) if quotas else None


def _quotas_along(mount: Path, path: str, read) -> list[float]:
    """Read the quota of a cgroup and of its ancestors up to the mount's root."""
    parts = [part for part in path.strip().split("/") if part]
    folders = [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return [quota for folder in folders if (quota := read(folder)) is not None]


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def other_demands(
    proc: Path = PROC, *, samples: int = 5, interval: float = 0.02, exclude: int | None = None
) -> tuple[float, ...]:
    """Return the mean runnable threads of each other process that had any, over a few samples.

    Parameters
    ----------
    proc
        The ``/proc`` folder.
    samples, interval
        How many samples, and the pause between them (seconds).
    exclude
        Process left out: by default this one (its threads are what is chosen).
    """
    exclude = os.getpid() if exclude is None else exclude
    totals: dict[int, int] = {}
    for sample in range(samples):
        if sample:
            time.sleep(interval)
        for pid, count in _runnable_threads(proc).items():
            if pid != exclude:
                totals[pid] = totals.get(pid, 0) + count
    return tuple(sorted((count / samples for count in totals.values()), reverse=True))


def _runnable_threads(proc: Path) -> dict[int, int]:
    """Count the threads in state R (running or runnable) of every process."""
    counts: dict[int, int] = {}
    for task_dir in proc.glob("[0-9]*/task"):
        try:
            states = [_state(stat) for stat in task_dir.glob("*/stat")]
        except OSError:
            continue  # the process ended while being read
        running = states.count("R")
        if running:
            counts[int(task_dir.parent.name)] = running
    return counts


def _state(stat: Path) -> str:
    """Return the one-letter state of a task from its ``stat`` line (after the command name)."""
    try:
        return stat.read_text().rpartition(")")[2].split(maxsplit=1)[0]
    except (OSError, IndexError):
        return "?"


def fair_share(cores: float, others: Sequence[float]) -> float:
    """Return this process's max-min fair share of ``cores`` when it wants them all.

    Every other process gets what it wants if that is below the common level,
    the level being what is left divided by those that want more (water
    filling); this process wants every core, so it gets the level.

    >>> fair_share(2, [2.0, 2.0])  # three trainings on two cores
    0.6666666666666666
    >>> fair_share(16, [1.0])  # one single-threaded job beside us
    15.0
    """
    remaining, claimants = float(cores), 1 + len(others)
    for demand in sorted(others):
        level = remaining / claimants
        if demand >= level:
            return level
        remaining -= demand
        claimants -= 1
    return remaining


def load_average() -> tuple[float, float, float]:
    """Return the 1-, 5- and 15-minute load averages (zeros where the system has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def choose_threads(
    requested: int | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    proc: Path | None = None,
    cgroup_root: Path | None = None,
) -> ThreadChoice:
    """Choose the thread count: ``requested``, else ``OMP_NUM_THREADS``, else the fair share.

    ``environ``, ``proc`` and ``cgroup_root`` default to this process's
    environment, ``/proc`` and ``/sys/fs/cgroup``.

    Raises
    ------
    ValueError
        If ``requested`` or ``OMP_NUM_THREADS`` is not a positive integer.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be at least 1, not {requested}")
        return ThreadChoice(requested, "--threads")
    environ = os.environ if environ is None else environ
    if environ.get("OMP_NUM_THREADS", "").strip():
        value = environ["OMP_NUM_THREADS"].split(",")[0].strip()
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"OMP_NUM_THREADS must be a positive integer, not {value!r}")
        return ThreadChoice(int(value), "OMP_NUM_THREADS")
    proc = PROC if proc is None else proc
    cores = available_cores(
        proc / "self" / "cgroup", CGROUP_ROOT if cgroup_root is None else cgroup_root
    )
    others = other_demands(proc)
    share = fair_share(cores, others)
    threads = max(1, min(math.floor(share + 0.5), math.ceil(cores)))
    return ThreadChoice(threads, "fair share", cores, others)


class ThreadBudget:
    """The thread count of one command, applied to PyTorch and kept up to date.

    Parameters
    ----------
    requested
        ``--threads``; None chooses by `choose_threads` (and, for the fair
        share, again on each `refresh`).
    """

    def __init__(self, requested: int | None = None) -> None:
        self.requested = requested
        self._choose()

    @property
    def threads(self) -> int:
        """The thread count in use."""
        return self.choice.threads

    def refresh(self, min_interval: float = REFRESH_SECONDS) -> bool:
        """Choose again if the count is a fair share and ``min_interval`` has passed.

        The interval is longer where sampling is slow (thousands of
        processes), so that it never takes more than `MAX_OVERHEAD` of the time.

        Returns
        -------
        bool
            Whether the thread count changed.
        """
        interval = max(min_interval, self._sampling_seconds / MAX_OVERHEAD)
        if self.choice.reason != "fair share" or time.monotonic() - self._checked < interval:
            return False
        before = self.threads
        self._choose()
        return self.threads != before

    def _choose(self) -> None:
        started = time.monotonic()
        self.choice = choose_threads(self.requested)
        if torch.get_num_threads() != self.choice.threads:
            torch.set_num_threads(self.choice.threads)
        self._checked = time.monotonic()
        self._sampling_seconds = self._checked - started
