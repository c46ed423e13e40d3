"""The paper's cut-out rule (S/N > 5: brightest pixel, else image centre), normalisation, edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_training.ingest.cutout import (
    CENTRE,
    CUTOUT_SIZE,
    PEAK,
    choose_centre,
    cut_out,
    make_cutout,
    normalise,
)
from model_training.ingest.fits_image import pixel_to_icrs, read_fits_image
from model_training.ingest.noise import NoiseEstimate, estimate_noise
from tests.fits_factory import write_image

UNIT_NOISE = NoiseEstimate(rms=1.0, background=0.0)


def _clipped_noise(n: int, seed: int = 0) -> np.ndarray:
    """Unit Gaussian noise that never exceeds 3 sigma, so a planted pixel is the brightest."""
    return np.clip(np.random.default_rng(seed).normal(size=(n, n)), -3.0, 3.0)


@pytest.mark.parametrize(("snr", "rule"), [(4.0, CENTRE), (5.0, CENTRE), (6.0, PEAK)])
def test_rule_around_the_snr_threshold(snr: float, rule: str) -> None:
    flux_map = _clipped_noise(100)
    flux_map[70, 20] = snr
    chosen, x, y, peak_snr = choose_centre(flux_map, UNIT_NOISE)
    assert chosen == rule
    assert peak_snr == pytest.approx(snr)
    assert (x, y) == ((20, 70) if rule == PEAK else (50, 50))


@pytest.mark.parametrize(("snr", "rule"), [(4.0, CENTRE), (6.0, PEAK)])
def test_rule_with_the_estimated_noise_of_a_real_file(
    tmp_path: Path, snr: float, rule: str
) -> None:
    rms = 2e-3
    plane = _clipped_noise(128, seed=5) * rms
    plane[30, 90] = snr * rms
    image = read_fits_image(write_image(tmp_path / "a.fits", plane))
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    assert cutout.rule == rule
    assert cutout.peak_snr == pytest.approx(snr, rel=0.05)
    assert cutout.noise.rms == pytest.approx(rms, rel=0.05)
    expected_xy = (90, 30) if rule == PEAK else (64, 64)
    assert (cutout.x, cutout.y) == expected_xy
    ra, dec = pixel_to_icrs(image.wcs, *expected_xy)
    assert (cutout.ra, cutout.dec) == pytest.approx((float(ra), float(dec)))


def test_noise_ignores_a_bright_extended_source() -> None:
    rng = np.random.default_rng(2)
    flux_map = rng.normal(0.0, 1.0, size=(128, 128))
    y, x = np.mgrid[0:128, 0:128]
    # Above the noise over a sixth of the field: a plain MAD would be 1.4 times too high.
    flux_map += 50.0 * np.exp(-((x - 64) ** 2 + (y - 64) ** 2) / (2 * 12.0**2))
    noise = estimate_noise(flux_map)
    assert noise.rms == pytest.approx(1.0, rel=0.1)
    assert np.std(flux_map) > 5.0


def test_noise_of_a_constant_image_gives_no_signal() -> None:
    noise = estimate_noise(np.full((16, 16), 3.0))
    assert noise.rms == 0.0
    assert noise.snr(3.0) == 0.0
    assert choose_centre(np.full((16, 16), 3.0), noise)[0] == CENTRE


def test_cutout_is_64_by_64_with_the_centre_at_pixel_32() -> None:
    flux_map = np.arange(200 * 150, dtype=np.float32).reshape(150, 200)
    window = cut_out(flux_map, x=100, y=70)
    assert window.shape == (CUTOUT_SIZE, CUTOUT_SIZE)
    assert window[32, 32] == flux_map[70, 100]
    np.testing.assert_array_equal(window, flux_map[38:102, 68:132])


def test_normalised_to_median_zero_and_unit_std() -> None:
    window = np.random.default_rng(1).gamma(2.0, 3.0, size=(64, 64)).astype(np.float32) + 7.0
    pixels = normalise(window)
    assert pixels.dtype == np.float32
    assert np.median(pixels) == pytest.approx(0.0, abs=1e-6)
    assert np.std(pixels) == pytest.approx(1.0, rel=1e-5)


def test_constant_cutout_does_not_divide_by_zero() -> None:
    with np.errstate(all="raise"):
        pixels = normalise(np.full((64, 64), 5.0))
    np.testing.assert_array_equal(pixels, 0.0)
    np.testing.assert_array_equal(normalise(np.full((64, 64), np.nan)), 0.0)


def test_peak_near_the_edge_stays_at_the_cutout_centre() -> None:
    flux_map = _clipped_noise(100)
    flux_map[2, 97] = 50.0
    cutout = make_cutout(flux_map, _wcs(), UNIT_NOISE)
    assert (cutout.rule, cutout.x, cutout.y) == (PEAK, 97, 2)
    assert cutout.pixels[32, 32] == cutout.pixels.max()
    # Outside the image: rows below y=0 and columns beyond x=99 are the median, 0.
    np.testing.assert_array_equal(cutout.pixels[:30, :], 0.0)
    np.testing.assert_array_equal(cutout.pixels[:, 35:], 0.0)
    inside = cutout.pixels[30:, :35]
    assert np.std(inside) == pytest.approx(1.0, rel=1e-5)


def test_image_smaller_than_the_cutout_is_centred_and_padded() -> None:
    flux_map = np.random.default_rng(3).normal(size=(40, 30))
    cutout = make_cutout(flux_map, _wcs(), UNIT_NOISE)
    assert cutout.pixels.shape == (64, 64)
    assert (cutout.rule, cutout.x, cutout.y) == (CENTRE, 15, 20)
    filled = cutout.pixels == 0.0
    assert filled[:12].all() and filled[52:].all()
    assert filled[:, :17].all() and filled[:, 47:].all()
    assert not filled[12:52, 17:47].all()


def test_nan_blanked_pixels_become_the_median() -> None:
    flux_map = np.random.default_rng(4).normal(size=(64, 64)) + 10.0
    flux_map[:, :10] = np.nan
    cutout = make_cutout(flux_map, _wcs(), estimate_noise(flux_map))
    assert (cutout.rule, cutout.x, cutout.y) == (CENTRE, 32, 32)
    pixels = cutout.pixels
    np.testing.assert_array_equal(pixels[:, :10], 0.0)
    assert np.isfinite(pixels).all()
    assert np.median(pixels[:, 10:]) == pytest.approx(0.0, abs=1e-6)


def _wcs():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.cdelt = [-1e-5, 1e-5]
    wcs.wcs.crpix = [32.0, 32.0]
    return wcs
