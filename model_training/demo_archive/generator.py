"""The realistic synthetic demo archive: ALMA-like images, their metadata and publications.

No real ALMA images ship with any package reachable here, so the demo archive
is made to look real: every source is a fixed sky model of a labelled
morphology class (``morphology``), observed several times the way ALMA
observes (``alma_image``): different bands, restoring beams, pixel scales,
image sizes, pointings and noise, as primary-beam-corrected continuum images
and line cubes written as CASA writes them. Beside the images come the
ObsCore-like metadata ingest reads, fictitious publications whose category
co-occurrence gives the compatibility matrix of the paper, and the ground
truth (which views show the same source) that evaluation alone may read.

Everything is drawn from ``numpy.random.SeedSequence`` children keyed by the
source and view, so the archive depends on its arguments only, not on the
number of worker processes.
"""

import csv
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model_training.categories import COSMOLOGY, DISKS, GALAXIES, ISM, STELLAR

from .alma_image import (
    CONTINUUM_BANDWIDTH,
    CONTINUUM_SENSITIVITY,
    Observation,
    draw_continuum_setup,
    draw_image_geometry,
    draw_line_setup,
    draw_restoring_beam,
    observe,
    write_casa_fits,
)
from .publications import draw_publications
from .sky_models import (
    BIPOLAR_OUTFLOW,
    CLUMPY_MULTIPLE,
    FILAMENT,
    INCLINED_DISC,
    LENSED,
    MORPHOLOGY_CLASSES,
    POINT_SOURCE,
    RING_GAP_DISC,
    SKY_MODELS,
    SPIRAL,
    SkyModel,
)
from .spectral_lines import HIGH_REDSHIFT_LINES, LOCAL_LINES

CATEGORY_OF_CLASS: Mapping[str, Mapping[str, float]] = {
    POINT_SOURCE: {COSMOLOGY: 0.2, GALAXIES: 0.25, ISM: 0.2, DISKS: 0.15, STELLAR: 0.2},
    INCLINED_DISC: {DISKS: 0.6, ISM: 0.25, GALAXIES: 0.15},
    RING_GAP_DISC: {DISKS: 0.9, STELLAR: 0.1},
    SPIRAL: {GALAXIES: 0.85, STELLAR: 0.15},
    BIPOLAR_OUTFLOW: {ISM: 0.75, DISKS: 0.15, STELLAR: 0.1},
    LENSED: {COSMOLOGY: 1.0},
    CLUMPY_MULTIPLE: {ISM: 0.35, GALAXIES: 0.25, COSMOLOGY: 0.25, DISKS: 0.15},
    FILAMENT: {ISM: 0.9, GALAXIES: 0.1},
}
"""Which category a proposal on a source of each class plausibly has (spirals also
stand for the spiral shells of AGB stars, rings for detached shells)."""

CUBE_FRACTION = 0.42
"""Share of line cubes among the images (the paper: 196,322 of 455,448)."""

LINE_SURVEYS: Mapping[str, tuple[Mapping[str, float], tuple[float, float]]] = {
    COSMOLOGY: (HIGH_REDSHIFT_LINES, (1.0, 6.0)),
    GALAXIES: (LOCAL_LINES, (0.001, 0.05)),
    ISM: (LOCAL_LINES, (-2e-4, 2e-4)),
    DISKS: (LOCAL_LINES, (-2e-4, 2e-4)),
    STELLAR: (LOCAL_LINES, (-2e-4, 2e-4)),
}
"""Lines and redshift range per category: Galactic sources move by +-60 km/s."""

FIRST_OBSERVATION = date(2012, 1, 1)
ARCHIVE_GROWTH = 7.0
"""Years over which the yearly data volume grows by e: recent data dominate, as in ALMA."""

OBSERVATORY_SHUTDOWN = (date(2020, 3, 19), date(2021, 3, 17))
"""No observations during the COVID-19 shutdown of the observatory."""

PROPRIETARY_MONTHS: Mapping[int, float] = {12: 0.78, 6: 0.07, 24: 0.10, 36: 0.05}
"""ALMA's 12-month proprietary period; 6 for DDT, longer for some programmes."""

