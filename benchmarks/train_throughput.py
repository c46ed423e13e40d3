"""Training throughput (views/s) of the presets, next to the paper's reference.

One view is one augmented 48-pixel crop through the network, forward,
backward and optimiser step included, augmentations included (they run on
the device as in training). The paper trained 100 000 images x 100 epochs x
2 views in 1.8 h on three TITAN RTX GPUs: about 1,030 views/s per GPU.

Usage (from the repository root)::

    python benchmarks/train_throughput.py                  # every preset, this machine
    python benchmarks/train_throughput.py --compile        # CUDA: also torch.compile
    python benchmarks/train_throughput.py --paper-batch 32 # CPU: smaller paper batch

On the CPU the paper preset is measured with a smaller batch (default 32,
the per-view cost barely depends on it there); on CUDA with its own 256.
The "(CPU time)" column divides the views by the process's CPU time per
thread: what the cores would give if nobody else used them (our 2 cores are
shared, so wall-clock figures move with the load average).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

# Run as a script from anywhere: the repository root must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.learn.presets import PRESETS
from model_training.learn.simclr import build_method
from model_training.learn.train import fit

PAPER_VIEWS_PER_GPU = 100_000 * 100 * 2 / (1.8 * 3600 * 3)


def measure(name: str, device: torch.device, batch: int, steps: int, compile_: bool) -> dict:
    """Train two epochs of ``steps`` batches on random cut-outs; time the second."""
    config = PRESETS[name].replace(batch_size=batch, epochs=2, warmup_epochs=1, compile=compile_)
    cutouts = torch.randn(batch * steps, 64, 64)
    torch.manual_seed(0)
    method = build_method(config)
    cpu_clock = [time.process_time()]
    history = fit(
        method,
        cutouts,
        config,
        device=device,
        progress=False,
        on_epoch_end=lambda _: cpu_clock.append(time.process_time()),
    )
    views = 2 * batch * steps
    return {
        "preset": name + (" +compile" if compile_ else ""),
        "batch": batch,
        "views_per_s": history[-1].views_per_second,
        # What the process would get with its threads alone on the cores.
        "cpu_views_per_s": views / (cpu_clock[-1] - cpu_clock[-2]) * torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--paper-batch", type=int, default=None, help="batch of the paper preset")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per preset")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    paper_batch = args.paper_batch or (256 if on_gpu else 32)
    steps = args.steps or (30 if on_gpu else 3)
    runs = [("paper", paper_batch, False), ("cpu", PRESETS["cpu"].batch_size, False)]
    if args.compile and on_gpu:
        runs.insert(1, ("paper", paper_batch, True))
    what = torch.cuda.get_device_name(device) if on_gpu else f"{os.cpu_count()} CPU cores"
    load = os.getloadavg()[0]
    print(f"training throughput on {what} (load average {load:.1f} at start)")
    print(
        f"{'preset':16} {'batch':>6} {'views/s':>9} {'(CPU time)':>10} {'paper/GPU':>10} "
        f"{'ratio':>7}"
    )
    for name, batch, compile_ in runs:
        result = measure(name, device, batch, steps, compile_)
        ratio = result["views_per_s"] / PAPER_VIEWS_PER_GPU
        print(
            f"{result['preset']:16} {batch:6d} {result['views_per_s']:9.1f} "
            f"{result['cpu_views_per_s']:10.1f} {PAPER_VIEWS_PER_GPU:10.0f} {ratio:7.3f}",
            flush=True,
        )
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
