"""Small FITS files shaped like ALMA's CASA exports, built with astropy for the tests."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits

DEFAULT_RA = 83.80
DEFAULT_DEC = -5.40


def casa_header(
    nx: int,
    ny: int,
    *,
    n_channels: int = 1,
    freq_hz: float = 345.0e9,
    channel_width_hz: float = 7.5e9,
    stokes: tuple[int, ...] = (1,),
    extra_axes: tuple[str, ...] = ("FREQ", "STOKES"),
    ra: float = DEFAULT_RA,
    dec: float = DEFAULT_DEC,
    cell_arcsec: float = 0.05,
    bmaj_arcsec: float | None = 0.30,
    bmin_arcsec: float | None = 0.20,
    target: str = "HH212",
    date_obs: str | None = "2016-10-01T04:23:11.000",
    telescope: str = "ALMA",
) -> fits.Header:
    """The header CASA's exportfits writes, reduced to what matters here.

    ``extra_axes`` orders the FREQ and STOKES axes (3 and 4, either way round,
    or only one of them, or none for a plain 2-D image).
    """
    header = fits.Header()
    header["BITPIX"] = -32
    header["NAXIS"] = 2 + len(extra_axes)
    header["NAXIS1"] = nx
    header["NAXIS2"] = ny
    lengths = {"FREQ": n_channels, "STOKES": len(stokes)}
    for i, name in enumerate(extra_axes, start=3):
        header[f"NAXIS{i}"] = lengths[name]
    if bmaj_arcsec is not None and bmin_arcsec is not None:
        header["BMAJ"] = bmaj_arcsec / 3600.0
        header["BMIN"] = bmin_arcsec / 3600.0
        header["BPA"] = -80.0
    header["BTYPE"] = "Intensity"
    header["OBJECT"] = target
    header["BUNIT"] = "Jy/beam"
    header["RADESYS"] = "ICRS"
    header["LONPOLE"] = 180.0
    header["LATPOLE"] = dec
    header["CTYPE1"] = "RA---SIN"
    header["CRVAL1"] = ra
    header["CDELT1"] = -cell_arcsec / 3600.0
    header["CRPIX1"] = nx // 2 + 1.0
    header["CUNIT1"] = "deg"
    header["CTYPE2"] = "DEC--SIN"
    header["CRVAL2"] = dec
    header["CDELT2"] = cell_arcsec / 3600.0
    header["CRPIX2"] = ny // 2 + 1.0
    header["CUNIT2"] = "deg"
    for i, name in enumerate(extra_axes, start=3):
        if name == "FREQ":
            header[f"CTYPE{i}"] = "FREQ"
            header[f"CRVAL{i}"] = freq_hz
            header[f"CDELT{i}"] = channel_width_hz
            header[f"CRPIX{i}"] = 1.0
            header[f"CUNIT{i}"] = "Hz"
        else:
            header[f"CTYPE{i}"] = "STOKES"
            header[f"CRVAL{i}"] = float(stokes[0])
            header[f"CDELT{i}"] = float(stokes[1] - stokes[0]) if len(stokes) > 1 else 1.0
            header[f"CRPIX{i}"] = 1.0
            header[f"CUNIT{i}"] = ""
    header["PV2_1"] = 0.0
    header["PV2_2"] = 0.0
    header["RESTFRQ"] = freq_hz
    header["SPECSYS"] = "LSRK"
    header["TELESCOP"] = telescope
    header["OBSERVER"] = "vosim"
    if date_obs is not None:
        header["DATE-OBS"] = date_obs
    header["TIMESYS"] = "UTC"
    header["OBSRA"] = ra
    header["OBSDEC"] = dec
    # CASA writes the array position as geocentric X/Y/Z only; astropy then
    # derives OBSGEO-L/B/H and says so with a FITSFixedWarning.
    header["OBSGEO-X"] = 2.225142180269e06
    header["OBSGEO-Y"] = -5.440307370349e06
    header["OBSGEO-Z"] = -2.481029851874e06
    header["INSTRUME"] = "ALMA"
    header["ORIGIN"] = "CASA 6.5.4-9"
    return header


def gaussian_source(
    nx: int, ny: int, x0: float, y0: float, sigma_px: float, amplitude: float
) -> np.ndarray:
    """A 2-D Gaussian of the given peak amplitude on a ``(ny, nx)`` grid."""
    y, x = np.mgrid[0:ny, 0:nx]
    return amplitude * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2.0 * sigma_px**2))


def noise_map(nx: int, ny: int, rms: float = 1.0e-3, seed: int = 1) -> np.ndarray:
    """Gaussian noise of the given rms on a ``(ny, nx)`` grid."""
    return np.random.default_rng(seed).normal(0.0, rms, size=(ny, nx))


def write_image(path: Path, plane: np.ndarray, **header_options: object) -> Path:
    """Write a 2-D plane as a CASA-style 4-D image (axes RA, Dec, FREQ, STOKES by default)."""
    ny, nx = plane.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    header = casa_header(nx, ny, **header_options)
    extra = header["NAXIS"] - 2
    data = np.asarray(plane, dtype=np.float32).reshape((1,) * extra + (ny, nx))
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path


def write_cube(path: Path, cube: np.ndarray, **header_options: object) -> Path:
    """Write a ``(n_channels, ny, nx)`` cube as a CASA-style 4-D image (RA, Dec, FREQ, STOKES)."""
    n_channels, ny, nx = cube.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    header = casa_header(nx, ny, n_channels=n_channels, **header_options)
    data = np.asarray(cube, dtype=np.float32)[np.newaxis]
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path


BOMB_CHUNK = 16 << 20
"""Zeros are gzipped in chunks of this many bytes (16 MiB) to build bombs quickly."""


def image_header_bytes(side: int) -> bytes:
    """A primary header of a ``side``² float32 image, without its data."""
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = side
    header["NAXIS2"] = side
    return header.tostring().encode()


def gzip_bomb(side: int = 16384) -> bytes:
    """A decompression bomb: about 1 MB of gzip that inflates to a ``side``² image of zeros."""
    return gzip_flood(side * side * 4, side)


def gzip_flood(decompressed: int, side: int = 64) -> bytes:
    """A gzipped ``side``² header followed by ``decompressed`` bytes of zeros (whole chunks)."""
    zeros = gzip.compress(bytes(BOMB_CHUNK), compresslevel=9)
    return gzip.compress(image_header_bytes(side)) + zeros * (-(-decompressed // BOMB_CHUNK))


def gzip_file(path: Path) -> Path:
    """Gzip a file next to itself as ``<name>.gz`` and remove the original."""
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as source, gzip.open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    path.unlink()
    return target


def source_image(
    nx: int = 128,
    ny: int = 128,
    *,
    snr: float = 50.0,
    x0: float | None = None,
    y0: float | None = None,
    rms: float = 1.0e-3,
    seed: int = 1,
) -> np.ndarray:
    """Noise plus a compact source whose peak pixel has about the given S/N."""
    x0 = nx * 0.6 if x0 is None else x0
    y0 = ny * 0.4 if y0 is None else y0
    plane = noise_map(nx, ny, rms, seed)
    plane += gaussian_source(nx, ny, round(x0), round(y0), 3.0, snr * rms)
    return plane
