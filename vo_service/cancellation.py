"""Stopping work that runs in another thread: a UWS abort reaching a running query."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["CancelToken"]


class CancelToken:
    """Lets one thread stop work running in another (UWS ``PHASE=ABORT``, job deletion).

    The worker registers how to interrupt what it is blocked in (a database
    connection's ``interrupt``/``cancel_safe``); `cancel` calls it from
    whichever thread handles the abort, and the worker also polls
    `cancelled` between steps.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._interrupts: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Stop the work now, or before it starts."""
        self._event.set()
        with self._lock:
            interrupts = list(self._interrupts)
        for interrupt in interrupts:
            interrupt()

    @contextmanager
    def interrupting(self, interrupt: Callable[[], object]) -> Iterator[None]:
        """Have `cancel` call ``interrupt`` while the block runs."""
        with self._lock:
            self._interrupts.append(interrupt)
        try:
            if self.cancelled:
                interrupt()
            yield
        finally:
            with self._lock:
                self._interrupts.remove(interrupt)
