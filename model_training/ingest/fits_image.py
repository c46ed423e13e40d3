"""Read an ALMA-style FITS image or cube into the 2-D map the similarity is learned on.

The paper trains on two kinds of maps: continuum images, and the peak-flux
map ('moment 8': the maximum along frequency) of each line cube. Archive
files come as CASA exports: four axes (RA, Dec, frequency, Stokes), the
non-celestial ones often of length one, NaN outside the primary-beam mask,
sometimes scaled integers or gzipped. `read_fits_image` turns any of these
into one 2-D map, its celestial WCS, the header facts ObsCore needs, and the
noise that the cut-out's S/N rule measures against.

Every way a file can be unusable raises `FitsReadError` with one sentence a
user can act on, so that ingest can report it as one line and go on.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import lzma
import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, WCSSUB_CELESTIAL, FITSFixedWarning, Wcsprm
from astropy.wcs.utils import wcs_to_celestial_frame

from .header_band import header_band
from .noise import NoiseEstimate, estimate_noise, radial_noise_profile

__all__ = [
    "CONTINUUM",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_PIXELS",
    "PEAK_FLUX",
    "FitsImage",
    "FitsReadError",
    "declared_pixels",
    "is_fits_name",
    "pixel_to_icrs",
    "read_fits_image",
]

CONTINUUM = "continuum"
"""``image_kind`` of a single-channel image: the map is the image itself."""

PEAK_FLUX = "peak_flux"
"""``image_kind`` of a cube: the map is its maximum along frequency ('moment 8')."""

FITS_SUFFIXES: tuple[str, ...] = (".fits", ".fits.gz")

# FITS Stokes codes (WCS Paper I, table 7) in the order ObsCore lists states.
_STOKES_NAMES = {
    1: "I",
    2: "Q",
    3: "U",
    4: "V",
    -1: "RR",
    -2: "LL",
    -3: "RL",
    -4: "LR",
    -5: "XX",
    -6: "YY",
    -7: "XY",
    -8: "YX",
}
MAX_PIXELS = 1 << 28
"""Most pixels (all axes) of an image HDU `read_fits_image` reads: 1 GiB of float32.

Checked on the header, before the data is read, so that a file declaring a
huge array (a decompression bomb: a few MB of gzipped zeros) is refused
without allocating it."""

MAX_DECOMPRESSED_BYTES = 1 << 28
"""Most bytes of HDU data `read_fits_image` decompresses from a compressed file: 256 MiB.

