"""The arithmetic of ``MIN_SEPARATION`` on known positions: RA wrap-around, the poles, the edge.

Every expected separation is astropy's (`SkyCoord.separation`, Vincenty's
formula), computed independently of the service's own arithmetic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from vo_service.similarity.index import KindIndex
from vo_service.similarity.separation import SkyPositions, angular_separation, unit_vectors

ARCSEC = 1 / 3600

KNOWN_PAIRS = [
    # (ra1, dec1), (ra2, dec2): where naive arithmetic goes wrong
    ((359.99, 0.0), (0.01, 0.0)),  # across RA 0/360: 72 arcsec, not 359.98 degrees
    ((359.999, 60.0), (0.001, 60.0)),  # across RA 0/360 at dec 60: 3.6 arcsec
    ((0.0, 90.0), (123.0, 90.0)),  # two names of the north pole
    ((0.0, 89.99), (180.0, 89.99)),  # over the north pole: 72 arcsec
    ((45.0, -89.995), (225.0, -89.995)),  # over the south pole: 36 arcsec
    ((10.0, 89.9999), (100.0, 89.9999)),  # a quarter turn around the pole: 0.51 arcsec
    ((83.8221, -5.3911), (83.8221, -5.3911 + 10 * ARCSEC)),  # 10 arcsec in dec (Orion)
    ((150.0, 2.2), (150.0 + 1e-7, 2.2)),  # 0.36 milliarcsec
    ((0.0, 0.0), (180.0, 0.0)),  # antipodes
]


def astropy_arcsec(a: tuple[float, float], b: tuple[float, float]) -> float:
    first = SkyCoord(a[0] * u.deg, a[1] * u.deg)
    return float(first.separation(SkyCoord(b[0] * u.deg, b[1] * u.deg)).to_value(u.arcsec))


@pytest.mark.parametrize(("a", "b"), KNOWN_PAIRS)
def test_separation_of_known_pairs(a: tuple[float, float], b: tuple[float, float]) -> None:
    expected = astropy_arcsec(a, b)
    got = angular_separation(unit_vectors(*a), unit_vectors(*b)) * 3600
    assert got == pytest.approx(expected, abs=1e-6)


def test_expected_values_of_the_known_pairs() -> None:
    """The pairs say what they claim (so that the test above tests the hard cases)."""
    arcsec = [astropy_arcsec(a, b) for a, b in KNOWN_PAIRS]
    assert arcsec[0] == pytest.approx(72.0, rel=1e-6)
    assert arcsec[1] == pytest.approx(3.6, rel=1e-4)
    assert arcsec[2] == pytest.approx(0.0, abs=1e-6)
    assert arcsec[3] == pytest.approx(72.0, rel=1e-6)
    assert arcsec[4] == pytest.approx(36.0, rel=1e-6)
    assert arcsec[5] == pytest.approx(0.36 * 2**0.5, rel=1e-3)
    assert arcsec[8] == pytest.approx(180 * 3600.0)


@pytest.mark.parametrize(("a", "b"), KNOWN_PAIRS[:-1])
def test_a_pair_is_dropped_below_its_separation_and_kept_at_it(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    separation = astropy_arcsec(a, b)
    sky = SkyPositions([b[0]], [b[1]])
    centre = unit_vectors(*a)
    assert sky.near(centre, (separation + 1e-4) * ARCSEC).tolist() == [True]
    if separation > 1e-3:
        assert sky.near(centre, (separation - 1e-4) * ARCSEC).tolist() == [False]


def test_near_matches_brute_force_around_the_seam_and_the_poles() -> None:
    """Random positions crowded around RA 0/360 and both poles, many centres, one radius."""
    rng = np.random.default_rng(3)
    n = 3000
    ra = np.concatenate([rng.uniform(-0.05, 0.05, n) % 360, rng.uniform(0, 360, 2 * n)])
    dec = np.concatenate(
        [rng.uniform(-0.05, 0.05, n), rng.uniform(89.97, 90, n), rng.uniform(-90, -89.97, n)]
    )
    sky = SkyPositions(ra, dec)
    centres = [(0.0, 0.0), (359.999, 0.01), (77.0, 89.99), (200.0, 90.0), (300.0, -89.995)]
    radius_arcsec = 45.0
    got = sky.near(unit_vectors(*np.array(centres).T), radius_arcsec * ARCSEC)
    points = SkyCoord(ra * u.deg, dec * u.deg)
    expected = np.zeros(len(ra), dtype=bool)
    for centre in centres:
        distance = points.separation(SkyCoord(centre[0] * u.deg, centre[1] * u.deg))
        expected |= distance.to_value(u.arcsec) < radius_arcsec
    assert expected.sum() > 100, "the test should drop many points"
    assert (~expected).sum() > 100, "and keep many"
    assert np.array_equal(got, expected)


def test_unknown_positions_are_never_dropped_and_drop_nothing() -> None:
    sky = SkyPositions([10.0, None, 10.0], [20.0, None, 20.0 + 5 * ARCSEC])
    centres = np.vstack([unit_vectors(10.0, 20.0), unit_vectors(np.nan, np.nan)])
    assert sky.near(centres, 10 * ARCSEC).tolist() == [True, False, True]
    assert sky.near(unit_vectors(np.nan, np.nan), 10 * ARCSEC).tolist() == [False] * 3
    assert sky.near(centres, 0.0).tolist() == [False] * 3
    nowhere = SkyPositions([None, None], [None, None])
    assert nowhere.near(centres, 10 * ARCSEC).tolist() == [False, False]


def test_the_index_drops_images_near_any_selected_one() -> None:
    """Two repeated fields, one of them across RA 0; the selected images are at both."""
    centres = [
        (359.9990, -30.0),  # 0: selected
        (0.0005, -30.0),  # 1: 4.7 arcsec from 0, across RA 0
        (0.0100, -30.0),  # 2: 34 arcsec from 0
        (120.0, 89.9990),  # 3: selected, near the pole
        (300.0, 89.9995),  # 4: 5.4 arcsec from 3, over the pole
        (None, None),  # 5: unknown position
        (45.0, 10.0),  # 6: far away
    ]
    n = len(centres)
    vectors = np.eye(n, dtype=np.float32)
    now = datetime(2030, 1, 1)
    index = KindIndex(
        "continuum",
        1,
        [f"ivo://x/{i}" for i in range(n)],
        vectors,
        [None] * n,
        [now - timedelta(days=1)] * n,
        cutout_centres=centres,
    )
    near = index.near(np.array([0, 3]), 10 * ARCSEC)
    assert np.flatnonzero(near).tolist() == [0, 1, 3, 4]
    near = index.near(np.array([0]), 40 * ARCSEC)
    assert np.flatnonzero(near).tolist() == [0, 1, 2]
    uploaded = unit_vectors(45.0, 10.0 + 3 * ARCSEC)
    near = index.near(np.array([], dtype=np.int64), 10 * ARCSEC, uploaded)
    assert np.flatnonzero(near).tolist() == [6]
    moved = index.with_metadata(index.categories, index.release_dates, [(45.0, 10.0)] * n)
    assert moved.near(np.array([6]), 1 * ARCSEC).tolist() == [True] * n
