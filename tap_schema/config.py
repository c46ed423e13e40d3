"""Configuration of a vosim installation, read once from the environment.

Every stage (ingest, training, the service) needs the same few answers: where
the data directory is, which database holds the catalogue, and which public
URL and IVOA authority the archive publishes under. They live here, on the
lowest floor, so that both ``model_training`` and ``vo_service`` read them the
same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

__all__ = ["Settings", "environment_overrides"]

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_AUTHORITY = "vosim.example"
DEFAULT_COLLECTION = "ALMA"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def _flag(text: str) -> bool:
    return text.strip().lower() in _TRUE_WORDS


_PARSERS: dict[str, Callable[[str], object]] = {"int": int, "float": float, "bool": _flag}
"""How a variable's text becomes a field's value, by the field's annotation; text otherwise."""


def environment_overrides(
    config: type, prefix: str, environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Read the fields of a configuration dataclass that ``<prefix><FIELD>`` variables set.

    The one way vosim reads its environment: `Settings` (``VOSIM_``), the TAP
    limits (``VOSIM_TAP_``) and the similarity limits (``VOSIM_SIMILARITY_``)
    all name a variable after its field, in capitals.

    Parameters
    ----------
    config
        The dataclass whose fields may be set.
    prefix
        What every variable name starts with, e.g. ``VOSIM_TAP_``.
    environ
        The environment to read; ``os.environ`` when omitted.

    Returns
    -------
    dict
        The values of the variables that are set, by field name: ``int``,
        ``float`` and ``bool`` fields parsed (a flag is on for 1, true, yes
        or on), every other field as its text.

    Raises
    ------
    ValueError
        If a number does not parse.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(config):
        text = env.get(prefix + field.name.upper())
        if text is not None:
            values[field.name] = _PARSERS.get(str(field.type), str)(text)
    return values


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
        (``VOSIM_PUBLIC_URL``), e.g. ``https://archive.example.org/alma/vosim``.
        When set, every URL the service writes starts with it, whatever host,
        port or prefix a request arrived with; when unset (None), each
        response's URLs are derived from the request (see
        `vo_service.public_base`).
    trust_forwarded
        Derive the public base URL of a request from the reverse proxy's
        ``Forwarded`` / ``X-Forwarded-Proto``, ``-Host``, ``-Prefix`` headers
        (``VOSIM_TRUST_FORWARDED=1``). Off by default: only a proxy that sets
        (and overwrites) these headers makes them trustworthy.
    allowed_hosts
        Comma-separated host names the service answers for
        (``VOSIM_ALLOWED_HOSTS``, e.g. ``archive.example.org,localhost``;
        ``*`` for any): a request with another ``Host`` is refused (400), so
        that no client can make the service write URLs of its choosing into
        documents others read. Empty: ``vosim serve`` allows the public URL's
        host and the loopback names; a mounting application is left alone.
    authority
        IVOA naming authority of the archive (``VOSIM_AUTHORITY``), the host
        part of every ``obs_publisher_did``.
    collection
        Default ``obs_collection`` of ingested products (``VOSIM_COLLECTION``).
    """

    data_dir: Path
    db_url: str
    public_url: str | None = None
    authority: str = DEFAULT_AUTHORITY
    collection: str = DEFAULT_COLLECTION
    trust_forwarded: bool = False
    allowed_hosts: str = ""

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
        values = environment_overrides(cls, "VOSIM_", environ)
        data_dir = Path(values.get("data_dir", "vosim-data")).expanduser().resolve()
        db_url = values.get("db_url") or f"sqlite:///{data_dir / 'catalogue.sqlite'}"
        return cls(
            data_dir=data_dir,
            db_url=db_url,
            public_url=str(values.get("public_url", "")).rstrip("/") or None,
            authority=values.get("authority", DEFAULT_AUTHORITY),
            collection=values.get("collection", DEFAULT_COLLECTION),
            trust_forwarded=values.get("trust_forwarded", False),
            allowed_hosts=values.get("allowed_hosts", ""),
        )

    @property
    def allowed_host_names(self) -> list[str]:
        """Return ``allowed_hosts`` as a list of names (empty when not set)."""
        return [name.strip() for name in self.allowed_hosts.split(",") if name.strip()]

    @property
    def url_base(self) -> str:
        """Base of the URLs written where no request tells the public URL (at ingest).

        The configured public URL, or the URL ``vosim serve`` answers on by
        default. URLs stored this way are rewritten on output to each
        response's own base (`tap_schema.stored_urls`).
        """
        return self.public_url or DEFAULT_PUBLIC_URL

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