PROPOSAL_CYCLES = (
    (date(2011, 9, 30), "2011.0"),
    (date(2013, 1, 1), "2012.1"),
    (date(2014, 6, 1), "2013.1"),
    (date(2015, 10, 1), "2015.1"),
    (date(2016, 10, 1), "2016.1"),
    (date(2017, 10, 1), "2017.1"),
    (date(2018, 10, 1), "2018.1"),
    (date(2019, 10, 1), "2019.1"),
    (date(2021, 10, 1), "2021.1"),
    (date(2022, 10, 1), "2022.1"),
    (date(2023, 10, 1), "2023.1"),
    (date(2024, 10, 1), "2024.1"),
    (date(2025, 10, 1), "2025.1"),
    (date(2026, 10, 1), "2026.1"),
)
"""Start of each ALMA cycle and the prefix of its project codes (Cycle 7 ran two years)."""

CASA_VERSIONS = (
    (date(2011, 1, 1), "CASA 6.1.1-15"),
    (date(2021, 10, 1), "CASA 6.2.1-7"),
    (date(2022, 10, 1), "CASA 6.4.1-12"),
    (date(2023, 10, 1), "CASA 6.5.4-9"),
    (date(2024, 10, 1), "CASA 6.6.1-17"),
    (date(2025, 10, 1), "CASA 6.6.6-17"),
)
"""Pipeline CASA release by processing date (older data as re-imaged with CASA 6.1)."""

SURNAMES = (
    "garcia",
    "tanaka",
    "mueller",
    "smith",
    "rossi",
    "kim",
    "chen",
    "dubois",
    "silva",
    "novak",
    "okafor",
    "jensen",
    "huang",
    "lopez",
    "ivanova",
)

_ARCHIVE_KEY = 0
_SOURCE_KEY = 1


@dataclass(frozen=True)
class SynthSummary:
    """What `synthesize_archive` wrote.

    Parameters
    ----------
    out_dir : Path
        The archive's folder.
    n_sources, n_views : int
        Sources and observations per source.
    n_images, n_continuum, n_cubes : int
        FITS files written, continuum images and line cubes among them.
    n_proprietary : int
        Images whose release date is after ``today``.
    n_publications : int
        Rows of ``publications.csv``.
    today : date
        The archive's present: observations end here and proprietary periods
        are counted from it.
    images_dir, metadata_csv, publications_csv, truth_csv, readme : Path
        The archive's parts.
    """

    out_dir: Path
    n_sources: int
    n_views: int
    n_images: int
    n_continuum: int
    n_cubes: int
    n_proprietary: int
    n_publications: int
    today: date
    images_dir: Path
    metadata_csv: Path
    publications_csv: Path
    truth_csv: Path
    readme: Path

    def __str__(self) -> str:
        return (
            f"{self.n_images} images of {self.n_sources} sources in {self.out_dir} "
            f"({self.n_continuum} continuum images, {self.n_cubes} line cubes, "
            f"{self.n_proprietary} still proprietary on {self.today}); "
            f"{self.n_publications} publications; truth for evaluation in {self.truth_csv.name}"
        )


@dataclass(frozen=True)
class ImageRecord:
    """One written image: its ``metadata.csv`` and ``truth.csv`` rows."""

    file: str
    obs_id: str
    scientific_category: str
    obs_release_date: datetime
    t_exptime: float
    proposal_id: str
    source_id: int
    morphology_class: str
    view: int
    is_cube: bool


@dataclass(frozen=True)
class _Source:
    """A source as its proposals describe it: sky model, position (deg), name, category."""

    sky_model: SkyModel
    category: str
    position: tuple[float, float]
    target_name: str
    observer: str


@dataclass(frozen=True)
class _SourceTask:
    """The arguments of one worker call: one source and all its views."""

    out_dir: Path
    seed: int
    source_id: int
    morphology_class: str
    n_views: int
    today: date
    proposal_modulus: int


