"""The ``serve`` verb: TAP, DataLink, similarity and the pages over HTTP."""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from tap_schema import Settings

from .options import Verbs, add_host_and_port

__all__ = ["add_serve"]


def add_serve(verbs: Verbs) -> None:
    """``vosim serve``: run the application with uvicorn."""
    parser = verbs.add_parser("serve", help="serve TAP (and the other endpoints) over HTTP")
    add_host_and_port(parser)
    parser.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from vo_service.server import serve
    from vo_service.uws.writes import write_failure

    try:
        serve(settings, host=args.host, port=args.port)
    except (sa.exc.OperationalError, OSError) as error:  # the catalogue cannot be opened
        reason = write_failure(error) or "see the message below"
        print(
            f"vosim serve: error: the catalogue at {settings.db_url} could not be opened "
            f"({reason}; a read-only folder must hold a catalogue already written):\n  "
            f"{getattr(error, 'orig', None) or error}",
            file=sys.stderr,
        )
        return 1
    return 0
