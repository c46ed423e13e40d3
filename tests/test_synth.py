"""The synthetic demo archive, read back the way ingest and evaluation will read it."""

import csv
import math
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from model_training.categories import COSMOLOGY, DISKS, SCIENTIFIC_CATEGORIES
from model_training.demo_archive.alma_image import (
    ImageGeometry,
    Observation,
    RestoringBeam,
    SpectralSetup,
    _correlated_noise,
    band_of,
    observe,
)
from model_training.demo_archive.generator import SynthSummary, synthesize_archive
from model_training.demo_archive.sky_models import (
    MORPHOLOGY_CLASSES,
    SKY_MODELS,
    Component,
    SkyModel,
)

N_SOURCES, N_VIEWS, SEED = 8, 2, 7


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    out_dir = tmp_path_factory.mktemp("synth") / "archive"
    return synthesize_archive(out_dir, N_SOURCES, N_VIEWS, SEED, workers=1, progress=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def images(archive: SynthSummary) -> list[Path]:
    return sorted(archive.images_dir.glob("*.fits"))


def open_image(path: Path) -> tuple[fits.Header, np.ndarray]:
    with fits.open(path) as hdus:
        hdus.verify("exception")
        return hdus[0].header, hdus[0].data


def peak_flux_map(data: np.ndarray) -> np.ndarray:
    """Ingest's view of an image: the maximum along frequency (moment 8)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(data[0], axis=0)


def test_summary_counts_what_was_written(archive: SynthSummary) -> None:
    assert archive.n_images == N_SOURCES * N_VIEWS == len(images(archive))
    assert archive.n_continuum + archive.n_cubes == archive.n_images
    assert archive.n_continuum > 0 and archive.n_cubes > 0
    assert f"seed={SEED}" in archive.readme.read_text()


def test_files_are_casa_images_with_a_celestial_wcs(archive: SynthSummary) -> None:
    for path in images(archive):
        header, data = open_image(path)
        assert data.dtype == np.dtype(">f4")
        assert [header[f"CTYPE{i}"] for i in range(1, 5)] == [
            "RA---SIN",
            "DEC--SIN",
            "FREQ",
            "STOKES",
        ]
        assert header["NAXIS"] == 4 and header["NAXIS4"] == 1 and header["CRVAL4"] == 1
        assert header["CDELT1"] < 0 < header["CDELT2"]
        assert (header["CUNIT1"], header["CUNIT2"], header["CUNIT3"]) == ("deg", "deg", "Hz")
        assert header["CRPIX1"] == header["NAXIS1"] // 2 + 1
        assert header["BUNIT"] == "Jy/beam" and header["BTYPE"] == "Intensity"
        assert header["BMAJ"] >= header["BMIN"] > 0
        assert 0.01 < header["BMAJ"] * 3600 < 10, "beam in degrees, tens of mas to arcsec"
        assert (header["RADESYS"], header["SPECSYS"]) == ("ICRS", "LSRK")
        assert header["TELESCOP"] == header["INSTRUME"] == "ALMA"
        assert header["ORIGIN"].startswith("CASA 6.")
        assert datetime.fromisoformat(header["DATE-OBS"]) <= datetime.fromisoformat(header["DATE"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            celestial = WCS(header).celestial
        assert celestial.naxis == 2
        centre = celestial.pixel_to_world(header["CRPIX1"] - 1, header["CRPIX2"] - 1)
        assert centre.ra.deg == pytest.approx(header["CRVAL1"])
        assert centre.dec.deg == pytest.approx(header["CRVAL2"])


def test_cubes_have_channels_and_continuum_one(archive: SynthSummary) -> None:
    for path in images(archive):
        header, _ = open_image(path)
        if ".cube." in path.name:
            assert 10 <= header["NAXIS3"] <= 30
        else:
            assert ".cont." in path.name
            assert header["NAXIS3"] == 1 and header["CDELT3"] == pytest.approx(7.5e9)


def test_frequencies_lie_inside_one_alma_band(archive: SynthSummary) -> None:
    for path in images(archive):
        header, _ = open_image(path)
        first = header["CRVAL3"]
        last = first + (header["NAXIS3"] - 1) * header["CDELT3"]
        assert band_of(first) == band_of(last) in {3, 4, 5, 6, 7, 8, 9, 10}


def test_edges_are_nan_blanked_below_the_primary_beam_limit(archive: SynthSummary) -> None:
    blanked = 0
    for path in images(archive):
        header, data = open_image(path)
        nan = np.isnan(data[0])
        assert (nan == nan[0]).all(), "one primary-beam mask for every channel"
        centre = int(header["CRPIX2"]) - 1, int(header["CRPIX1"]) - 1
        assert not nan[0][centre]
        if nan.any():
            blanked += 1
            assert nan[0][0, 0] and nan[0][-1, -1], "NaN at the corners, not inside"
    assert blanked >= len(images(archive)) // 2


def test_peak_snr_spans_a_wide_range(archive: SynthSummary) -> None:
    snr = []
    for path in images(archive):
        _, data = open_image(path)
        finite = data[np.isfinite(data)]
        robust_noise = 1.4826 * np.median(np.abs(finite - np.median(finite)))
        snr.append(np.nanmax(peak_flux_map(data)) / robust_noise)
    assert min(snr) < 10 and max(snr) > 10 * min(snr)


def test_tables_describe_every_file_once(archive: SynthSummary) -> None:
    metadata = read_csv(archive.metadata_csv)
    truth = read_csv(archive.truth_csv)
    on_disk = {f"images/{path.name}" for path in images(archive)}
    assert list(metadata[0]) == [
        "file",
        "obs_id",
        "obs_collection",
        "scientific_category",
        "obs_release_date",
        "t_exptime",
        "proposal_id",
    ]
    assert list(truth[0]) == ["file", "source_id", "morphology_class", "view"]
    assert [row["file"] for row in metadata] == [row["file"] for row in truth]
    assert {row["file"] for row in metadata} == on_disk and len(metadata) == len(on_disk)
    for row in metadata:
        assert row["obs_collection"] == "ALMA"
        assert row["scientific_category"] in SCIENTIFIC_CATEGORIES
        assert re.fullmatch(r"uid://A001/X[0-9a-f]+/X[0-9a-f]+", row["obs_id"])
        uid = row["obs_id"].replace("uid://", "uid___").replace("/", "_")
        assert row["file"].startswith(f"images/{uid}.")
        assert re.fullmatch(r"20\d\d\.[1A0]\.\d{5}\.S", row["proposal_id"])
        assert float(row["t_exptime"]) > 0
    assert len({row["obs_id"] for row in metadata}) == len(metadata)


def test_views_of_a_source_share_its_class_category_and_target(archive: SynthSummary) -> None:
    metadata = {row["file"]: row for row in read_csv(archive.metadata_csv)}
    by_source: dict[str, list[dict[str, str]]] = {}
    for row in read_csv(archive.truth_csv):
        by_source.setdefault(row["source_id"], []).append(row)
    assert len(by_source) == N_SOURCES
    assert {row["morphology_class"] for rows in by_source.values() for row in rows} == set(
        MORPHOLOGY_CLASSES
    )
    for rows in by_source.values():
        assert sorted(int(row["view"]) for row in rows) == list(range(N_VIEWS))
        assert len({row["morphology_class"] for row in rows}) == 1
        assert len({metadata[row["file"]]["scientific_category"] for row in rows}) == 1
        targets = {open_image(archive.out_dir / row["file"])[0]["OBJECT"] for row in rows}
        assert len(targets) == 1


def test_some_images_are_still_proprietary(archive: SynthSummary) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    metadata = read_csv(archive.metadata_csv)
    release = [datetime.fromisoformat(row["obs_release_date"]) for row in metadata]
    assert any(date > now for date in release) and any(date <= now for date in release)
    for row, date in zip(metadata, release, strict=True):
        header, _ = open_image(archive.out_dir / row["file"])
        assert date > datetime.fromisoformat(header["DATE-OBS"])


def test_publications_combine_categories_that_co_occur(archive: SynthSummary) -> None:
    papers = read_csv(archive.publications_csv)
    assert len(papers) >= 200 and list(papers[0]) == ["bibcode", "categories"]
    assert len({paper["bibcode"] for paper in papers}) == len(papers)
    combined = 0
    for paper in papers:
        assert re.fullmatch(r"20\d\d[A-Za-z&.]{5}[.\d]{4}[.A][.\d]{4}[A-Z]", paper["bibcode"])
        categories = paper["categories"].split(";")
        assert set(categories) <= set(SCIENTIFIC_CATEGORIES)
        assert len(set(categories)) == len(categories)
        assert not {DISKS, COSMOLOGY} <= set(categories)
        combined += len(categories) > 1
    assert 0.1 * len(papers) < combined < 0.5 * len(papers)


def test_same_arguments_give_identical_files_whatever_the_workers(
    archive: SynthSummary, tmp_path: Path
) -> None:
    again = synthesize_archive(
        tmp_path / "again", N_SOURCES, N_VIEWS, SEED, workers=2, progress=False, today=archive.today
    )
    for path in [*images(archive), archive.metadata_csv, archive.truth_csv]:
        relative = path.relative_to(archive.out_dir)
        assert (again.out_dir / relative).read_bytes() == path.read_bytes(), relative
    assert again.publications_csv.read_bytes() == archive.publications_csv.read_bytes()
    assert again.readme.read_text() == archive.readme.read_text()


def test_another_seed_gives_another_archive(archive: SynthSummary, tmp_path: Path) -> None:
    other = synthesize_archive(
        tmp_path / "other", 1, 1, SEED + 1, workers=1, progress=False, today=archive.today
    )
    first = images(archive)[0]
    assert images(other)[0].read_bytes() != first.read_bytes()


@pytest.mark.parametrize(
    ("n_sources", "n_views", "workers"), [(0, 1, 1), (1, 0, 1), (-3, 2, 1), (1, 1, 0)]
)
def test_counts_below_one_are_refused(
    tmp_path: Path, n_sources: int, n_views: int, workers: int
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        synthesize_archive(tmp_path / "a", n_sources, n_views, 0, workers=workers, progress=False)


def test_existing_data_are_never_overwritten_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("someone's data")
    with pytest.raises(ValueError, match="not empty"):
        synthesize_archive(tmp_path, 1, 1, 0, workers=1, progress=False)
    with pytest.raises(ValueError, match="not a folder"):
        synthesize_archive(tmp_path / "notes.txt", 1, 1, 0, workers=1, progress=False)
    first = synthesize_archive(tmp_path, 1, 1, 0, workers=1, progress=False, overwrite=True)
    second = synthesize_archive(tmp_path, 1, 2, 1, workers=1, progress=False, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "someone's data"
    assert first.n_images == 1 and len(list(second.images_dir.iterdir())) == 2


@pytest.mark.parametrize("morphology_class", MORPHOLOGY_CLASSES)
def test_sky_models_are_finite_and_non_negative(morphology_class: str) -> None:
    model = SKY_MODELS[morphology_class](np.random.default_rng(3))
    offsets = np.linspace(-2.5 * model.extent, 2.5 * model.extent, 65)
    x, y = np.meshgrid(offsets, offsets)
    components = model.emission(x, y, model.extent / 20)
    brightness = sum(component.brightness for component in components)
    assert np.isfinite(brightness).all() and (brightness >= 0).all()
    assert brightness.max() > 0
    for component in components:
        emitting = component.brightness > 0.01 * brightness.max()
        velocity = np.broadcast_to(component.velocity, x.shape)[emitting]
        assert np.abs(velocity).max(initial=0.0) <= model.velocity_extent + 1e-9
    edge = np.concatenate([brightness[0], brightness[-1], brightness[:, 0], brightness[:, -1]])
    assert edge.max() < 0.01 * brightness.max(), "emission fades within twice the extent"


def test_restoring_beam_and_position_follow_sky_conventions() -> None:
    """A point source 3 arcsec east of the phase centre, beam at BPA 30 deg east of north."""
    compact = SkyModel(
        "point_source",
        1.0,
        0.0,
        1.0,
        lambda x, y, _: [Component(np.exp(-0.5 * (np.hypot(x, y) / 0.01) ** 2))],
    )
    observation = Observation(
        target_name="J0040-3000",
        phase_centre=(10.0, -30.0),
        restoring_beam=RestoringBeam(2.0, 1.0, 30.0),
        spectral_setup=SpectralSetup(6, np.array([230e9]), 7.5e9, 230e9, 230e9, "spw25"),
        image_geometry=ImageGeometry(0.2, 200, (3.0, 0.0)),
        peak_snr=1e4,
        rms=1e-4,
        exposure_time=600.0,
        date_obs=datetime(2020, 1, 1),
        processing_date=datetime(2020, 1, 2),
        observer="tester",
        casa_version="CASA 6.6.1-17",
        history=(),
    )
    image = observe(compact, observation, np.random.default_rng(0))[0, 0]
    y, x = np.unravel_index(np.nanargmax(image), image.shape)
    assert (x, y) == (100 - 15, 100), "east is to the left: 15 pixels of 0.2 arcsec"
    assert np.nanmax(image) == pytest.approx(1.0, rel=0.01), "peak = peak S/N x rms"
    bright = np.nan_to_num(np.where(image > 0.5 * np.nanmax(image), image, 0.0))
    rows, cols = np.indices(image.shape)
    moments = np.cov(np.stack([cols.ravel(), rows.ravel()]), aweights=bright.ravel())
    major = np.linalg.eigh(moments)[1][:, 1]
    position_angle = math.degrees(math.atan2(-major[0], major[1])) % 180.0
    assert position_angle == pytest.approx(30.0, abs=3.0)


def test_noise_has_unit_rms_and_the_beam_as_correlation() -> None:
    beam = RestoringBeam(1.0, 0.5, 30.0)
    noise = _correlated_noise((8, 200, 200), beam, 0.1, np.random.default_rng(0))
    assert noise.std() == pytest.approx(1.0, abs=0.03)
    correlation = np.fft.irfft2(np.abs(np.fft.rfft2(noise)) ** 2, s=noise.shape[1:]).mean(axis=0)
    correlation /= correlation[0, 0]
    fwhm_to_sigma = 1.0 / math.sqrt(8.0 * math.log(2.0))
    sigma = {"major": 10.0 * fwhm_to_sigma, "minor": 5.0 * fwhm_to_sigma}  # in pixels
    # Beam-convolved white noise correlates as the beam widened by sqrt(2): exp(-d^2 / 4 sigma^2).
    major = (-math.sin(math.radians(30.0)), math.cos(math.radians(30.0)))
    for axis, (dx, dy) in (("major", major), ("minor", (major[1], -major[0]))):
        shift = (round(6 * dx), round(6 * dy))
        distance = math.hypot(*shift)
        expected = math.exp(-(distance**2) / (4 * sigma[axis] ** 2))
        assert correlation[shift[1], shift[0]] == pytest.approx(expected, abs=0.05), axis