def synthesize_archive(
    out_dir: Path,
    n_sources: int,
    n_views: int,
    seed: int,
    *,
    workers: int | None = None,
    progress: bool = True,
    today: date | None = None,
    overwrite: bool = False,
) -> SynthSummary:
    """Write a synthetic ALMA-like archive of ``n_sources * n_views`` images.

    Parameters
    ----------
    out_dir : Path
        New or empty folder to write ``images/``, ``metadata.csv``,
        ``publications.csv``, ``truth.csv`` and ``README.txt`` into.
    n_sources : int
        Sources, spread evenly over the morphology classes.
    n_views : int
        Observations (images) of each source.
    seed : int
        Seed of every random draw; the same arguments give identical files.
    workers : int, optional
        Worker processes (default: the number of CPUs); the result does not
        depend on it.
    progress : bool
        Show a progress bar.
    today : date, optional
        The archive's present (default: today in UTC). Observations end here
        and about 15 % of the images are still proprietary relative to it, so
        an archive made today has proprietary data whenever it is made; pass
        a fixed date to reproduce an archive byte for byte on another day.
    overwrite : bool
        Replace the images and tables of an earlier archive in ``out_dir``
        (other files there are left alone) instead of refusing a non-empty
        folder.

    Returns
    -------
    SynthSummary
        Counts and paths of what was written.

    Raises
    ------
    ValueError
        For fewer than one source, view or worker, or an ``out_dir`` that is a
        file or a non-empty folder (unless ``overwrite``).
    """
    out_dir = Path(out_dir)
    if workers is None:
        workers = os.cpu_count() or 1
    _check_arguments(n_sources, n_views, workers)
    _prepare_out_dir(out_dir, overwrite)
    today = today or datetime.now(UTC).date()
    classes = _assign_classes(np.random.default_rng(_seed_sequence(seed, _ARCHIVE_KEY)), n_sources)
    modulus = _proposal_modulus(n_sources)
    tasks = [
        _SourceTask(out_dir, seed, source_id, morphology_class, n_views, today, modulus)
        for source_id, morphology_class in enumerate(classes)
    ]
    records = _synthesize_sources(tasks, workers, progress)
    publications = draw_publications(
        np.random.default_rng(_seed_sequence(seed, _ARCHIVE_KEY, 1)), max(200, n_sources), today
    )
    summary = SynthSummary(
        out_dir=out_dir,
        n_sources=n_sources,
        n_views=n_views,
        n_images=len(records),
        n_continuum=sum(not r.is_cube for r in records),
        n_cubes=sum(r.is_cube for r in records),
        n_proprietary=sum(r.obs_release_date.date() > today for r in records),
        n_publications=len(publications),
        today=today,
        images_dir=out_dir / "images",
        metadata_csv=out_dir / "metadata.csv",
        publications_csv=out_dir / "publications.csv",
        truth_csv=out_dir / "truth.csv",
        readme=out_dir / "README.txt",
    )
    _write_metadata(summary.metadata_csv, records)
    _write_truth(summary.truth_csv, records)
    _write_publications(summary.publications_csv, publications)
    summary.readme.write_text(_readme(summary, seed))
    return summary


def _check_arguments(n_sources: int, n_views: int, workers: int) -> None:
    if n_sources < 1:
        raise ValueError(f"n_sources must be at least 1, got {n_sources}")
    if n_views < 1:
        raise ValueError(f"n_views must be at least 1, got {n_views}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write over someone's data unless asked to; then make ``images/``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise ValueError(
                f"{out_dir} exists and is not empty: choose a new folder or pass overwrite=True"
            )
        shutil.rmtree(out_dir / "images", ignore_errors=True)
        for name in ("metadata.csv", "publications.csv", "truth.csv", "README.txt"):
            (out_dir / name).unlink(missing_ok=True)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)


def _seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """Return the independent random stream of one part of the archive, keyed by its place."""
    return np.random.SeedSequence(seed, spawn_key=key)


def _assign_classes(rng: np.random.Generator, n_sources: int) -> list[str]:
    """Classes in equal numbers (every class appears once there are enough sources)."""
    repeated = np.resize(np.array(MORPHOLOGY_CLASSES), n_sources)
    return [str(c) for c in rng.permutation(repeated)]


def _proposal_modulus(n_sources: int) -> int:
    """Return a prime above the number of sources, so that project numbers never collide.

    Sources map to project numbers by multiplication with another prime modulo
    this one; 1999 keeps the numbers of small archives ALMA-like (``00123``).
    """
    return 1999 if n_sources < 1999 else 99991


