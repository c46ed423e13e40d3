"""Ingest with the archive's own identifiers: DIDs and obs_id from the metadata file."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from model_training.ingest.identifiers import DidError, check_did, key_for_did
from model_training.ingest.stage import IngestReport, ingest_folder
from tap_schema import Settings, open_catalogue
from tests.fits_factory import source_image, write_image

ALMA_DID = "ivo://eso.org/ID?uid://A001/X1296/X{:x}d3"
DACHS_DID = "ivo://org.gavo.dc/~?alma/q/uid___A001_X1296_X{}d3"
TABLES = (
    "ivoa.obscore",
    "similarity.image",
    "vosim.product",
    "similarity.embedding",
    "similarity.neighbour",
)


def write_archive(folder: Path, n: int = 5) -> list[Path]:
    """ALMA-like continuum images, one per member folder, all named alike as ALMA's are."""
    return [
        write_image(
            folder / f"member.uid___A001_X1296_X{i}" / "HH212.cont.I.pbcor.fits",
            source_image(64, 64, snr=10.0 + i, seed=i),
        )
        for i in range(n)
    ]


def write_metadata(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, ["file", "obs_publisher_did", "obs_id", "obs_release_date"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def alma_rows(folder: Path, files: list[Path], form: str = ALMA_DID) -> list[dict[str, str]]:
    return [
        {
            "file": path.relative_to(folder).as_posix(),
            "obs_publisher_did": form.format(i),
            "obs_id": f"uid://A001/X1296/X{i:x}d3",
            "obs_release_date": "2020-01-01",
        }
        for i, path in enumerate(files)
    ]


def run(settings: Settings, folder: Path, metadata: Path) -> IngestReport:
    return ingest_folder(settings, folder, metadata, progress=False, workers=1)


def rows_of(settings: Settings) -> dict[str, list[dict]]:
    catalogue = open_catalogue(settings, create=False)
    try:
        with catalogue.begin() as conn:
            return {
                name: [dict(row) for row in conn.execute(select(catalogue.table(name))).mappings()]
                for name in TABLES
            }
    finally:
        catalogue.dispose()


def test_alma_dids_and_obs_ids_are_kept(tmp_path: Path, any_settings: Settings) -> None:
    folder = tmp_path / "archive"
    files = write_archive(folder)
    metadata = write_metadata(tmp_path / "metadata.csv", alma_rows(folder, files))
    report = run(any_settings, folder, metadata)
    assert (report.ingested, report.failed) == (5, 0), str(report)
    assert not any("obs_publisher_did" in line for line in report.warnings)
    state = rows_of(any_settings)
    expected = {ALMA_DID.format(i) for i in range(5)}
    for name in ("ivoa.obscore", "similarity.image", "vosim.product"):
        assert {row["obs_publisher_did"] for row in state[name]} == expected
    obscore = {row["obs_publisher_did"]: row for row in state["ivoa.obscore"]}
    assert obscore[ALMA_DID.format(3)]["obs_id"] == "uid://A001/X1296/X3d3"
    assert obscore[ALMA_DID.format(3)]["access_url"].endswith(
        "/datalink?ID=ivo%3A%2F%2Feso.org%2FID%3Fuid%3A%2F%2FA001%2FX1296%2FX3d3"
    )
    for product in state["vosim.product"]:
        assert re.fullmatch("[0-9a-f]{32}", product["product_key"])
        assert product["product_key"] == key_for_did(product["obs_publisher_did"])
        assert (any_settings.preview_dir / f"{product['product_key']}.png").is_file()
    # a second run with the same metadata changes nothing
    assert run(any_settings, folder, metadata).unchanged == 5


def test_without_a_did_vosim_mints_one(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = tmp_path / "archive"
    files = write_archive(folder, 2)
    rows = alma_rows(folder, files)
    rows[1]["obs_publisher_did"] = ""
    rows[1]["file"] = "member.uid___A001_X1296_X1/HH212.cont.I.pbcor.fits"
    report = run(sqlite_settings, folder, write_metadata(tmp_path / "m.csv", rows))
    assert report.failed == 0, str(report)
    dids = {row["obs_publisher_did"] for row in rows_of(sqlite_settings)["ivoa.obscore"]}
    assert dids == {ALMA_DID.format(0), "ivo://vosim.example/products?HH212.cont.I.pbcor"}


@pytest.mark.parametrize(
    ("did", "reason"),
    [
        ("uid://A001/X1296/X1d3", "does not start with ivo://"),
        ("ivo://eso.org/ID?uid://A001/X1296 X1d3", "white space"),
        ("ivo://eso.org/ID?100%", "% not followed by two hexadecimal digits"),
        ("ivo://es/ID?x", "authority"),
        ("ivo://eso.org/ID?a<b>", "percent-encode"),
    ],
)
def test_a_did_that_is_no_ivoa_identifier_fails_its_file_only(
    tmp_path: Path, sqlite_settings: Settings, did: str, reason: str
) -> None:
    folder = tmp_path / "archive"
    files = write_archive(folder, 3)
    rows = alma_rows(folder, files)
    rows[1]["obs_publisher_did"] = did
    report = run(sqlite_settings, folder, write_metadata(tmp_path / "m.csv", rows))
    assert (report.ingested, report.failed) == (2, 1)
    (line,) = report.failures
    assert line.startswith(f"{files[1]}: ")
    assert repr(did) in line and reason in line and "IVOA Identifiers 2.0" in line


@pytest.mark.parametrize(
    "did",
    [
        "ivo://eso.org/ID?uid://A001/X1296/X1d3",
        "ivo://org.gavo.dc/~?alma/q/uid___A001_X1296_X1d3",
        "IVO://ivoa.net/std/DataLink#links-1.1",
        "ivo://cds.vizier/J/A+A/600/A1?row=3;col=%22a%22",
        "ivo://ivoa.net",
    ],
)
def test_ivoa_identifiers_pass(did: str) -> None:
    assert check_did(did) == did


def test_ivoa_identifier_errors_are_did_errors() -> None:
    with pytest.raises(DidError):
        check_did("ivo://eso.org/ID?[x]")


def test_two_files_claiming_one_did(tmp_path: Path, sqlite_settings: Settings) -> None:
    folder = tmp_path / "archive"
    files = write_archive(folder, 3)
    rows = alma_rows(folder, files)
    rows[2]["obs_publisher_did"] = rows[0]["obs_publisher_did"]
    metadata = write_metadata(tmp_path / "m.csv", rows)
    report = run(sqlite_settings, folder, metadata)
    assert (report.ingested, report.failed) == (2, 1)
    (line,) = report.failures
    assert line.startswith(f"{files[2]}: ")
    assert f"{ALMA_DID.format(0)!r} also names {files[0]}" in line
    # the next run still refuses it, now that the first file holds the DID
    again = run(sqlite_settings, folder, metadata)
    assert (again.unchanged, again.failed) == (2, 1)
    assert "already names" in again.failures[0]


def test_ingest_with_dachs_dids_gives_the_same_keys_on_every_installation(
    tmp_path: Path,
) -> None:
    keys = []
    for name in ("one", "two"):
        settings = Settings.from_env({"VOSIM_DATA_DIR": str(tmp_path / name / "data")})
        folder = tmp_path / name / "archive"
        files = write_archive(folder, 2)
        rows = alma_rows(folder, files, DACHS_DID)
        assert run(settings, folder, write_metadata(tmp_path / name / "m.csv", rows)).failed == 0
        keys.append(sorted(row["product_key"] for row in rows_of(settings)["vosim.product"]))
    assert keys[0] == keys[1] == sorted(key_for_did(DACHS_DID.format(i)) for i in range(2))


def _give_vectors_and_neighbours(settings: Settings) -> None:
    """What train, embed and neighbours would leave: a model, vectors, rankings."""
    catalogue = open_catalogue(settings, create=False)
    try:
        with catalogue.begin() as conn:
            dids = sorted(
                conn.execute(select(catalogue.table("similarity.image").c.obs_publisher_did))
                .scalars()
                .all()
            )
            conn.execute(
                catalogue.table("similarity.model").insert(),
                [{"model_id": 1, "model_name": "m", "image_kind": "continuum", "is_current": 1}],
            )
            conn.execute(
                catalogue.table("similarity.embedding").insert(),
                [
                    {"obs_publisher_did": did, "model_id": 1, "vector": np.ones(4, np.float32)}
                    for did in dids
                ],
            )
            conn.execute(
                catalogue.table("similarity.neighbour").insert(),
                [
                    {
                        "obs_publisher_did": did,
                        "rank": rank,
                        "neighbour_did": other,
                        "cosine_similarity": 0.5,
                        "model_id": 1,
                    }
                    for did in dids
                    for rank, other in enumerate((o for o in dids if o != did), start=1)
                ],
            )
    finally:
        catalogue.dispose()


def test_a_changed_did_is_an_update_that_everything_follows(
    tmp_path: Path, any_settings: Settings
) -> None:
    folder = tmp_path / "archive"
    files = write_archive(folder, 3)
    rows = alma_rows(folder, files)
    run(any_settings, folder, write_metadata(tmp_path / "m.csv", rows))
    _give_vectors_and_neighbours(any_settings)
    before = rows_of(any_settings)
    old, new = ALMA_DID.format(1), DACHS_DID.format(1)
    (old_product,) = [p for p in before["vosim.product"] if p["obs_publisher_did"] == old]

    rows[1]["obs_publisher_did"] = new
    report = run(any_settings, folder, write_metadata(tmp_path / "m.csv", rows))
    assert (report.updated, report.unchanged, report.failed) == (1, 2, 0), str(report)

    after = rows_of(any_settings)
    text = repr(after)
    assert old not in text
    for name in TABLES:
        assert len(after[name]) == len(before[name])
        renamed = [
            {k: (new if isinstance(v, str) and v == old else v) for k, v in row.items()}
            for row in before[name]
        ]
        if name in ("similarity.embedding", "similarity.neighbour"):
            assert sorted(map(repr, after[name])) == sorted(map(repr, renamed))
    (product,) = [p for p in after["vosim.product"] if p["obs_publisher_did"] == new]
    # the product keeps its URL key, preview and cut-out: links handed out still work
    assert product["product_key"] == old_product["product_key"]
    assert product["cutout_index"] == old_product["cutout_index"]
    assert (any_settings.preview_dir / f"{product['product_key']}.png").is_file()
    (obscore,) = [r for r in after["ivoa.obscore"] if r["obs_publisher_did"] == new]
    assert "org.gavo.dc" in obscore["access_url"]


def test_installation_keys_from_file_names_are_kept(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    # Before keys were digests, a product's key was its file name: such a
    # catalogue (keys rewritten to that form here) keeps them on re-ingest.
    folder = tmp_path / "archive"
    write_image(folder / "HH212.fits", source_image(64, 64, seed=3))
    ingest_folder(sqlite_settings, folder, progress=False, workers=1)
    catalogue = open_catalogue(sqlite_settings, create=False)
    product = catalogue.table("vosim.product")
    with catalogue.begin() as conn:
        conn.execute(product.update().values(product_key="HH212"))
    catalogue.dispose()
    (
        sqlite_settings.preview_dir / f"{key_for_did('ivo://vosim.example/products?HH212')}.png"
    ).rename(sqlite_settings.preview_dir / "HH212.png")
    report = ingest_folder(sqlite_settings, folder, progress=False, workers=1, reprocess=True)
    assert report.updated == 1
    (row,) = rows_of(sqlite_settings)["vosim.product"]
    assert row["product_key"] == "HH212"
    assert (sqlite_settings.preview_dir / "HH212.png").is_file()


def test_images_without_a_release_date_are_named_in_the_report(
    tmp_path: Path, sqlite_settings: Settings
) -> None:
    folder = tmp_path / "archive"
    write_image(folder / "dated.fits", source_image(64, 64, seed=1))
    write_image(folder / "undated.fits", source_image(64, 64, seed=2), date_obs=None)
    report = ingest_folder(sqlite_settings, folder, progress=False, workers=1)
    assert (report.ingested, report.no_release_date) == (2, 1)
    assert (
        "warning: 1 images have no release date and stay proprietary; give obs_release_date"
        in str(report)
    )
