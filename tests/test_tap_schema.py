"""The catalogue tables and TAP_SCHEMA come from the Felis files, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from tap_schema import PUBLISHED_SCHEMAS, Settings, load_schema, open_catalogue
from tap_schema.database import CatalogueUpgradeError
from vo_service.cli import main


def _tap_rows(catalogue, table: str) -> list[dict]:
    with catalogue.begin() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(catalogue.table(table)))]


def test_tap_schema_columns_match_felis_files(any_settings: Settings) -> None:
    catalogue = open_catalogue(any_settings)
    published = {
        (row["table_name"], row["column_name"]): row
        for row in _tap_rows(catalogue, "TAP_SCHEMA.columns")
    }
    for schema_name in PUBLISHED_SCHEMAS:
        for table in load_schema(schema_name).tables:
            for column in table.columns:
                row = published.pop((f"{schema_name}.{table.name}", column.name))
                assert row["ucd"] == column.ivoa_ucd
                assert row["unit"] == column.ivoa_unit
                assert row["utype"] == column.votable_utype
                assert row["description"] == column.description
                assert row["principal"] == column.tap_principal
    # What is left describes TAP_SCHEMA itself, nothing else.
    assert {table for table, _ in published} == {
        f"TAP_SCHEMA.{name}" for name in ("schemas", "tables", "columns", "keys", "key_columns")
    }


def test_tap_schema_lists_published_schemas_only(any_settings: Settings) -> None:
    catalogue = open_catalogue(any_settings)
    schemas = {row["schema_name"] for row in _tap_rows(catalogue, "TAP_SCHEMA.schemas")}
    assert schemas == {"ivoa", "similarity", "TAP_SCHEMA"}
    tables = {row["table_name"] for row in _tap_rows(catalogue, "TAP_SCHEMA.tables")}
    assert "ivoa.obscore" in tables
    assert not any(name.startswith("vosim.") for name in tables)


def test_obscore_has_the_30_mandatory_columns(sqlite_settings: Settings) -> None:
    mandatory = """dataproduct_type calib_level obs_collection obs_id obs_publisher_did
        access_url access_format access_estsize target_name s_ra s_dec s_fov s_region
        s_resolution t_min t_max t_exptime t_resolution em_min em_max em_res_power o_ucd
        pol_states facility_name instrument_name s_xel1 s_xel2 t_xel em_xel pol_xel""".split()
    assert len(mandatory) == 30
    catalogue = open_catalogue(sqlite_settings)
    columns = set(catalogue.table("ivoa.obscore").c.keys())
    assert set(mandatory) <= columns
    assert {"obs_release_date", "scientific_category", "image_kind"} <= columns


def test_create_all_twice_keeps_rows(any_settings: Settings) -> None:
    catalogue = open_catalogue(any_settings)
    model = catalogue.table("similarity.model")
    with catalogue.begin() as conn:
        conn.execute(model.insert().values(model_id=1, model_name="run", image_kind="continuum"))
    catalogue.create_all()
    n_columns = len(_tap_rows(catalogue, "TAP_SCHEMA.columns"))
    again = open_catalogue(any_settings)
    assert len(_tap_rows(again, "TAP_SCHEMA.columns")) == n_columns
    with again.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one() == 1


def test_vector_column_round_trip(any_settings: Settings) -> None:
    catalogue = open_catalogue(any_settings)
    vector = np.linspace(-1, 1, 2048, dtype=np.float32)
    with catalogue.begin() as conn:
        conn.execute(
            catalogue.table("similarity.model").insert(),
            {"model_id": 7, "model_name": "run", "image_kind": "continuum"},
        )
        conn.execute(
            catalogue.table("similarity.image").insert(),
            {"obs_publisher_did": "ivo://x/y?z", "image_kind": "continuum", "cutout_rule": "peak"},
        )
        conn.execute(
            catalogue.table("similarity.embedding").insert(),
            {"obs_publisher_did": "ivo://x/y?z", "model_id": 7, "vector": vector},
        )
        stored = conn.execute(
            sa.select(catalogue.table("similarity.embedding").c.vector)
        ).scalar_one()
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, vector)


def test_sqlite_schema_files_sit_next_to_the_database(sqlite_settings: Settings) -> None:
    open_catalogue(sqlite_settings)
    files = {path.name for path in sqlite_settings.data_dir.glob("*.sqlite")}
    assert {"catalogue.sqlite", "catalogue.ivoa.sqlite", "catalogue.similarity.sqlite"} <= files


@pytest.mark.parametrize("name", ["nonexistent", "TAP_SCHEMA"])
def test_unknown_schema_is_refused(name: str) -> None:
    with pytest.raises(KeyError):
        load_schema(name)


def test_an_older_catalogue_gets_the_columns_added_since(any_settings: Settings) -> None:
    # A catalogue made before vosim.uws_job.base_url existed, then opened by this version.
    catalogue = open_catalogue(any_settings)
    with catalogue.begin() as conn:
        conn.execute(sa.text('ALTER TABLE "vosim"."uws_job" DROP COLUMN "base_url"'))
    catalogue.dispose()

    catalogue = open_catalogue(any_settings)
    with catalogue.begin() as conn:
        columns = sa.inspect(conn).get_columns("uws_job", schema="vosim")
    catalogue.dispose()
    assert "base_url" in {column["name"] for column in columns}


def test_a_missing_column_that_cannot_be_null_is_reported(any_settings: Settings) -> None:
    catalogue = open_catalogue(any_settings)
    with catalogue.begin() as conn:
        conn.execute(sa.text('ALTER TABLE "vosim"."product" DROP COLUMN "file_size"'))
    catalogue.dispose()
    with pytest.raises(CatalogueUpgradeError, match="product lacks the column file_size"):
        open_catalogue(any_settings)


def test_the_command_line_reports_a_catalogue_it_cannot_upgrade(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    catalogue = open_catalogue(sqlite_settings)
    with catalogue.begin() as conn:
        conn.execute(sa.text('ALTER TABLE "vosim"."product" DROP COLUMN "file_size"'))
    catalogue.dispose()
    monkeypatch.setenv("VOSIM_DATA_DIR", str(sqlite_settings.data_dir))
    monkeypatch.setenv("VOSIM_DB_URL", sqlite_settings.db_url)
    assert main(["embed"]) == 2
    assert "lacks the column file_size" in capsys.readouterr().err