def _synthesize_sources(
    tasks: list[_SourceTask], workers: int, progress: bool
) -> list[ImageRecord]:
    """Run the sources in worker processes (in order), with a progress bar over images."""
    n_images = sum(task.n_views for task in tasks)
    records: list[ImageRecord] = []
    with tqdm(total=n_images, unit="image", desc="synth", disable=not progress) as bar:
        for source_records in _map_sources(tasks, workers):
            records.extend(source_records)
            bar.update(len(source_records))
    return records


def _map_sources(tasks: list[_SourceTask], workers: int) -> Iterator[list[ImageRecord]]:
    if workers == 1:
        yield from map(_synthesize_source, tasks)
        return
    chunksize = max(1, len(tasks) // (workers * 16))
    with ProcessPoolExecutor(max_workers=workers) as executor:
        yield from executor.map(_synthesize_source, tasks, chunksize=chunksize)


def _synthesize_source(task: _SourceTask) -> list[ImageRecord]:
    """Draw one source and write all its observations."""
    source = _draw_source(task)
    return [_write_view(task, source, view) for view in range(task.n_views)]


def _draw_source(task: _SourceTask) -> _Source:
    """Draw a source's sky model, position, name and the category of its proposals."""
    rng = np.random.default_rng(_seed_sequence(task.seed, _SOURCE_KEY, task.source_id, 0))
    category = str(_choose(rng, CATEGORY_OF_CLASS[task.morphology_class]))
    ra, dec = _sky_position(rng)
    target_name = _target_name(rng, task.morphology_class, ra, dec)
    observer = f"{chr(ord('a') + int(rng.integers(26)))}{rng.choice(SURNAMES)}"
    sky_model = SKY_MODELS[task.morphology_class](
        np.random.default_rng(_seed_sequence(task.seed, _SOURCE_KEY, task.source_id, 1))
    )
    return _Source(sky_model, category, (ra, dec), target_name, observer)


def _write_view(task: _SourceTask, source: _Source, view: int) -> ImageRecord:
    """Observe a source once, write the image and return its table rows."""
    rng = np.random.default_rng(_seed_sequence(task.seed, _SOURCE_KEY, task.source_id, 2 + view))
    provenance = (
        f"vosim synthetic demo archive (seed {task.seed}, source {task.source_id}, "
        f"view {view}): not a real observation"
    )
    observation = _draw_observation(rng, source, task.today, provenance)
    months = int(_choose(rng, PROPRIETARY_MONTHS))
    obs_id = _mous_uid(task.source_id * task.n_views + view)
    file_name = _product_name(obs_id, observation)
    image = observe(source.sky_model, observation, rng)
    write_casa_fits(task.out_dir / "images" / file_name, image, observation)
    observed = observation.date_obs.date()
    return ImageRecord(
        file=f"images/{file_name}",
        obs_id=obs_id,
        scientific_category=source.category,
        obs_release_date=datetime.combine(_add_months(observed, months), time()),
        t_exptime=observation.exposure_time,
        proposal_id=_proposal_id(observed, months, task.source_id, task.proposal_modulus),
        source_id=task.source_id,
        morphology_class=source.sky_model.morphology_class,
        view=view,
        is_cube=observation.spectral_setup.is_cube,
    )


def _draw_observation(
    rng: np.random.Generator, source: _Source, today: date, provenance: str
) -> Observation:
    """Draw how ALMA observed the source this time: set-up, beam, image, date and depth."""
    is_cube = rng.random() < CUBE_FRACTION
    beam = draw_restoring_beam(rng, source.sky_model.extent)
    if is_cube:
        lines, redshifts = LINE_SURVEYS[source.category]
        setup = draw_line_setup(rng, source.sky_model, beam, lines, redshifts)
    else:
        setup = draw_continuum_setup(rng, beam)
    geometry = draw_image_geometry(rng, beam, setup, source.sky_model.extent)
    date_obs = _observation_date(rng, today)
    processing_date = min(
        date_obs + timedelta(days=rng.uniform(2.0, 45.0)), datetime.combine(today, time())
    )
    exposure_time = _log_uniform(rng, 120.0, 10800.0)
    return Observation(
        target_name=source.target_name,
        phase_centre=_phase_centre(source.position, geometry.source_offset),
        restoring_beam=beam,
        spectral_setup=setup,
        image_geometry=geometry,
        peak_snr=_log_uniform(rng, 3.0, 300.0),
        rms=_noise_rms(rng, setup.band, exposure_time, abs(setup.channel_width)),
        exposure_time=exposure_time,
        date_obs=date_obs,
        processing_date=processing_date,
        observer=source.observer,
        casa_version=_dated(CASA_VERSIONS, processing_date.date()),
        history=(
            f"tclean specmode={'cube' if is_cube else 'mfs'} weighting=briggs robust=0.5",
            "impbcor pblimit=0.2",
            provenance,
        ),
    )


def _phase_centre(
    position: tuple[float, float], source_offset: tuple[float, float]
) -> tuple[float, float]:
    """Point so that the source lies ``source_offset`` (east, north arcsec) from the centre."""
    ra, dec = position
    east, north = source_offset
    return (ra - east / 3600.0 / math.cos(math.radians(dec))) % 360.0, dec - north / 3600.0


def _product_name(obs_id: str, observation: Observation) -> str:
    """Name the product file as the pipeline does: ``uid___A001_X1296_X1a3.J0423-2101_sci...``."""
    uid = obs_id.replace("uid://", "uid___").replace("/", "_")
    target = observation.target_name.replace(" ", "_")
    setup = observation.spectral_setup
    kind = "cube" if setup.is_cube else "cont"
    return f"{uid}.{target}_sci.{setup.spectral_window}.{kind}.I.pbcor.fits"


def _choose(rng: np.random.Generator, weights: Mapping) -> object:
    """One key of ``weights``, drawn with probability proportional to its value."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _sky_position(rng: np.random.Generator) -> tuple[float, float]:
    """Uniform on the sky ALMA sees: declination from -85 to +47 degrees."""
    sin_dec = rng.uniform(math.sin(math.radians(-85.0)), math.sin(math.radians(47.0)))
    return float(rng.uniform(0.0, 360.0)), math.degrees(math.asin(sin_dec))


def _sexagesimal(ra: float, dec: float) -> tuple[str, str, str, str]:
    """(hhmm, hhmmss, +ddmm, +ddmmss) truncated, as designations are written."""
    seconds = int(ra / 15.0 * 3600.0)
    arcsec = int(abs(dec) * 3600.0)
    sign = "-" if dec < 0 else "+"
    hh, mm, ss = seconds // 3600, seconds // 60 % 60, seconds % 60
    dd, dm, ds = arcsec // 3600, arcsec // 60 % 60, arcsec % 60
    return (
        f"{hh:02d}{mm:02d}",
        f"{hh:02d}{mm:02d}{ss:02d}",
        f"{sign}{dd:02d}{dm:02d}",
        f"{sign}{dd:02d}{dm:02d}{ds:02d}",
    )


def _target_name(rng: np.random.Generator, morphology_class: str, ra: float, dec: float) -> str:
    """Name a target by its position: half plain J names, half in a catalogue's style."""
    hhmm, hhmmss, ddmm, ddmmss = _sexagesimal(ra, dec)
    if rng.random() < 0.5:
        return f"J{hhmm}{ddmm}"
    iras = f"IRAS {hhmm}{int(hhmmss[4:]) // 6}{ddmm}"  # minutes of RA to a tenth
    styles = {
        POINT_SOURCE: f"PKS {hhmm}{ddmm[:3]}",
        INCLINED_DISC: f"2MASS J{hhmmss}{ddmmss}",
        RING_GAP_DISC: f"2MASS J{hhmmss}{ddmmss}",
        SPIRAL: f"2MASX J{hhmmss}{ddmmss}",
        BIPOLAR_OUTFLOW: iras,
        LENSED: f"SPT{hhmm}{ddmm[:3]}" if dec < -35.0 else f"HATLAS J{hhmmss}{ddmmss}",
        CLUMPY_MULTIPLE: f"SMM J{hhmm}{ddmm}",
        FILAMENT: iras,
    }
    return styles[morphology_class]


def _observation_date(rng: np.random.Generator, today: date) -> datetime:
    """Draw a start time from 2012 to ``today``, recent ones more likely.

    The archive grows with time, so the age is drawn from a truncated
    exponential; none falls in the observatory's COVID-19 shutdown.
    """
    span = (today - FIRST_OBSERVATION).days / 365.25
    while True:
        u = rng.uniform()
        age = -ARCHIVE_GROWTH * math.log(1.0 - u * (1.0 - math.exp(-span / ARCHIVE_GROWTH)))
        day = today - timedelta(days=max(1, int(age * 365.25)))
        if not OBSERVATORY_SHUTDOWN[0] <= day <= OBSERVATORY_SHUTDOWN[1]:
            return datetime.combine(day, time()) + timedelta(seconds=rng.uniform(0.0, 86400.0))


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, 28))


