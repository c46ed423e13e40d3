"""Reading ALMA-style FITS files into the 2-D map: shapes, cubes, scaling, and every bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import FITSFixedWarning

from model_training.ingest.fits_image import (
    CONTINUUM,
    PEAK_FLUX,
    FitsReadError,
    read_fits_image,
)
from tests.fits_factory import (
    casa_header,
    gzip_file,
    noise_map,
    source_image,
    write_cube,
    write_image,
)


def test_casa_4d_continuum_image(tmp_path: Path) -> None:
    plane = source_image(96, 80)
    path = write_image(tmp_path / "cont.fits", plane)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FITSFixedWarning)  # silenced inside, not leaked
        image = read_fits_image(path)
    assert image.image_kind == CONTINUUM
    assert image.flux_map.shape == (80, 96)
    assert image.flux_map.dtype == np.float32
    np.testing.assert_allclose(image.flux_map, plane, rtol=1e-6)
    assert image.wcs.pixel_n_dim == 2
    assert image.n_channels == 1
    assert image.freq_min_hz == pytest.approx(345e9 - 3.75e9)
    assert image.freq_max_hz == pytest.approx(345e9 + 3.75e9)
    assert image.stokes == ("I",)
    assert image.beam_major_arcsec == pytest.approx(0.3)
    assert image.beam_minor_arcsec == pytest.approx(0.2)
    assert (image.target_name, image.telescope, image.instrument) == ("HH212", "ALMA", "ALMA")
    assert image.date_obs == "2016-10-01T04:23:11.000"
    assert image.noise.rms == pytest.approx(1e-3, rel=0.05)


@pytest.mark.parametrize(
    "extra_axes",
    [(), ("FREQ",), ("STOKES",), ("STOKES", "FREQ")],
    ids=["2d", "freq", "stokes", "swapped"],
)
def test_degenerate_axes_in_any_order(tmp_path: Path, extra_axes: tuple[str, ...]) -> None:
    plane = source_image(64, 64)
    image = read_fits_image(write_image(tmp_path / "a.fits", plane, extra_axes=extra_axes))
    np.testing.assert_allclose(image.flux_map, plane, rtol=1e-6)
    assert image.image_kind == CONTINUUM
    assert image.stokes == (("I",) if "STOKES" in extra_axes else ())
    assert (image.freq_min_hz is None) == ("FREQ" not in extra_axes)


def test_cube_becomes_peak_flux_map_with_channel_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rms = 2e-3
    cube = rng.normal(0.0, rms, size=(40, 64, 64))
    cube[17:20, 30, 20] += 10 * rms  # a line in three channels
    path = write_cube(tmp_path / "cube.fits", cube, channel_width_hz=1e6, freq_hz=230e9)
    image = read_fits_image(path)
    assert image.image_kind == PEAK_FLUX
    assert image.n_channels == 40
    np.testing.assert_allclose(image.flux_map, cube.max(axis=0), rtol=1e-6)
    # The noise is one channel's, not the spread of the (biased) peak-flux map.
    assert image.noise.rms == pytest.approx(rms, rel=0.05)
    assert abs(image.noise.background) < 0.1 * rms
    peak_map_spread = np.std(image.flux_map)
    assert peak_map_spread < 0.7 * rms
    assert image.freq_min_hz == pytest.approx(230e9 - 0.5e6)
    assert image.freq_max_hz == pytest.approx(230e9 + 39.5e6)
    assert image.channel_width_hz == pytest.approx(1e6)


def test_cube_with_blanked_channels_and_edges(tmp_path: Path) -> None:
    cube = np.random.default_rng(4).normal(0.0, 1e-3, size=(8, 48, 48))
    cube[:, :5, :] = np.nan  # blanked edge in every channel
    cube[3] = np.nan  # a fully flagged channel
    image = read_fits_image(write_cube(tmp_path / "cube.fits", cube))
    assert np.isnan(image.flux_map[:5]).all()
    assert np.isfinite(image.flux_map[5:]).all()


def test_nan_blanked_edges_are_kept_as_nan(tmp_path: Path) -> None:
    plane = source_image(64, 64)
    y, x = np.mgrid[0:64, 0:64]
    plane[(x - 32) ** 2 + (y - 32) ** 2 > 30**2] = np.nan  # outside the primary beam
    image = read_fits_image(write_image(tmp_path / "pb.fits", plane))
    assert np.isnan(image.flux_map[0, 0])
    assert np.isfinite(image.noise.rms)


def test_bscale_bzero_integers_are_scaled(tmp_path: Path) -> None:
    plane = source_image(64, 64)
    scale, zero = 1e-6, 0.01
    stored = np.round((plane - zero) / scale).astype(np.int16)
    path = tmp_path / "scaled.fits"
    header = casa_header(64, 64)
    del header["BITPIX"]
    fits.PrimaryHDU(data=stored.reshape(1, 1, 64, 64), header=header).writeto(path)
    with fits.open(path, mode="update", do_not_scale_image_data=True) as hdul:
        hdul[0].header["BSCALE"] = scale
        hdul[0].header["BZERO"] = zero
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        assert hdul[0].data.dtype.kind == "i"
    image = read_fits_image(path)
    np.testing.assert_allclose(image.flux_map, stored * scale + zero, atol=2e-9)


def test_gzipped_file(tmp_path: Path) -> None:
    plane = source_image(64, 64)
    path = gzip_file(write_image(tmp_path / "a.fits", plane))
    assert path.name == "a.fits.gz"
    np.testing.assert_allclose(read_fits_image(path).flux_map, plane, rtol=1e-6)


def test_image_in_extension_after_empty_primary(tmp_path: Path) -> None:
    plane = source_image(64, 64)
    header = casa_header(64, 64)
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data=plane.reshape(1, 1, 64, 64).astype("f4"), header=header),
        ]
    )
    hdul.writeto(tmp_path / "ext.fits")
    np.testing.assert_allclose(read_fits_image(tmp_path / "ext.fits").flux_map, plane, rtol=1e-6)


def test_full_stokes_image_uses_stokes_i(tmp_path: Path) -> None:
    planes = np.stack([source_image(48, 48, seed=s) for s in range(4)])
    header = casa_header(48, 48, stokes=(1, 2, 3, 4))
    fits.PrimaryHDU(data=planes[:, np.newaxis].astype("f4"), header=header).writeto(
        tmp_path / "iquv.fits"
    )
    image = read_fits_image(tmp_path / "iquv.fits")
    assert image.stokes == ("I", "Q", "U", "V")
    np.testing.assert_allclose(image.flux_map, planes[0], rtol=1e-6)


def test_per_channel_beams_table(tmp_path: Path) -> None:
    cube = noise_map(32, 32)[np.newaxis].repeat(3, axis=0)
    header = casa_header(32, 32, n_channels=3, bmaj_arcsec=None, bmin_arcsec=None)
    beams = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="BMAJ", format="E", unit="arcsec", array=[0.5, 0.6, 0.7]),
            fits.Column(name="BMIN", format="E", unit="arcsec", array=[0.3, 0.4, 0.5]),
        ],
        name="BEAMS",
    )
    primary = fits.PrimaryHDU(data=cube[np.newaxis].astype("f4"), header=header)
    fits.HDUList([primary, beams]).writeto(tmp_path / "beams.fits")
    image = read_fits_image(tmp_path / "beams.fits")
    assert image.beam_major_arcsec == pytest.approx(0.6)
    assert image.beam_minor_arcsec == pytest.approx(0.4)


# --- bad inputs: one typed error each, with a reason a user can act on ---------------------


def _reason(path: Path) -> str:
    with pytest.raises(FitsReadError) as caught:
        read_fits_image(path)
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value.reason


def test_truncated_file(tmp_path: Path) -> None:
    path = write_image(tmp_path / "t.fits", source_image(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 6000])
    assert "truncated or corrupt" in _reason(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    path = gzip_file(write_image(tmp_path / "t.fits", source_image(64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "re-download" in _reason(path)


def test_text_file_named_fits(tmp_path: Path) -> None:
    path = tmp_path / "page.fits"
    path.write_text("<html><body>404 Not Found</body></html>\n" * 50)
    assert "not a FITS file" in _reason(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    path.write_bytes(b"")
    assert "empty" in _reason(path)


def test_no_image_hdu(tmp_path: Path) -> None:
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    assert "no HDU with image data" in _reason(tmp_path / "table.fits")


def test_all_nan(tmp_path: Path) -> None:
    path = write_image(tmp_path / "nan.fits", np.full((32, 32), np.nan))
    assert "NaN" in _reason(path)


def test_all_zero(tmp_path: Path) -> None:
    path = write_image(tmp_path / "zero.fits", np.zeros((32, 32)))
    assert "zero" in _reason(path)


def test_no_celestial_wcs(tmp_path: Path) -> None:
    fits.PrimaryHDU(data=source_image(32, 32).astype("f4")).writeto(tmp_path / "nowcs.fits")
    assert "no celestial WCS" in _reason(tmp_path / "nowcs.fits")


@pytest.mark.parametrize("shape", [(32,), (2, 2, 2, 2, 32, 32)], ids=["1d", "6d"])
def test_unsupported_dimensionality(tmp_path: Path, shape: tuple[int, ...]) -> None:
    fits.PrimaryHDU(data=np.ones(shape, dtype="f4")).writeto(tmp_path / "dims.fits")
    assert "unsupported image shape" in _reason(tmp_path / "dims.fits")


def test_extra_non_spectral_axis_is_unsupported(tmp_path: Path) -> None:
    header = casa_header(32, 32, extra_axes=("FREQ",))
    header["CTYPE3"] = "TIME"
    header["NAXIS3"] = 3
    header["CUNIT3"] = "s"
    data = np.ones((3, 32, 32), dtype="f4")
    fits.PrimaryHDU(data=data, header=header).writeto(tmp_path / "time.fits")
    assert "unsupported image shape" in _reason(tmp_path / "time.fits")


def test_polarisation_without_stokes_i(tmp_path: Path) -> None:
    header = casa_header(32, 32, stokes=(2, 3))
    data = np.ones((2, 1, 32, 32), dtype="f4")
    fits.PrimaryHDU(data=data, header=header).writeto(tmp_path / "qu.fits")
    assert "Stokes I" in _reason(tmp_path / "qu.fits")


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        ("CTYPE1", "RA---XYZ", "Unrecognized projection code (XYZ in CTYPE1)"),
        ("CDELT1", 0.0, "PCi_ja matrix is singular"),
    ],
)
def test_invalid_wcs_is_one_line(tmp_path: Path, keyword: str, value: object, reason: str) -> None:
    header = casa_header(32, 32)
    header[keyword] = value
    data = source_image(32, 32).reshape(1, 1, 32, 32).astype("f4")
    fits.PrimaryHDU(data=data, header=header).writeto(tmp_path / "wcs.fits")
    message = _reason(tmp_path / "wcs.fits")
    assert "the header's WCS is invalid" in message
    assert reason in message
    assert "\n" not in message
