"""The proprietary rule, in each of its forms: released means a release date at or before now.

`tap_schema.release` writes the rule once per form (Python, SQLAlchemy, SQL
text, numpy); these tests hold every form to the same answers, on both
backends, for the dates that matter: unknown, long past, this very instant,
a microsecond later, far future.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tap_schema import Settings, open_catalogue
from tap_schema.release import (
    is_released,
    naive_utc,
    release_array,
    released,
    released_mask,
    released_sql,
    unreleased_sql,
    utc_now,
)
from tests import fixture_archive as fixture

NOW = datetime(2024, 6, 1, 12, 0, 0)
DATES: dict[str, datetime | None] = {
    "unknown": None,
    "past": datetime(2001, 1, 1),
    "now": NOW,
    "just-after": NOW + timedelta(microseconds=1),
    "future": datetime(2999, 1, 1),
}
RELEASED = {"past", "now"}


def test_the_python_predicate() -> None:
    assert {name for name, date in DATES.items() if is_released(date, NOW)} == RELEASED


def test_the_numpy_mask() -> None:
    mask = released_mask(release_array(DATES.values()), NOW)
    assert {name for name, public in zip(DATES, mask, strict=True) if public} == RELEASED


def _released_in_the_database(settings: Settings) -> tuple[set[str], set[str], set[str]]:
    """Ask the catalogue's own ``ivoa.obscore`` which rows are released, in both SQL forms."""
    catalogue = open_catalogue(settings)
    images = [
        fixture.FixtureImage(key=name, observed=None, release=date) for name, date in DATES.items()
    ]
    fixture.write_rows(catalogue, fixture.image_rows(images, "vosim.test"))
    obscore = catalogue.table("ivoa.obscore")
    name = obscore.c.obs_id  # the key of DATES
    with catalogue.engine.connect() as conn:
        where = set(conn.scalars(sa.select(name).where(released(obscore.c.obs_release_date, NOW))))
        text = released_sql('"obs_release_date"', ":now")
        query = sa.text(f"SELECT obs_id FROM ivoa.obscore WHERE {text}")
        query = query.bindparams(sa.bindparam("now", type_=sa.DateTime))
        sql = set(conn.scalars(query, {"now": NOW}))
        negated = unreleased_sql('"obs_release_date"', ":now")
        query = sa.text(f"SELECT obs_id FROM ivoa.obscore WHERE NOT {negated}")
        query = query.bindparams(sa.bindparam("now", type_=sa.DateTime))
        assert set(conn.scalars(query, {"now": NOW})) == sql
        hidden = sa.text(f"SELECT obs_id FROM ivoa.obscore WHERE {negated}")
        hidden = hidden.bindparams(sa.bindparam("now", type_=sa.DateTime))
        assert set(conn.scalars(hidden, {"now": NOW})) == set(DATES) - sql
        flag = sa.case((released(obscore.c.obs_release_date, NOW), True), else_=False)
        case = {key for key, public in conn.execute(sa.select(name, flag)) if public}
    catalogue.engine.dispose()
    return where, sql, case


def test_the_sql_forms_on_both_backends(any_settings: Settings) -> None:
    where, text, case = _released_in_the_database(any_settings)
    assert where == text == case == RELEASED


def test_now_is_naive_utc() -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    now = utc_now()
    assert now.tzinfo is None
    assert before <= now <= datetime.now(UTC).replace(tzinfo=None)


def test_naive_utc_converts_aware_instants_and_keeps_naive_ones() -> None:
    aware = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert naive_utc(aware) == NOW
    assert naive_utc(NOW) is NOW


def test_the_sql_text_names_its_column_and_instant() -> None:
    assert released_sql("r.d", ":t") == "(r.d IS NOT NULL AND r.d <= :t)"


@pytest.mark.parametrize("name", sorted(DATES))
def test_every_form_agrees_for(name: str) -> None:
    date = DATES[name]
    (mask,) = released_mask(release_array([date]), NOW)
    assert bool(mask) == is_released(date, NOW) == (name in RELEASED)