def _dated(table: tuple[tuple[date, str], ...], day: date) -> str:
    """Look up the entry of a (start date, value) table in force on ``day``."""
    return [value for start, value in table if start <= day][-1]


def _mous_uid(obs_index: int) -> str:
    """Return an ALMA member observing unit set uid, unique per image."""
    return f"uid://A001/X{0x1200 + obs_index // 256:x}/X{0x100 + obs_index % 256:x}"


def _proposal_id(observed: date, months: int, source_id: int, modulus: int) -> str:
    """Project code: the cycle of the observation, ``A`` for DDT (6-month period)."""
    cycle = _dated(PROPOSAL_CYCLES, observed)
    if months == 6:
        cycle = f"{cycle.split('.')[0]}.A"
    number = 1 + (source_id * 7919) % modulus
    return f"{cycle}.{number:05d}.S"


def _noise_rms(
    rng: np.random.Generator, band: int, t_exptime: float, channel_width: float
) -> float:
    """Rms per channel in Jy/beam: radiometer equation scaled from the band's sensitivity.

    Noise falls as the square root of the time on source and of the channel
    width; the weather and the number of antennas scatter it by up to 50 %.
    """
    continuum = CONTINUUM_SENSITIVITY[band] * math.sqrt(3600.0 / t_exptime)
    return continuum * math.sqrt(CONTINUUM_BANDWIDTH / channel_width) * rng.uniform(0.8, 1.5)


