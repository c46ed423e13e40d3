"""`vosim ingest` of real FITS files from other archives and telescopes.

The files in ``tests/data/real_fits`` (see its README) were written by
SkyView, AIPS and the Digitized Sky Survey, not by vosim's tests: no
restoring beam, no frequency axis, no BUNIT, a DD/MM/YY date. Each test
ingests them as an operator does, through the command line, and checks
the published ObsCore row, the report or the cut-out centre.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from model_training.ingest.cutout import choose_centre
from model_training.ingest.fits_image import read_fits_image
from tap_schema import Settings
from tests.test_ingest import catalogue_state
from vo_service.cli import main

REAL_FITS = Path(__file__).parent / "data" / "real_fits"
DSS = "dss_14h29m56_-62d41m05.fits.gz"
M13 = "m13.fits.gz"
NGC1316 = "ngc1316.fits"
NGC1316_ICRS = (50.67375, -37.20833)  # 03h22m41.7s -37d12m30s (NED)
DSS_TARGET_ICRS = (217.48333, -62.68472)  # OBJCTRA/OBJCTDEC of the scan
MJD_1976_03_11 = 42848.0


def archive(tmp_path: Path, *names: str) -> Path:
    """A folder holding copies of some of the real files."""
    folder = tmp_path / "archive"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(REAL_FITS / name, folder / name)
    return folder


def ingest(settings: Settings, monkeypatch, capsys, folder: Path, *options: str) -> tuple[int, str]:
    """Run ``vosim ingest FOLDER OPTIONS`` on the installation; return exit status and report."""
    monkeypatch.setenv("VOSIM_DATA_DIR", str(settings.data_dir))
    status = main(["ingest", str(folder), *options])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def published(settings: Settings) -> dict[str, dict]:
    """ObsCore row and similarity.image row of each product, by obs_id."""
    state = catalogue_state(settings)
    images = {row["obs_publisher_did"]: row for row in state["similarity.image"]}
    return {
        row["obs_id"]: {**row, **images[row["obs_publisher_did"]]} for row in state["ivoa.obscore"]
    }


def separation_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    (ra1, dec1), (ra2, dec2) = np.radians(a), np.radians(b)
    cos = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(ra1 - ra2)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def edit_header(path: Path, cards: dict) -> None:
    """Set cards of a copy's primary header (its other, non-standard cards fixed silently)."""
    with fits.open(path) as hdul:
        hdul[0].header.update(cards)
        hdul.writeto(path, overwrite=True, output_verify="silentfix")


