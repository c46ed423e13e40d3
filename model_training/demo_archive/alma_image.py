"""What the ALMA imaging pipeline makes of a sky model: a ``.pbcor`` image as CASA writes it.

One observation of a source differs from another in everything the telescope
and the pipeline choose: the band and frequency, the restoring beam (elliptical,
any position angle, from well resolved to barely resolved), the pixel scale
(the pipeline's five pixels across the beam's minor axis), the image size, the
pointing and the noise. The source itself keeps its size and position angle on
the sky, so that recognising two views as one source is the retrieval question
the paper's affine-invariant representation has to answer.

The image is made as interferometric imaging makes it: the sky model convolved
with the restoring beam (in Jy/beam), plus thermal noise that the same beam
correlates, divided by the primary-beam response (so noise grows towards the
edge) and blanked with NaN where that response falls below the pipeline's
``pblimit`` of 0.2.
"""

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .sky_models import Component, SkyModel

SPEED_OF_LIGHT = 299_792.458
"""In km/s."""

ALMA_BANDS: Mapping[int, tuple[float, float]] = {
    1: (35e9, 50e9),
    3: (84e9, 116e9),
    4: (125e9, 163e9),
    5: (163e9, 211e9),
    6: (211e9, 275e9),
    7: (275e9, 373e9),
    8: (385e9, 500e9),
    9: (602e9, 720e9),
    10: (787e9, 950e9),
}
"""Receiver band edges in Hz."""

BAND_WEIGHTS: Mapping[int, float] = {
    3: 0.24,
    4: 0.07,
    5: 0.04,
    6: 0.30,
    7: 0.23,
    8: 0.05,
    9: 0.05,
    10: 0.02,
}
"""How often each band is observed: mostly 3, 6 and 7, as in the ALMA archive."""

CONTINUUM_SENSITIVITY: Mapping[int, float] = {
    3: 9e-6,
    4: 10e-6,
    5: 16e-6,
    6: 13e-6,
    7: 22e-6,
    8: 55e-6,
    9: 150e-6,
    10: 300e-6,
}
"""Continuum rms in Jy/beam for one hour on source over 7.5 GHz (ALMA sensitivity
calculator, 43 antennas, typical weather), to give the noise its band dependence."""

CONTINUUM_BANDWIDTH = 7.5e9
"""Aggregate continuum bandwidth in Hz (four 1.875 GHz spectral windows)."""

FINEST_CHANNEL = 1.875e9 / 2**16
"""Correlator channel spacing in Hz; cube channels are power-of-two multiples of it."""

DISH_DIAMETER = 12.0
"""In metres: the 12-m array, whose primary beam FWHM is about 1.13 lambda / D."""

COARSEST_BEAM = 4.0
"""Largest restoring beam in arcsec: about configuration C-1 in band 3."""

PRIMARY_BEAM_LIMIT = 0.2
"""The pipeline's ``pblimit``: pixels with a lower primary-beam response are NaN."""

PIXELS_PER_BEAM = 5
"""ALMA pipeline practice: the cell size samples the beam's minor axis five times."""

SMALLEST_IMAGE = 96
LARGEST_IMAGE = 300
SMALL_IMAGE_FRACTION = 0.015
"""A few mitigated images are smaller than a 64-pixel cut-out, so ingest must cope."""

ALMA_SITE = (2225142.180269, -5440307.370349, -2481029.851874)
"""OBSGEO-X/Y/Z in metres, as CASA writes them for ALMA."""


def _is_five_smooth(n: int) -> bool:
    for prime in (2, 3, 5):
        while n % prime == 0:
            n //= prime
    return n == 1


_FFT_SIZES = tuple(n for n in range(2, LARGEST_IMAGE + 1, 2) if _is_five_smooth(n))
"""Even image sizes with no prime factor above 5, which FFTs handle fastest."""


@dataclass(frozen=True)
class RestoringBeam:
    """The elliptical Gaussian ``tclean`` restores with (FWHM in arcsec, BPA in degrees)."""

    major: float
    minor: float
    position_angle: float


