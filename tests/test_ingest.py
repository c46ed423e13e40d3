"""Ingest as an archive operator runs it: first run, re-runs, changes, crashes, bad files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from model_training.ingest import prepare as product
from model_training.ingest.catalogue_writer import ProductCatalogue
from model_training.ingest.cutout_store import CutoutStore
from model_training.ingest.metadata import MetadataError
from model_training.ingest.stage import IngestError, IngestReport, ingest_folder
from model_training.ingest.worker_pool import WORKER_DIED
from tap_schema import Settings, open_catalogue
from tests.fits_factory import gzip_file, source_image, write_cube, write_image

ROOT = Path(__file__).resolve().parents[1]
_prepare_product = product.prepare_product


def _die_on_doomed_files(task: product.ProductTask):
    """Stand-in for prepare_product whose worker process dies on one file, like an OOM kill."""
    if task.path.stem == "doomed":
        os._exit(137)
    return _prepare_product(task)


def make_archive(folder: Path, n_images: int = 6) -> Path:
    """A small archive: continuum images in two project folders, a cube, a gzipped image."""
    for i in range(n_images):
        write_image(
            folder / f"project{i % 2}" / f"image{i}.fits",
            source_image(64, 64, snr=3.0 + 4 * i, seed=i),
            target=f"source{i}",
        )
    cube = np.random.default_rng(9).normal(0.0, 1e-3, size=(12, 48, 48))
    cube[5:7, 20, 30] += 0.02
    write_cube(folder / "cube.fits", cube, freq_hz=100e9, channel_width_hz=1e6)
    gzip_file(write_image(folder / "packed.fits", source_image(64, 64, seed=99)))
    return folder


def run(settings: Settings, folder: Path, metadata: Path | None = None, **options) -> IngestReport:
    options.setdefault("workers", 1)
    return ingest_folder(settings, folder, metadata, progress=False, **options)


def by_name(products: list[dict]) -> dict[str, dict]:
    """``vosim.product`` rows by their file's name without the FITS suffix."""
    return {
        Path(row["file_path"]).name.removesuffix(".gz").removesuffix(".fits"): row
        for row in products
    }


def catalogue_state(settings: Settings) -> dict[str, list[dict]]:
    """Every row of the three product tables, keyed by table, sorted by DID."""
    catalogue = open_catalogue(settings, create=False)
    try:
        state = {}
        with catalogue.begin() as conn:
            for name in ("ivoa.obscore", "similarity.image", "vosim.product"):
                table = catalogue.table(name)
                rows = conn.execute(select(table).order_by(table.c.obs_publisher_did))
                state[name] = [dict(row) for row in rows.mappings()]
        return state
    finally:
        catalogue.dispose()


def assert_consistent(settings: Settings, n_images: int) -> dict[str, list[dict]]:
    """Same images in all three tables; each cut-out row referenced exactly once; previews."""
    state = catalogue_state(settings)
    dids = [[row["obs_publisher_did"] for row in rows] for rows in state.values()]
    assert all(len(d) == n_images for d in dids)
    assert dids[0] == dids[1] == dids[2]
    indices = sorted(row["cutout_index"] for row in state["vosim.product"])
    assert indices == list(range(n_images))
    assert CutoutStore(settings.cutout_store).n_rows == n_images
    for row in state["vosim.product"]:
        assert (settings.preview_dir / f"{row['product_key']}.png").is_file()
    return state


