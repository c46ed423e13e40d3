"""Dask is optional: the stages, the CLI and the demo's imports run without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WITHOUT_DASK = """
import sys
for name in ("dask", "distributed"):
    sys.modules[name] = None  # import dask now raises ImportError
"""


def run_without_dask(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_DASK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stages_import_and_search_without_dask():
    done = run_without_dask(
        """
        import numpy as np, torch
        import vo_service.cli.command, vo_service.cli.demo
        import model_training.learn.embed, model_training.neighbours.stage
        from model_training.neighbours.exact_top_k import VectorSpace, all_pairs_top_k
        vectors = torch.nn.functional.normalize(torch.randn(50, 4), dim=1)
        space = VectorSpace(vectors, torch.zeros(50, dtype=torch.long),
                            torch.arange(50, dtype=torch.int32), torch.ones(1, 1, dtype=torch.bool))
        assert sum(len(rows.indices(50)) and 1 for rows, *_ in all_pairs_top_k(space, 5)) == 1
        assert "dask" not in {m.split(".")[0] for m in sys.modules if sys.modules[m]}
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_cluster_without_dask_says_what_to_install(tmp_path):
    done = run_without_dask(
        f"""
        import os
        os.environ["VOSIM_DATA_DIR"] = {str(tmp_path)!r}
        from vo_service.cli.command import main
        sys.exit(main(["neighbours", "--cluster", "local:2"]))
        """
    )
    assert done.returncode == 2
    assert "pip install 'vosim[cluster]'" in done.stderr
