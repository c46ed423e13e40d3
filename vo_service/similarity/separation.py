"""Angular distances on the sky for ``MIN_SEPARATION``: other targets only.

Repeated observations of one field fill the top of a ranking (the same
source, observed again, looks most like itself), while astronomers want
*other* objects that look alike. ``MIN_SEPARATION`` (arcsec) therefore
drops every candidate whose cut-out centre lies closer than that to the
cut-out centre of any selected image; Stein et al. (2021) do the same for
their Legacy Survey similarity search, within 5 pixels.

**Exact on the sphere.** Positions are held as unit vectors
``(cos δ cos α, cos δ sin α, sin δ)``, so right ascension has no seam at
0°/360° and the poles are points like any other. Candidates are found with
a k-d tree on those vectors (`scipy.spatial.cKDTree`): the chord
``2 sin(θ/2)`` grows monotonically with the angle ``θ``, so a ball of that
chord holds exactly the points within ``θ``. The tree's ball is slightly
generous (rounding); each point it returns is then checked with the
angle itself, ``atan2(|a × b|, a · b)``, which, unlike ``acos(a · b)`` or
the haversine, keeps full precision at every separation from 0 to 180°.
A result is kept when its separation is at least ``MIN_SEPARATION``.

Images without a known position (no celestial WCS) are never dropped, and
a selected image without one drops nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["ARCSEC_PER_DEGREE", "SkyPositions", "angular_separation", "unit_vectors"]

ARCSEC_PER_DEGREE = 3600.0

_BALL_MARGIN = 1e-12
"""Widening of the tree's ball (in chord units) so that rounding never misses a point."""


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Return the ``(n, 3)`` unit vectors of ICRS positions in degrees (NaN rows where unknown)."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def angular_separation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between unit vectors ``a`` and ``b`` (broadcast), ``atan2(|a×b|, a·b)``."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def _chord(angle_deg: float) -> float:
    return 2.0 * math.sin(math.radians(min(angle_deg, 180.0)) / 2.0)


class SkyPositions:
    """The cut-out centres of an index's images, ready for "which lie near these?".

    Parameters
    ----------
    ra_deg, dec_deg
        ICRS position of each image in degrees, None or NaN where unknown.
    """

    def __init__(
        self,
        ra_deg: Sequence[float | None] | np.ndarray,
        dec_deg: Sequence[float | None] | np.ndarray,
    ) -> None:
        ra = np.array([np.nan if v is None else v for v in ra_deg], dtype=np.float64)
        dec = np.array([np.nan if v is None else v for v in dec_deg], dtype=np.float64)
        self.vectors = unit_vectors(ra, dec)
        self.known = np.flatnonzero(np.isfinite(self.vectors).all(axis=1))
        self._tree = cKDTree(self.vectors[self.known]) if len(self.known) else None

    def __len__(self) -> int:
        return len(self.vectors)

    def near(self, centres: np.ndarray, min_separation_deg: float) -> np.ndarray:
        """Mark the images closer than ``min_separation_deg`` to any of the vectors ``centres``.

        Parameters
        ----------
        centres
            ``(m, 3)`` unit vectors (rows with NaN are ignored).
        min_separation_deg
            The separation a kept image must at least have, in degrees.

        Returns
        -------
        numpy.ndarray
            Boolean mask over the images, True for those to drop.
        """
        mask = np.zeros(len(self), dtype=bool)
        centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
        centres = centres[np.isfinite(centres).all(axis=1)]
        if self._tree is None or min_separation_deg <= 0.0 or not len(centres):
            return mask
        radius = _chord(min_separation_deg) + _BALL_MARGIN
        for centre, found in zip(
            centres, self._tree.query_ball_point(centres, radius), strict=True
        ):
            if not found:
                continue
            rows = self.known[np.asarray(found, dtype=np.int64)]
            closer = angular_separation(self.vectors[rows], centre) < min_separation_deg
            mask[rows[closer]] = True
        return mask