A gzipped (bzip2, xz, zip) file cannot be memory-mapped: astropy inflates
the data it reads into memory, so a compressed file is held to this lower
bound, checked on its headers as they are decompressed, before any data
is. An uncompressed file of the same image is read lazily up to
`MAX_PIXELS`; tile-compressed image HDUs are held to this bound too."""

_BLOCK = 2880
_MAX_HEADER_BLOCKS = 100
_DECOMPRESSED_MARGIN = 1 << 20  # headers and small extensions beside the data
_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZ"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_NOISE_VOXELS = 1 << 22
_MAX_NOISE_CHANNELS = 64
_DISTORTION_MARKERS = (b"A_ORDER", b"CPDIS", b"D2IMDIS", b"DP1", b"-SIP", b"-TPV")


class FitsReadError(Exception):
    """A FITS file that cannot be turned into a 2-D map, and why.

    Parameters
    ----------
    path
        The file.
    reason
        What is wrong and what to do about it, as one sentence.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class FitsImage:
    """The 2-D map of an image product and the header facts ObsCore needs.

    Parameters
    ----------
    path
        The FITS file.
    flux_map
        The 2-D map (float32, ``[y, x]`` with FITS row 0 at index 0): the
        image itself for continuum, the peak-flux map for a cube. NaN where
        the image is blanked.
    wcs
        The celestial WCS of `flux_map` (two pixel axes).
    image_kind
        `CONTINUUM` or `PEAK_FLUX`.
    noise
        The noise the S/N of a `flux_map` pixel is measured against. For a
        continuum image it is the image's own noise. For a cube it is the
        noise of one channel: the peak-flux map's pixels are maxima over many
        channels of noise, biased high, so their spread says nothing about
        how significant a peak is.
    n_channels
        Number of spectral channels (1 for continuum).
    freq_min_hz, freq_max_hz
        Frequency edges covered by the channels (the band for a continuum
        image, whose single channel is as wide as its bandwidth), or None when
        the file has no spectral axis or it cannot be read as frequency.
    channel_width_hz
        Width of one channel (the bandwidth for continuum), or None.
    stokes
        Polarisation states present along the Stokes axis (``("I",)`` for a
        total-intensity image); empty when the file has no Stokes axis.
    beam_major_arcsec, beam_minor_arcsec
        FWHM of the restoring beam (BMAJ/BMIN, or the median of a CASA
        per-channel ``BEAMS`` table), or None.
    target_name, date_obs, telescope, instrument, bunit
        OBJECT, DATE-OBS, TELESCOP, INSTRUME and BUNIT, or None.
    exptime_s
        EXPTIME when the header has one (ALMA images do not), or None.
    time_obs
        Time of day of the observation (TIME-OBS, else UT) when DATE-OBS is a
        bare date, as older optical headers give it; None otherwise.
    timesys
        TIMESYS, the time scale of DATE-OBS (UTC when absent), or None.
    band_wavelengths_m
        ``(shortest, longest)`` wavelength in metres that the header's
        wavelength or observed-frequency keywords give, for an image without a
        spectral axis (optical plates, survey cut-outs); None without them.
    """

    path: Path
    flux_map: np.ndarray
    wcs: WCS
    image_kind: str
    noise: NoiseEstimate
    n_channels: int
    freq_min_hz: float | None
    freq_max_hz: float | None
    channel_width_hz: float | None
    stokes: tuple[str, ...]
    beam_major_arcsec: float | None
    beam_minor_arcsec: float | None
    target_name: str | None
    date_obs: str | None
    telescope: str | None
    instrument: str | None
    bunit: str | None
    exptime_s: float | None
    time_obs: str | None = None
    timesys: str | None = None
    band_wavelengths_m: tuple[float, float] | None = None

    @property
    def is_alma(self) -> bool:
        """Whether TELESCOP names ALMA: the paper's rules were made for its images."""
        return self.telescope is not None and "ALMA" in self.telescope.upper()

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the map."""
        ny, nx = self.flux_map.shape
        return ny, nx


def is_fits_name(name: str) -> bool:
    """Whether a file name has one of the suffixes ingest reads (``.fits``, ``.fits.gz``)."""
    return name.lower().endswith(FITS_SUFFIXES)


def read_fits_image(
    path: Path | str,
    *,
    max_pixels: int = MAX_PIXELS,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> FitsImage:
    """Read the first image HDU of a FITS file into its 2-D map.

    Handles 2-D images and 3-D or 4-D images whose axes other than the two
    celestial ones are one spectral and one Stokes axis, in any order. The
    Stokes I plane is used when there are several; a spectral axis of more
    than one channel makes a cube, whose map is the peak-flux map
    (``nanmax`` along frequency). BSCALE/BZERO and BLANK are applied by
    astropy; gzipped files are read directly. astropy's informational
    `FITSFixedWarning` on CASA headers (OBSGEO-L/B/H derived from
    OBSGEO-X/Y/Z, DATE-OBS format) is silenced here.

    Parameters
    ----------
    path
        A ``.fits`` or ``.fits.gz`` file.
    max_pixels
        Refuse an image HDU whose header declares more pixels than this.
    max_decompressed_bytes
        Refuse a compressed file (or a tile-compressed image HDU) whose
        headers declare more data than this, up to and including the image
        read, before decompressing it.

    Returns
    -------
    FitsImage
        The map, its celestial WCS, noise and header facts.

    Raises
    ------
    FitsReadError
        If the file is not FITS, is truncated or corrupt, has no image HDU,
        no finite non-zero pixel, no celestial WCS, axes that are not two
        celestial plus at most one spectral and one Stokes axis, more than
        ``max_pixels`` pixels, or more than ``max_decompressed_bytes`` of
        compressed data.
    """
    path = Path(path)
    _check_decompressed_size(path, max_decompressed_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        # A truncated file is reported as FitsReadError; astropy's own warning
        # about it would only clutter the progress bar of a pool process.
        warnings.simplefilter("ignore", AstropyUserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of blanked pixels
        try:
            with fits.open(path, lazy_load_hdus=True) as hdul:
                return _read_hdul(path, hdul, max_pixels, max_decompressed_bytes)
        except FitsReadError:
            raise
        except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError) as error:
            raise FitsReadError(path, _why_unreadable(path, error)) from error


def pixel_to_icrs(
    wcs: WCS, x: np.ndarray | float, y: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """ICRS right ascension and declination (degrees) of zero-based pixel positions.

    Images already in ICRS (all ALMA images) take the fast path of plain WCS
    arithmetic; FK5, FK4 or Galactic images are transformed through astropy
    coordinates so that ObsCore positions are always ICRS.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        lon, lat = wcs.pixel_to_world_values(np.asarray(x, float), np.asarray(y, float))
        if wcs.wcs.lng != 0:
            lon, lat = lat, lon
        frame = wcs_to_celestial_frame(wcs)
        if frame.name != "icrs":
            from astropy.coordinates import SkyCoord

            icrs = SkyCoord(lon, lat, unit="deg", frame=frame).icrs
            lon, lat = icrs.ra.deg, icrs.dec.deg
    return np.asarray(lon, float) % 360.0, np.asarray(lat, float)


