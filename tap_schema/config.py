"""Configuration of a vosim installation, read once from the environment.

Every stage (ingest, training, the service) needs the same few answers: where
the data directory is, which database holds the catalogue, and which public
URL and IVOA authority the archive publishes under. They live here, on the
lowest floor, so that both ``model_training`` and ``vo_service`` read them the
same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["Settings"]

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_AUTHORITY = "vosim.example"
DEFAULT_COLLECTION = "ALMA"


@dataclass(frozen=True)
class Settings:
    """Where vosim keeps its data and how it names what it publishes.

    Parameters
    ----------
    data_dir
        Directory for the embedded database, cut-outs, previews, model
        checkpoints and job results (``VOSIM_DATA_DIR``, default
        ``./vosim-data``).
    db_url
        SQLAlchemy URL of the catalogue database (``VOSIM_DB_URL``); SQLite in
        ``data_dir`` by default, ``postgresql+psycopg://…`` in production.
    public_url
        Base URL under which the service is reachable by users
        (``VOSIM_PUBLIC_URL``). Access URLs written into ObsCore and DataLink
        responses start with it.
    authority
        IVOA naming authority of the archive (``VOSIM_AUTHORITY``), the host
        part of every ``obs_publisher_did``.
    collection
        Default ``obs_collection`` of ingested products (``VOSIM_COLLECTION``).
    """

    data_dir: Path
    db_url: str
    public_url: str = DEFAULT_PUBLIC_URL
    authority: str = DEFAULT_AUTHORITY
    collection: str = DEFAULT_COLLECTION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``VOSIM_*`` environment variables.

        Parameters
        ----------
        environ
            The environment to read; ``os.environ`` when omitted.

        Returns
        -------
        Settings
            The configuration, with defaults for every unset variable.
        """
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("VOSIM_DATA_DIR", "vosim-data")).expanduser().resolve()
        db_url = env.get("VOSIM_DB_URL") or f"sqlite:///{data_dir / 'catalogue.sqlite'}"
        return cls(
            data_dir=data_dir,
            db_url=db_url,
            public_url=env.get("VOSIM_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/"),
            authority=env.get("VOSIM_AUTHORITY", DEFAULT_AUTHORITY),
            collection=env.get("VOSIM_COLLECTION", DEFAULT_COLLECTION),
        )

    def with_changes(self, **changes: object) -> Settings:
        """Return a copy with some fields replaced (for tests and the CLI)."""
        return replace(self, **changes)

    @property
    def cutout_store(self) -> Path:
        """Directory of the memory-mappable cut-out arrays."""
        return self.data_dir / "cutouts"

    @property
    def preview_dir(self) -> Path:
        """Directory of the PNG previews."""
        return self.data_dir / "previews"

    @property
    def model_dir(self) -> Path:
        """Directory of training checkpoints and final model weights."""
        return self.data_dir / "models"

    @property
    def job_dir(self) -> Path:
        """Directory of asynchronous TAP job results."""
        return self.data_dir / "jobs"
