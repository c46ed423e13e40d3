"""The catalogue rows of one image product: ObsCore 1.1 values and the similarity record.

ObsCore (IVOA ObsCore 1.1, section 3 and table 5) describes a product by
what the FITS header says: where it is on the sky (``s_*``), when it was
observed (``t_*``), at which wavelengths (``em_*``), in which polarisation
(``pol_*``). This module derives each of those from a `FitsImage`, applies
the operator's metadata (which wins over the header), and names the product:

- ``obs_publisher_did``: the archive's own DID when the metadata gives one,
  else minted as ``ivo://{authority}/products?{name}`` (IVOA Identifiers
  2.0: authority, resource path, ``?`` and a local part), where ``name`` is
  the file name without ``.fits``/``.fits.gz``, every character outside
  ``[A-Za-z0-9._-]`` replaced by ``_`` (`product_key`, which was the URL key
  of products ingested before keys became digests of the DID);
- ``access_url``: the product's DataLink ``{links}`` response.

The URL key of ``/preview/{key}.png`` is chosen by ingest
(`model_training.ingest.identifiers`) and passed in.

Release date: real ALMA headers carry none. When the metadata gives none,
the operator's rule decides (``--release-default``,
`model_training.ingest.release_rule`): by default the observation date plus
12 months, ALMA's standard proprietary period, and NULL (proprietary)
without an observation date.

Images of other telescopes (optical plates, survey cut-outs) are described
by their own header: ``facility_name`` and ``instrument_name`` are TELESCOP
and INSTRUME, ``obs_collection`` is TELESCOP unless it names the configured
collection (or one other than the default was configured), ``o_ucd``
follows BUNIT (`unit_ucd`) and ``em_*`` a wavelength keyword
(`model_training.ingest.header_band`). Where the header says nothing, the
configured defaults are used and `header_fallbacks` says so, for a line of
the ingest report.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
from astropy import units
from astropy.time import Time

from tap_schema import Settings
from tap_schema.config import DEFAULT_COLLECTION
from tap_schema.release import naive_utc

from .cutout import Cutout
from .fits_image import PEAK_FLUX, FitsImage, pixel_to_icrs
from .release_rule import (
    PROPRIETARY_MONTHS,
    RELEASE_AFTER_PERIOD,
    default_release_date,
    release_by_rule,
)

__all__ = [
    "ALMA_BANDS_GHZ",
    "DATALINK_FORMAT",
    "DEFAULT_UCD",
    "PROPRIETARY_MONTHS",
    "access_url",
    "alma_bands",
    "default_release_date",
    "header_fallbacks",
    "minted_did",
    "obscore_row",
    "parse_date_obs",
    "preview_url",
    "product_key",
    "publisher_did",
    "similarity_image_row",
    "unit_ucd",
]

DATALINK_FORMAT = "application/x-votable+xml;content=datalink"
"""``access_format`` of a DataLink ``{links}`` response (DataLink 1.1, section 3)."""

DEFAULT_UCD = "phot.flux.density"
"""``o_ucd`` of an image whose BUNIT is missing or unknown (ALMA's Jy/beam)."""

ALMA_BANDS_GHZ: dict[str, tuple[float, float]] = {
    "1": (35.0, 50.0),
    "3": (84.0, 116.0),
    "4": (125.0, 163.0),
    "5": (163.0, 211.0),
    "6": (211.0, 275.0),
    "7": (275.0, 373.0),
    "8": (385.0, 500.0),
    "9": (602.0, 720.0),
    "10": (787.0, 950.0),
}
"""ALMA receiver bands and their frequency edges in GHz (Band 2 is not offered)."""

SPEED_OF_LIGHT = 299_792_458.0  # m/s
_MJD_EPOCH = datetime(1858, 11, 17)
_SECONDS_PER_DAY = 86_400.0
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
_OLD_FITS_DATE = re.compile(r"(\d\d)/(\d\d)/(\d\d)")
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d(\.\d{1,6})?)?")
_TIME_OF_DAY = re.compile(r"(\d\d?):(\d\d):(\d\d(?:\.\d*)?)")
# FITS 4.0 table 30 time scales, as astropy names them.
_TIME_SCALES = {
    "UTC": "utc",
    "UT": "utc",
    "GMT": "utc",
    "TAI": "tai",
    "IAT": "tai",
    "TT": "tt",
    "TDT": "tt",
    "ET": "tt",
    "TDB": "tdb",
    "TCG": "tcg",
    "TCB": "tcb",
    "UT1": "ut1",
}
_COUNT_UNITS = re.compile(r"^(counts?|cts?|adu|dn|data ?numbers?|electrons?|e-)(/s)?$")
_FITS_SUFFIX = re.compile(r"\.fits(\.gz)?$", re.IGNORECASE)
_STOKES_ORDER = ("I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX")