@dataclass(frozen=True)
class SpectralSetup:
    """The frequency axis of an image: one wide continuum channel or a line cube.

    Parameters
    ----------
    band : int
        ALMA receiver band.
    frequencies : numpy.ndarray
        Channel centres in Hz (LSRK), in axis order.
    channel_width : float
        Signed channel spacing in Hz (``CDELT3``); for continuum, the bandwidth.
    rest_frequency : float
        ``RESTFRQ`` in Hz: the line's rest frequency, or the continuum frequency.
    line_frequency : float
        Observed (redshifted) frequency of the line centre; for continuum, the
        continuum frequency.
    spectral_window : str
        Spectral window(s) in the pipeline's product name, e.g. ``spw25``.
    """

    band: int
    frequencies: np.ndarray
    channel_width: float
    rest_frequency: float
    line_frequency: float
    spectral_window: str

    @property
    def is_cube(self) -> bool:
        """Whether this is a line cube (more than one channel)."""
        return self.frequencies.size > 1

    @property
    def velocities(self) -> np.ndarray:
        """Channel velocities in km/s relative to the line centre (radio definition)."""
        return SPEED_OF_LIGHT * (self.line_frequency - self.frequencies) / self.line_frequency

    @property
    def channel_velocity_width(self) -> float:
        """Channel width in km/s."""
        return SPEED_OF_LIGHT * abs(self.channel_width) / self.line_frequency


