"""How the noise of a primary-beam-corrected image grows from its centre outwards.

ALMA's pipeline delivers ``*.pbcor.fits`` images: the restored image divided
by the primary-beam response, so that every pixel carries the true sky
brightness. The division multiplies the noise too: at the image's edge,
where the response falls to ``pblimit`` (0.2), the noise is five times that
at the centre. Measured against one noise level for the whole image, a noise
spike at the edge looks like a 15σ source; the paper's "brightest pixel if
S/N > 5" would centre a third of the demo archive's cut-outs on such spikes
at the blanked edge instead of on the source.

The primary beam is not in the image file (CASA writes it to a separate
``*.pb.fits``, which archives often do not offer), and its shape depends on
the telescope, so the profile is measured from the image itself: the robust
noise (`model_training.ingest.noise.estimate_noise`) in equal-area annuli around the
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

from .noise import estimate_noise

__all__ = ["RadialNoiseProfile", "radial_noise_profile"]

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
