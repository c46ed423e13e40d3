"""The wavelengths of an image without a spectral axis, from its header keywords.

ALMA images carry their band as a frequency axis. Optical plates, survey
cut-outs and single-band radio maps have none; their headers name the
wavelength (or the observed frequency) in a keyword instead, with no
agreed name or unit: HST writes the pivot wavelength ``PHOTPLAM`` in
Ångström, SOHO ``WAVELNTH`` in Ångström, others ``WAVELENG`` in metres or
micrometres, radio surveys ``OBSFREQ`` in Hz. `header_band` reads the first
of these that the header has, taking the unit from the card's comment when
it names one, so that ObsCore's ``em_min``/``em_max`` are filled instead of
left empty.
"""

from __future__ import annotations

import math
import re

from astropy.io import fits

__all__ = ["FREQUENCY_KEYWORDS", "WAVELENGTH_KEYWORDS", "header_band"]

SPEED_OF_LIGHT = 299_792_458.0  # m/s

WAVELENGTH_KEYWORDS: dict[str, float | None] = {
    "WAVELENG": None,
    "WAVELEN": None,
    "LAMBDA": None,
    "WAVELNTH": 1e-10,
    "PHOTPLAM": 1e-10,
    "CENTWAVE": 1e-10,
    "EFFWAVE": 1e-10,
}
"""Wavelength keywords, in the order read, with their unit in metres when
the comment names none (None: guessed from the size of the value)."""

FREQUENCY_KEYWORDS: tuple[str, ...] = ("OBSFREQ",)
"""Observed-frequency keywords (Hz)."""

_UNIT_WORDS: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"angstr|\bA\b|Å"), 1e-10),
    (re.compile(r"\bnm\b|nanomet", re.IGNORECASE), 1e-9),
    (re.compile(r"micron|\bum\b|µm|micromet", re.IGNORECASE), 1e-6),
    (re.compile(r"\bmm\b|millimet", re.IGNORECASE), 1e-3),
    (re.compile(r"\bcm\b|centimet", re.IGNORECASE), 1e-2),
    (re.compile(r"\bm\b|\bmet(er|re)s?\b", re.IGNORECASE), 1.0),
)


def header_band(header: fits.Header) -> tuple[float, float] | None:
    """Return ``(shortest, longest)`` wavelength in metres that the header names, or None.

    A single wavelength gives a band of zero width (``em_min == em_max``);
    ``PHOTBW`` (Ångström, with ``PHOTPLAM``) widens it to ``λ ± PHOTBW/2``.
    """
    for key, default_unit in WAVELENGTH_KEYWORDS.items():
        value = _positive(header, key)
        if value is None:
            continue
        metres = value * _unit(header.comments[key], value, default_unit)
        half_width = (_positive(header, "PHOTBW") or 0.0) * 1e-10 / 2 if key == "PHOTPLAM" else 0.0
        return max(metres - half_width, metres / 2), metres + half_width
    for key in FREQUENCY_KEYWORDS:
        value = _positive(header, key)
        if value is not None:
            return SPEED_OF_LIGHT / value, SPEED_OF_LIGHT / value
    return None


def _unit(comment: str, value: float, default: float | None) -> float:
    """Return the wavelength unit the comment names, else the keyword's, else a guess.

    A bare value below 0.01 is in metres, below 1000 in micrometres (2.2 for
    K band, 100 for far infrared), above in Ångström (5500 for V band).
    """
    for pattern, metres in _UNIT_WORDS:
        if pattern.search(comment or ""):
            return metres
    if default is not None:
        return default
    if value < 0.01:
        return 1.0
    return 1e-6 if value < 1000 else 1e-10


def _positive(header: fits.Header, key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None
