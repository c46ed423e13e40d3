"""Training on shared cores: steps/s of one run alone and of three at once, by thread policy.

Each run trains the ``cpu`` preset (64 images a step, random cut-outs) for
a fixed wall-clock time in its own process and reports its steps per
second after the first epoch. Two policies: PyTorch's default (one thread
per core, ``OMP_NUM_THREADS`` unset) and the count `vosim train` chooses
(`model_training.learn.threads`: the fair share, re-evaluated every
10 s). The ideal share of one of three runs is a third of the best run
alone; the goal is to stay within 2x of it.

Usage (from the repository root, with no other heavy job running)::

    python benchmarks/train_contention.py --seconds 45
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS_PER_EPOCH = 1


class _TimeUpError(Exception):
    """The run's wall-clock time is over."""


def worker(policy: str, seconds: float) -> dict:
    """Train until ``seconds`` have passed; return steps/s after the first epoch and threads."""
    import torch

    from model_training.learn.presets import preset
    from model_training.learn.simclr import build_method
    from model_training.learn.threads import ThreadBudget
    from model_training.learn.train import fit

    config = preset("cpu").replace(epochs=10_000, warmup_epochs=1)
    cutouts = torch.randn(config.batch_size * STEPS_PER_EPOCH, 64, 64)
    torch.manual_seed(0)
    method = build_method(config)
    budget = None if policy == "default" else ThreadBudget()
    threads = torch.get_num_threads() if budget is None else budget.threads
    counts = [threads]
    ends: list[float] = []
    started = time.perf_counter()

    def stop_when_done(record) -> None:
        ends.append(time.perf_counter())
        counts.append(torch.get_num_threads())
        if ends[-1] - started > seconds:
            raise _TimeUpError

    with contextlib.suppress(_TimeUpError):
        fit(
            method,
            cutouts,
            config,
            progress=False,
            on_epoch_end=stop_when_done,
            threads=budget if budget is not None else threads,
        )
    steps = STEPS_PER_EPOCH * (len(ends) - 1)
    return {
        "steps_per_s": steps / (ends[-1] - ends[0]) if steps else 0.0,
        "steps": steps,
        "threads": sorted(set(counts)),
    }


def scenario(policy: str, runs: int, seconds: float) -> dict:
    """Start ``runs`` workers at once with a thread policy; collect their speeds."""
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    load_before = Path("/proc/loadavg").read_text().split()[0]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", policy, "--seconds", str(seconds)],
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(runs)
    ]
    results = [json.loads(process.communicate()[0]) for process in processes]
    load_after = Path("/proc/loadavg").read_text().split()[0]
    return {
        "policy": policy,
        "runs": runs,
        "steps_per_s": [result["steps_per_s"] for result in results],
        "threads": [result["threads"] for result in results],
        "steps": [result["steps"] for result in results],
        "load": f"{load_before} → {load_after}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="wall-clock time per run")
    parser.add_argument("--runs", type=int, default=3, help="concurrent runs")
    parser.add_argument("--worker", choices=("default", "chosen"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds)))
        return
    rows = [
        scenario(policy, runs, args.seconds)
        for runs in (1, args.runs)
        for policy in ("default", "chosen")
    ]
    best_alone = max(row["steps_per_s"][0] for row in rows if row["runs"] == 1)
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; cpu preset, 64 images a step; {args.seconds:.0f} s a run")
    print(
        "| runs | threads policy | threads used | steps/s of each run "
        "| ideal share / slowest | load average (1 min) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        ideal = best_alone / row["runs"]
        slowest = min(row["steps_per_s"])
        speeds = ", ".join(
            f"{speed:.2f}" if steps else f"< {1 / args.seconds:.2f} (no step after the first)"
            for speed, steps in zip(row["steps_per_s"], row["steps"], strict=True)
        )
        used = ", ".join("/".join(map(str, threads)) for threads in row["threads"])
        ratio = f"{ideal / slowest:.1f}x" if slowest else "—"
        policy = "PyTorch default" if row["policy"] == "default" else "chosen (fair share)"
        print(f"| {row['runs']} | {policy} | {used} | {speeds} | {ratio} | {row['load']} |")


if __name__ == "__main__":
    main()