def product_key(file_name: str) -> str:
    """URL-safe name of a file: its name without the FITS suffix, sanitised.

    The local part of a minted DID; two files with the same name (``a b.fits``
    and ``a_b.fits``, or the same name in two folders) would mint one DID, and
    ingest refuses the second one.
    """
    stem = _FITS_SUFFIX.sub("", file_name)
    return _UNSAFE_KEY_CHARACTERS.sub("_", stem)


def publisher_did(settings: Settings, key: str) -> str:
    """``obs_publisher_did`` of a product: ``ivo://{authority}/products?{key}``."""
    return f"ivo://{settings.authority}/products?{key}"


def minted_did(settings: Settings, file_name: str) -> str:
    """Return the DID vosim gives a file for which the archive gave none."""
    return publisher_did(settings, product_key(file_name))


def access_url(settings: Settings, did: str) -> str:
    """URL of a product's DataLink response, its ObsCore ``access_url``."""
    return f"{settings.url_base}/datalink?ID={quote(did, safe='')}"


def preview_url(settings: Settings, key: str) -> str:
    """URL of a product's PNG preview."""
    return f"{settings.url_base}/preview/{key}.png"


def alma_bands(freq_min_hz: float | None, freq_max_hz: float | None) -> str | None:
    """ALMA band(s) overlapping a frequency range, e.g. ``'7'`` (space-separated if several).

    Real ALMA headers carry no band keyword; archives derive it from the
    frequency, as here. None if the range is unknown or in no band.
    """
    if freq_min_hz is None or freq_max_hz is None:
        return None
    low, high = freq_min_hz / 1e9, freq_max_hz / 1e9
    bands = [band for band, (lo, hi) in ALMA_BANDS_GHZ.items() if low < hi and high > lo]
    return " ".join(bands) or None


def parse_date_obs(value: str, time_obs: str | None = None, timesys: str | None = None) -> datetime:
    """Parse a FITS DATE-OBS into a naive UTC datetime.

    FITS 4.0 (section 9.1.1) allows ISO 8601 dates and date-times (read by
    astropy.time, in the time scale TIMESYS names), and, written before
    2000, ``DD/MM/YY`` for 19YY. A bare date takes its time of day from
    ``time_obs`` (TIME-OBS or UT), as headers of that time give it.

    Raises
    ------
    ValueError
        If it is none of these.
    """
    text = value.strip()
    old_form = _OLD_FITS_DATE.fullmatch(text)
    if old_form:
        day, month, year = (int(part) for part in old_form.groups())
        moment = datetime(1900 + year, month, day)
    else:
        moment = _fits_datetime(text, timesys)
    if "T" not in text and time_obs:
        moment += _time_of_day(time_obs)
    return moment


def _fits_datetime(text: str, timesys: str | None) -> datetime:
    """Read an ISO DATE-OBS: plain UTC dates (ALMA's) directly, others through astropy.time.

    astropy.time would be most of the time an ObsCore row of the fixture
    archive takes, for the same datetime.
    """
    scale = _TIME_SCALES.get((timesys or "UTC").strip().upper(), "utc")
    if scale == "utc" and _ISO_DATE.fullmatch(text):
        with suppress(ValueError):  # a leap second (23:59:60) is astropy's to read
            return datetime.fromisoformat(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecated '(UTC)' suffix, leap seconds
            moment = Time(text, format="fits", scale=scale).utc.to_datetime(
                leap_second_strict="silent"
            )
    except ValueError:
        # Not FITS, but what older vosim read: a 'Z' suffix or a space before the time.
        return naive_utc(datetime.fromisoformat(text[:-1] if text.endswith("Z") else text))
    return moment.replace(tzinfo=None)


def _time_of_day(text: str) -> timedelta:
    match = _TIME_OF_DAY.fullmatch(text.strip())
    if not match:
        return timedelta(0)
    hours, minutes, seconds = match.groups()
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))