def _write_metadata(path: Path, records: list[ImageRecord]) -> None:
    columns = (
        "file",
        "obs_id",
        "obs_collection",
        "scientific_category",
        "obs_release_date",
        "t_exptime",
        "proposal_id",
    )
    rows = [
        (
            r.file,
            r.obs_id,
            "ALMA",
            r.scientific_category,
            r.obs_release_date.isoformat(),
            f"{r.t_exptime:.3f}",
            r.proposal_id,
        )
        for r in records
    ]
    _write_csv(path, columns, rows)


def _write_truth(path: Path, records: list[ImageRecord]) -> None:
    rows = [(r.file, r.source_id, r.morphology_class, r.view) for r in records]
    _write_csv(path, ("file", "source_id", "morphology_class", "view"), rows)


def _write_publications(path: Path, papers: list[tuple[str, list[str]]]) -> None:
    rows = [(bibcode, ";".join(categories)) for bibcode, categories in papers]
    _write_csv(path, ("bibcode", "categories"), rows)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def _readme(summary: SynthSummary, seed: int) -> str:
    classes = ", ".join(MORPHOLOGY_CLASSES)
    return f"""\
vosim synthetic demo archive -- not real observations.

{summary.n_images} ALMA-like primary-beam-corrected images ({summary.n_continuum} continuum,
{summary.n_cubes} line cubes) of {summary.n_sources} synthetic sources, {summary.n_views} views
each, written as CASA writes them (images/). Each source is a sky model of one
morphology class ({classes}),
observed in different bands, with different restoring beams, pixel scales, image
sizes, pointings and noise levels; pixels below 0.2 primary-beam response are NaN.

metadata.csv      observational metadata per file (ObsCore-like columns)
publications.csv  {summary.n_publications} fictitious papers, the categories of the data they used
truth.csv         the source and class each file shows: for evaluation only, never served

Made by model_training.demo_archive.generator.synthesize_archive with seed={seed},
n_sources={summary.n_sources}, n_views={summary.n_views}, today={summary.today.isoformat()};
{summary.n_proprietary} images are proprietary on that date.
The same arguments give identical files.
"""
