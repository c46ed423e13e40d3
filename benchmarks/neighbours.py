"""All-pairs exact top-1000: vosim's search against faiss and scikit-learn, in the same run.

For each size N x d, random unit vectors; every vector's k most similar
other vectors are found by

* vosim (`model_training.neighbours.exact_top_k.all_pairs_top_k`, on ``--device``),
* faiss ``IndexFlatIP`` (exact inner product; asked for k + 1, itself dropped),
* scikit-learn ``NearestNeighbors(algorithm="brute", metric="cosine")``,

and the neighbour sets are compared (mean fraction of each list found by
both; 1.0 unless exact ties straddle the k-th place). With ``--device cuda``
only vosim runs on the GPU; the references stay on the CPU, so large sizes
are checked against a CPU brute force of ``--check`` sampled rows instead
(``--no-faiss --no-sklearn``).

Run on a quiet machine (each row shows the 1-minute load average when it
started; ``--repeat`` alternates vosim and faiss and keeps the best times)::

    python benchmarks/neighbours.py                      # 20k and 50k at d = 2048 and 128
    python benchmarks/neighbours.py --sizes 5000x128     # a quick look
    python benchmarks/neighbours.py --device cuda --sizes 260000x2048 --no-faiss --no-sklearn
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.neighbours.exact_top_k import VectorSpace, all_pairs_top_k

PAPER_N = 260_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000x2048,20000x128,50000x2048,50000x128")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every library")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--check", type=int, default=200, help="rows checked by brute force")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="alternate vosim and faiss this many times and keep each one's best time "
        "(on a shared machine the load changes between runs)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"load average before: {os.getloadavg()}; torch {torch.__version__}, device {device}")
    header = (
        f"{'N':>7} {'d':>5} {'vosim s':>8} {'faiss s':>8} {'sklearn s':>9} "
        f"{'vs faiss':>8} {'agree faiss':>11} {'agree sklearn':>13} {'agree brute':>11} "
        f"{'260k est.':>10} {'load':>5}"
    )
    lines = [header]
    print(header, flush=True)
    for size in args.sizes.split(","):
        n, d = (int(part) for part in size.lower().split("x"))
        line = run_size(n, d, args, device)
        lines.append(line)
        print(line, flush=True)
    print(f"load average after: {os.getloadavg()}")


def run_size(n: int, d: int, args: argparse.Namespace, device: torch.device) -> str:
    rng = np.random.default_rng(n + d)
    vectors = rng.standard_normal((n, d), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    k = args.k
    load = os.getloadavg()[0]
    ours_s = faiss_s = sklearn_s = None
    agree_faiss = agree_sklearn = None
    for _ in range(args.repeat):
        ours, seconds = vosim_search(vectors, k, device, args.block_size)
        ours_s = min(ours_s or seconds, seconds)
        if not args.no_faiss:
            found, seconds = faiss_search(vectors, k, args.threads)
            faiss_s = min(faiss_s or seconds, seconds)
            agree_faiss = agreement(ours, found)
            del found
    if not args.no_sklearn:
        found, sklearn_s = sklearn_search(vectors, k, args.threads)
        agree_sklearn = agreement(ours, found)
    agree_brute = brute_force_agreement(vectors, ours, k, args.check, rng)
    ratio = f"{ours_s / faiss_s:.2f}" if faiss_s else "-"
    estimate = ours_s * (PAPER_N / n) ** 2
    return (
        f"{n:>7} {d:>5} {ours_s:>8.1f} {_num(faiss_s, 8)} {_num(sklearn_s, 9)} {ratio:>8} "
        f"{_num(agree_faiss, 11, 4)} {_num(agree_sklearn, 13, 4)} {agree_brute:>11.4f} "
        f"{estimate / 60:>8.1f} m {load:>5.1f}"
    )


def vosim_search(
    vectors: np.ndarray, k: int, device: torch.device, block_size: int | None
) -> tuple[np.ndarray, float]:
    n = len(vectors)
    space = VectorSpace(
        torch.from_numpy(vectors).to(device),
        torch.zeros(n, dtype=torch.long),
        torch.arange(n, dtype=torch.int32, device=device),
        torch.ones((1, 1), dtype=torch.bool),
    )
    found = np.empty((n, k), dtype=np.int32)
    _synchronize(device)
    start = time.perf_counter()
    for rows, _values, keys in all_pairs_top_k(space, k, block_size):
        found[rows] = keys
    _synchronize(device)
    return found, time.perf_counter() - start


def faiss_search(vectors: np.ndarray, k: int, threads: int) -> tuple[np.ndarray, float]:
    import faiss

    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, found = index.search(vectors, k + 1)
    return _drop_self(found, k), time.perf_counter() - start


def sklearn_search(vectors: np.ndarray, k: int, threads: int) -> tuple[np.ndarray, float]:
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    with threadpool_limits(threads):
        model = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="cosine")
        model.set_params(n_jobs=threads)
        model.fit(vectors)
        _, found = model.kneighbors(vectors)
    return _drop_self(found, k), time.perf_counter() - start


def _drop_self(found: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index (or, if it is missing, the last neighbour)."""
    rows = np.arange(len(found))[:, None]
    is_self = found == rows
    is_self[~is_self.any(1), -1] = True
    return found[~is_self].reshape(len(found), k)


def agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Mean fraction of a list that both searches found."""
    together = 0
    for start in range(0, len(ours), 4096):
        a, b = ours[start : start + 4096], theirs[start : start + 4096]
        both = np.sort(np.concatenate([a, b], 1), axis=1)
        together += int((both[:, 1:] == both[:, :-1]).sum())
    return together / ours.size


def brute_force_agreement(
    vectors: np.ndarray, ours: np.ndarray, k: int, rows: int, rng: np.random.Generator
) -> float:
    """Agreement with a float64 brute force on some sampled rows."""
    sample = rng.choice(len(vectors), size=min(rows, len(vectors)), replace=False)
    scores = vectors[sample].astype(np.float64) @ vectors.T.astype(np.float64)
    scores[np.arange(sample.size), sample] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int32)
    return agreement(ours[sample], expected)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _num(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


if __name__ == "__main__":
    main()
