"""Connecting the stages to a Dask cluster: ``--cluster local[:N]`` or ``tcp://scheduler:8786``.

Dask (``dask``, ``distributed``; the optional dependency group ``cluster``)
is imported only here and only when a cluster is asked for, so the demo and
the default install run without it.

* ``local`` or ``local:N`` starts a `distributed.LocalCluster` of N worker
  processes (default: one per core), one thread each, for the length of the
  stage.
* ``tcp://host:port`` (or ``tls://``) connects to a scheduler the operator
  runs (``dask scheduler`` and ``dask worker``, Dask's Kubernetes operator,
  dask-jobqueue on a batch system; see the README).

Worker threads: each worker runs one task at a time with one BLAS/OpenMP
thread, set through the environment of the worker processes as they are
spawned. The nanny sets those variables in *this* process's environment to
spawn its worker (and again when it restarts a lost one); the parent's
environment is put back after the start and when the cluster closes, so
that the driver and what it starts later keep their own thread settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

__all__ = [
    "WORKER_ENVIRONMENT",
    "ClusterNotAvailableError",
    "client_for",
    "connect",
    "parse_address",
    "require",
]

WORKER_ENVIRONMENT = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
"""Environment of local worker processes: one thread each."""


class ClusterNotAvailableError(ValueError):
    """A cluster was asked for but Dask is not installed, or the address is not understood."""


def parse_address(address: str) -> tuple[str, int | None]:
    """Split a ``--cluster`` value into ``("local", workers)`` or ``(scheduler address, None)``.

    Raises
    ------
    ClusterNotAvailableError
        For anything else, with the forms that are understood.
    """
    if address == "local":
        return "local", None
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if count.isdigit() and int(count) > 0:
            return "local", int(count)
    elif address.split("://", 1)[0] in ("tcp", "tls", "ucx", "inproc") and "://" in address:
        return address, None
    raise ClusterNotAvailableError(
        f"--cluster {address!r}: expected local, local:N (N worker processes on this machine)"
        " or a scheduler address such as tcp://scheduler:8786"
    )


def require(address: str) -> tuple[str, int | None]:
    """Check, before any work, that ``address`` is understood and Dask is installed.

    Returns what `parse_address` returns.
    """
    where = parse_address(address)
    try:
        import distributed  # noqa: F401
    except ImportError as error:
        raise ClusterNotAvailableError(
            "--cluster needs Dask: pip install 'vosim[cluster]' (dask and distributed)"
        ) from error
    return where


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """Yield a `distributed.Client` for ``address``, closing what was started here afterwards."""
    where, workers = require(address)
    from distributed import Client

    if where != "local":
        with Client(where) as client:
            yield client
        return
    with _parent_environment_kept():
        cluster = _start_local_cluster(workers)
    try:
        with _parent_environment_kept(), Client(cluster) as client:
            yield client
    finally:
        with _parent_environment_kept():
            cluster.close()


def _start_local_cluster(workers: int | None) -> Any:
    import dask
    from distributed import LocalCluster

    os.environ.update(WORKER_ENVIRONMENT)
    # Not Dask's MALLOC_TRIM_THRESHOLD_: set at all, it turns off glibc's
    # adaptive mmap threshold, and every temporary array of the search is
    # then a fresh mapping with its page faults (slower by about 2 here).
    environment = {**WORKER_ENVIRONMENT, "MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environment}):
        return LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: several clusters may run here
            # A lost worker is a lost process: the nanny starts a new one and
            # the scheduler runs its tasks again elsewhere.
            silence_logs=logging.ERROR,
        )


@contextlib.contextmanager
def _parent_environment_kept() -> Iterator[None]:
    """Put this process's environment back as it was, whatever the nanny set in between."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)


@contextlib.contextmanager
def client_for(cluster: Any) -> Iterator[Any]:
    """Yield what a stage runs on: None, a caller's `distributed.Client`, or one `connect` opens."""
    if cluster is None or not isinstance(cluster, str):
        yield cluster
        return
    with connect(cluster) as client:
        yield client
