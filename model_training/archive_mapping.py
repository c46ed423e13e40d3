"""Where an archive keeps each image's DID, release date, scientific category and kind.

The archive is the authority on when an image becomes public (ObsCore 1.1,
``obs_release_date``) and how it is classified. Archives name and store these
differently (DaCHS 2.7's ``ivoa.obscore`` has no release date at all; ALMA
keeps its category in ``scientific_category``, the kind in
``dataproduct_type``), so a small TOML file says where they are::

    [archive]
    table = "ivoa.obscore"            # any table or view of the archive
    publisher_did = "obs_publisher_did"
    release_date = "obs_release_date" # NULL or in the future: proprietary
    category = "scientific_category"  # optional
    kind = "dataproduct_type"         # optional

    [archive.kinds]                   # the archive's kind values, in vosim's words
    image = "continuum"
    cube = "peak_flux"

Every key has the default shown (``category`` and ``kind`` default to
none: not checked). ``vosim publish`` looks the names up in the database
and never pastes them into SQL; ``vosim harvest`` writes them into its ADQL
query only after checking that each is a plain (regular) ADQL identifier.

One file for both directions: ``vosim harvest`` reads the columns through
the archive's TAP service (ADQL), ``vosim publish`` through its database
(`model_training.publish.archive_rows`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ArchiveMapping", "ArchiveMappingError"]


class ArchiveMappingError(ValueError):
    """The mapping file is malformed, or names a table or column the archive lacks."""


@dataclass(frozen=True)
class ArchiveMapping:
    """Where the archive keeps the publisher DID, release date, category and kind of an image.

    Parameters
    ----------
    table
        ``schema.table`` (or a view) with one row per image product.
    publisher_did
        Column of the IVOA publisher DID, as in vosim's catalogue.
    release_date
        Column of the release date (timestamp, date or ISO-8601 text).
    category
        Column of the scientific category; None to take vosim's.
    kind
        Column from which vosim's image kind (continuum, peak_flux) follows;
        None to take vosim's.
    kinds
        The archive's values of ``kind`` and the image kind each means; empty
        when the column holds vosim's words already.
    """

    table: str = "ivoa.obscore"
    publisher_did: str = "obs_publisher_did"
    release_date: str = "obs_release_date"
    category: str | None = None
    kind: str | None = None
    kinds: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: Path) -> ArchiveMapping:
        """Read the ``[archive]`` table of a TOML file (see the module docstring)."""
        try:
            document = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ArchiveMappingError(f"{path}: not valid TOML: {error}") from None
        section = document.get("archive")
        if not isinstance(section, dict):
            raise ArchiveMappingError(f"{path}: no [archive] table")
        known = {"table", "publisher_did", "release_date", "category", "kind", "kinds"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ArchiveMappingError(
                f"{path}: unknown key(s) {', '.join(unknown)} in [archive]; "
                f"known: {', '.join(sorted(known))}"
            )
        for key, value in section.items():
            wanted = dict if key == "kinds" else str
            if not isinstance(value, wanted):
                raise ArchiveMappingError(f"{path}: [archive] {key} must be a {wanted.__name__}")
        kinds = section.get("kinds", {})
        bad = {value for value in kinds.values() if not isinstance(value, str)}
        if bad:
            raise ArchiveMappingError(f"{path}: [archive.kinds] values must be strings")
        return cls(**{key: value for key, value in section.items() if key != "kinds"}, kinds=kinds)

    def image_kind(self, value: object) -> str | None:
        """Translate a value of the archive's ``kind`` column into vosim's image kind."""
        if value is None:
            return None
        text = str(value)
        return self.kinds.get(text, None) if self.kinds else text
