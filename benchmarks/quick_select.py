"""Quick select per request: vosim's k-means(5) of a 1000-image list against scikit-learn's default.

For d = 128 and 2048, a list of 1000 unit vectors (five noisy clusters, as
the neighbours of one image form them, and pure noise) is clustered by

* `model_training.neighbours.quick_select.quick_select` (float32 k-means++ seeding,
  scikit-learn Lloyd, ``n_init=1``), whole call including representatives
  and preselections;
* scikit-learn ``KMeans(5, random_state=0)`` with its defaults (the
  reference: 7.5 ms at d = 128, 33 ms at d = 2048);

median milliseconds over ``--repeat`` calls, and the adjusted Rand index
between the two clusterings (1.0: the same five groups).

    python benchmarks/quick_select.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_training.neighbours.quick_select import quick_select


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print(f"{'d':>5} {'data':<9} {'vosim ms':>9} {'sklearn ms':>10} {'ARI':>6}")
    for d in (128, 2048):
        for kind in ("clusters", "noise"):
            vectors = make_list(d, kind, np.random.default_rng(d))
            ours = median_ms(lambda v=vectors: quick_select(v), args.repeat)
            theirs = median_ms(lambda v=vectors: KMeans(5, random_state=0).fit(v), args.repeat)
            ari = adjusted_rand_score(
                KMeans(5, random_state=0).fit_predict(vectors), quick_select(vectors).labels
            )
            print(f"{d:>5} {kind:<9} {ours:>9.1f} {theirs:>10.1f} {ari:>6.3f}")
    print(f"load average after: {os.getloadavg()}")


def make_list(d: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "clusters":
        centres = rng.standard_normal((5, d))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        vectors = centres[rng.integers(0, 5, 1000)] + 0.6 * rng.standard_normal(
            (1000, d)
        ) / np.sqrt(d)
    else:
        vectors = rng.standard_normal((1000, d))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def median_ms(call, repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


if __name__ == "__main__":
    main()