def unit_ucd(bunit: str | None) -> str | None:
    """Return the ObsCore ``o_ucd`` (UCD1+) of a pixel unit, or None when unknown.

    Jy/beam and every other spectral flux density is ``phot.flux.density``
    (per steradian ``phot.flux.density.sb``), W/m² ``phot.flux``, counts and
    ADU ``phot.count``, magnitudes ``phot.mag``.
    """
    if not bunit:
        return None
    text = bunit.strip().lower()
    if _COUNT_UNITS.match(text.replace(" ", "")):
        return "phot.count"
    if "mag" in text:
        return "phot.mag"
    unit = _parse_unit(bunit)
    if unit is None:
        return None
    kind = str(unit.physical_type)
    if "spectral flux density" in kind:
        return "phot.flux.density"
    if kind in {"surface brightness", "spectral flux density per steradian"} or (
        "/ sr" in str(unit) and "Jy" in str(unit)
    ):
        return "phot.flux.density.sb"
    if "energy flux" in kind:
        return "phot.flux"
    return None


def obscore_row(
    image: FitsImage,
    *,
    file_size: int,
    settings: Settings,
    metadata: Mapping[str, Any] | None = None,
    release_default: str = RELEASE_AFTER_PERIOD,
) -> dict[str, Any]:
    """Build the ``ivoa.obscore`` row of an image product.

    Parameters
    ----------
    image
        The read FITS image.
    file_size
        Size of the FITS file in bytes (for ``access_estsize``).
    settings
        Authority, public URL and default collection of the archive.
    metadata
        The operator's values for this file, by ObsCore column name (already
        typed); they replace what the header says. ``obs_publisher_did``
        (checked by the metadata reader) replaces the minted DID.
        ``t_exptime`` also sets ``t_max`` and ``t_resolution`` unless those
        are given too; with ``t_min`` given the header's DATE-OBS is not read.
    release_default
        The rule for the release date when the metadata gives none
        (`model_training.ingest.release_rule`).

    Returns
    -------
    dict
        Column name to value; None for what is unknown.

    Raises
    ------
    ValueError
        If DATE-OBS is needed, present, and not a FITS date.
    """
    metadata = dict(metadata or {})
    did = metadata.get("obs_publisher_did") or minted_did(settings, image.path.name)
    row: dict[str, Any] = {
        "dataproduct_type": "cube" if image.image_kind == PEAK_FLUX else "image",
        "calib_level": 2,
        "obs_collection": _collection(image, settings),
        "obs_id": _FITS_SUFFIX.sub("", image.path.name),
        "obs_publisher_did": did,
        "access_url": access_url(settings, did),
        "access_format": DATALINK_FORMAT,
        "access_estsize": max(1, math.ceil(file_size / 1024)),
        "target_name": image.target_name,
        **_spatial(image),
        **_temporal(image, read_date_obs="t_min" not in metadata),
        **_spectral(image),
        "o_ucd": unit_ucd(image.bunit) or DEFAULT_UCD,
        **_polarisation(image),
        "facility_name": image.telescope,
        "instrument_name": image.instrument,
        "scientific_category": None,
        "proposal_id": None,
        "image_kind": image.image_kind,
        "band_list": _band_list(image),
        "obs_release_date": None,
    }
    row.update(metadata)
    if "t_max" not in metadata and row["t_min"] is not None:
        row["t_max"] = row["t_min"] + (row["t_exptime"] or 0.0) / _SECONDS_PER_DAY
    if "t_resolution" not in metadata:
        row["t_resolution"] = row["t_exptime"]
    if "obs_release_date" not in metadata:
        observed = _mjd_to_datetime(row["t_min"]) if row["t_min"] is not None else None
        row["obs_release_date"] = release_by_rule(observed, release_default)
    return row