def _read_hdul(
    path: Path, hdul: fits.HDUList, max_pixels: int, max_decompressed_bytes: int
) -> FitsImage:
    hdu = _first_image_hdu(path, hdul, max_pixels, max_decompressed_bytes)
    header = hdu.header
    data = hdu.data
    ndim = data.ndim
    if not 2 <= ndim <= 4:
        raise FitsReadError(path, _unsupported_shape(data.shape))
    try:
        wcs = _parse_wcs(hdu, ndim)
    except (ValueError, KeyError, MemoryError) as error:
        raise FitsReadError(
            path,
            f"the header's WCS is invalid ({_one_line(error)}): fix the CTYPE, CRVAL, CDELT"
            " and PC/CD keywords",
        ) from error
    if not wcs.has_celestial:
        raise FitsReadError(
            path,
            "no celestial WCS: the image needs a pair of CTYPE keywords such as"
            " 'RA---SIN'/'DEC--SIN' with CRVAL, CRPIX and CDELT (or CD/PC); fix the header",
        )
    ctypes = [str(ctype) for ctype in wcs.wcs.ctype]
    fits_lengths = data.shape[::-1]
    celestial = sorted((wcs.wcs.lng, wcs.wcs.lat))
    spectral = [wcs.wcs.spec] if wcs.wcs.spec >= 0 else []
    stokes = [i for i, ctype in enumerate(ctypes) if ctype.upper().startswith("STOKES")]
    others = [i for i in range(ndim) if i not in celestial + spectral + stokes]
    if len(stokes) > 1 or any(fits_lengths[i] > 1 for i in others):
        raise FitsReadError(path, _unsupported_shape(data.shape, ctypes))

    stokes_names = _stokes_names(wcs, stokes[0], fits_lengths[stokes[0]]) if stokes else ()
    index: list[int | slice] = [slice(None)] * ndim
    for i in others:
        index[ndim - 1 - i] = 0
    if stokes:
        index[ndim - 1 - stokes[0]] = _stokes_i_plane(path, stokes_names)
    if spectral:
        index[ndim - 1 - spectral[0]] = slice(None)
    selected = data[tuple(index)]
    n_channels = fits_lengths[spectral[0]] if spectral else 1
    if n_channels > 1:
        # Remaining axes are (spectral, y, x) in some order; bring frequency first.
        spectral_position = sorted([*celestial, spectral[0]], reverse=True).index(spectral[0])
        cube = np.moveaxis(selected, spectral_position, 0)
        flux_map = np.fmax.reduce(cube, axis=0).astype(np.float32)
        noise = estimate_noise(_voxel_sample(cube))
        kind = PEAK_FLUX
    else:
        flux_map = np.array(selected, dtype=np.float32).reshape(
            fits_lengths[celestial[1]], fits_lengths[celestial[0]]
        )
        noise = estimate_noise(flux_map)
        kind = CONTINUUM
    flux_map[np.isinf(flux_map)] = np.nan
    _check_has_signal(path, flux_map)
    whole_rms = noise.rms if kind == CONTINUUM else None
    noise = dataclasses.replace(noise, profile=radial_noise_profile(flux_map, whole_rms))

    freq_min, freq_max, channel_width = (
        _frequency_coverage(wcs, spectral[0], n_channels) if spectral else (None, None, None)
    )
    beam_major, beam_minor = _beam_arcsec(header, hdul)
    return FitsImage(
        path=path,
        flux_map=flux_map,
        wcs=wcs.sub([WCSSUB_CELESTIAL]),
        image_kind=kind,
        noise=noise,
        n_channels=int(n_channels),
        freq_min_hz=freq_min,
        freq_max_hz=freq_max,
        channel_width_hz=channel_width,
        stokes=stokes_names,
        beam_major_arcsec=beam_major,
        beam_minor_arcsec=beam_minor,
        target_name=_text(header, "OBJECT"),
        date_obs=_text(header, "DATE-OBS"),
        telescope=_text(header, "TELESCOP"),
        instrument=_text(header, "INSTRUME"),
        bunit=_text(header, "BUNIT"),
        exptime_s=_number(header, "EXPTIME"),
        time_obs=_text(header, "TIME-OBS") or _text(header, "UT"),
        timesys=_text(header, "TIMESYS"),
        band_wavelengths_m=None if freq_min is not None else header_band(header),
    )


