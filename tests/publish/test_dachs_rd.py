"""The DaCHS resource descriptor says what the Felis file says, in DaCHS' words."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tap_schema import load_schema
from tap_schema.dachs import render_resource_descriptor, write_resource_descriptor


def _parse(path: Path) -> ET.Element:
    return ET.fromstring(render_resource_descriptor(load_schema("similarity"), path=path))


def test_every_table_and_column_of_the_felis_file(tmp_path: Path) -> None:
    resource = _parse(tmp_path / "q.rd")
    assert resource.get("schema") == "similarity"
    assert resource.get("resdir") == str(tmp_path)
    schema = load_schema("similarity")
    tables = {table.get("id"): table for table in resource.iter("table")}
    assert set(tables) == {table.name for table in schema.tables}
    for felis_table in schema.tables:
        table = tables[felis_table.name]
        assert table.get("onDisk") == "True" and table.get("adql") == "True"
        columns = [column.get("name") for column in table.iter("column")]
        assert columns == [column.name for column in felis_table.columns]
        for felis_column, column in zip(felis_table.columns, table.iter("column"), strict=True):
            assert column.get("description") == " ".join(felis_column.description.split())
            assert column.get("ucd") == felis_column.ivoa_ucd
            assert column.get("unit") == felis_column.ivoa_unit
            assert column.get("required") == str(not felis_column.nullable)
            assert (int(column.get("verbLevel")) <= 20) == bool(felis_column.tap_principal)


def test_types_keys_and_indexes(tmp_path: Path) -> None:
    tables = {table.get("id"): table for table in _parse(tmp_path / "q.rd").iter("table")}
    types = {
        (table_id, column.get("name")): column.get("type")
        for table_id, table in tables.items()
        for column in table.iter("column")
    }
    assert types[("embedding", "vector")] == "real[]"
    assert types[("neighbour", "cosine_similarity")] == "real"
    assert types[("neighbour", "rank")] == "integer"
    assert types[("model", "n_images")] == "bigint"
    assert types[("model", "is_current")] == "smallint"
    assert types[("model", "trained_at")] == "timestamp"
    assert types[("image", "obs_publisher_did")] == "text"
    assert tables["neighbour"].get("primary") == "obs_publisher_did,model_id,rank"
    keys = {
        (key.get("source"), key.get("inTable")) for key in tables["neighbour"].iter("foreignKey")
    }
    assert keys == {("model_id", "model"), ("obs_publisher_did", "image")}
    assert all(key.get("metaOnly") == "True" for key in tables["neighbour"].iter("foreignKey"))
    assert [index.get("columns") for index in tables["neighbour"].iter("index")] == [
        "neighbour_did"
    ]


def test_the_data_element_keeps_the_rows(tmp_path: Path) -> None:
    data = _parse(tmp_path / "q.rd").find("data")
    assert data is not None and data.get("updating") == "True"
    assert {make.get("table") for make in data.iter("make")} == {
        "image",
        "model",
        "embedding",
        "neighbour",
        "category_compat",
    }


def test_writing_twice_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "vosim" / "q.rd"
    assert write_resource_descriptor(path, "similarity")
    assert "dachs imp -m " + str(path) in path.read_text()
    assert not write_resource_descriptor(path, "similarity")
    assert [p.name for p in path.parent.iterdir()] == ["q.rd"]
