"""Thread selection: the cores a process may use (affinity, cgroup quota) and its fair share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from model_training.learn import threads
from model_training.learn.threads import (
    ThreadBudget,
    available_cores,
    cgroup_cpu_quota,
    choose_threads,
    fair_share,
    other_demands,
)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fake_proc(root: Path, processes: dict[int, str], cgroup: str = "0::/\n") -> Path:
    """A ``/proc`` with processes given as the states of their threads ("RRS": 3 threads)."""
    proc = root / "proc"
    for pid, states in processes.items():
        for index, state in enumerate(states):
            tid = pid * 100 + index
            _write(proc / str(pid) / "task" / str(tid) / "stat", f"{tid} (py (x) 1) {state} 1 2 3")
    _write(proc / "self" / "cgroup", cgroup)
    return proc


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


def test_cgroup_v2_quota_is_read_along_the_path(tmp_path: Path, eight_cpus) -> None:
    cgroups = tmp_path / "cgroup"
    _write(cgroups / "cpu.max", "max 100000\n")
    _write(cgroups / "jobs" / "cpu.max", "300000 100000\n")
    _write(cgroups / "jobs" / "mine" / "cpu.max", "max 100000\n")
    proc_cgroup = tmp_path / "self-cgroup"
    _write(proc_cgroup, "0::/jobs/mine\n")
    # The parent's 3 cores bind its child, which has no quota of its own.
    assert cgroup_cpu_quota(proc_cgroup, cgroups) == 3.0
    assert available_cores(proc_cgroup, cgroups) == 3.0
    _write(cgroups / "jobs" / "mine" / "cpu.max", "150000 100000\n")
    assert available_cores(proc_cgroup, cgroups) == 1.5


def test_cgroup_v1_cfs_quota(tmp_path: Path, eight_cpus) -> None:
    cgroups = tmp_path / "cgroup"
    mount = cgroups / "cpu,cpuacct"
    _write(mount / "cpu.cfs_quota_us", "-1\n")
    _write(mount / "cpu.cfs_period_us", "100000\n")
    proc_cgroup = tmp_path / "self-cgroup"
    _write(proc_cgroup, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    assert cgroup_cpu_quota(proc_cgroup, cgroups) is None
    assert available_cores(proc_cgroup, cgroups) == 8
    # Inside a container the cgroup is the mount's root whatever the path says.
    _write(mount / "cpu.cfs_quota_us", "200000\n")
    assert available_cores(proc_cgroup, cgroups) == 2.0
    _write(mount / "docker" / "abc" / "cpu.cfs_quota_us", "50000\n")
    _write(mount / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert available_cores(proc_cgroup, cgroups) == 0.5


def test_no_cgroup_means_the_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert available_cores(tmp_path / "missing", tmp_path) == 3


def test_fair_share_is_max_min_fair() -> None:
    assert fair_share(2, []) == 2
    assert fair_share(2, [2, 2]) == pytest.approx(2 / 3)  # three trainings on two cores
    assert fair_share(2, [1, 1]) == pytest.approx(2 / 3)  # ... after they chose one thread each
    assert fair_share(16, [16, 16, 16]) == 4
    assert fair_share(16, [1, 0.5]) == 14.5  # small jobs keep what they use
    assert fair_share(8, [6, 1]) == pytest.approx(3.5)


def test_other_processes_runnable_threads_are_averaged(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {10: "RRS", 11: "SSS", 12: "R", 99: "RRRR"})
    assert other_demands(proc, samples=2, interval=0, exclude=99) == (2.0, 1.0)


def _choose(tmp_path: Path, processes: dict[int, str], cgroup: str, **kwargs) -> int:
    proc = _fake_proc(tmp_path, processes, cgroup)
    return choose_threads(environ={}, proc=proc, cgroup_root=tmp_path / "cgroup", **kwargs)


def test_threads_under_a_simulated_quota(tmp_path: Path, eight_cpus) -> None:
    _write(tmp_path / "cgroup" / "cpu.max", "200000 100000\n")
    alone = _choose(tmp_path, {}, "0::/\n")
    assert (alone.threads, alone.reason, alone.cores) == (2, "fair share", 2.0)
    assert str(alone).startswith("2 threads (fair share of 2 cores beside 0 busy processes")
    # Two other trainings with two threads each inside the 2-core quota: one thread.
    shared = _choose(tmp_path, {10: "RR", 11: "RR"}, "0::/\n")
    assert shared.threads == 1
    assert shared.others == (2.0, 2.0)
    # Without the quota, of eight cores the two keep their two each, four are left.
    (tmp_path / "cgroup" / "cpu.max").write_text("max 100000\n")
    assert _choose(tmp_path, {10: "RR", 11: "RR"}, "0::/\n").threads == 4
    assert _choose(tmp_path, {10: "RRRRRRRR", 11: "RRRRRRRR"}, "0::/\n").threads == 3
    # A fraction of a core still gets one thread.
    (tmp_path / "cgroup" / "cpu.max").write_text("20000 100000\n")
    assert _choose(tmp_path, {}, "0::/\n").threads == 1


def test_explicit_counts_win(tmp_path: Path, eight_cpus) -> None:
    proc = _fake_proc(tmp_path, {10: "RRRRRRRR"})
    assert choose_threads(3, environ={"OMP_NUM_THREADS": "1"}, proc=proc).threads == 3
    chosen = choose_threads(environ={"OMP_NUM_THREADS": "5"}, proc=proc)
    assert (chosen.threads, str(chosen)) == (5, "5 threads (OMP_NUM_THREADS)")
    with pytest.raises(ValueError, match="at least 1"):
        choose_threads(0)
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        choose_threads(environ={"OMP_NUM_THREADS": "many"})


def test_budget_applies_the_count_and_refreshes_a_fair_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eight_cpus
) -> None:
    before = torch.get_num_threads()
    proc = _fake_proc(tmp_path, {10: "RRRRRR"})
    monkeypatch.setattr(threads, "PROC", proc)
    monkeypatch.setattr(threads, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        budget = ThreadBudget()
        assert budget.threads == torch.get_num_threads() == 4  # 8 cores, one other of 6
        assert not budget.refresh()  # too soon
        for thread in range(6):
            (proc / "10" / "task" / str(1000 + thread) / "stat").write_text("1 (p) S 1")
        budget._checked -= 60  # a minute later
        assert budget.refresh()
        assert budget.threads == torch.get_num_threads() == 8
        fixed = ThreadBudget(2)
        assert fixed.threads == torch.get_num_threads() == 2
        assert not fixed.refresh(min_interval=0)
    finally:
        torch.set_num_threads(before)


def test_slow_sampling_is_done_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        budget = ThreadBudget()
        budget._sampling_seconds = 1.0  # as on a machine with thousands of processes
        budget._checked -= 50  # 50 s ago: sooner than 100 times the sampling time
        assert not budget.refresh(min_interval=0)
    finally:
        torch.set_num_threads(before)
