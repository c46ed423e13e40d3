"""The objects of a UWS job (UWS 1.1, section 2.1) as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "ACTIVE_PHASES",
    "ExecutionPhase",
    "Job",
    "JobError",
    "JobFailedError",
    "JobParameter",
    "JobResult",
]


class ExecutionPhase(StrEnum):
    """The phases of a job (UWS 1.1, section 2.1.3)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


ACTIVE_PHASES = frozenset({ExecutionPhase.PENDING, ExecutionPhase.QUEUED, ExecutionPhase.EXECUTING})
"""Phases in which a blocking GET may wait for a change (UWS 1.1, section 2.2.1.2)."""


@dataclass(frozen=True)
class JobParameter:
    """One parameter of a job (UWS 1.1, section 2.1.11)."""

    name: str
    """Upper-case name: DALI parameter names are case-insensitive."""
    value: str
    by_reference: bool = False
    """True for inline content saved with the job; ``value`` is then its file name."""


@dataclass(frozen=True)
class JobResult:
    """One result of a job (UWS 1.1, section 2.1.10), stored as a file in the job's folder."""

    result_id: str
    file_name: str
    mime_type: str
    size: int


@dataclass(frozen=True)
class JobError:
    """Why a job is in phase ERROR (UWS 1.1, section 2.1.7)."""

    message: str
    type: str = "fatal"
    """``transient`` (running it again may work) or ``fatal``."""


@dataclass(frozen=True)
class Job:
    """Everything a job document shows (UWS 1.1, section 2.2.2.2)."""

    job_id: str
    phase: ExecutionPhase
    creation_time: datetime
    execution_duration: int
    destruction_time: datetime
    run_id: str | None = None
    owner_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    quote: datetime | None = None
    error: JobError | None = None
    parameters: tuple[JobParameter, ...] = ()
    results: tuple[JobResult, ...] = field(default=())
    base_url: str | None = None
    """Public base URL of the service for the job's creator: its results' URLs start with it."""


class JobFailedError(Exception):
    """Raised by a job's work function when the job must end in phase ERROR.

    Parameters
    ----------
    error
        The summary shown to the client.
    """

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error
