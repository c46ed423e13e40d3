"""Prepare products in worker processes, in order, and survive a worker that dies.

Reading FITS, cutting out and writing previews is CPU work that parallelises
perfectly; the catalogue writes stay in the parent. Results come back in
the order of the files, so cut-out rows follow the sorted file list, and
only a few chunks are in flight at a time, so memory stays bounded however
many files there are while the pool reads ahead of the parent's commits.

A worker can die where Python cannot catch it: the kernel kills it for
memory on a huge cube, or a library crashes. Then the files of the chunk
are read again one at a time in a fresh pool, and only a file that kills
its worker again fails, with a line saying so; an ingest of 100,000 files
does not stop at one of them.

Workers die with the parent (Linux ``PR_SET_PDEATHSIG``): an ingest killed
with ``kill -9`` leaves no worker behind holding its lock or its CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice

from .prepare import (
    PreparedProduct,
    ProductFailure,
    ProductTask,
    prepare_product,
    prepare_products,
)

__all__ = ["WORKER_DIED", "cpu_count", "prepare_in_order"]

MAX_CHUNK_SIZE = 8
"""Most files per round trip to a worker process."""

WORKER_DIED = (
    "the process reading it was killed (most likely out of memory: the file needs more"
    " RAM than is free); ingest it on a machine with more memory, or with fewer workers"
)

Result = PreparedProduct | ProductFailure
_PR_SET_PDEATHSIG = 1


def prepare_in_order(tasks: Iterable[ProductTask], workers: int | None = None) -> Iterator[Result]:
    """Prepare files in a process pool, yielding one result per task in the order of ``tasks``.

    Parameters
    ----------
    tasks
        The files to read: a list (chunked to amortise round trips), or any
        other iterable, taken one file at a time as the pool has room (a
        harvest's downloads, which arrive while earlier files are read).
    workers
        Number of processes; default `cpu_count`. With 1, or with a single
        chunk of work, everything runs in this process.
    """
    workers = workers or cpu_count()
    if isinstance(tasks, list):
        # Chunks amortise the round trip to a process; with few files, smaller
        # chunks keep every worker busy.
        size = max(1, min(MAX_CHUNK_SIZE, len(tasks) // (4 * workers)))
        listed = [tasks[i : i + size] for i in range(0, len(tasks), size)]
        if workers <= 1 or len(listed) <= 1:
            for chunk in listed:
                yield from prepare_products(chunk)
            return
        chunks: Iterator[list[ProductTask]] = iter(listed)
        workers = min(workers, len(listed))
    elif workers <= 1:
        yield from (prepare_product(task) for task in tasks)
        return
    else:
        chunks = ([task] for task in tasks)
    pool = _Pool(workers)
    try:
        pending = deque((chunk, pool.submit(chunk)) for chunk in islice(chunks, 3 * workers))
        while pending:
            chunk, future = pending.popleft()
            try:
                results = future.result()
            except BrokenProcessPool:
                results = _one_at_a_time(pool, chunk)
                pending = deque(
                    (waiting, done if _succeeded(done) else pool.submit(waiting))
                    for waiting, done in pending
                )
            following = next(chunks, None)
            if following is not None:
                pending.append((following, pool.submit(following)))
            yield from results
    finally:
        pool.close()


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _one_at_a_time(pool: _Pool, chunk: list[ProductTask]) -> list[Result]:
    """Re-read the files of a chunk whose worker died, each alone in a fresh pool."""
    pool.restart()
    results: list[Result] = []
    for task in chunk:
        try:
            results.extend(pool.submit([task]).result())
        except BrokenProcessPool:
            pool.restart()
            results.append(ProductFailure(task, WORKER_DIED))
    return results


def _die_with_parent(parent: int) -> None:
    """Worker initializer: be killed when the parent process dies, however it dies."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's shutdown still ends workers
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _succeeded(future: Future[list[Result]]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


class _Pool:
    """A process pool that can be replaced when one of its workers dies."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = self._executor()

    def submit(self, chunk: list[ProductTask]) -> Future[list[Result]]:
        """Queue a chunk; on a pool already broken, a future that fails the same way.

        A worker can die between two submissions, before the parent has seen
        the failed future; the chunk then takes the same path as the chunks
        that were in flight, instead of ending the ingest.
        """
        try:
            return self.executor.submit(prepare_products, chunk)
        except BrokenProcessPool as error:
            failed: Future[list[Result]] = Future()
            failed.set_exception(error)
            return failed

    def restart(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._executor()

    def _executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, initializer=_die_with_parent, initargs=(os.getpid(),)
        )

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
