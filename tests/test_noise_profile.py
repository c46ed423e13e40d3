"""Primary-beam-corrected images: the cut-out centres on the source, not on amplified edge noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_training.ingest.cutout import CENTRE, PEAK, make_cutout
from model_training.ingest.fits_image import read_fits_image
from model_training.ingest.noise import NoiseEstimate, radial_noise_profile
from tests.fits_factory import write_cube, write_image

SIZE = 200
PB_LIMIT = 0.2


def _primary_beam(size: int = SIZE) -> np.ndarray:
    """A Gaussian primary-beam response centred on the image, 0.2 at 90 % of the half-width."""
    y, x = np.ogrid[:size, :size]
    radius = np.hypot(x - size // 2, y - size // 2)
    limit_radius = 0.9 * size / 2
    return np.exp(np.log(PB_LIMIT) * (radius / limit_radius) ** 2)


def _pbcor(flat: np.ndarray) -> np.ndarray:
    """Divide by the primary beam and blank below pblimit, as CASA's impbcor does."""
    response = _primary_beam(flat.shape[-1])
    corrected = flat / response
    corrected[..., response < PB_LIMIT] = np.nan
    return corrected.astype(np.float32)


def _noise(seed: int, shape: tuple[int, ...] = (SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=1e-3, size=shape)


def _add_source(plane: np.ndarray, x: int, y: int, peak: float, sigma: float = 2.5) -> None:
    yy, xx = np.ogrid[: plane.shape[-2], : plane.shape[-1]]
    plane += peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("seed", range(5))
def test_a_faint_source_wins_over_the_amplified_edge_noise(tmp_path: Path, seed: int) -> None:
    # 8 sigma against the centre's noise: well above the rule's 5, but the
    # edge noise of the corrected image reaches 15-20 sigma of the whole image.
    flat = _noise(seed)
    _add_source(flat, 120, 90, peak=8e-3)
    image = read_fits_image(write_image(tmp_path / "pbcor.fits", _pbcor(flat)))
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    assert cutout.rule == PEAK
    assert (cutout.x, cutout.y) == pytest.approx((120, 90), abs=1)
    assert cutout.peak_snr == pytest.approx(8.0, rel=0.25)


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_falls_back_to_the_image_centre(tmp_path: Path, seed: int) -> None:
    image = read_fits_image(write_image(tmp_path / "empty.fits", _pbcor(_noise(seed))))
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    assert cutout.rule == CENTRE
    assert (cutout.x, cutout.y) == (SIZE // 2, SIZE // 2)
    assert cutout.peak_snr < 5.0


def test_the_profile_follows_the_inverse_primary_beam() -> None:
    corrected = _pbcor(_noise(0))
    profile = radial_noise_profile(corrected)
    assert profile is not None
    factors = profile.factor_map(corrected.shape)
    centre_noise = factors[SIZE // 2, SIZE // 2]
    edge = (SIZE // 2, SIZE // 2 + int(0.85 * SIZE / 2))
    expected_ratio = 1.0 / _primary_beam()[edge]
    assert factors[edge] / centre_noise == pytest.approx(expected_ratio, rel=0.2)
    assert list(profile.factor) == sorted(profile.factor)


@pytest.mark.parametrize("seed", range(5))
def test_an_uncorrected_image_keeps_one_noise_level(seed: int) -> None:
    assert radial_noise_profile(_noise(seed).astype(np.float32)) is None


def test_a_bright_extended_source_does_not_raise_the_noise_it_covers() -> None:
    plane = _noise(2)
    _add_source(plane, SIZE // 2, SIZE // 2, peak=0.5, sigma=12.0)
    assert radial_noise_profile(plane.astype(np.float32)) is None


def test_a_peak_flux_map_is_measured_against_its_channels_noise(tmp_path: Path) -> None:
    cube = _noise(3, shape=(40, SIZE, SIZE))
    _add_source(cube[20], 80, 110, peak=9e-3)
    image = read_fits_image(write_cube(tmp_path / "cube.fits", _pbcor(cube)))
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    assert cutout.rule == PEAK
    assert (cutout.x, cutout.y) == pytest.approx((80, 110), abs=1)


def test_a_map_too_small_for_annuli_uses_one_noise() -> None:
    assert radial_noise_profile(np.ones((8, 8), dtype=np.float32)) is None
    flat = NoiseEstimate(rms=2.0, background=1.0)
    assert flat.snr_map(np.full((4, 4), 11.0, dtype=np.float32)) == pytest.approx(5.0)
