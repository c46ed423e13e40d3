"""vosim's side of a publication: a small catalogue on SQLite, served under a public URL."""

from __future__ import annotations

import pytest

from tap_schema import Settings, open_catalogue

from . import catalogue as cat

PUBLIC_URL = "https://archive.example/vosim"
"""Where the archive mounts vosim: the preview URLs written into its tables start here."""


@pytest.fixture
def vosim_settings(sqlite_settings: Settings) -> Settings:
    """vosim's installation, its catalogue filled with the twelve test images."""
    settings = sqlite_settings.with_changes(public_url=PUBLIC_URL)
    catalogue = open_catalogue(settings)
    cat.fill(catalogue)
    catalogue.dispose()
    return settings
