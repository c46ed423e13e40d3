"""The ``serve`` verb: TAP, DataLink, similarity and the pages over HTTP."""

from __future__ import annotations

import argparse

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

    serve(settings, host=args.host, port=args.port)
    return 0
