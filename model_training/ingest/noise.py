"""A robust estimate of an image's noise, the yardstick of the paper's S/N > 5 rule.

The paper centres a cut-out on the brightest pixel only if its signal-to-noise
ratio exceeds five, so every image needs a noise level that the source itself
does not inflate. Interferometric images are mostly noise with a few compact
or extended sources; the median absolute deviation (MAD) ignores the source
as long as it covers less than half the pixels, and a few rounds of clipping
at three times the estimate remove what is left of a bright, extended source
from the estimate.

The noise of a primary-beam-corrected image grows from its centre outwards
(`radial_noise_profile`). ALMA's pipeline delivers ``*.pbcor.fits`` images:
the restored image divided by the primary-beam response, so that every pixel
carries the true sky brightness. The division multiplies the noise too: at the
image's edge, where the response falls to ``pblimit`` (0.2), the noise is five
times that at the centre. Measured against one noise level for the whole
image, a noise spike at the edge looks like a 15σ source; the paper's
"brightest pixel if S/N > 5" would centre a third of the demo archive's
cut-outs on such spikes at the blanked edge instead of on the source.

The primary beam is not in the image file (CASA writes it to a separate
``*.pb.fits``, which archives often do not offer), and its shape depends on
the telescope, so the profile is measured from the image itself: the robust
noise (`estimate_noise`) in equal-area annuli around the
image centre (CASA images are centred on the pointing), relative to that of
the whole image. A response that falls monotonically from the pointing
centre gives a noise that rises monotonically with radius, so the profile
is the isotonic (non-decreasing) fit to the annuli's noise (scikit-learn),
which also evens out what a bright source adds to the annuli it covers. An
image whose noise does not rise by a fifth towards its edge has no
primary-beam correction to speak of: it keeps one noise level, and the S/N
rule is then exactly the paper's.

No library measures this: photutils' ``Background2D`` estimates a local
background and rms on a grid of boxes, but a source filling a box biases
it, it is not a dependency, and the radial symmetry of a single pointing is
the stronger constraint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.isotonic import isotonic_regression

__all__ = [
    "MAD_TO_SIGMA",
    "NoiseEstimate",
    "RadialNoiseProfile",
    "estimate_noise",
    "radial_noise_profile",
]

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
        image (`radial_noise_profile`), relative to ``rms``; None
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


ANNULI = 12
"""Equal-area annuli the profile is measured in."""

MIN_PIXELS_PER_ANNULUS = 512
"""Finite pixels an annulus needs for its noise to count (about 4 % precision)."""

MIN_RISE = 1.2
"""Rise from the innermost to the outermost annulus below which the noise counts as flat.

Annuli of a flat-noise image scatter by a few per cent; keeping one noise
level for them keeps the paper's rule exactly where no correction was made.
"""


@dataclass(frozen=True)
class RadialNoiseProfile:
    """Noise relative to the whole image's, as a function of distance from the centre.

    Attributes
    ----------
    radius
        Mean distance (pixels) from the image centre of the pixels of each
        annulus that was measured, increasing.
    factor
        Noise of that annulus divided by the whole image's, non-decreasing
        (isotonic fit).
    """

    radius: tuple[float, ...]
    factor: tuple[float, ...]

    def factor_map(self, shape: tuple[int, int]) -> np.ndarray:
        """Relative noise of every pixel of an image of ``shape`` ``(ny, nx)``.

        Linear between the measured annuli, constant inside the first and
        outside the last.
        """
        radius = _radius_map(*shape)
        return np.interp(radius, self.radius, self.factor).astype(np.float32)


def radial_noise_profile(
    flux_map: np.ndarray, whole_rms: float | None = None
) -> RadialNoiseProfile | None:
    """Measure how the noise of a 2-D map grows from its centre outwards.

    Parameters
    ----------
    flux_map
        ``[y, x]`` map, NaN where blanked. For a peak-flux map the spread of
        the channel maxima scales with the channel noise, so the relative
        profile is that of the channels.
    whole_rms
        `estimate_noise` of the whole map, if already known (a continuum
        image's own noise); it is what the annuli's noise is relative to.

    Returns
    -------
    RadialNoiseProfile or None
        None when the noise is the same everywhere (it rises by less than
        `MIN_RISE`), the map is too small to measure two annuli, or it has
        no noise: then the whole-image noise is used everywhere.
    """
    ny, nx = flux_map.shape
    order, bounds, radius = _annuli(ny, nx)
    values = flux_map.reshape(-1)[order]
    whole = estimate_noise(values).rms if whole_rms is None else whole_rms
    if not whole > 0.0:
        return None
    radii, factors, weights = [], [], []
    for start, stop, annulus_radius in zip(bounds[:-1], bounds[1:], radius, strict=True):
        annulus = values[start:stop]
        annulus = annulus[np.isfinite(annulus)]
        if annulus.size < MIN_PIXELS_PER_ANNULUS:
            continue
        rms = estimate_noise(annulus).rms
        if rms > 0.0:
            radii.append(float(annulus_radius))
            factors.append(rms / whole)
            weights.append(annulus.size)
    if len(factors) < 2:
        return None
    # radii increase, so the isotonic fit needs only the values in radius order
    rising = isotonic_regression(factors, sample_weight=weights, increasing=True)
    if rising[-1] < MIN_RISE * rising[0]:
        return None
    return RadialNoiseProfile(tuple(radii), tuple(float(f) for f in rising))


@lru_cache(maxsize=16)
def _radius_map(ny: int, nx: int) -> np.ndarray:
    """Distance of every pixel from the image centre ``(nx // 2, ny // 2)``."""
    y, x = np.ogrid[:ny, :nx]
    return np.hypot(x - nx // 2, y - ny // 2).astype(np.float32)


@lru_cache(maxsize=16)
def _annuli(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of an ``(ny, nx)`` image grouped by annulus, computed once per shape.

    Returns the flat pixel indices ordered by annulus, the start of each
    annulus in that order (plus the end), and each annulus's mean radius.
    Annuli have equal areas out to the corners: ``r_k = R sqrt(k / n)``.
    """
    radius = _radius_map(ny, nx).reshape(-1)
    outer = math.hypot(nx / 2, ny / 2) + 1.0
    n_annuli = max(1, min(ANNULI, radius.size // MIN_PIXELS_PER_ANNULUS))
    edges = outer * np.sqrt(np.arange(1, n_annuli) / n_annuli)
    annulus = np.searchsorted(edges, radius, side="right").astype(np.int8)
    order = np.argsort(annulus, kind="stable")  # a radix sort for small integers
    counts = np.bincount(annulus, minlength=n_annuli)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    mean_radius = np.bincount(annulus, weights=radius, minlength=n_annuli) / np.maximum(counts, 1)
    return order, bounds, mean_radius