def test_first_ingest_fills_all_three_tables(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive", n_images=10)
    report = run(sqlite_settings, folder, workers=2)
    assert (report.ingested, report.updated, report.unchanged, report.failed) == (12, 0, 0, 0)
    assert report.exit_status == 0
    assert report.failures == []
    state = assert_consistent(sqlite_settings, 12)
    by_key = by_name(state["vosim.product"])
    assert set(by_key) == {f"image{i}" for i in range(10)} | {"cube", "packed"}
    images = {row["obs_publisher_did"]: row for row in state["similarity.image"]}
    cube = images["ivo://vosim.example/products?cube"]
    assert (cube["image_kind"], cube["cutout_rule"]) == ("peak_flux", "peak")
    assert (by_key["cube"]["cutout_x"], by_key["cube"]["cutout_y"]) == (30, 20)
    faint = images["ivo://vosim.example/products?image0"]  # S/N about 3
    assert faint["cutout_rule"] == "centre"
    assert (by_key["image0"]["cutout_x"], by_key["image0"]["cutout_y"]) == (32, 32)
    assert by_key["image0"]["file_path"] == str(folder / "project0" / "image0.fits")
    # The stored cut-out is normalised (image0 fills its whole window: centre rule, 64 px).
    stored = CutoutStore(sqlite_settings.cutout_store).open_memmap()[
        by_key["image0"]["cutout_index"]
    ]
    assert np.median(stored) == pytest.approx(0.0, abs=1e-6)
    assert np.std(stored) == pytest.approx(1.0, rel=1e-4)


def test_rerun_changes_nothing(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    run(sqlite_settings, folder)
    before = catalogue_state(sqlite_settings)
    store_bytes = CutoutStore(sqlite_settings.cutout_store).path.read_bytes()
    previews = {p: p.stat().st_mtime_ns for p in sqlite_settings.preview_dir.iterdir()}
    report = run(sqlite_settings, folder)
    assert (report.ingested, report.updated, report.unchanged, report.failed) == (0, 0, 8, 0)
    assert catalogue_state(sqlite_settings) == before
    assert CutoutStore(sqlite_settings.cutout_store).path.read_bytes() == store_bytes
    assert {p: p.stat().st_mtime_ns for p in sqlite_settings.preview_dir.iterdir()} == previews


def test_changed_file_is_reingested_in_place(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    run(sqlite_settings, folder)
    before = by_name(catalogue_state(sqlite_settings)["vosim.product"])
    path = folder / "project1" / "image3.fits"
    store = CutoutStore(sqlite_settings.cutout_store)
    old_cutout = store.read(before["image3"]["cutout_index"])
    write_image(path, source_image(64, 64, snr=40, x0=10, y0=50, seed=7), target="moved")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    report = run(sqlite_settings, folder)
    assert (report.ingested, report.updated, report.unchanged) == (0, 1, 7)
    state = assert_consistent(sqlite_settings, 8)
    after = by_name(state["vosim.product"])
    assert after["image3"]["cutout_index"] == before["image3"]["cutout_index"]
    assert (after["image3"]["cutout_x"], after["image3"]["cutout_y"]) == (10, 50)
    assert not np.array_equal(store.read(after["image3"]["cutout_index"]), old_cutout)
    obscore = {r["obs_id"]: r for r in state["ivoa.obscore"]}
    assert obscore["image3"]["target_name"] == "moved"
    for key in before.keys() - {"image3"}:
        assert after[key] == before[key]


def test_reprocess_rereads_unchanged_files(tmp_path: Path, sqlite_settings: Settings) -> None:
    # After an upgrade that changes how cut-outs are made, unchanged files must be
    # read again on request; a stale cut-out stands in for the old rule's.
    folder = make_archive(tmp_path / "archive")
    run(sqlite_settings, folder)
    before = catalogue_state(sqlite_settings)
    rows = {name: r["cutout_index"] for name, r in by_name(before["vosim.product"]).items()}
    store = CutoutStore(sqlite_settings.cutout_store)
    fresh = store.read(rows["image3"])
    store.write(rows["image3"], np.zeros_like(fresh))

    assert run(sqlite_settings, folder).unchanged == 8
    assert not store.read(rows["image3"]).any()
    report = run(sqlite_settings, folder, reprocess=True)
    assert (report.ingested, report.updated, report.unchanged, report.failed) == (0, 8, 0, 0)
    state = assert_consistent(sqlite_settings, 8)
    assert {name: r["cutout_index"] for name, r in by_name(state["vosim.product"]).items()} == rows
    np.testing.assert_array_equal(store.read(rows["image3"]), fresh)
    assert len(state["ivoa.obscore"]) == len(before["ivoa.obscore"])


def test_new_files_are_added(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    run(sqlite_settings, folder)
    write_image(folder / "late" / "new.fits", source_image(64, 64, seed=50))
    report = run(sqlite_settings, folder)
    assert (report.ingested, report.updated, report.unchanged) == (1, 0, 8)
    state = assert_consistent(sqlite_settings, 9)
    new = by_name(state["vosim.product"])["new"]
    assert new["cutout_index"] == 8


def test_resume_after_a_failure_between_batches(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_archive(tmp_path / "archive")
    real_write = ProductCatalogue.write
    calls = []

    def crash_on_second_batch(self, conn, new, updated):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real_write(self, conn, new, updated)

    monkeypatch.setattr(ProductCatalogue, "write", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        run(sqlite_settings, folder, batch_size=3)
    # The second batch's cut-outs were written, its rows never committed.
    assert CutoutStore(sqlite_settings.cutout_store).n_rows == 6
    assert len(catalogue_state(sqlite_settings)["vosim.product"]) == 3

    monkeypatch.setattr(ProductCatalogue, "write", real_write)
    report = run(sqlite_settings, folder, batch_size=3)
    assert (report.ingested, report.unchanged, report.failed) == (5, 3, 0)
    assert any("dropped 3 cut-outs" in line for line in report.warnings)
    assert_consistent(sqlite_settings, 8)


def test_resume_after_the_process_is_killed(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    script = textwrap.dedent(
        """
        import os, signal, sys
        from model_training.ingest.stage import ingest_folder
        from model_training.ingest.catalogue_writer import ProductCatalogue
        from tap_schema import Settings

        real_write, calls = ProductCatalogue.write, []

        def killed_before_second_commit(self, conn, new, updated):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_write(self, conn, new, updated)

        ProductCatalogue.write = killed_before_second_commit
        settings = Settings.from_env({"VOSIM_DATA_DIR": sys.argv[2]})
        ingest_folder(settings, sys.argv[1], progress=False, workers=1, batch_size=3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(sqlite_settings.data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(catalogue_state(sqlite_settings)["vosim.product"]) == 3

    report = run(sqlite_settings, folder)
    assert (report.ingested, report.unchanged, report.failed) == (5, 3, 0)
    assert_consistent(sqlite_settings, 8)


def test_a_worker_killed_on_one_file_fails_only_that_file(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_archive(tmp_path / "archive", n_images=8)
    write_image(folder / "doomed.fits", source_image(64, 64, seed=66))
    # Pool processes are forked, so they run the patched function.
    monkeypatch.setattr(product, "prepare_product", _die_on_doomed_files)
    report = run(sqlite_settings, folder, workers=2)
    assert (report.ingested, report.failed) == (10, 1)
    assert report.failures == [f"{folder / 'doomed.fits'}: {WORKER_DIED}"]
    assert_consistent(sqlite_settings, 10)


def test_bad_files_fail_alone_with_one_line_each(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    run(sqlite_settings, folder)
    before = catalogue_state(sqlite_settings)
    bad = {
        "text.fits": "not a FITS file",
        "truncated.fits": "truncated or corrupt",
        "blank.fits": "NaN",
        "zero.fits": "zero",
    }
    (folder / "text.fits").write_text("SIMPLE? no, this is a README\n")
    truncated = write_image(folder / "truncated.fits", source_image(64, 64))
    truncated.write_bytes(truncated.read_bytes()[:4000])
    write_image(folder / "blank.fits", np.full((32, 32), np.nan))
    write_image(folder / "zero.fits", np.zeros((32, 32)))
    # An ingested file that is now broken: reported, and its rows stay.
    broken = folder / "project0" / "image0.fits"
    broken.write_bytes(broken.read_bytes()[:5000])
    bad["project0/image0.fits"] = "truncated or corrupt"
    write_image(folder / "good.fits", source_image(64, 64, seed=77))

    report = run(sqlite_settings, folder)
    assert (report.ingested, report.updated, report.unchanged, report.failed) == (1, 0, 7, 5)
    assert report.exit_status == 1
    assert len(report.failures) == 5
    for name, reason in bad.items():
        (line,) = [f for f in report.failures if f.startswith(f"{folder / name}: ")]
        assert reason in line
        assert "\n" not in line
    state = assert_consistent(sqlite_settings, 9)
    for table, rows in before.items():
        old = next(r for r in rows if r["obs_publisher_did"].endswith("?image0"))
        assert old in state[table]


def test_same_minted_did_twice_is_an_error_for_the_second(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    folder = tmp_path / "archive"
    write_image(folder / "a" / "HH 212.fits", source_image(64, 64, seed=1))
    write_image(folder / "b" / "HH_212.fits", source_image(64, 64, seed=2))
    report = run(sqlite_settings, folder)
    assert (report.ingested, report.failed) == (1, 1)
    (line,) = report.failures
    assert line.startswith(str(folder / "b" / "HH_212.fits"))
    assert "'ivo://vosim.example/products?HH_212' also names" in line and "rename" in line
    # Still an error on the next run, while the first file exists.
    assert run(sqlite_settings, folder).failed == 1


def test_metadata_overrides_reports_and_reingests(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    folder = make_archive(tmp_path / "archive")
    metadata = tmp_path / "metadata.csv"
    metadata.write_text(
        "file,scientific_category,obs_release_date,t_exptime,observer\n"
        'project0/image0.fits,"Galaxies and galactic nuclei",2030-01-01,3600,someone\n'
        "image1.fits,Stellar evolution and the Sun,,,x\n"
        "image2.fits,,31/12/2020,,x\n"
        "cube.fits,,,ten minutes,x\n"
        "missing.fits,,,,x\n"
    )
    report = run(sqlite_settings, folder, metadata)
    assert (report.ingested, report.failed) == (6, 2)
    assert sum("'observer'" in w for w in report.warnings) == 1
    assert any("missing.fits" in w for w in report.warnings)
    date_failure = next(f for f in report.failures if "image2.fits" in f)
    assert "obs_release_date" in date_failure and "31/12/2020" in date_failure
    assert "t_exptime" in next(f for f in report.failures if "cube.fits" in f)
    obscore = {r["obs_id"]: r for r in catalogue_state(sqlite_settings)["ivoa.obscore"]}
    image0 = obscore["image0"]
    assert image0["scientific_category"] == "Galaxies and galactic nuclei"
    assert image0["obs_release_date"].year == 2030
    assert image0["t_exptime"] == 3600.0
    assert image0["t_max"] == pytest.approx(image0["t_min"] + 3600 / 86400)
    assert obscore["image1"]["scientific_category"] == "Stellar evolution and the Sun"
    assert obscore["image1"]["obs_release_date"].year == 2017  # DATE-OBS + 12 months

    metadata.write_text(
        "file,scientific_category\n"
        'project0/image0.fits,"Galaxies and galactic nuclei"\n'
        "image1.fits,Stellar evolution and the Sun\n"
    )
    report = run(sqlite_settings, folder, metadata)
    # image0's row changed (no more release date or exposure), image2 and cube now pass.
    assert (report.ingested, report.updated, report.unchanged, report.failed) == (2, 1, 5, 0)
    image0 = {r["obs_id"]: r for r in catalogue_state(sqlite_settings)["ivoa.obscore"]}["image0"]
    assert image0["obs_release_date"].year == 2017
    assert image0["t_exptime"] is None
    assert_consistent(sqlite_settings, 8)


def test_overlong_values_fail_that_file_only(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    metadata = tmp_path / "metadata.csv"
    metadata.write_text(f"file,target_name\nimage1.fits,{'x' * 200}\n")
    report = run(sqlite_settings, folder, metadata)
    assert (report.ingested, report.failed) == (7, 1)
    assert "target_name is 200 characters long" in report.failures[0]
    assert_consistent(sqlite_settings, 7)


def test_a_batch_the_database_refuses_is_retried_file_by_file(
    tmp_path: Path, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_archive(tmp_path / "archive")
    real_write = ProductCatalogue.write

    def refuse_image4(self, conn, new, updated):
        new = list(new)
        if any(p.task.path.stem == "image4" for p, _ in new):
            raise IntegrityError("INSERT", {}, Exception("refused"))
        return real_write(self, conn, new, updated)

    monkeypatch.setattr(ProductCatalogue, "write", refuse_image4)
    report = run(sqlite_settings, folder, batch_size=4)
    assert (report.ingested, report.failed) == (7, 1)
    assert report.failures[0].startswith(str(folder / "project0" / "image4.fits"))
    assert "the catalogue refused its rows" in report.failures[0]
    assert_consistent(sqlite_settings, 7)


def test_bad_arguments(tmp_path: Path, sqlite_settings: Settings) -> None:
    with pytest.raises(IngestError, match="not a folder"):
        run(sqlite_settings, tmp_path / "nowhere")
    folder = make_archive(tmp_path / "archive", n_images=1)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("name,target_name\na.fits,x\n")
    with pytest.raises(MetadataError, match="no 'file' column"):
        run(sqlite_settings, folder, bad_csv)


def test_report_text(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "junk.fits").write_text("junk")
    text = str(run(sqlite_settings, folder))
    assert text.splitlines()[0].startswith("0 ingested, 0 updated, 0 unchanged, 1 failed")
    assert f"failed: {folder / 'junk.fits'}: not a FITS file" in text


@pytest.mark.postgres
def test_ingest_on_postgresql(tmp_path: Path, pg_settings: Settings) -> None:
    folder = make_archive(tmp_path / "archive")
    report = run(pg_settings, folder, workers=2)
    assert (report.ingested, report.failed) == (8, 0)
    assert_consistent(pg_settings, 8)
    write_image(folder / "late.fits", source_image(64, 64, seed=31))
    path = folder / "project1" / "image1.fits"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    report = run(pg_settings, folder)
    assert (report.ingested, report.updated, report.unchanged) == (1, 1, 7)
    state = assert_consistent(pg_settings, 9)
    release = {r["obs_id"]: r["obs_release_date"] for r in state["ivoa.obscore"]}
    assert release["image1"].year == 2017