def _parse_wcs(hdu: fits.hdu.base.ExtensionHDU, ndim: int) -> WCS:
    """Parse the WCS of an image HDU with wcslib, straight from the header bytes.

    ``WCS(header)`` converts the astropy header to text and back three times,
    verifying every card; for a CASA header that is about 5 ms, most of an
    image's ingest time. wcslib's own parser (`Wcsprm`) reads the raw header
    in a fraction of a millisecond and gives the same transformation. Headers
    this shortcut does not cover (tile-compressed images, SIP or lookup-table
    distortions, fewer WCS axes than data axes) take the ordinary route.
    """
    if not isinstance(hdu, fits.CompImageHDU):
        info = hdu.fileinfo()
        stream = info["file"]
        stream.seek(info["hdrLoc"])
        raw = stream.read(info["datLoc"] - info["hdrLoc"])
        if not any(marker in raw for marker in _DISTORTION_MARKERS):
            wcsprm = Wcsprm(raw, warnings=False)
            if wcsprm.naxis == ndim:
                wcsprm.fix()  # what WCS(header) does too: units, OBSGEO, dates
                wcs = WCS(naxis=ndim)
                wcs.wcs = wcsprm
                wcs.wcs.set()
                return wcs
    return WCS(hdu.header, naxis=ndim)


def _voxel_sample(cube: np.ndarray) -> np.ndarray:
    """Subsample a cube's voxels regularly (at most 64 channels and about 4 million voxels).

    Taken with strides over channels and pixels, so a memory-mapped cube of
    many gigabytes is never copied whole just to estimate its noise; spread
    over many channels, so that line channels stay a minority.
    """
    n_channels, ny, nx = cube.shape
    channel_step = max(1, math.ceil(n_channels / _MAX_NOISE_CHANNELS))
    kept_channels = math.ceil(n_channels / channel_step)
    pixel_step = max(1, math.ceil(math.sqrt(kept_channels * ny * nx / _MAX_NOISE_VOXELS)))
    return np.asarray(cube[::channel_step, ::pixel_step, ::pixel_step], dtype=np.float32)


