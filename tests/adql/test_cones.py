"""Cones answer the points within their radius, wherever they lie on the sky, on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vo_service.adql import UploadedTable
from vo_service.votable.columns import ResultColumn

from .conftest import Archive
from .helpers import run

CONES = [
    (10.0, -30.0, 0.5),
    (0.2, 5.0, 1.0),  # across right ascension 0
    (359.8, -5.0, 1.0),  # across 360
    (-0.3, 12.0, 0.8),  # a centre below 0 ...
    (360.4, 12.0, 0.8),  # ... and beyond 360
    (725.0, 40.0, 2.0),
    (180.0, 82.0, 6.0),  # a wide window in right ascension
    (30.0, 88.5, 2.0),  # holding the pole
    (100.0, -60.0, 25.0),
]


def _points() -> list[tuple[int, float, float]]:
    """Points spread over the sky, crowded near each cone's centre and edge, and a few off 0-360."""
    rng = np.random.default_rng(5)
    points = [
        (rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))) for _ in range(400)
    ]
    for ra, dec, radius in CONES:
        for _ in range(40):
            offset = radius * rng.uniform(0.0, 1.6)
            angle = rng.uniform(0, 2 * math.pi)
            near_dec = max(-90.0, min(90.0, dec + offset * math.sin(angle)))
            scale = max(math.cos(math.radians(near_dec)), 1e-3)
            near_ra = (ra + offset * math.cos(angle) / scale) % 360.0
            points.append((near_ra, near_dec))
    points += [(-10.05, 12.0), (370.1, 12.0), (-0.1, 12.0), (720.0 + 4.0, 40.5)]
    return [(number, ra, dec) for number, (ra, dec) in enumerate(points)]


def _distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


@pytest.fixture(scope="module")
def points() -> list[tuple[int, float, float]]:
    return _points()


@pytest.mark.parametrize(("ra", "dec", "radius"), CONES)
def test_a_cone_of_numbers_holds_the_points_within_its_radius(
    archive: Archive, points: list[tuple[int, float, float]], ra: float, dec: float, radius: float
) -> None:
    columns = (
        ResultColumn(name="n", datatype="long"),
        ResultColumn(name="ra", datatype="double"),
        ResultColumn(name="dec", datatype="double"),
    )
    temporary = "TEMPORARY TABLE" if archive.dialect == "postgresql" else "TEMP TABLE"
    values = ", ".join(f"({n}, {p_ra!r}, {p_dec!r})" for n, p_ra, p_dec in points)
    setup = (
        f'CREATE {temporary} "sky" (n BIGINT, ra DOUBLE PRECISION, dec DOUBLE PRECISION); '
        f'INSERT INTO "sky" VALUES {values}'
    )
    sql_name = '"sky"' if archive.dialect == "postgresql" else 'temp."sky"'
    uploads = {"sky": UploadedTable("sky", sql_name, columns)}
    _, rows = run(
        archive,
        "SELECT s.n FROM TAP_UPLOAD.sky AS s "
        f"WHERE 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', {ra}, {dec}, {radius}))",
        uploads=uploads,
        setup=setup,
    )
    distances = {n: _distance(p_ra, p_dec, ra, dec) for n, p_ra, p_dec in points}
    found = {n for (n,) in rows}
    clear = {n for n, d in distances.items() if abs(d - radius) > 1e-6}
    assert found & clear == {n for n in clear if distances[n] < radius}
    assert found & clear  # each cone holds some points
