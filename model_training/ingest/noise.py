"""A robust estimate of an image's noise, the yardstick of the paper's S/N > 5 rule.

The paper centres a cut-out on the brightest pixel only if its signal-to-noise
ratio exceeds five, so every image needs a noise level that the source itself
does not inflate. Interferometric images are mostly noise with a few compact
or extended sources; the median absolute deviation (MAD) ignores the source
as long as it covers less than half the pixels, and a few rounds of clipping
at three times the estimate remove what is left of a bright, extended source
from the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .noise_profile import RadialNoiseProfile

__all__ = ["MAD_TO_SIGMA", "NoiseEstimate", "estimate_noise"]

MAD_TO_SIGMA = 1.482602218505602
"""Ratio of the standard deviation to the MAD of a Gaussian, 1 / Φ⁻¹(3/4)."""

_CLIP_SIGMA = 3.0
_MAX_ITERATIONS = 5
_MAX_SAMPLES = 1 << 16
_TOLERANCE = 0.01  # 1 % of the noise is far below what moves an S/N across 5


@dataclass(frozen=True)
class NoiseEstimate:
    """The noise of an image or cube and the level it fluctuates around.

    Parameters
    ----------
    rms
        Robust standard deviation of the noise (``1.4826 × MAD`` after
        clipping), in the image's unit (Jy/beam for ALMA). Zero only for a
        constant image.
    background
        Median of the clipped pixels: the zero level that a pixel's signal is
        measured from (about 0 for interferometric images).
    profile
        How the noise grows towards the edge of a primary-beam-corrected
        image (`model_training.ingest.noise_profile`), relative to ``rms``; None
        for a noise that is the same everywhere.
    """

    rms: float
    background: float
    profile: RadialNoiseProfile | None = None

    def snr(self, value: float) -> float:
        """Signal-to-noise ratio of a pixel value: its height above the background in rms.

        A constant image has no noise and no signal: its S/N is 0, so that the
        S/N > 5 rule falls back to the image centre.
        """
        if not self.rms > 0.0:
            return 0.0
        return (float(value) - self.background) / self.rms

    def snr_map(self, flux_map: np.ndarray) -> np.ndarray:
        """S/N of every pixel of a map against the noise where the pixel lies.

        With a `profile`, a pixel at the edge of a primary-beam-corrected
        image is measured against the higher noise there. A constant image
        gives 0 everywhere, as `snr` does.
        """
        if not self.rms > 0.0:
            return np.zeros(flux_map.shape, dtype=np.float32)
        noise = self.rms
        if self.profile is not None:
            noise = noise * self.profile.factor_map(flux_map.shape)
        return (flux_map - np.float32(self.background)) / noise


def estimate_noise(values: np.ndarray) -> NoiseEstimate:
    """Estimate the noise of the finite values of an image or cube.

    The estimate is ``1.4826 × MAD`` (the standard deviation a Gaussian with
    that MAD would have), recomputed on the values within three times the
    current estimate of the median until it changes by less than 1 % (at
    most five times). The MAD alone already
    ignores a compact source; the clipping keeps a bright source that covers
    a large part of the field (a nearby galaxy, a big disc) from inflating the
    noise and so from hiding its own peak behind the S/N threshold (this
    holds while the source covers up to about a fifth of the field; beyond
    that the estimate grows, and a field-filling source falls back to the
    image centre, where it is anyway). For large
    arrays (cubes, maps above 256×256) a regular subsample of at most 65,536
    values is used: the estimate is then good to about half a per cent, far
    more than the S/N rule needs, and ingest stays fast.

    If more than half of the values are identical (a model image, zero-padded
    data), the MAD is zero; the plain standard deviation of the finite values
    is used instead, so that only a truly constant image has ``rms == 0``.

    Parameters
    ----------
    values
        Pixel values of any shape; NaN and infinite values are ignored.

    Returns
    -------
    NoiseEstimate
        ``rms`` and ``background``; both NaN when there is no finite value.
    """
    flat = np.asarray(values).reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = np.asarray(flat[::step], dtype=np.float32)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return NoiseEstimate(rms=float("nan"), background=float("nan"))
    background, rms = _median_and_rms(sample)
    for _ in range(_MAX_ITERATIONS):
        if rms <= 0.0:
            break
        kept = sample[np.abs(sample - background) <= _CLIP_SIGMA * rms]
        previous = rms
        background, rms = _median_and_rms(kept)
        if abs(rms - previous) <= _TOLERANCE * previous:
            break
    if rms <= 0.0:
        rms = float(np.std(sample))
        background = float(np.median(sample))
    return NoiseEstimate(rms=rms, background=background)


def _median_and_rms(values: np.ndarray) -> tuple[float, float]:
    """Median and ``1.4826 × MAD`` of a scratch array, which is reordered in place."""
    median = _median_in_place(values)
    return median, MAD_TO_SIGMA * _median_in_place(np.abs(values - np.float32(median)))


def _median_in_place(values: np.ndarray) -> float:
    # The upper median by one in-place partition: about three times faster
    # than np.median, which copies and partitions around two elements for
    # even sizes; for a noise estimate the difference is nil.
    middle = values.size // 2
    values.partition(middle)
    return float(values[middle])