def declared_pixels(header: fits.Header) -> int:
    """Return the number of pixels a header's NAXISn declare (0 for NAXIS = 0)."""
    count = 1
    for axis in range(1, int(header.get("NAXIS", 0)) + 1):
        count *= max(int(header.get(f"NAXIS{axis}", 0)), 0)
    return count if header.get("NAXIS", 0) else 0


def _first_image_hdu(
    path: Path, hdul: fits.HDUList, max_pixels: int, max_decompressed_bytes: int
) -> fits.hdu.base.ExtensionHDU:
    for hdu in hdul:
        if not hdu.is_image or hdu.header.get("NAXIS", 0) <= 0:
            continue
        pixels = declared_pixels(hdu.header)
        if pixels > max_pixels:
            raise FitsReadError(
                path,
                f"the image has {pixels} pixels, more than the {max_pixels} this service reads:"
                " cut out or bin the region of interest first",
            )
        if isinstance(hdu, fits.CompImageHDU):
            inflated = pixels * abs(int(hdu.header.get("BITPIX", 8))) // 8
            if inflated > max_decompressed_bytes:
                what = f"declares {inflated} bytes of image data"
                raise FitsReadError(path, _too_much_to_decompress(what, max_decompressed_bytes))
        if hdu.data is not None:
            return hdu
    raise FitsReadError(
        path,
        "no HDU with image data (only empty headers or tables): export the image or"
        " cube itself, e.g. with CASA exportfits",
    )


def _check_decompressed_size(path: Path, limit: int) -> None:
    """Refuse a compressed file that declares, or decompresses to, more than ``limit`` bytes.

    The headers are read as the file is decompressed, in order, up to the
    first image HDU with pixels (the one `read_fits_image` reads), and the
    data they declare is added up before any of it is decompressed: a few
    MB of gzipped zeros declaring a 16384² image is refused in
    milliseconds. The rest is then decompressed a chunk at a time and
    counted, as astropy would otherwise scan a flood of zeros behind a small
    image for its next header, in memory. Anything unreadable is left to
    astropy to report.
    """
    try:
        stream = _decompressed_stream(path)
    except (OSError, EOFError, zipfile.BadZipFile):
        return
    if stream is None:
        return
    with stream:
        try:
            _check_declared_data(path, stream, limit)
            if _skip(stream, limit + _DECOMPRESSED_MARGIN - stream.tell() + 1):
                most = limit + _DECOMPRESSED_MARGIN
                raise FitsReadError(
                    path, _too_much_to_decompress(f"decompresses to over {most} bytes", limit)
                )
        except (OSError, EOFError, ValueError, lzma.LZMAError, zipfile.BadZipFile):
            return