@dataclass(frozen=True)
class ImageGeometry:
    """Pixel grid of an image, centred on the phase centre.

    Parameters
    ----------
    pixel_scale : float
        Cell size in arcsec.
    size : int
        Pixels on a side (images are square, as the pipeline makes them).
    source_offset : tuple of float
        Source centre relative to the phase centre, (east, north) in arcsec:
        the pointing differs a little from one observation to another.
    """

    pixel_scale: float
    size: int
    source_offset: tuple[float, float]

    @property
    def reference_pixel(self) -> float:
        """``CRPIX1``/``CRPIX2``: CASA puts the phase centre at ``size // 2 + 1``."""
        return float(self.size // 2 + 1)


@dataclass(frozen=True)
class Observation:
    """Everything that makes one image of a source, as the header records it.

    Parameters
    ----------
    target_name : str
        ``OBJECT``.
    phase_centre : tuple of float
        (RA, Dec) of the pointing in degrees, ICRS.
    restoring_beam, spectral_setup, image_geometry
        See their classes.
    peak_snr : float
        Peak of the restored source over the rms at the phase centre.
    rms : float
        Noise per channel at the phase centre in Jy/beam.
    exposure_time : float
        Time on source in s (ObsCore's ``t_exptime``; CASA images do not carry it).
    date_obs : datetime
        Start of the observation (UTC).
    processing_date : datetime
        When the pipeline wrote the file (``DATE``).
    observer : str
        The PI's archive user name (``OBSERVER``).
    casa_version : str
        ``ORIGIN``.
    history : tuple of str
        ``HISTORY`` cards.
    """

    target_name: str
    phase_centre: tuple[float, float]
    restoring_beam: RestoringBeam
    spectral_setup: SpectralSetup
    image_geometry: ImageGeometry
    peak_snr: float
    rms: float
    exposure_time: float
    date_obs: datetime
    processing_date: datetime
    observer: str
    casa_version: str
    history: tuple[str, ...]


def primary_beam_fwhm(frequency: float) -> float:
    """Primary-beam FWHM of a 12-m antenna in arcsec: about 1.13 lambda / D."""
    wavelength = SPEED_OF_LIGHT * 1e3 / frequency
    return math.degrees(1.13 * wavelength / DISH_DIAMETER) * 3600.0


def band_of(frequency: float) -> int:
    """Return the ALMA band a frequency (Hz) falls in, as archives derive it from the header."""
    for band, (low, high) in ALMA_BANDS.items():
        if low <= frequency <= high:
            return band
    raise ValueError(f"{frequency / 1e9:.3f} GHz is outside every ALMA band")


RESOLVED_FRACTION = 0.8
"""Share of observations that resolve their source over several beams."""

RESOLVED_BEAMS = (0.15, 0.5)
"""Beam major axis over source extent for a resolved observation: 2 to 7 beams in radius."""

BARELY_RESOLVED_BEAMS = (0.5, 1.2)
"""The same for the others, from about two beams across to one."""


def draw_restoring_beam(rng: np.random.Generator, extent: float) -> RestoringBeam:
    """Draw a restoring beam; most observations resolve the source over several beams.

    The images astronomers search for by morphology (outflows, discs with
    rings, spirals, lensed arcs) are many beams across: ALMA observes a
    source at the resolution its science needs. So 80 % of the major axes
    are 0.15 to 0.5 times the source's extent and the others 0.5 to 1.2
    (log-uniform both), no coarser than the 12-m array's compact
    configurations give; the axis ratio is 1 to 2 (most near 1.3, as ALMA's
    beams at moderate elevation), the position angle random. The size of a
    source in pixels (five per beam) then follows the ratio alone, whatever
    its class.
    """
    low, high = RESOLVED_BEAMS if rng.random() < RESOLVED_FRACTION else BARELY_RESOLVED_BEAMS
    major = extent * math.exp(rng.uniform(math.log(low), math.log(high)))
    major = min(major, COARSEST_BEAM * rng.uniform(0.6, 1.0))
    axis_ratio = 1.0 + rng.beta(1.5, 3.0)
    return RestoringBeam(major, major / axis_ratio, rng.uniform(-90.0, 90.0))


def _band_preference(beam: RestoringBeam, band: int) -> float:
    """How well a band suits a restoring beam, given the images we can afford.

    A beam 12 to 38 times smaller than the primary beam gives an image of 96
    to 300 pixels that covers the primary beam down to ``pblimit``: preferring
    such bands keeps most images NaN-blanked at their edges like the
    pipeline's, without thousand-pixel images. Finer beams get a cut field
    (the pipeline's size mitigation); a beam coarser than a twelfth of the
    primary beam no 12-m configuration gives.
    """
    low, high = ALMA_BANDS[band]
    ratio = primary_beam_fwhm(0.5 * (low + high)) / beam.minor
    if ratio < 12.0:
        return 0.0
    return 1.0 if ratio <= 38.0 else 0.25


def _draw_band(rng: np.random.Generator, beam: RestoringBeam, bands: list[int]) -> int:
    weights = np.array([BAND_WEIGHTS[b] * _band_preference(beam, b) for b in bands])
    if weights.sum() == 0.0:
        weights = np.array([BAND_WEIGHTS[b] for b in bands])
    return int(rng.choice(bands, p=weights / weights.sum()))


def draw_continuum_setup(rng: np.random.Generator, beam: RestoringBeam) -> SpectralSetup:
    """Draw an aggregate continuum setup: one channel 7.5 GHz wide inside a band."""
    band = _draw_band(rng, beam, list(BAND_WEIGHTS))
    low, high = ALMA_BANDS[band]
    half = 0.5 * CONTINUUM_BANDWIDTH
    frequency = rng.uniform(low + half, high - half)
    windows = ["spw16_18_20_22", "spw17_19_21_23", "spw25_27_29_31"]
    return SpectralSetup(
        band=band,
        frequencies=np.array([frequency]),
        channel_width=CONTINUUM_BANDWIDTH,
        rest_frequency=frequency,
        line_frequency=frequency,
        spectral_window=str(rng.choice(windows)),
    )


def _observable_redshifts(
    rest_frequency: float, band: int, redshifts: tuple[float, float], margin: float
) -> tuple[float, float] | None:
    """Redshift interval that puts a line (with a cube's margin) inside a band."""
    low, high = ALMA_BANDS[band]
    z_low = max(redshifts[0], rest_frequency / (high * (1.0 - margin)) - 1.0)
    z_high = min(redshifts[1], rest_frequency / (low * (1.0 + margin)) - 1.0)
    return (z_low, z_high) if z_low < z_high else None


def draw_line_setup(
    rng: np.random.Generator,
    sky_model: SkyModel,
    beam: RestoringBeam,
    lines: Mapping[str, float],
    redshifts: tuple[float, float],
) -> SpectralSetup:
    """Draw a small line cube (10 to 30 channels) whose channels cover the whole line.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random draws of this observation.
    sky_model : SkyModel
        The source, for its velocity extent and line dispersion.
    beam : RestoringBeam
        The restoring beam, which makes some bands fit the image size better.
    lines : Mapping of str to float
        Candidate spectral lines: name to rest frequency in Hz.
    redshifts : tuple of float
        Range of the source's redshift (or LSR velocity over c).
    """
    line_span = 2.0 * (sky_model.velocity_extent + 3.0 * sky_model.line_dispersion)
    span = line_span * rng.uniform(1.1, 1.5)
    margin = 1.5 * span / SPEED_OF_LIGHT
    observable = {
        band: [
            (rest, interval)
            for rest in lines.values()
            if (interval := _observable_redshifts(rest, band, redshifts, margin)) is not None
        ]
        for band in BAND_WEIGHTS
    }
    band = _draw_band(rng, beam, [b for b, found in observable.items() if found])
    rest_frequency, (z_low, z_high) = observable[band][rng.integers(len(observable[band]))]
    line_frequency = rest_frequency / (1.0 + rng.uniform(z_low, z_high))
    wanted_channels = int(rng.integers(10, 31))
    wanted_width = line_frequency * span / SPEED_OF_LIGHT / wanted_channels
    channel_width = FINEST_CHANNEL * 2.0 ** round(math.log2(wanted_width / FINEST_CHANNEL))
    n_channels = int(np.clip(round(wanted_channels * wanted_width / channel_width), 10, 30))
    channel_width *= rng.choice([-1.0, 1.0])
    line_channel = 0.5 * (n_channels - 1) + rng.uniform(-2.0, 2.0)
    frequencies = line_frequency + (np.arange(n_channels) - line_channel) * channel_width
    spectral_window = f"spw{rng.choice([16, 18, 20, 22, 25, 27, 29, 31])}"
    return SpectralSetup(
        band, frequencies, float(channel_width), rest_frequency, line_frequency, spectral_window
    )


def _round_significant(value: float, digits: int) -> float:
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _fft_size(wanted: float, upper: int) -> int:
    """Return the smallest even 5-smooth size (fast FFTs) from ``wanted`` up to ``upper``."""
    fitting = [n for n in _FFT_SIZES if n <= upper]
    return next((n for n in fitting if n >= wanted), fitting[-1])


def draw_image_geometry(
    rng: np.random.Generator, beam: RestoringBeam, setup: SpectralSetup, extent: float
) -> ImageGeometry:
    """Draw the cell size, image size and pointing offset of one image.

    The image covers the primary beam down to ``pblimit`` (so its corners are
    NaN) unless that would exceed 300 pixels, where, like the pipeline's
    size mitigation, it is cut to a smaller field; a few images are smaller
    than 64 pixels.
    """
    pixel_scale = _round_significant(beam.minor / PIXELS_PER_BEAM, 2)
    offset = beam.major * rng.uniform(0.0, 1.5)
    direction = rng.uniform(0.0, 2.0 * math.pi)
    source_offset = (offset * math.sin(direction), offset * math.cos(direction))
    if rng.random() < SMALL_IMAGE_FRACTION:
        size = _fft_size(rng.integers(32, 63), 62)
    else:
        fwhm = primary_beam_fwhm(float(np.mean(setup.frequencies)))
        limit_radius = fwhm * math.sqrt(math.log(1.0 / PRIMARY_BEAM_LIMIT) / (4.0 * math.log(2.0)))
        covering = 2.1 * limit_radius / pixel_scale
        holding = 2.4 * (extent + offset) / pixel_scale
        wanted = max(covering, holding, SMALLEST_IMAGE)
        size = _fft_size(wanted, int(rng.integers(192, LARGEST_IMAGE + 1)))
    return ImageGeometry(pixel_scale, size, source_offset)


def _phase_centre_offsets(geometry: ImageGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (east, north) in arcsec of every pixel from the phase centre.

    RA grows to the left (``CDELT1 < 0``): the pixel index along the first
    axis increases towards the west.
    """
    pixel = np.arange(1, geometry.size + 1) - geometry.reference_pixel
    east = -pixel[np.newaxis, :] * geometry.pixel_scale
    north = pixel[:, np.newaxis] * geometry.pixel_scale
    return np.broadcast_arrays(east, north)


def _sky_cube(
    components: list[Component], setup: SpectralSetup, line_dispersion: float
) -> np.ndarray:
    """Sky brightness per channel, shape (channels, y, x), float32.

    Each channel sees the line through the correlator's spectral response,
    taken as a Gaussian as wide (FWHM) as the channel, which widens the local
    line profile.
    """
    if not setup.is_cube:
        continuum = sum(c.continuum * c.brightness for c in components)
        return np.asarray(continuum, dtype=np.float32)[np.newaxis]
    velocities = setup.velocities.astype(np.float32)[:, np.newaxis, np.newaxis]
    response = setup.channel_velocity_width / math.sqrt(8.0 * math.log(2.0))
    width = math.hypot(line_dispersion, response)
    shape = np.broadcast_shapes(*(np.shape(c.brightness) for c in components))
    cube = np.zeros((velocities.shape[0], *shape), dtype=np.float32)
    for component in components:
        velocity = np.asarray(component.velocity, dtype=np.float32)
        profile = np.exp(-0.5 * ((velocities - velocity) / np.float32(width)) ** 2)
        cube += np.float32(component.line) * component.brightness.astype(np.float32) * profile
    return cube


def _beam_sigmas(beam: RestoringBeam, pixel_scale: float) -> tuple[float, float]:
    """Gaussian sigmas of the restoring beam's axes in pixels."""
    to_sigma = 1.0 / (pixel_scale * math.sqrt(8.0 * math.log(2.0)))
    return beam.major * to_sigma, beam.minor * to_sigma


def _beam_transfer(beam: RestoringBeam, pixel_scale: float, size: int) -> np.ndarray:
    """Fourier transform of the unit-peak restoring beam, in ``rfft2`` layout.

    The analytic transform of an elliptical Gaussian equals the discrete one
    to float precision for beams five pixels across; its area
    ``2 pi sigma_a sigma_b`` turns a sky in Jy/pixel into an image in Jy/beam.
    """
    sigma_major, sigma_minor = _beam_sigmas(beam, pixel_scale)
    angle = math.radians(beam.position_angle)
    fx = np.fft.rfftfreq(size)[np.newaxis, :]
    fy = np.fft.fftfreq(size)[:, np.newaxis]
    along_major = -fx * math.sin(angle) + fy * math.cos(angle)
    along_minor = fx * math.cos(angle) + fy * math.sin(angle)
    exponent = (sigma_major * along_major) ** 2 + (sigma_minor * along_minor) ** 2
    area = 2.0 * math.pi * sigma_major * sigma_minor
    return (area * np.exp(-2.0 * math.pi**2 * exponent)).astype(np.float32)


def _restored_sky(sky: np.ndarray, beam: RestoringBeam, pixel_scale: float) -> np.ndarray:
    """Convolve the sky with the restoring beam (FFT, per channel)."""
    transfer = _beam_transfer(beam, pixel_scale, sky.shape[-1])
    return np.fft.irfft2(np.fft.rfft2(sky) * transfer, s=sky.shape[-2:])


def _correlated_noise(
    shape: tuple[int, int, int], beam: RestoringBeam, pixel_scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Thermal noise correlated by the restoring beam, unit rms, per channel.

    White noise convolved with the beam, made directly in Fourier space: the
    transform of white noise is white complex noise (variance ``N`` per
    frequency), so one inverse FFT suffices, and the frequencies the beam
    does not pass (below 1e-4, beyond about a third of a cycle per pixel for
    five pixels across the beam) need no random numbers at all. The result is
    divided by the square root of the summed squared beam
    (``pi sigma_a sigma_b``), the rms that convolution gives unit white noise.
    """
    n_channels, size, _ = shape
    sigma_major, sigma_minor = _beam_sigmas(beam, pixel_scale)
    scale = math.sqrt(0.5 * size * size / (math.pi * sigma_major * sigma_minor))
    transfer = _beam_transfer(beam, pixel_scale, size) * np.float32(scale)
    transfer[:, 0] *= np.float32(math.sqrt(2.0))  # irfft2 keeps half the power of this column
    passed = transfer > 1e-4 * transfer[0, 0]
    rows, columns = np.ix_(np.flatnonzero(passed.any(axis=1)), np.flatnonzero(passed.any(axis=0)))
    white = rng.standard_normal((n_channels, rows.size, columns.size, 2), dtype=np.float32)
    spectrum = np.zeros((n_channels, *transfer.shape), dtype=np.complex64)
    spectrum[:, rows, columns] = white.view(np.complex64)[..., 0] * transfer[rows, columns]
    return np.fft.irfft2(spectrum, s=(size, size))


def _source_window(
    geometry: ImageGeometry, beam: RestoringBeam, extent: float
) -> tuple[slice, slice]:
    """Find the square of the image (y, x) that holds the source and its restored wings.

    Every sky model has faded at twice its extent; three beams more keep the
    periodic FFT convolution from wrapping. Evaluating and convolving the sky
    there alone, rather than over the whole primary-beam field, is what makes
    thousands of images a minute possible.
    """
    half = (2.0 * extent + 3.0 * beam.major) / geometry.pixel_scale
    size = _fft_size(2.0 * half, geometry.size)
    source_east, source_north = geometry.source_offset
    centre_x = geometry.reference_pixel - 1.0 - source_east / geometry.pixel_scale
    centre_y = geometry.reference_pixel - 1.0 + source_north / geometry.pixel_scale
    start_x, start_y = (
        int(np.clip(round(centre - 0.5 * size), 0, geometry.size - size))
        for centre in (centre_x, centre_y)
    )
    return slice(start_y, start_y + size), slice(start_x, start_x + size)


def primary_beam(geometry: ImageGeometry, frequency: float) -> np.ndarray:
    """Gaussian primary-beam response around the phase centre.

    A line cube spans under 1 % in frequency, so one primary beam at its mean
    frequency serves every channel.
    """
    east, north = _phase_centre_offsets(geometry)
    fwhm = primary_beam_fwhm(frequency)
    return np.exp(-4.0 * math.log(2.0) * (east**2 + north**2) / fwhm**2).astype(np.float32)


def observe(sky_model: SkyModel, observation: Observation, rng: np.random.Generator) -> np.ndarray:
    """Make the primary-beam-corrected image, shape (Stokes, frequency, y, x), float32.

    The restored sky is scaled so that its peak is ``peak_snr`` times the rms
    at the phase centre; the noise, divided by the primary beam as ``impbcor``
    does, grows towards the edge, where the image is NaN below ``pblimit``.
    """
    geometry, setup = observation.image_geometry, observation.spectral_setup
    beam = observation.restoring_beam
    window = _source_window(geometry, beam, sky_model.extent)
    east, north = (offset[window] for offset in _phase_centre_offsets(geometry))
    source_east, source_north = geometry.source_offset
    components = sky_model.emission(east - source_east, north - source_north, geometry.pixel_scale)
    restored_sky = _restored_sky(
        _sky_cube(components, setup, sky_model.line_dispersion), beam, geometry.pixel_scale
    )
    shape = (setup.frequencies.size, geometry.size, geometry.size)
    response = primary_beam(geometry, float(np.mean(setup.frequencies)))
    image = _correlated_noise(shape, beam, geometry.pixel_scale, rng)
    image *= np.float32(observation.rms) / response
    peak_flux = observation.peak_snr * observation.rms
    image[(slice(None), *window)] += restored_sky * np.float32(peak_flux / restored_sky.max())
    image[:, response < PRIMARY_BEAM_LIMIT] = np.nan
    return image[np.newaxis]


def casa_keywords(observation: Observation) -> list[tuple[str, object]]:
    """List the keywords CASA's ``exportfits`` writes for a pipeline image, in its order.

    Axes in CASA's order (RA---SIN, DEC--SIN, FREQ, STOKES), an identity PC
    matrix, the phase centre at ``CRPIX = size // 2 + 1``, the restoring beam
    in degrees, and the observation keywords ALMA products carry.
    """
    beam, setup = observation.restoring_beam, observation.spectral_setup
    geometry = observation.image_geometry
    ra, dec = observation.phase_centre
    keywords: list[tuple[str, object]] = [
        ("BSCALE", 1.0),
        ("BZERO", 0.0),
        ("BMAJ", beam.major / 3600.0),
        ("BMIN", beam.minor / 3600.0),
        ("BPA", beam.position_angle),
        ("BTYPE", "Intensity"),
        ("OBJECT", observation.target_name),
        ("BUNIT", "Jy/beam"),
        ("EQUINOX", 2000.0),
        ("RADESYS", "ICRS"),
        ("LONPOLE", 180.0),
        ("LATPOLE", dec),
    ]
    keywords += [(f"PC{i}_{j}", 1.0 if i == j else 0.0) for i in range(1, 5) for j in range(1, 5)]
    keywords += [
        ("CTYPE1", "RA---SIN"),
        ("CRVAL1", ra),
        ("CDELT1", -geometry.pixel_scale / 3600.0),
        ("CRPIX1", geometry.reference_pixel),
        ("CUNIT1", "deg"),
        ("CTYPE2", "DEC--SIN"),
        ("CRVAL2", dec),
        ("CDELT2", geometry.pixel_scale / 3600.0),
        ("CRPIX2", geometry.reference_pixel),
        ("CUNIT2", "deg"),
        ("CTYPE3", "FREQ"),
        ("CRVAL3", float(setup.frequencies[0])),
        ("CDELT3", setup.channel_width),
        ("CRPIX3", 1.0),
        ("CUNIT3", "Hz"),
        ("CTYPE4", "STOKES"),
        ("CRVAL4", 1.0),
        ("CDELT4", 1.0),
        ("CRPIX4", 1.0),
        ("CUNIT4", ""),
        ("PV2_1", 0.0),
        ("PV2_2", 0.0),
        ("RESTFRQ", setup.rest_frequency),
        ("SPECSYS", "LSRK"),
        ("VELREF", 257),
        ("TELESCOP", "ALMA"),
        ("OBSERVER", observation.observer),
        ("DATE-OBS", observation.date_obs.strftime("%Y-%m-%dT%H:%M:%S.%f")),
        ("TIMESYS", "UTC"),
        ("OBSRA", ra),
        ("OBSDEC", dec),
        ("OBSGEO-X", ALMA_SITE[0]),
        ("OBSGEO-Y", ALMA_SITE[1]),
        ("OBSGEO-Z", ALMA_SITE[2]),
        ("INSTRUME", "ALMA"),
        ("DISTANCE", 0.0),
        ("DATE", observation.processing_date.strftime("%Y-%m-%dT%H:%M:%S.%f")),
        ("ORIGIN", observation.casa_version),
    ]
    return keywords


def _card(keyword: str, value: object) -> str:
    """One 80-character header card in FITS fixed format, numbers as CASA writes them."""
    if isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int):
        text = f"{value:>20d}"
    elif isinstance(value, float):
        text = f"{value:>20.12E}"
    else:
        quoted = "'" + f"{str(value).replace(chr(39), chr(39) * 2):<8}" + "'"
        if len(quoted) > 70:
            raise ValueError(f"{keyword} value too long for one FITS card: {value!r}")
        text = f"{quoted:<20}"
    return f"{keyword:<8}= {text}".ljust(80)


def _history_cards(text: str) -> list[str]:
    return [f"HISTORY {line}".ljust(80) for line in textwrap.wrap(text, 72)]


def write_casa_fits(path: Path, image: np.ndarray, observation: Observation) -> None:
    """Write an image (Stokes, frequency, y, x) as a single-HDU FITS file like ``exportfits``.

    The file is assembled directly (80-character cards, big-endian float32,
    2880-byte records) rather than through ``astropy.io.fits``, whose
    per-card checks would cost more than making the image; the tests read
    every file back with astropy and verify it.
    """
    structure: list[tuple[str, object]] = [("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 4)]
    structure += [(f"NAXIS{i + 1}", int(n)) for i, n in enumerate(reversed(image.shape))]
    structure.append(("EXTEND", True))
    cards = [_card(k, v) for k, v in structure + casa_keywords(observation)]
    for line in observation.history:
        cards += _history_cards(line)
    header = "".join(cards) + "END".ljust(80)
    data = image.astype(">f4")
    with path.open("wb") as stream:
        stream.write(header.ljust(-(-len(header) // 2880) * 2880).encode("ascii"))
        stream.write(data.data)
        stream.write(bytes(-data.nbytes % 2880))  # records are padded to 2880 bytes