def write_metadata(folder: Path, text: str) -> Path:
    path = folder / "metadata.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_fixtures_are_small_and_licensed() -> None:
    files = [p for p in REAL_FITS.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    assert {"LICENSE.rst", "README.md", DSS, M13, NGC1316} <= {p.name for p in files}
    assert "BSD" in (REAL_FITS / "README.md").read_text(encoding="utf-8")


def test_dd_mm_yy_plate_date_is_read_with_its_ut(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    status, report = ingest(sqlite_settings, monkeypatch, capsys, archive(tmp_path, DSS))
    assert status == 0, report
    row = published(sqlite_settings)["dss_14h29m56_-62d41m05"]
    # DATE-OBS = '11/03/76', UT = '17:38:00.00'
    assert row["t_min"] == pytest.approx(MJD_1976_03_11 + (17 + 38 / 60) / 24, abs=1e-6)
    assert row["obs_release_date"] == datetime(1977, 3, 11, 17, 38)


def test_metadata_replaces_a_header_date_that_cannot_be_read(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    folder = archive(tmp_path, DSS)
    edit_header(folder / DSS, {"DATE-OBS": "Thursday 11 March"})
    status, report = ingest(sqlite_settings, monkeypatch, capsys, folder)
    assert status == 1
    assert "DATE-OBS 'Thursday 11 March' is not a date the FITS standard allows" in report
    assert "give t_min (MJD or ISO date) and obs_release_date in the metadata file" in report

    # The advice works: the metadata's values are used, the header date is never read.
    write_metadata(folder, f"file,t_min,obs_release_date\n{DSS},1976-03-11T17:38:00,1977-03-11\n")
    status, report = ingest(sqlite_settings, monkeypatch, capsys, folder)
    assert status == 0, report
    row = published(sqlite_settings)["dss_14h29m56_-62d41m05"]
    assert row["t_min"] == pytest.approx(MJD_1976_03_11 + (17 + 38 / 60) / 24, abs=1e-6)
    assert row["obs_release_date"] == datetime(1977, 3, 11)


def test_t_min_that_is_no_date_says_it_is_mjd(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    folder = archive(tmp_path, M13)
    write_metadata(folder, f"file,t_min\n{M13},11 March 1976\n")
    status, report = ingest(sqlite_settings, monkeypatch, capsys, folder)
    assert status == 1
    assert "'t_min' has '11 March 1976', which is neither an MJD" in report
    assert "nor an ISO 8601 date" in report

    write_metadata(folder, f"file,t_min\n{M13},2006-11-15\n")
    assert ingest(sqlite_settings, monkeypatch, capsys, folder)[0] == 0
    assert published(sqlite_settings)["m13"]["t_min"] == pytest.approx(54054.0)


def test_optical_images_are_described_by_their_own_header(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    folder = archive(tmp_path, DSS, M13, NGC1316)
    status, report = ingest(sqlite_settings, monkeypatch, capsys, folder)
    assert status == 0, report
    rows = published(sqlite_settings)
    dss, ngc1316, m13 = rows["dss_14h29m56_-62d41m05"], rows["ngc1316"], rows["m13"]
    assert (dss["obs_collection"], dss["facility_name"]) == (
        "UK 48-inch Schmidt",
        "UK 48-inch Schmidt",
    )
    assert (ngc1316["obs_collection"], ngc1316["facility_name"]) == ("Optical", "Optical")
    assert all(row["em_min"] is None and row["band_list"] is None for row in rows.values())
    # Where the header says nothing, the defaults are used, and the report says so.
    assert (m13["obs_collection"], m13["facility_name"]) == ("ALMA", None)
    assert "warning: 1 images: no TELESCOP: facility_name is empty and obs_collection" in report
    assert all(row["o_ucd"] == "phot.flux.density" for row in rows.values())
    assert "warning: 3 images: no BUNIT: o_ucd is the default 'phot.flux.density'" in report
    assert "warning: 3 images: no spectral axis and no wavelength keyword" in report


def test_bunit_and_wavelength_keywords_give_o_ucd_and_em(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    folder = archive(tmp_path, M13, NGC1316)
    edit_header(
        folder / M13,
        {
            "TELESCOP": "Palomar 48-inch Schmidt",
            "BUNIT": "ADU",
            "WAVELENG": (6.4e-7, "[m] effective wavelength"),
        },
    )
    # What the header lacks, the metadata file gives: then no report line.
    write_metadata(
        folder,
        f"file,o_ucd,em_min,em_max,obs_collection\n{NGC1316},phot.count,4.0e-7,7.0e-7,DSS\n",
    )
    status, report = ingest(sqlite_settings, monkeypatch, capsys, folder)
    assert status == 0, report
    rows = published(sqlite_settings)
    m13, ngc1316 = rows["m13"], rows["ngc1316"]
    assert (m13["o_ucd"], m13["em_min"], m13["em_max"]) == ("phot.count", 6.4e-7, 6.4e-7)
    assert (m13["facility_name"], m13["obs_collection"]) == (
        "Palomar 48-inch Schmidt",
        "Palomar 48-inch Schmidt",
    )
    assert (ngc1316["o_ucd"], ngc1316["em_min"], ngc1316["em_max"]) == ("phot.count", 4e-7, 7e-7)
    assert (ngc1316["obs_collection"], ngc1316["facility_name"]) == ("DSS", "Optical")
    assert "o_ucd is the default" not in report and "em_min and em_max" not in report


def test_images_without_release_date_are_counted_and_the_rule_is_the_operators(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    folder = archive(tmp_path, DSS, M13, NGC1316)
    status, report = ingest(sqlite_settings, monkeypatch, capsys, folder)
    assert status == 0, report
    assert (
        "warning: 2 images have no release date and stay proprietary; give obs_release_date"
        in report
    )
    assert "--release-default public" in report
    assert published(sqlite_settings)["m13"]["obs_release_date"] is None

    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    status, report = ingest(
        sqlite_settings, monkeypatch, capsys, folder, "--reprocess", "--release-default", "public"
    )
    assert status == 0, report
    assert "no release date" not in report
    rows = published(sqlite_settings)
    # Public from the observation date, or from the ingest when there is none.
    assert rows["dss_14h29m56_-62d41m05"]["obs_release_date"] == datetime(1976, 3, 11, 17, 38)
    assert rows["m13"]["obs_release_date"] >= before

    status, report = ingest(
        sqlite_settings,
        monkeypatch,
        capsys,
        folder,
        "--reprocess",
        "--release-default",
        "proprietary",
    )
    assert "warning: 3 images have no release date and stay proprietary" in report
    assert all(row["obs_release_date"] is None for row in published(sqlite_settings).values())


def test_an_unknown_release_rule_is_a_usage_error(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ingest(
            sqlite_settings, monkeypatch, capsys, archive(tmp_path, M13), "--release-default", "x"
        )
    assert exit_info.value.code == 2
    assert "invalid choice: 'x'" in capsys.readouterr().err


def test_cutout_of_ngc1316_is_on_the_galaxy_not_the_star_at_the_edge(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    status, report = ingest(
        sqlite_settings, monkeypatch, capsys, archive(tmp_path, NGC1316, DSS, M13)
    )
    assert status == 0, report
    rows = published(sqlite_settings)
    ngc1316 = rows["ngc1316"]
    assert ngc1316["cutout_rule"] == "peak"
    assert separation_deg((ngc1316["cutout_ra"], ngc1316["cutout_dec"]), NGC1316_ICRS) < 0.02
    dss = rows["dss_14h29m56_-62d41m05"]
    assert separation_deg((dss["cutout_ra"], dss["cutout_dec"]), DSS_TARGET_ICRS) < 0.01
    m13 = rows["m13"]  # the cluster's core, at the centre of SkyView's cut-out
    assert separation_deg((m13["cutout_ra"], m13["cutout_dec"]), (m13["s_ra"], m13["s_dec"])) < 0.02


def test_the_paper_rule_alone_picks_the_star_at_the_edge() -> None:
    # Why the guard exists: the single brightest pixel is 20 pixels from the east edge.
    image = read_fits_image(REAL_FITS / NGC1316)
    _, x, _, _ = choose_centre(image.flux_map, image.noise)
    assert x == 20
    _, x, y, _ = choose_centre(image.flux_map, image.noise, guard_edges=True)
    assert abs(x - 226) < 8 and abs(y - 146) < 8


def test_an_uploaded_plate_is_cut_out_as_ingest_cuts_it() -> None:
    from vo_service.similarity.image_upload import read_uploaded_image

    content = (REAL_FITS / NGC1316).read_bytes()
    uploaded = read_uploaded_image(content, NGC1316, limit_bytes=10_000_000)
    assert separation_deg((uploaded.cutout.ra, uploaded.cutout.dec), NGC1316_ICRS) < 0.02
