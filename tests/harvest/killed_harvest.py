"""``vosim harvest`` that kills itself with SIGKILL inside the commit of its n-th product.

Run as ``python -m tests.harvest.killed_harvest N ARGS…`` (ARGS as for
``vosim harvest``): products 1 … N-1 commit; the N-th is killed after its
cut-out is on disk and its rows and bookkeeping row are written, before
the transaction commits. That is the worst moment for a restart, reached
every time, where a kill from outside lands wherever the clock says.
"""

from __future__ import annotations

import os
import signal
import sys

from model_training.harvest import stage
from vo_service.cli.command import main


def kill_in_commit(n: int) -> None:
    """Make the harvest's n-th commit kill the process before it commits."""
    real = stage.write_batch
    commits = 0

    def write_batch(batch, previous, products, store, also=None):
        nonlocal commits
        commits += 1
        if commits < n:
            return real(batch, previous, products, store, also=also)

        def then_die(conn) -> None:
            if also is not None:
                also(conn)
            os.kill(os.getpid(), signal.SIGKILL)

        return real(batch, previous, products, store, also=then_die)

    stage.write_batch = write_batch


if __name__ == "__main__":
    kill_in_commit(int(sys.argv[1]))
    raise SystemExit(main(["harvest", *sys.argv[2:]]))
