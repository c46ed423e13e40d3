"""ObsCore values from a CASA header, product naming, metadata override, release-date default."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from model_training.ingest.cutout import make_cutout
from model_training.ingest.fits_image import read_fits_image
from model_training.ingest.header_band import header_band
from model_training.ingest.obscore_row import (
    DATALINK_FORMAT,
    SPEED_OF_LIGHT,
    access_url,
    alma_bands,
    default_release_date,
    obscore_row,
    parse_date_obs,
    product_key,
    publisher_did,
    similarity_image_row,
    unit_ucd,
)
from tap_schema import Settings, load_schema
from tests.fits_factory import DEFAULT_DEC, DEFAULT_RA, source_image, write_cube, write_image

SETTINGS = Settings(
    data_dir=Path("/nonexistent"),
    db_url="sqlite://",
    public_url="https://archive.example/vosim",
    authority="archive.example",
    collection="ALMA",
)
ARCSEC = 1.0 / 3600.0


@pytest.fixture
def image(tmp_path: Path):
    path = write_image(
        tmp_path / "member.uid___A001_X1_X2.HH212_sci.spw25.cont.I.pbcor.fits",
        source_image(100, 80),
    )
    return read_fits_image(path)


def test_every_obscore_column_and_nothing_else(image) -> None:
    row = obscore_row(image, file_size=50_000, settings=SETTINGS)
    obscore = next(t for t in load_schema("ivoa").tables if t.name == "obscore")
    assert set(row) == {column.name for column in obscore.columns}
    for column in obscore.columns:
        if not column.nullable:
            assert row[column.name] is not None, column.name


def test_identity_and_access(image) -> None:
    key = product_key(image.path.name)
    row = obscore_row(image, file_size=50_000, settings=SETTINGS)
    assert key == "member.uid___A001_X1_X2.HH212_sci.spw25.cont.I.pbcor"
    assert row["obs_publisher_did"] == f"ivo://archive.example/products?{key}"
    assert row["access_url"] == (
        "https://archive.example/vosim/datalink?ID=ivo%3A%2F%2Farchive.example%2Fproducts%3F" + key
    )
    assert row["access_format"] == DATALINK_FORMAT
    assert row["access_estsize"] == 49  # kbyte, rounded up
    assert row["obs_id"] == image.path.name.removesuffix(".fits")
    assert row["obs_collection"] == "ALMA"
    assert (row["dataproduct_type"], row["calib_level"], row["image_kind"]) == (
        "image",
        2,
        "continuum",
    )
    assert (row["target_name"], row["facility_name"], row["instrument_name"]) == (
        "HH212",
        "ALMA",
        "ALMA",
    )
    assert row["o_ucd"] == "phot.flux.density"


def test_spatial_values(image) -> None:
    row = obscore_row(image, file_size=1, settings=SETTINGS)
    cell = 0.05 * ARCSEC
    # Reference pixel is (50, 40) zero-based; the centre of a 100 x 80 grid is (49.5, 39.5).
    expected_ra = DEFAULT_RA + 0.5 * cell / math.cos(math.radians(DEFAULT_DEC))
    assert row["s_ra"] == pytest.approx(expected_ra, abs=1e-9)
    assert row["s_dec"] == pytest.approx(DEFAULT_DEC - 0.5 * cell, abs=1e-9)
    assert row["s_fov"] == pytest.approx(math.hypot(100, 80) * cell, rel=1e-4)
    assert row["s_resolution"] == pytest.approx(math.sqrt(0.3 * 0.2))
    assert (row["s_xel1"], row["s_xel2"]) == (100, 80)
    words = row["s_region"].split()
    assert words[:2] == ["POLYGON", "ICRS"]
    ras, decs = np.array(words[2::2], float), np.array(words[3::2], float)
    assert len(ras) == 4
    assert ras.max() - ras.min() == pytest.approx(
        100 * cell / math.cos(math.radians(5.4)), rel=1e-3
    )
    assert decs.max() - decs.min() == pytest.approx(80 * cell, rel=1e-3)
    # Counter-clockwise seen from inside the sphere (DALI): clockwise with east to the right.
    east, north = ras - ras.mean(), decs - decs.mean()
    area = np.sum(east * np.roll(north, -1) - np.roll(east, -1) * north)
    assert area < 0


def test_spectral_values_and_band(image) -> None:
    row = obscore_row(image, file_size=1, settings=SETTINGS)
    assert row["em_min"] == pytest.approx(SPEED_OF_LIGHT / 348.75e9)
    assert row["em_max"] == pytest.approx(SPEED_OF_LIGHT / 341.25e9)
    assert row["em_res_power"] == pytest.approx(345e9 / 7.5e9)
    assert row["em_xel"] == 1
    assert row["band_list"] == "7"
    assert (row["pol_states"], row["pol_xel"]) == ("/I/", 1)


def test_cube_values(tmp_path: Path) -> None:
    cube = np.random.default_rng(0).normal(0, 1e-3, size=(30, 32, 32))
    path = write_cube(tmp_path / "c.fits", cube, freq_hz=100e9, channel_width_hz=-0.5e6)
    row = obscore_row(read_fits_image(path), file_size=1, settings=SETTINGS)
    assert (row["dataproduct_type"], row["image_kind"], row["em_xel"]) == ("cube", "peak_flux", 30)
    low, high = 100e9 - 29.5 * 0.5e6, 100e9 + 0.25e6
    assert row["em_min"] == pytest.approx(SPEED_OF_LIGHT / high)
    assert row["em_max"] == pytest.approx(SPEED_OF_LIGHT / low)
    assert row["em_res_power"] == pytest.approx((low + high) / 2 / 0.5e6)
    assert row["band_list"] == "3"


def test_time_values_and_release_date_default(image) -> None:
    row = obscore_row(image, file_size=1, settings=SETTINGS)
    assert row["t_min"] == pytest.approx(57662 + (4 * 3600 + 23 * 60 + 11) / 86400)
    assert row["t_max"] == row["t_min"]
    assert row["t_exptime"] is None
    assert row["t_xel"] == 1
    assert row["obs_release_date"] == datetime(2017, 10, 1, 4, 23, 11)


def test_metadata_overrides_the_header(image) -> None:
    metadata = {
        "target_name": "HH 212 MMS",
        "t_exptime": 8640.0,
        "scientific_category": "ISM, star formation and astrochemistry",
        "obs_release_date": datetime(2016, 12, 24),
        "obs_id": "uid://A001/X1/X2",
    }
    row = obscore_row(image, file_size=1, settings=SETTINGS, metadata=metadata)
    assert row["target_name"] == "HH 212 MMS"
    assert row["t_max"] == pytest.approx(row["t_min"] + 0.1)
    assert row["t_resolution"] == 8640.0
    assert row["scientific_category"] == "ISM, star formation and astrochemistry"
    assert row["obs_release_date"] == datetime(2016, 12, 24)
    assert row["obs_id"] == "uid://A001/X1/X2"


def test_no_date_obs_means_unknown_times(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.fits", source_image(32, 32), date_obs=None)
    row = obscore_row(read_fits_image(path), file_size=1, settings=SETTINGS)
    assert row["t_min"] is None and row["t_max"] is None
    assert row["obs_release_date"] is None


def test_bad_date_obs_is_a_clear_error(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.fits", source_image(32, 32), date_obs="yesterday")
    with pytest.raises(
        ValueError, match="DATE-OBS 'yesterday' is not a date the FITS standard allows"
    ):
        obscore_row(read_fits_image(path), file_size=1, settings=SETTINGS)


def test_pre_2000_fits_date_form_is_read(tmp_path: Path) -> None:
    # DD/MM/YY, as in astropy's DSS and AIPS test headers: 11 March 1976
    path = write_image(tmp_path / "a.fits", source_image(32, 32), date_obs="11/03/76")
    row = obscore_row(read_fits_image(path), file_size=1, settings=SETTINGS)
    assert row["t_min"] == pytest.approx(42848.0)  # MJD of 1976-03-11
    assert row["obs_release_date"] == datetime(1977, 3, 11)


def test_metadata_t_min_means_the_header_date_is_not_read(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.fits", source_image(32, 32), date_obs="yesterday")
    metadata = {"t_min": 58849.5, "obs_release_date": datetime(2021, 1, 1)}
    row = obscore_row(read_fits_image(path), file_size=1, settings=SETTINGS, metadata=metadata)
    assert row["t_min"] == 58849.5
    assert row["obs_release_date"] == datetime(2021, 1, 1)


def test_archive_did_from_metadata_is_kept_and_linked(image) -> None:
    did = "ivo://org.gavo.dc/~?alma/q/uid___A001_X1296_X1d3"
    metadata = {"obs_publisher_did": did, "obs_id": "uid://A001/X1296/X1d3"}
    row = obscore_row(image, file_size=1, settings=SETTINGS, metadata=metadata)
    assert (row["obs_publisher_did"], row["obs_id"]) == (did, "uid://A001/X1296/X1d3")
    assert row["access_url"] == (
        "https://archive.example/vosim/datalink?ID="
        "ivo%3A%2F%2Forg.gavo.dc%2F~%3Falma%2Fq%2Fuid___A001_X1296_X1d3"
    )


def test_band_only_for_alma(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.fits", source_image(32, 32), telescope="NOEMA")
    assert obscore_row(read_fits_image(path), file_size=1, settings=SETTINGS)["band_list"] is None


@pytest.mark.parametrize(
    ("low_ghz", "high_ghz", "bands"),
    [
        (84.0, 88.0, "3"),
        (230.0, 232.0, "6"),
        (372.0, 374.0, "7"),
        (375.0, 380.0, None),
        (600.0, 610.0, "9"),
    ],
)
def test_alma_bands(low_ghz: float, high_ghz: float, bands: str | None) -> None:
    assert alma_bands(low_ghz * 1e9, high_ghz * 1e9) == bands


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("a.fits", "a"),
        ("a.fits.gz", "a"),
        ("A.FITS", "A"),
        ("HH 212 (copy)+v2.fits", "HH_212__copy__v2"),
        ("uid___A001_X1.cont.I.pbcor.fits", "uid___A001_X1.cont.I.pbcor"),
    ],
)
def test_product_key(name: str, key: str) -> None:
    assert product_key(name) == key


def test_publisher_did_and_access_url() -> None:
    did = publisher_did(SETTINGS, "a_b")
    assert did == "ivo://archive.example/products?a_b"
    assert access_url(SETTINGS, did).endswith("ID=ivo%3A%2F%2Farchive.example%2Fproducts%3Fa_b")


@pytest.mark.parametrize(
    ("observed", "released"),
    [
        (datetime(2016, 10, 1, 4, 23), datetime(2017, 10, 1, 4, 23)),
        (datetime(2016, 2, 29), datetime(2017, 2, 28)),
    ],
)
def test_default_release_date_is_twelve_months_later(
    observed: datetime, released: datetime
) -> None:
    assert default_release_date(observed) == released


def test_similarity_image_row(image) -> None:
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    did = "ivo://eso.org/ID?uid://A001/X1/X2"
    row = similarity_image_row(image, cutout, did=did, key="k", settings=SETTINGS)
    assert row == {
        "obs_publisher_did": did,
        "image_kind": "continuum",
        "cutout_ra": cutout.ra,
        "cutout_dec": cutout.dec,
        "cutout_rule": "peak",
        "peak_snr": pytest.approx(cutout.peak_snr),
        "noise_rms": pytest.approx(image.noise.rms),
        "preview_url": "https://archive.example/vosim/preview/k.png",
    }


@pytest.mark.parametrize(
    ("bunit", "ucd"),
    [
        ("Jy/beam", "phot.flux.density"),
        ("JY/BEAM", "phot.flux.density"),
        ("mJy/pixel", "phot.flux.density"),
        ("MJy/sr", "phot.flux.density.sb"),
        ("erg/s/cm2/A", "phot.flux.density"),
        ("W m-2", "phot.flux"),
        ("ADU", "phot.count"),
        ("counts/s", "phot.count"),
        ("mag", "phot.mag"),
        ("K", None),
        (None, None),
    ],
)
def test_o_ucd_follows_bunit(bunit, ucd) -> None:
    assert unit_ucd(bunit) == ucd


@pytest.mark.parametrize(
    ("cards", "band"),
    [
        ({"PHOTPLAM": 5500.0}, (5.5e-7, 5.5e-7)),
        ({"PHOTPLAM": 5500.0, "PHOTBW": 1000.0}, (5.0e-7, 6.0e-7)),
        ({"WAVELENG": (2.2, "micron")}, (2.2e-6, 2.2e-6)),
        ({"WAVELENG": 6.4e-7}, (6.4e-7, 6.4e-7)),
        ({"WAVELNTH": 171}, (1.71e-8, 1.71e-8)),
        ({"OBSFREQ": 1.4e9}, (SPEED_OF_LIGHT / 1.4e9,) * 2),
        ({}, None),
    ],
)
def test_wavelength_keywords_give_the_band(cards, band) -> None:
    header = fits.Header()
    header.update(cards)
    assert header_band(header) == (pytest.approx(band) if band else None)


def test_date_obs_in_another_time_scale_is_converted_to_utc() -> None:
    # TT is 32.184 s plus the 37 leap seconds of 2016 ahead of UTC.
    assert parse_date_obs("2016-10-01T04:23:11", timesys="TT") == datetime(
        2016, 10, 1, 4, 22, 2, 816000
    )
    assert parse_date_obs("1976-03-11", time_obs="17:38:00.00") == datetime(1976, 3, 11, 17, 38)


def test_another_telescope_is_its_own_collection_unless_one_was_configured(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.fits", source_image(32, 32), telescope="NOEMA")
    image = read_fits_image(path)
    assert obscore_row(image, file_size=1, settings=SETTINGS)["obs_collection"] == "NOEMA"
    archive = SETTINGS.with_changes(collection="IRAM")
    assert obscore_row(image, file_size=1, settings=archive)["obs_collection"] == "IRAM"