def _check_declared_data(path: Path, stream: BinaryIO, limit: int) -> None:
    """Add up the data the headers declare, up to the first image with pixels."""
    declared = 0
    while (header := _next_header(stream)) is not None:
        size = _data_bytes(header)
        declared += size
        if declared > limit:
            what = f"declares {declared} bytes of data"
            raise FitsReadError(path, _too_much_to_decompress(what, limit))
        if _is_image_with_pixels(header):
            return
        _skip(stream, -(-size // _BLOCK) * _BLOCK)  # a non-image HDU's data


def _skip(stream: BinaryIO, size: int) -> bool:
    """Decompress and drop up to ``size`` bytes, a chunk at a time; whether all were there."""
    while size > 0:
        chunk = stream.read(min(size, 1 << 20))
        if not chunk:
            return False
        size -= len(chunk)
    return True


def _decompressed_stream(path: Path) -> BinaryIO | None:
    """Open the decompressed bytes of a file astropy would decompress (by its magic), else None."""
    with path.open("rb") as file:
        magic = file.read(6)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rb")
    if magic.startswith(_BZIP2_MAGIC):
        return bz2.open(path, "rb")
    if magic.startswith(_XZ_MAGIC):
        return lzma.open(path, "rb")
    if magic.startswith(_ZIP_MAGIC):
        with zipfile.ZipFile(path) as archive:  # the member keeps the file open
            return archive.open(archive.infolist()[0])
    return None


def _next_header(stream: BinaryIO) -> fits.Header | None:
    """Read the next header from a stream, block by block up to its END card; None at the end."""
    text = b""
    for _ in range(_MAX_HEADER_BLOCKS):
        block = stream.read(_BLOCK)
        if len(block) < _BLOCK or not block.strip(b"\0 "):
            return None
        text += block
        if any(block[card : card + 80].rstrip() == b"END" for card in range(0, _BLOCK, 80)):
            return fits.Header.fromstring(text.decode("ascii", errors="replace"))
    return None


def _data_bytes(header: fits.Header) -> int:
    """Bytes of data a header declares (FITS 4.0, 4.4.1.1), and of a tile-compressed image."""
    if header.get("ZIMAGE") is True:
        pixels = declared_pixels(_zimage_axes(header))
        return max(pixels * abs(int(header.get("ZBITPIX", 8))) // 8, _standard_data_bytes(header))
    return _standard_data_bytes(header)


def _standard_data_bytes(header: fits.Header) -> int:
    naxis = int(header.get("NAXIS", 0))
    if naxis <= 0:
        return 0
    axes = [max(int(header.get(f"NAXIS{axis}", 0)), 0) for axis in range(1, naxis + 1)]
    if header.get("GROUPS") is True and axes[0] == 0:
        axes = axes[1:]  # random groups: NAXIS1 = 0 carries no data
    count = math.prod(axes)
    groups = max(int(header.get("GCOUNT", 1)), 1)
    extra = max(int(header.get("PCOUNT", 0)), 0)
    return abs(int(header.get("BITPIX", 8))) // 8 * groups * (extra + count)


def _zimage_axes(header: fits.Header) -> fits.Header:
    axes = fits.Header()
    axes["NAXIS"] = int(header.get("ZNAXIS", 0))
    for axis in range(1, axes["NAXIS"] + 1):
        axes[f"NAXIS{axis}"] = int(header.get(f"ZNAXIS{axis}", 0))
    return axes


def _is_image_with_pixels(header: fits.Header) -> bool:
    is_image = "SIMPLE" in header or header.get("XTENSION") == "IMAGE"
    is_image = is_image or header.get("ZIMAGE") is True
    return is_image and _data_bytes(header) > 0


def _too_much_to_decompress(what: str, limit: int) -> str:
    """Say why a compressed file is over the limit (``what``: by how much), as a report line."""
    return (
        f"the file is compressed and {what}, more than the {limit} bytes of data read from a"
        " compressed file (it is held in memory): decompress it first (gunzip), as an"
        " uncompressed file is read without loading it whole"
    )


def _check_has_signal(path: Path, flux_map: np.ndarray) -> None:
    finite = np.isfinite(flux_map)
    if not finite.any():
        raise FitsReadError(
            path,
            "every pixel is NaN or blank: there is nothing to cut out; check the mask"
            " used when the image was exported",
        )
    if not np.any(flux_map[finite]):
        raise FitsReadError(
            path,
            "every pixel is zero: the image is empty; check that imaging produced"
            " flux (e.g. not an empty model or residual of a failed clean)",
        )


def _unsupported_shape(shape: tuple[int, ...], ctypes: list[str] | None = None) -> str:
    axes = f" with axes {ctypes}" if ctypes else ""
    return (
        f"unsupported image shape {tuple(shape)}{axes}: vosim reads 2-D images and 3-D or"
        " 4-D images whose axes besides RA/Dec are one frequency and one Stokes axis;"
        " export the image (or one Stokes/plane of it) in that form"
    )


def _axis_world_values(wcs: WCS, axis: int, pixels: np.ndarray) -> np.ndarray:
    """World values along one axis at the given pixels, all other pixel axes at 0."""
    coords = [np.zeros_like(pixels) for _ in range(wcs.pixel_n_dim)]
    coords[axis] = pixels
    return np.asarray(wcs.pixel_to_world_values(*coords)[axis], dtype=float)


def _stokes_names(wcs: WCS, axis: int, length: int) -> tuple[str, ...]:
    codes = _axis_world_values(wcs, axis, np.arange(length, dtype=float))
    return tuple(_STOKES_NAMES.get(round(float(code)), f"S{round(float(code))}") for code in codes)


def _stokes_i_plane(path: Path, names: tuple[str, ...]) -> int:
    if len(names) <= 1:
        return 0
    if "I" in names:
        return names.index("I")
    raise FitsReadError(
        path,
        f"the Stokes axis holds {'/'.join(names)} but no total intensity (I): export"
        " the Stokes I image for similarity search",
    )


def _frequency_coverage(
    wcs: WCS, axis: int, n_channels: int
) -> tuple[float | None, float | None, float | None]:
    """Frequency edges of all channels and the width of one, from the spectral axis.

    Non-frequency spectral axes (velocity, wavelength) are translated to
    frequency by wcslib when the header gives what that needs (RESTFRQ);
    otherwise the coverage is unknown and ObsCore's em_* columns stay empty.
    """
    edges = np.arange(n_channels + 1, dtype=float) - 0.5
    if wcs.wcs.ctype[axis].upper().startswith("FREQ"):
        freqs = _axis_world_values(wcs, axis, edges)
    else:
        spectral_wcs = wcs.sub([axis + 1])
        try:
            spectral_wcs.wcs.sptr("FREQ-???")
        except Exception:  # wcslib raises many kinds; coverage is optional
            return None, None, None
        freqs = np.asarray(spectral_wcs.pixel_to_world_values(edges), dtype=float)
    if not np.all(np.isfinite(freqs)) or np.any(freqs <= 0):
        return None, None, None
    width = float(np.median(np.abs(np.diff(freqs))))
    return float(freqs.min()), float(freqs.max()), width if width > 0 else None


def _beam_arcsec(header: fits.Header, hdul: fits.HDUList) -> tuple[float | None, float | None]:
    """Restoring-beam FWHM: BMAJ/BMIN (degrees), else CASA's per-channel BEAMS table (arcsec)."""
    major, minor = _number(header, "BMAJ"), _number(header, "BMIN")
    if major and minor:
        return major * 3600.0, minor * 3600.0
    for hdu in hdul:
        if hdu.name == "BEAMS" and hdu.data is not None and len(hdu.data):
            columns = {name.upper(): name for name in hdu.data.columns.names}
            if "BMAJ" in columns and "BMIN" in columns:
                unit = (hdu.columns[columns["BMAJ"]].unit or "arcsec").strip().lower()
                scale = 3600.0 if unit.startswith("deg") else 1.0
                return (
                    float(np.median(hdu.data[columns["BMAJ"]])) * scale,
                    float(np.median(hdu.data[columns["BMIN"]])) * scale,
                )
    return None, None


def _text(header: fits.Header, key: str) -> str | None:
    value = header.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(header: fits.Header, key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _why_unreadable(path: Path, error: Exception) -> str:
    """Name the likely cause of an astropy read failure in words a user can act on."""
    try:
        size = path.stat().st_size
    except OSError:
        return "the file cannot be read (it vanished or permissions forbid it)"
    if size == 0:
        return "the file is empty (0 bytes): re-download or re-export it"
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as stream:
            start = stream.read(30)
    except (OSError, EOFError):
        return "the gzip stream is corrupt or truncated: re-download the file or gunzip it to check"
    if not start.startswith(b"SIMPLE  ="):
        return (
            "not a FITS file: it does not start with a SIMPLE card (is it a text or HTML"
            " page saved under a .fits name?); replace it with the real FITS file"
        )
    detail = _one_line(error)
    return f"truncated or corrupt FITS data ({detail}): re-download or re-export the file"


def _one_line(error: Exception) -> str:
    """Put an error's message on one line, without wcslib's 'ERROR n in f() at …' lines."""
    lines = [line.strip().rstrip(".") for line in str(error).splitlines()]
    kept = [line for line in lines if line and not line.startswith("ERROR ")]
    return "; ".join(kept or lines)
