"""The paper's cut-out: 64×64 pixels around the brightest pixel or the image centre.

    "As images we use cut-outs of 64×64 pixels centred on the brightest pixel
    in the image if the signal to noise is greater than five, and on the
    centre of the ALMA image otherwise. The image values are scaled to their
    median with a standard deviation of one." (Stoehr et al. 2024, The
    Messenger)

What the sentence leaves open is decided here, once:

- *Noise*: the caller passes it (`FitsImage.noise`), because for a peak-flux
  map it must come from the cube's channels, not from the map.
- *S/N* of the brightest pixel is its height above the noise's background
  level in units of the noise rms; the rule is strictly ``S/N > 5``.
- *Primary-beam-corrected images*: their noise grows towards the edge (five
  times at ``pblimit`` 0.2), so "brightest" means highest S/N against the
  noise where the pixel lies (`model_training.ingest.noise`); measured
  against one noise for the whole image, amplified noise at the edge won
  over the source in a third of the demo archive's images.
- *Centre pixel*: a 64-pixel cut-out has no middle pixel; its centre is pixel
  ``(32, 32)`` (zero-based, the FFT convention), so the chosen pixel sits
  there and the window is ``[c - 32, c + 32)``. The image centre is pixel
  ``(nx // 2, ny // 2)``, which for even sizes makes the window symmetric.
- *Edges*: the chosen centre always stays at the cut-out centre, also near an
  edge or in an image smaller than 64 pixels; pixels outside the image and
  NaN (blanked) pixels are filled with the cut-out's median, which is 0 after
  normalisation, so they read as "nothing here" rather than as structure.
- *Normalisation*: ``(x - median) / std`` over the cut-out's finite pixels
  (population standard deviation). A constant cut-out has no morphology to
  learn; it becomes all zeros instead of a division by zero.
- *Images of other telescopes* (``guard_edges``): an optical plate or survey
  cut-out is not a primary-beam-shaped field with its source at the
  pointing centre. Its brightest pixel is often a star, a hot pixel or a
  scanning artefact near the edge, while the target fills the middle
  (NGC 1316's image from an AIPS header: a star 20 pixels from its east
  edge, 0.4 deg from the galaxy). There, "brightest" is the highest mean
  S/N over 3×3 pixels, at least `EDGE_MARGIN` pixels from the image edge:
  one-pixel spikes and compact edge sources lose to an extended source, and
  the S/N rule is the same noise-aware one. ALMA images keep the paper's
  single-pixel rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS
from scipy import ndimage

from .fits_image import pixel_to_icrs
from .noise import NoiseEstimate

__all__ = [
    "CENTRE",
    "CUTOUT_SIZE",
    "EDGE_MARGIN",
    "PEAK",
    "SNR_THRESHOLD",
    "Cutout",
    "choose_centre",
    "cut_out",
    "make_cutout",
    "normalise",
]

CUTOUT_SIZE = 64
"""Side of the square cut-out in pixels (the paper's 64×64)."""

SNR_THRESHOLD = 5.0
"""The brightest pixel is the centre only if its S/N is strictly greater than this."""

EDGE_MARGIN = CUTOUT_SIZE // 8
"""Pixels from the image edge within which no peak is chosen when edges are
guarded (at most a quarter of the image's smaller side)."""

_SMOOTHING = 3  # pixels: the box over which a guarded image's S/N is averaged

PEAK = "peak"
"""``cutout_rule``: centred on the brightest pixel (its S/N above the threshold)."""

CENTRE = "centre"
"""``cutout_rule``: centred on the image centre (no pixel above the threshold)."""


@dataclass(frozen=True)
class Cutout:
    """A normalised cut-out and how its centre was chosen.

    Parameters
    ----------
    pixels
        ``(64, 64)`` float32, normalised to median 0 and standard deviation 1
        over the finite pixels, missing pixels 0.
    rule
        `PEAK` or `CENTRE`.
    x, y
        Zero-based pixel of the map at the cut-out centre (cut-out pixel
        ``(32, 32)``).
    ra, dec
        ICRS position of that pixel, in degrees.
    peak_snr
        S/N of the map's brightest pixel (against the noise where it lies),
        whichever rule was used.
    noise
        The noise the S/N was measured against.
    """

    pixels: np.ndarray
    rule: str
    x: int
    y: int
    ra: float
    dec: float
    peak_snr: float
    noise: NoiseEstimate


def make_cutout(
    flux_map: np.ndarray, wcs: WCS, noise: NoiseEstimate, *, guard_edges: bool = False
) -> Cutout:
    """Cut the paper's normalised 64×64 cut-out out of a 2-D map.

    Parameters
    ----------
    flux_map
        The continuum image or peak-flux map, ``[y, x]``, NaN where blanked.
    wcs
        Its celestial WCS, for the cut-out centre's position.
    noise
        The noise to measure the brightest pixel's S/N against: the image's
        own for continuum, one channel's for a peak-flux map.
    guard_edges
        Choose the peak as for another telescope's image (`choose_centre`);
        ingest sets it for images whose TELESCOP is not ALMA.

    Returns
    -------
    Cutout
        The normalised pixels and the record of how they were chosen.
    """
    rule, x, y, peak_snr = choose_centre(flux_map, noise, guard_edges=guard_edges)
    ra, dec = pixel_to_icrs(wcs, x, y)
    return Cutout(
        pixels=normalise(cut_out(flux_map, x, y)),
        rule=rule,
        x=x,
        y=y,
        ra=float(ra),
        dec=float(dec),
        peak_snr=peak_snr,
        noise=noise,
    )


def choose_centre(
    flux_map: np.ndarray, noise: NoiseEstimate, *, guard_edges: bool = False
) -> tuple[str, int, int, float]:
    """Pick the cut-out centre: the brightest pixel if its S/N > 5, else the image centre.

    "Brightest" is in S/N against the noise where the pixel lies: in a
    primary-beam-corrected image (``noise.profile``) the noise grows towards
    the edge, and the pixel standing highest above its own noise is the
    source, not a noise spike that the correction amplified. With a flat
    noise the two readings pick the same pixel.

    With ``guard_edges`` the brightest pixel is the one of highest mean S/N
    over its 3×3 neighbourhood, at least `EDGE_MARGIN` pixels from the
    image edge (see the module docstring); its own S/N decides the rule.

    Returns
    -------
    rule : str
        `PEAK` or `CENTRE`.
    x, y : int
        Zero-based pixel of the centre.
    peak_snr : float
        S/N of that brightest pixel.
    """
    ny, nx = flux_map.shape
    significance = noise.snr_map(flux_map)
    significance[~np.isfinite(flux_map)] = np.nan
    ranking = _guarded(significance) if guard_edges else significance
    if not np.isfinite(ranking).any():
        ranking = significance
    brightest = int(np.nanargmax(ranking))
    peak_y, peak_x = divmod(brightest, nx)
    peak_snr = float(significance[peak_y, peak_x])
    if peak_snr > SNR_THRESHOLD:
        return PEAK, peak_x, peak_y, peak_snr
    return CENTRE, nx // 2, ny // 2, peak_snr


def _guarded(significance: np.ndarray) -> np.ndarray:
    """Mean S/N over 3×3 pixels, NaN within `EDGE_MARGIN` of the edge and next to blanks."""
    ny, nx = significance.shape
    ranking = ndimage.uniform_filter(significance, size=_SMOOTHING, mode="nearest")
    margin = min(EDGE_MARGIN, (min(ny, nx) - 1) // 4)
    if margin:
        ranking[:margin, :] = np.nan
        ranking[-margin:, :] = np.nan
        ranking[:, :margin] = np.nan
        ranking[:, -margin:] = np.nan
    return ranking


def cut_out(flux_map: np.ndarray, x: int, y: int, size: int = CUTOUT_SIZE) -> np.ndarray:
    """Copy the ``size × size`` window whose pixel ``(size//2, size//2)`` is map pixel ``(x, y)``.

    Parts of the window outside the map are NaN, like blanked pixels, so that
    `normalise` treats both the same way.
    """
    ny, nx = flux_map.shape
    half = size // 2
    window = np.full((size, size), np.nan, dtype=np.float32)
    x0, y0 = x - half, y - half
    src_x0, src_y0 = max(x0, 0), max(y0, 0)
    src_x1, src_y1 = min(x0 + size, nx), min(y0 + size, ny)
    if src_x1 > src_x0 and src_y1 > src_y0:
        window[src_y0 - y0 : src_y1 - y0, src_x0 - x0 : src_x1 - x0] = flux_map[
            src_y0:src_y1, src_x0:src_x1
        ]
    return window


def normalise(pixels: np.ndarray) -> np.ndarray:
    """Scale to median 0 and standard deviation 1 over the finite pixels; NaN becomes 0.

    Filling the missing pixels with 0 after scaling is filling them with the
    cut-out's median. A cut-out with no finite pixel or no spread becomes all
    zeros.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    finite = np.isfinite(pixels)
    out = np.zeros(pixels.shape, dtype=np.float32)
    if not finite.any():
        return out
    values = pixels[finite].astype(np.float64)
    median = float(np.median(values))
    spread = float(np.std(values))
    if spread > 0.0 and np.isfinite(spread):
        out[finite] = ((values - median) / spread).astype(np.float32)
    return out
