"""The operator's rule for the release date of an image whose metadata gives none.

ObsCore's ``obs_release_date`` decides what is public (`tap_schema.release`).
An archive's metadata file gives it per file; for the files it does not
cover, ``vosim ingest --release-default`` chooses one of three rules:

- `RELEASE_AFTER_PERIOD` (the default): the observation date plus
  `PROPRIETARY_MONTHS`, ALMA's standard proprietary period, so that data
  are never published earlier than the archive would; an image without an
  observation date stays proprietary;
- `RELEASE_PROPRIETARY`: proprietary until the metadata gives a date;
- `RELEASE_PUBLIC`: public from the observation date, or from the ingest
  when the header has none (archival plates, survey cut-outs).

This module imports nothing heavy (no astropy), so that the command line can
offer the choices without loading it.
"""

from __future__ import annotations

from datetime import datetime

from tap_schema.release import utc_now

__all__ = [
    "PROPRIETARY_MONTHS",
    "RELEASE_AFTER_PERIOD",
    "RELEASE_DEFAULTS",
    "RELEASE_PROPRIETARY",
    "RELEASE_PUBLIC",
    "default_release_date",
    "release_by_rule",
]

PROPRIETARY_MONTHS = 12
"""ALMA's standard proprietary period, the default time from observation to release."""

RELEASE_AFTER_PERIOD = "obs+12mo"
"""Release rule: observation date plus `PROPRIETARY_MONTHS`; proprietary without one."""

RELEASE_PROPRIETARY = "proprietary"
"""Release rule: proprietary until the metadata gives a release date."""

RELEASE_PUBLIC = "public"
"""Release rule: public from the observation date (from the ingest without one)."""

RELEASE_DEFAULTS = (RELEASE_AFTER_PERIOD, RELEASE_PROPRIETARY, RELEASE_PUBLIC)
"""The rules, as ``--release-default`` spells them."""


def default_release_date(observed: datetime) -> datetime:
    """Add ALMA's 12-month proprietary period to an observation date (29 Feb → 28 Feb)."""
    years, months = divmod(observed.month - 1 + PROPRIETARY_MONTHS, 12)
    year, month = observed.year + years, months + 1
    day = observed.day
    while True:
        try:
            return observed.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


def release_by_rule(observed: datetime | None, rule: str) -> datetime | None:
    """Return the release date (naive UTC) a rule gives an image, None for proprietary.

    Raises
    ------
    ValueError
        If ``rule`` is not one of `RELEASE_DEFAULTS`.
    """
    if rule not in RELEASE_DEFAULTS:
        raise ValueError(f"release default {rule!r} is not one of {', '.join(RELEASE_DEFAULTS)}")
    if rule == RELEASE_PUBLIC:
        return observed or utc_now().replace(microsecond=0)
    if rule == RELEASE_AFTER_PERIOD and observed is not None:
        return default_release_date(observed)
    return None
