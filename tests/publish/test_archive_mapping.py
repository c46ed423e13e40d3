"""The mapping file, and the decision which images may be published."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from model_training.publish.archive_rows import (
    ArchiveImage,
    ArchiveMapping,
    ArchiveMappingError,
    _utc,
)
from model_training.publish.selection import VosimImage, select_images

NOW = datetime(2025, 1, 1)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_obscore_names(tmp_path: Path) -> None:
    mapping = ArchiveMapping.from_toml(_write(tmp_path, "[archive]\n"))
    assert mapping == ArchiveMapping()
    assert (mapping.table, mapping.publisher_did, mapping.release_date) == (
        "ivoa.obscore",
        "obs_publisher_did",
        "obs_release_date",
    )
    assert mapping.category is None and mapping.kind is None


def test_kinds_translate_the_archive_values(tmp_path: Path) -> None:
    mapping = ArchiveMapping.from_toml(
        _write(
            tmp_path,
            '[archive]\nkind = "dataproduct_type"\n[archive.kinds]\nimage = "continuum"\n',
        )
    )
    assert mapping.image_kind("image") == "continuum"
    assert mapping.image_kind("spectrum") is None
    assert ArchiveMapping(kind="image_kind").image_kind("peak_flux") == "peak_flux"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[archive\n", "not valid TOML"),
        ("[other]\n", r"no \[archive\] table"),
        ('[archive]\nrelease = "x"\n', "unknown key"),
        ("[archive]\ncategory = 3\n", "must be a str"),
        ('[archive]\nkinds = "image"\n', "must be a dict"),
        ("[archive.kinds]\nimage = 1\n", "values must be strings"),
    ],
)
def test_malformed_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ArchiveMappingError, match=message):
        ArchiveMapping.from_toml(_write(tmp_path, text))


def test_release_dates_of_any_type_become_naive_utc() -> None:
    assert _utc(None, "x") is None
    assert _utc(date(2020, 5, 6), "x") == datetime(2020, 5, 6)
    assert _utc("2020-05-06T01:02:03Z", "x") == datetime(2020, 5, 6, 1, 2, 3)
    assert _utc("2020-05-06", "x") == datetime(2020, 5, 6)
    cest = datetime(2020, 5, 6, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    assert _utc(cest, "x") == datetime(2020, 5, 6, 1, 0)
    assert _utc(datetime(2020, 5, 6, tzinfo=UTC), "x") == datetime(2020, 5, 6)
    with pytest.raises(ArchiveMappingError, match="not ISO 8601"):
        _utc("next year", "ivo://x")
    with pytest.raises(ArchiveMappingError, match="not a date"):
        _utc(2020, "ivo://x")


def test_selection() -> None:
    vosim = {
        did: VosimImage(did, kind, "ISM")
        for did, kind in [
            ("public", "continuum"),
            ("future", "continuum"),
            ("unknown", "continuum"),
            ("absent", "continuum"),
            ("other-kind", "continuum"),
            ("other-category", "peak_flux"),
            ("released-now", "peak_flux"),
        ]
    }
    archive = {
        "public": ArchiveImage("public", datetime(2020, 1, 1), "ISM", "continuum"),
        "future": ArchiveImage("future", datetime(2030, 1, 1), "ISM", "continuum"),
        "unknown": ArchiveImage("unknown", None, "ISM", "continuum"),
        "other-kind": ArchiveImage("other-kind", datetime(2020, 1, 1), "ISM", "peak_flux"),
        "other-category": ArchiveImage("other-category", datetime(2020, 1, 1), "Sun", "peak_flux"),
        "released-now": ArchiveImage("released-now", NOW, "ISM", "peak_flux"),
    }
    checked = ArchiveMapping(category="c", kind="k")
    selection = select_images(vosim, archive, checked, NOW)
    assert selection.published == {"public", "released-now"}
    assert selection.proprietary == {"future", "unknown"}
    assert selection.not_in_archive == {"absent"}
    assert set(selection.disagreeing) == {"other-kind", "other-category"}
    unchecked = select_images(vosim, archive, ArchiveMapping(), NOW)
    assert unchecked.published == {"public", "released-now", "other-kind", "other-category"}
