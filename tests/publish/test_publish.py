"""vosim publish / unpublish into an archive's PostgreSQL database, the generic TAP_SCHEMA path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import model_training.publish.stage as publish_module
from model_training.ingest.catalogue_writer import ProductCatalogue
from model_training.publish.archive_rows import ArchiveMapping, ArchiveMappingError
from model_training.publish.stage import PublishError, publish, unpublish
from tap_schema import Settings, open_catalogue
from tap_schema.plugin_database import ArchiveDatabaseError
from tap_schema.registration import TapSchemaMismatchError
from vo_service.cli import main

from . import catalogue as cat
from .archive import MAPPING, dump, make_archive, set_release
from .conftest import PUBLIC_URL


@pytest.fixture
def archive_url(pg_database_url: str) -> str:
    make_archive(pg_database_url)
    return pg_database_url


def _run(settings: Settings, url: str, **options) -> publish_module.PublishReport:
    return publish(settings, url, mapping=MAPPING, now=options.pop("now", cat.NOW), **options)


def _similarity(url: str) -> dict[str, list[dict]]:
    return {name: rows for name, rows in dump(url).items() if name.startswith("similarity.")}


def test_publish_writes_the_public_rows_only(vosim_settings: Settings, archive_url: str) -> None:
    report = _run(vosim_settings, archive_url)
    tables = _similarity(archive_url)
    published = {cat.did(i) for i in cat.PUBLISHED}
    assert {row["obs_publisher_did"] for row in tables["similarity.image"]} == published
    assert {
        (row["obs_publisher_did"], row["model_id"]) for row in tables["similarity.embedding"]
    } == {(cat.did(i), cat.CURRENT_MODELS[cat.kind(i)]) for i in cat.PUBLISHED}
    neighbours = {
        (row["obs_publisher_did"], row["model_id"], row["neighbour_did"])
        for row in tables["similarity.neighbour"]
    }
    assert neighbours == cat.expected_neighbours(set(cat.PUBLISHED))
    assert {row["model_id"] for row in tables["similarity.model"]} == {1, 2}
    assert len(tables["similarity.category_compat"]) == 2
    preview = {row["obs_publisher_did"]: row["preview_url"] for row in tables["similarity.image"]}
    assert preview[cat.did(3)] == f"{PUBLIC_URL}/preview/img-03.png"

    held = report.selection
    assert held.proprietary == {cat.did(cat.FUTURE), cat.did(cat.UNKNOWN)}
    assert held.not_in_archive == {cat.did(cat.NOT_IN_ARCHIVE)}
    assert set(held.disagreeing) == {cat.did(cat.DISAGREEING)}
    assert "category" in held.disagreeing[cat.did(cat.DISAGREEING)]
    assert report.rows["neighbour"] == len(neighbours)
    assert report.tap_schema == "TAP_SCHEMA"
    assert "held back: 2 proprietary, 1 not in the archive's table, 1 classified" in str(report)


def test_vectors_survive_the_binary_copy(vosim_settings: Settings, archive_url: str) -> None:
    _run(vosim_settings, archive_url)
    engine = sa.create_engine(archive_url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                "SELECT vector FROM similarity.embedding WHERE obs_publisher_did = :did "
                "AND model_id = 1"
            ),
            {"did": cat.did(1)},
        ).scalar_one()
    engine.dispose()
    np.testing.assert_array_equal(np.asarray(stored, dtype=np.float32), cat.vector(1, 1))


def test_tap_schema_describes_similarity_next_to_the_archive_rows(
    vosim_settings: Settings, archive_url: str
) -> None:
    before = dump(archive_url)
    _run(vosim_settings, archive_url)
    after = dump(archive_url)
    for name in ("schemas", "tables", "columns", "keys", "key_columns"):
        ours = [
            row for row in after[f"TAP_SCHEMA.{name}"] if row not in before[f"TAP_SCHEMA.{name}"]
        ]
        assert all(row in after[f"TAP_SCHEMA.{name}"] for row in before[f"TAP_SCHEMA.{name}"])
        if name in ("schemas", "tables"):
            assert {row["schema_name"] for row in ours} == {"similarity"}
    tables = {row["table_name"] for row in after["TAP_SCHEMA.tables"]}
    assert {"ivoa.obscore", "similarity.neighbour", "similarity.embedding"} <= tables
    schema_index = {row["schema_name"]: row["schema_index"] for row in after["TAP_SCHEMA.schemas"]}
    assert schema_index["similarity"] > schema_index["ivoa"]
    # the archive's own table is untouched
    assert after["ivoa.obscore"] == before["ivoa.obscore"]


def test_publishing_twice_changes_nothing(vosim_settings: Settings, archive_url: str) -> None:
    first = _run(vosim_settings, archive_url)
    once = dump(archive_url)
    second = _run(vosim_settings, archive_url)
    assert dump(archive_url) == once
    assert first.created_tables and not second.created_tables


def test_unpublish_removes_exactly_what_publish_added(
    vosim_settings: Settings, archive_url: str
) -> None:
    before = dump(archive_url)
    _run(vosim_settings, archive_url)
    report = unpublish(archive_url)
    assert dump(archive_url) == before
    assert "similarity" in report.dropped
    assert "similarity.neighbour" in report.dropped
    assert unpublish(archive_url).dropped == []


def test_unpublish_keeps_a_similarity_schema_the_archive_had(
    vosim_settings: Settings, archive_url: str
) -> None:
    engine = sa.create_engine(archive_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA similarity"))
    engine.dispose()
    before = dump(archive_url)
    _run(vosim_settings, archive_url)
    assert "similarity" not in unpublish(archive_url).dropped
    assert dump(archive_url) == before
    engine = sa.create_engine(archive_url)
    with engine.connect() as conn:
        assert "similarity" in sa.inspect(conn).get_schema_names()
    engine.dispose()


def test_a_failed_publication_leaves_the_archive_as_it_was(
    vosim_settings: Settings, archive_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_rows = publish_module.copy_rows

    def fail_on_categories(conn, table, rows):
        if table.name == "category_compat":
            raise RuntimeError("disk full")
        return copy_rows(conn, table, rows)

    before = dump(archive_url)
    monkeypatch.setattr(publish_module, "copy_rows", fail_on_categories)
    with pytest.raises(RuntimeError, match="disk full"):
        _run(vosim_settings, archive_url)
    assert dump(archive_url) == before  # not even the schema was left behind

    monkeypatch.setattr(publish_module, "copy_rows", copy_rows)
    _run(vosim_settings, archive_url)
    published = dump(archive_url)
    monkeypatch.setattr(publish_module, "copy_rows", fail_on_categories)
    with pytest.raises(RuntimeError, match="disk full"):
        _run(vosim_settings, archive_url, now=cat.AFTER_LATER)
    assert dump(archive_url) == published


def test_refresh_adds_images_whose_proprietary_period_ended(
    vosim_settings: Settings, archive_url: str, pg_server_url: str
) -> None:
    _run(vosim_settings, archive_url)
    report = _run(vosim_settings, archive_url, refresh=True, now=cat.AFTER_LATER)
    assert report.rows["image"] == 1
    assert report.rows["embedding"] == 1
    refreshed = _similarity(archive_url)
    # the same rows as a full publication at that date
    _run(vosim_settings, archive_url, now=cat.AFTER_LATER)
    assert _similarity(archive_url) == refreshed
    neighbours = {
        (row["obs_publisher_did"], row["model_id"], row["neighbour_did"])
        for row in refreshed["similarity.neighbour"]
    }
    assert neighbours == cat.expected_neighbours({*cat.PUBLISHED, cat.FUTURE})
    assert report.rows["neighbour"] == len(neighbours) - len(
        cat.expected_neighbours(set(cat.PUBLISHED))
    )


def test_refresh_removes_images_that_are_proprietary_again(
    vosim_settings: Settings, archive_url: str
) -> None:
    _run(vosim_settings, archive_url)
    set_release(archive_url, 3, None)
    report = _run(vosim_settings, archive_url, refresh=True)
    assert report.removed_images == 1
    tables = _similarity(archive_url)
    for name, rows in tables.items():
        for row in rows:
            assert cat.did(3) not in (row.get("obs_publisher_did"), row.get("neighbour_did")), name
    assert _run(vosim_settings, archive_url, refresh=True).rows == {
        "image": 0,
        "embedding": 0,
        "neighbour": 0,
        "category_compat": 2,
    }


def test_refresh_follows_a_changed_did(vosim_settings: Settings, archive_url: str) -> None:
    _run(vosim_settings, archive_url)
    before = _similarity(archive_url)
    old, new = cat.did(3), "ivo://eso.org/ID?uid://A001/X003/X1d3"
    engine = sa.create_engine(archive_url)
    with engine.begin() as conn:  # the archive renames the product in its own ObsCore
        conn.execute(
            sa.text(
                "UPDATE ivoa.obscore SET obs_publisher_did = :new WHERE obs_publisher_did = :old"
            ),
            {"new": new, "old": old},
        )
    engine.dispose()
    catalogue = open_catalogue(vosim_settings, create=False)
    with catalogue.begin() as conn:  # as a re-ingest with the new DID in the metadata does
        ProductCatalogue(catalogue).rename(conn, old, new)
    catalogue.dispose()

    report = _run(vosim_settings, archive_url, refresh=True)
    assert report.removed_images == 1 and report.rows["image"] == 1
    after = _similarity(archive_url)
    assert old not in repr(after)

    def renamed(row: dict) -> tuple:
        return tuple(sorted((k, repr(new if v == old else v)) for k, v in row.items()))

    for name in ("similarity.image", "similarity.embedding", "similarity.neighbour"):
        assert sorted(map(renamed, before[name])) == sorted(map(renamed, after[name])), name


def test_refresh_needs_a_publication_first(vosim_settings: Settings, archive_url: str) -> None:
    before = dump(archive_url)
    with pytest.raises(ArchiveDatabaseError, match="without --refresh"):
        _run(vosim_settings, archive_url, refresh=True)
    assert dump(archive_url) == before


def test_refresh_refuses_when_the_current_models_changed(
    vosim_settings: Settings, archive_url: str
) -> None:
    _run(vosim_settings, archive_url)
    catalogue = open_catalogue(vosim_settings, create=False)
    model = catalogue.table("similarity.model")
    with catalogue.begin() as conn:
        conn.execute(model.update().where(model.c.model_id == 1).values(is_current=0))
        conn.execute(model.update().where(model.c.model_id == 3).values(is_current=1))
    catalogue.dispose()
    with pytest.raises(PublishError, match="without --refresh"):
        _run(vosim_settings, archive_url, refresh=True)


def test_lower_case_tap_schema_with_columns_of_its_own(
    vosim_settings: Settings, pg_database_url: str
) -> None:
    make_archive(pg_database_url, tap_schema="tap_schema", owner_column="optional")
    before = dump(pg_database_url)
    report = _run(vosim_settings, pg_database_url)
    assert report.tap_schema == "tap_schema"
    tables = {row["table_name"] for row in dump(pg_database_url)["tap_schema.tables"]}
    assert "similarity.image" in tables
    unpublish(pg_database_url)
    assert dump(pg_database_url) == before


def test_a_tap_schema_column_vosim_cannot_fill_is_refused(
    vosim_settings: Settings, pg_database_url: str
) -> None:
    make_archive(pg_database_url, tap_schema="tap_schema", owner_column="required")
    before = dump(pg_database_url)
    with pytest.raises(TapSchemaMismatchError, match="owner_id"):
        _run(vosim_settings, pg_database_url)
    assert dump(pg_database_url) == before


def test_a_dachs_database_needs_a_resource_descriptor(
    vosim_settings: Settings, archive_url: str
) -> None:
    engine = sa.create_engine(archive_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA dc"))
        conn.execute(sa.text("CREATE TABLE dc.tablemeta (tablename text, sourcerd text)"))
    engine.dispose()
    with pytest.raises(PublishError, match="--dachs-rd"):
        _run(vosim_settings, archive_url)


def test_a_wrong_mapping_is_named(vosim_settings: Settings, archive_url: str) -> None:
    with pytest.raises(ArchiveMappingError, match="no column 'release'"):
        publish(
            vosim_settings,
            archive_url,
            mapping=ArchiveMapping(table="ivoa.obscore", release_date="release"),
        )
    with pytest.raises(ArchiveMappingError, match=r"no table or view 'ivoa\.missing'"):
        publish(vosim_settings, archive_url, mapping=ArchiveMapping(table="ivoa.missing"))


def test_an_empty_installation_is_a_publish_error(
    sqlite_settings: Settings, archive_url: str
) -> None:
    with pytest.raises(PublishError, match="run vosim ingest"):
        publish(sqlite_settings.with_changes(public_url=PUBLIC_URL), archive_url)


def test_publishing_without_a_public_url_is_a_publish_error(
    vosim_settings: Settings, archive_url: str
) -> None:
    with pytest.raises(PublishError, match="set VOSIM_PUBLIC_URL"):
        publish(vosim_settings.with_changes(public_url=None), archive_url)


def test_an_unreachable_archive_is_a_publish_error(vosim_settings: Settings) -> None:
    with pytest.raises(PublishError, match="cannot connect"):
        publish(vosim_settings, "postgresql+psycopg://nobody:x@127.0.0.1:1/none")


def test_command_line(
    vosim_settings: Settings,
    archive_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VOSIM_DATA_DIR", str(vosim_settings.data_dir))
    monkeypatch.setenv("VOSIM_PUBLIC_URL", PUBLIC_URL)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[archive]\ncategory = "scientific_category"\nkind = "dataproduct_type"\n'
        '[archive.kinds]\nimage = "continuum"\ncube = "peak_flux"\n'
    )
    before = dump(archive_url)
    assert main(["publish", "--engine-url", archive_url, "--mapping", str(mapping)]) == 0
    assert "published 2 model" in capsys.readouterr().out
    assert main(["unpublish", "--engine-url", archive_url]) == 0
    assert "similarity.neighbour" in capsys.readouterr().out
    assert dump(archive_url) == before
    assert main(["publish", "--engine-url", "sqlite:///x.sqlite"]) == 2
    assert "PostgreSQL only" in capsys.readouterr().err


def test_keys_and_indexes_are_rebuilt_after_a_full_load(
    vosim_settings: Settings, archive_url: str
) -> None:
    def keys_and_indexes() -> dict[str, tuple]:
        engine = sa.create_engine(archive_url)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            found = {
                table: (
                    tuple(inspector.get_pk_constraint(table, "similarity")["constrained_columns"]),
                    sorted(key["name"] for key in inspector.get_foreign_keys(table, "similarity")),
                    sorted(index["name"] for index in inspector.get_indexes(table, "similarity")),
                )
                for table in inspector.get_table_names(schema="similarity")
            }
        engine.dispose()
        return found

    _run(vosim_settings, archive_url)
    first = keys_and_indexes()
    assert first["neighbour"] == (
        ("obs_publisher_did", "model_id", "rank"),
        ["neighbour_image_fk", "neighbour_model_fk"],
        ["neighbour_neighbour_did_idx"],
    )
    assert first["image"][2] == ["image_kind_idx"]
    _run(vosim_settings, archive_url)
    assert keys_and_indexes() == first
