"""All-pairs exact top-k on a Dask LocalCluster of 1 and 2 workers, against one process.

For each size N x d, random unit vectors (as `neighbours.py`); the lists are
found

* in this process (`all_pairs_top_k`), ``one:T`` with T BLAS threads;
* by `cluster_all_pairs_top_k` on a `LocalCluster` of ``local:N`` worker
  processes of one thread each (`model_training.cluster.connect`), the
  cluster's start not counted, the scattering of the vectors counted;

and every run's lists are compared byte for byte with those of ``one:1``
(the ``same`` column; the digest lets runs of separate invocations be
compared): workers run one BLAS thread each, and OpenBLAS's multi-threaded
products differ from its single-threaded ones in the last bit. Times are
relative to the first ``one:`` run. On the 2 shared cores of the development
machine no speed-up is to be expected: the figure is the tasks' overhead.

    python benchmarks/neighbours_cluster.py --sizes 50000x128
    python benchmarks/neighbours_cluster.py --sizes 50000x2048 \
        --runs one:1,local:1,local:2
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.cluster import connect
from model_training.neighbours.cluster_search import cluster_all_pairs_top_k
from model_training.neighbours.exact_top_k import VectorSpace, all_pairs_top_k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000x128,50000x2048")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument(
        "--runs",
        default="one:2,one:1,local:1,local:2",
        help="comma-separated: one:T (this process, T threads) and/or cluster addresses",
    )
    args = parser.parse_args()
    print(f"load average before: {_load()}; torch {torch.__version__}")
    header = (
        f"{'N':>7} {'d':>5} {'run':>12} {'s':>8} {'vs one':>7} {'same':>5} {'digest':>18}"
        f" {'load':>15}"
    )
    print(header, flush=True)
    for size in args.sizes.split(","):
        n, d = (int(part) for part in size.lower().split("x"))
        space = random_space(n, d)
        reference = first = None
        for run in (name.strip() for name in args.runs.split(",")):
            load = _load()
            values, keys, seconds = search(space, args.k, args.block_size, run)
            digest = hashlib.blake2b(values.tobytes() + keys.tobytes(), digest_size=8).hexdigest()
            if first is None and run.startswith("one:"):
                first = seconds
            if reference is None and run == "one:1":
                reference = (values.copy(), keys.copy())
            same = "-" if reference is None else "yes" if _same(reference, values, keys) else "NO"
            ratio = "-" if first is None else f"{seconds / first:.2f}"
            print(
                f"{n:>7} {d:>5} {run:>12} {seconds:>8.1f} {ratio:>7} {same:>5} {digest:>18}"
                f" {load:>15}",
                flush=True,
            )
            del values, keys
    print(f"load average after: {_load()}")


def random_space(n: int, d: int) -> VectorSpace:
    rng = np.random.default_rng(n + d)
    vectors = rng.standard_normal((n, d), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return VectorSpace(
        torch.from_numpy(vectors),
        torch.zeros(n, dtype=torch.long),
        torch.arange(n, dtype=torch.int32),
        torch.ones((1, 1), dtype=torch.bool),
    )


def search(
    space: VectorSpace, k: int, block_size: int, run: str
) -> tuple[np.ndarray, np.ndarray, float]:
    n = len(space)
    values = np.empty((n, k), dtype=np.float32)
    keys = np.empty((n, k), dtype=np.int32)
    if run.startswith("one:"):
        threads = torch.get_num_threads()
        torch.set_num_threads(int(run.removeprefix("one:")))
        try:
            with threadpool_limits(int(run.removeprefix("one:"))):
                start = time.perf_counter()
                for rows, block_values, block_keys in all_pairs_top_k(space, k, block_size):
                    values[rows], keys[rows] = block_values, block_keys
                return values, keys, time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)
    with connect(run) as client:
        start = time.perf_counter()
        for rows, block_values, block_keys in cluster_all_pairs_top_k(client, space, k, block_size):
            values[rows], keys[rows] = block_values, block_keys
        return values, keys, time.perf_counter() - start


def _same(baseline, values: np.ndarray, keys: np.ndarray) -> bool:
    return baseline[0].tobytes() == values.tobytes() and baseline[1].tobytes() == keys.tobytes()


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
