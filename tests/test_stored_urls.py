"""The base URL of the stored URLs: recorded once, rewritten on output."""

from __future__ import annotations

from tap_schema import Settings, open_catalogue
from tap_schema.stored_urls import (
    StoredUrls,
    claim_stored_url_base,
    read_stored_url_base,
    stored_urls_for,
)


def test_the_first_base_is_recorded_and_kept(sqlite_settings: Settings) -> None:
    catalogue = open_catalogue(sqlite_settings)
    try:
        assert read_stored_url_base(catalogue) is None
        assert stored_urls_for(catalogue, "https://a.example/v") is None
        assert claim_stored_url_base(catalogue, "http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
        assert claim_stored_url_base(catalogue, "https://later.example") == "http://127.0.0.1:8000"
        assert read_stored_url_base(catalogue) == "http://127.0.0.1:8000"
        assert stored_urls_for(catalogue, "http://127.0.0.1:8000") is None
    finally:
        catalogue.dispose()


def test_only_values_under_the_stored_base_are_rewritten() -> None:
    rewrite = StoredUrls("http://127.0.0.1:8000", "https://archive.example.org/alma/vosim/")
    rows = [
        ("http://127.0.0.1:8000/datalink?ID=x", 3, "http://127.0.0.1:8000/datalink?ID=x"),
        ("http://127.0.0.1:80000/other", None, "http://127.0.0.1:8000"),
        (None, 1, "ivo://vosim.example/products?a"),
    ]
    assert rewrite.rows(rows, [0]) == [
        ("https://archive.example.org/alma/vosim/datalink?ID=x", 3, rows[0][2]),
        rows[1],
        rows[2],
    ]
