"""Run the vosim application with uvicorn (``vosim serve``)."""

from __future__ import annotations

from urllib.parse import urlsplit

import uvicorn

from tap_schema import Settings

from .app import create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "LOOPBACK_NAMES", "allowed_hosts", "serve"]

DEFAULT_HOST = "127.0.0.1"
"""Loopback by default: exposing the service is a decision, not an accident."""
DEFAULT_PORT = 8000
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""The hosts ``vosim serve`` answers for when ``VOSIM_ALLOWED_HOSTS`` is not set."""


def allowed_hosts(settings: Settings) -> list[str]:
    """Return the ``Host`` names ``vosim serve`` answers for.

    ``VOSIM_ALLOWED_HOSTS`` when set; else the loopback names and the host of
    ``VOSIM_PUBLIC_URL``. Exposing the service under another name is a
    decision the operator writes down, like listening beyond loopback.
    """
    if settings.allowed_host_names:
        return settings.allowed_host_names
    names = list(LOOPBACK_NAMES)
    if settings.public_url:
        host = urlsplit(settings.public_url).hostname
        if host:
            names.append(host)
    return names


def serve(settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the application until interrupted.

    Parameters
    ----------
    settings
        The installation to serve.
    host, port
        Where to listen.
    """
    uvicorn.run(
        create_app(settings, allowed_hosts=allowed_hosts(settings)),
        host=host,
        port=port,
        proxy_headers=True,
        log_level="info",
    )
