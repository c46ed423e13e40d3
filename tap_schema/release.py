"""What is public at an instant: the one definition of the proprietary rule, and of "now".

The proprietary rule: nothing of an image whose release date is in the future is
served, through any endpoint; a release date that is unknown (NULL) keeps
the image private too. The rule is "the release date is not NULL and is at
or before now", where both sides are instants as the catalogue stores them:
naive datetimes in UTC (``obs_release_date`` is an ObsCore ``timestamp``).

Every floor applies the rule in the form it works in, and every form is
here, side by side, so that they cannot drift apart (``tests/test_release.py``
checks them against each other):

- `is_released`: one release date in Python;
- `released`: an SQLAlchemy condition on a release-date column;
- `released_sql`: the same condition as SQL text, for code that writes SQL
  itself (the ADQL translation), and `unreleased_sql` its negation;
- `release_array` and `released_mask`: many release dates at once, in numpy.

Release dates are compared with the instant of each request or run, never
cached past the next release: an image becomes public while the service runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "RELEASE_DATE",
    "is_released",
    "naive_utc",
    "release_array",
    "released",
    "released_mask",
    "released_sql",
    "unreleased_sql",
    "utc_now",
]

RELEASE_DATE = "obs_release_date"
"""The ObsCore column that holds an image's release date (``ivoa.obscore``)."""

_UNKNOWN = np.datetime64("NaT", "us")


def utc_now() -> datetime:
    """Return the current instant as the catalogue stores instants: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """Return an instant as naive UTC: an aware one converted, a naive one as it is."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def is_released(release_date: datetime | None, now: datetime) -> bool:
    """Tell whether an image with this release date is public at ``now`` (both naive UTC)."""
    return release_date is not None and release_date <= now


def released(
    release_date: ColumnElement[datetime], now: datetime | ColumnElement[datetime]
) -> ColumnElement[bool]:
    """Return the SQLAlchemy condition "``release_date`` is not NULL and at or before ``now``"."""
    return sa.and_(release_date.is_not(None), release_date <= now)


def released_sql(release_date: str, now: str) -> str:
    """Return the same condition as SQL text, from the SQL of the column and of the instant.

    Parameters
    ----------
    release_date
        SQL of the release-date column, quoted as needed (``"r"."obs_release_date"``).
    now
        SQL of the instant, typically a bind parameter (``:now``). Bind it as
        the column stores instants (`sqlalchemy.DateTime`): SQLite compares
        the stored text, so ``12:00:00`` would come before ``12:00:00.000000``.
    """
    return f"({release_date} IS NOT NULL AND {release_date} <= {now})"


def unreleased_sql(release_date: str, now: str) -> str:
    """Return the negation of `released_sql`, in the form an index on the column serves.

    "NULL or later than now": the few images not public are found through
    the release-date index, where ``NOT (…)`` of `released_sql` reads every row.
    """
    return f"({release_date} IS NULL OR {release_date} > {now})"


def release_array(release_dates: Iterable[datetime | None]) -> np.ndarray:
    """Return release dates as ``datetime64[us]``, an unknown one as NaT, for `released_mask`."""
    return np.array(
        [_UNKNOWN if date is None else np.datetime64(date, "us") for date in release_dates],
        dtype="datetime64[us]",
    )


def released_mask(release_dates: np.ndarray, now: datetime | np.datetime64) -> np.ndarray:
    """Return which of the dates of `release_array` are released at ``now`` (NaT never is)."""
    return release_dates <= np.datetime64(now, "us")
