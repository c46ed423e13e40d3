"""The limits a TAP service announces in TAPRegExt and enforces on every query.

TAPRegExt 1.0 (section 2.3) lets a service declare a default and a hard
value for each resource a query may use: rows returned (``outputLimit``),
bytes uploaded (``uploadLimit``), run time (``executionDuration``) and how
long async results are kept (``retentionPeriod``). One object holds them, so
that the capabilities document and the code that enforces them can never
disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from tap_schema.config import environment_overrides

__all__ = ["TapLimits"]


@dataclass(frozen=True)
class TapLimits:
    """Resource limits of the TAP service.

    Parameters
    ----------
    default_maxrec
        Rows returned when the request has no MAXREC (TAPRegExt
        ``outputLimit/default``).
    hard_maxrec
        Rows never exceeded, whatever MAXREC asks for (``outputLimit/hard``);
        a larger MAXREC is silently lowered to it (DALI 1.1, section 3.2.3).
    sync_duration_s
        Statement timeout of a synchronous query, in seconds.
    default_duration_s, hard_duration_s
        Execution duration of an async job, in seconds: initial value, and the
        most a client may ask for (``executionDuration``).
    default_retention_s, hard_retention_s
        Time from creation of an async job to its destruction, in seconds
        (``retentionPeriod``).
    upload_limit_bytes
        Largest TAP_UPLOAD table accepted, in bytes (``uploadLimit/hard``).
    max_uploads
        Largest number of tables in one request.
    upload_url_private
        Whether a TAP_UPLOAD URL may reach loopback and private addresses
        (off: the service would otherwise fetch its own network for anyone).
    async_workers
        Async jobs executed at the same time; more wait in QUEUED.
    max_wait_s
        Longest time a UWS ``WAIT`` request blocks (UWS 1.1, section 2.2.1.2
        lets the server return earlier than asked).
    job_list
        Whether ``GET /tap/async`` lists the jobs. Jobs have no owner
        (no authentication), so the list shows everyone's; off, a job is
        reached only through the URL its creator was given (128 random
        bits).
    sync_light_slots, sync_light_per_client
        Light sync queries (one table read once) running at once, in total
        and for one client (`vo_service.tap.admission`).
    sync_heavy_slots, sync_heavy_per_client
        The same for heavy ones (joins, subqueries, similarity functions).
    sync_heavy_trial_s
        How long a heavy sync query is first tried (`vo_service.tap.sync`): one
        answered within it never waits behind slow queries; 0: no try.
    sync_trial_slots
        Tries running at once, one per client; a heavy query finding none free
        waits for one in the trial lane's queue (each try ends within
        ``sync_heavy_trial_s``), not in the heavy lane's.
    sync_queue_size
        Sync queries waiting for a slot at most; more are answered 503.
    sync_queue_wait_s
        Longest wait for a slot, in seconds; then 503.
    sync_retry_after_s
        The ``Retry-After`` of a 503, in seconds.
    """

    default_maxrec: int = 10_000
    hard_maxrec: int = 1_000_000
    sync_duration_s: float = 60.0
    default_duration_s: int = 600
    hard_duration_s: int = 3_600
    default_retention_s: int = 7 * 86_400
    hard_retention_s: int = 30 * 86_400
    upload_limit_bytes: int = 20_000_000
    max_uploads: int = 8
    upload_url_private: bool = False
    async_workers: int = 2
    max_wait_s: float = 60.0
    job_list: bool = True
    sync_light_slots: int = 4
    sync_light_per_client: int = 2
    sync_heavy_slots: int = 1
    sync_heavy_per_client: int = 1
    sync_heavy_trial_s: float = 1.0
    sync_trial_slots: int = 2
    sync_queue_size: int = 64
    sync_queue_wait_s: float = 20.0
    sync_retry_after_s: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TapLimits:
        """Read overrides from ``VOSIM_TAP_<FIELD>`` variables (e.g. ``VOSIM_TAP_HARD_MAXREC``)."""
        return replace(cls(), **environment_overrides(cls, "VOSIM_TAP_", environ))

    def with_changes(self, **changes: object) -> TapLimits:
        """Return a copy with some limits replaced (tests use small limits)."""
        return replace(self, **changes)
