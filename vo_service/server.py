"""Run the vosim application with uvicorn (``vosim serve``)."""

from __future__ import annotations

import uvicorn

from tap_schema import Settings

from .app import create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
"""Loopback by default: exposing the service is a decision, not an accident."""
DEFAULT_PORT = 8000


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
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=True,
        log_level="info",
    )
