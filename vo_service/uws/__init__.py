"""Universal Worker Service 1.1: asynchronous jobs, as DALI-async endpoints use them.

Layered as in Rubin's vo-cutouts: `handlers` parse HTTP requests and pick
responses, `service` holds the rules of the job life cycle and knows nothing
of HTTP, `storage` is the only module that talks to the database, and
`models` are the plain values passed between them. What a job actually does
is given to the service as a function (for TAP: `vo_service.tap.jobs`).
"""

from .models import ACTIVE_PHASES, ExecutionPhase, Job, JobError, JobParameter, JobResult
from .service import InvalidPhaseError, JobService, UnknownJobError
from .storage import JobStore

__all__ = [
    "ACTIVE_PHASES",
    "ExecutionPhase",
    "InvalidPhaseError",
    "Job",
    "JobError",
    "JobParameter",
    "JobResult",
    "JobService",
    "JobStore",
    "UnknownJobError",
]