def header_fallbacks(
    image: FitsImage, settings: Settings, metadata: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Say which ObsCore values of an image fell back to the defaults, one line each.

    The lines carry no file name or count, so that ingest can report each
    once with how many images it concerns. Values the metadata gives are no
    fallback.
    """
    given = set(metadata or {})
    lines = []
    if image.telescope is None and not {"facility_name", "obs_collection"} <= given:
        lines.append(
            "no TELESCOP: facility_name is empty and obs_collection the configured"
            f" {settings.collection!r}; give facility_name and obs_collection in the metadata file"
        )
    if unit_ucd(image.bunit) is None and "o_ucd" not in given:
        unit = f"BUNIT {image.bunit!r} is not a unit vosim knows" if image.bunit else "no BUNIT"
        lines.append(
            f"{unit}: o_ucd is the default {DEFAULT_UCD!r}; give o_ucd in the metadata file"
        )
    has_band = image.freq_min_hz is not None or image.band_wavelengths_m is not None
    if not has_band and not {"em_min", "em_max"} <= given:
        lines.append(
            "no spectral axis and no wavelength keyword (WAVELENG, PHOTPLAM, OBSFREQ, ...):"
            " em_min and em_max are empty; give them in the metadata file"
        )
    return tuple(lines)


def similarity_image_row(
    image: FitsImage, cutout: Cutout, *, did: str, key: str, settings: Settings
) -> dict[str, Any]:
    """Build the ``similarity.image`` row: which map, where the cut-out is, how it was chosen."""
    return {
        "obs_publisher_did": did,
        "image_kind": image.image_kind,
        "cutout_ra": cutout.ra,
        "cutout_dec": cutout.dec,
        "cutout_rule": cutout.rule,
        "peak_snr": _finite_or_none(cutout.peak_snr),
        "noise_rms": _finite_or_none(cutout.noise.rms),
        "preview_url": preview_url(settings, key),
    }


def _spatial(image: FitsImage) -> dict[str, Any]:
    """Centre, field of view (circle through the farthest corner) and footprint polygon."""
    ny, nx = image.shape
    corner_x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    corner_y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = pixel_to_icrs(
        image.wcs, np.append(corner_x, (nx - 1) / 2.0), np.append(corner_y, (ny - 1) / 2.0)
    )
    centre_ra, centre_dec = float(ra[4]), float(dec[4])
    corners_ra, corners_dec = ra[:4], dec[:4]
    radius = float(np.max(_separation_deg(centre_ra, centre_dec, corners_ra, corners_dec)))
    if _winds_anticlockwise_from_outside(corners_ra, corners_dec, centre_ra, centre_dec):
        corners_ra, corners_dec = corners_ra[::-1], corners_dec[::-1]
    vertices = " ".join(f"{r:.7f} {d:.7f}" for r, d in zip(corners_ra, corners_dec, strict=True))
    beam = (
        math.sqrt(image.beam_major_arcsec * image.beam_minor_arcsec)
        if image.beam_major_arcsec and image.beam_minor_arcsec
        else None
    )
    return {
        "s_ra": centre_ra,
        "s_dec": centre_dec,
        "s_fov": 2.0 * radius,
        "s_region": f"POLYGON ICRS {vertices}",
        "s_resolution": beam,
        "s_xel1": nx,
        "s_xel2": ny,
    }


def _parse_unit(bunit: str) -> units.UnitBase | None:
    """Parse BUNIT as astropy units, without its '/beam' or '/pixel' (Jy/beam is a flux density).

    AIPS and CASA write JY/BEAM in capitals, and optical headers A for
    Ångström (the unit string's A is otherwise the ampere).
    """
    text = re.sub(r"/\s*(beam|pixel|pix)\b", "", bunit.strip(), flags=re.IGNORECASE)
    text = re.sub(r"\bJY\b", "Jy", text)
    text = re.sub(r"/A$", "/Angstrom", text)
    for unit_format in ("fits", "generic"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return units.Unit(text, format=unit_format, parse_strict="raise")
        except (ValueError, TypeError):
            continue
    return None


def _collection(image: FitsImage, settings: Settings) -> str:
    """``obs_collection``: the configured one, or TELESCOP for another telescope's image.

    A collection other than the default was configured for everything
    ingested; the default ('ALMA') is kept only for images that name it.
    """
    telescope = image.telescope
    if telescope is None or settings.collection != DEFAULT_COLLECTION:
        return settings.collection
    return settings.collection if settings.collection.upper() in telescope.upper() else telescope


def _temporal(image: FitsImage, *, read_date_obs: bool = True) -> dict[str, Any]:
    t_min = None
    if read_date_obs and image.date_obs is not None:
        try:
            observed = parse_date_obs(image.date_obs, image.time_obs, image.timesys)
        except ValueError as error:
            raise ValueError(
                f"DATE-OBS {image.date_obs!r} is not a date the FITS standard allows"
                " (YYYY-MM-DD, YYYY-MM-DDThh:mm:ss[.s], or DD/MM/YY before 2000): fix the"
                " header, or give t_min (MJD or ISO date) and obs_release_date in the"
                " metadata file"
            ) from error
        t_min = _datetime_to_mjd(observed)
    return {
        "t_min": t_min,
        "t_max": t_min,
        "t_exptime": image.exptime_s,
        "t_resolution": image.exptime_s,
        "t_xel": 1,
    }


def _spectral(image: FitsImage) -> dict[str, Any]:
    """Wavelength limits from the frequency edges; resolving power ν / Δν of one channel."""
    low, high, width = image.freq_min_hz, image.freq_max_hz, image.channel_width_hz
    if low is None or high is None:
        shortest, longest = image.band_wavelengths_m or (None, None)
        return {"em_min": shortest, "em_max": longest, "em_res_power": None, "em_xel": 1}
    return {
        "em_min": SPEED_OF_LIGHT / high,
        "em_max": SPEED_OF_LIGHT / low,
        "em_res_power": (low + high) / 2.0 / width if width else None,
        "em_xel": image.n_channels,
    }


def _polarisation(image: FitsImage) -> dict[str, Any]:
    if not image.stokes:
        return {"pol_states": None, "pol_xel": None}
    states = sorted(
        set(image.stokes), key=lambda s: _STOKES_ORDER.index(s) if s in _STOKES_ORDER else 99
    )
    return {"pol_states": "/" + "/".join(states) + "/", "pol_xel": len(image.stokes)}


def _band_list(image: FitsImage) -> str | None:
    if image.telescope is None or "ALMA" not in image.telescope.upper():
        return None
    return alma_bands(image.freq_min_hz, image.freq_max_hz)


def _separation_deg(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Great-circle distance (haversine, accurate at small angles)."""
    ra0, dec0, ra, dec = (np.radians(v) for v in (ra0, dec0, ra, dec))
    hav = np.sin((dec - dec0) / 2) ** 2 + np.cos(dec0) * np.cos(dec) * np.sin((ra - ra0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0))))


def _winds_anticlockwise_from_outside(
    ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float
) -> bool:
    """Whether the corners wind the wrong way for DALI.

    DALI 1.1 (section 3.3.7) wants polygon vertices counter-clockwise as seen
    from the origin towards the sky, where east is left of north. In a plane
    with east to the right that is clockwise, a negative signed area.
    """
    east = ((ra - ra0 + 180.0) % 360.0 - 180.0) * math.cos(math.radians(dec0))
    north = dec - dec0
    area = np.sum(east * np.roll(north, -1) - np.roll(east, -1) * north)
    return bool(area > 0)


def _datetime_to_mjd(moment: datetime) -> float:
    return (moment - _MJD_EPOCH) / timedelta(days=1)


def _mjd_to_datetime(mjd: float) -> datetime:
    return _MJD_EPOCH + timedelta(days=mjd)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
