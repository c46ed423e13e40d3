"""Verbs of the export stage: ``publish`` and ``unpublish`` (plugin mode)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tap_schema import Settings

from .options import Verbs, add_archive_options

__all__ = ["add_publish", "add_unpublish"]


def add_publish(verbs: Verbs) -> None:
    """``vosim publish``: the similarity tables into an archive's own database."""
    parser = verbs.add_parser(
        "publish",
        help="publish the similarity tables of public images into an archive's own "
        "PostgreSQL database and TAP service (plugin mode)",
    )
    add_archive_options(parser)
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="TOML file saying which of the archive's columns give release date, category "
        "and kind (default: ivoa.obscore, obs_publisher_did, obs_release_date)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="only add images whose proprietary period has ended since the last publication",
    )
    parser.set_defaults(handler=_run_publish)


def add_unpublish(verbs: Verbs) -> None:
    """``vosim unpublish``: remove what ``publish`` added."""
    parser = verbs.add_parser(
        "unpublish", help="remove from an archive's database exactly what publish added"
    )
    add_archive_options(parser)
    parser.set_defaults(handler=_run_unpublish)


def _run_publish(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.publish.archive_rows import ArchiveMapping
    from model_training.publish.stage import publish

    mapping = ArchiveMapping.from_toml(args.mapping) if args.mapping else None
    report = publish(
        settings,
        args.engine_url,
        mapping=mapping,
        tap_schema_name=args.tap_schema_name,
        dachs_rd=args.dachs_rd,
        refresh=args.refresh,
    )
    print(report)
    return 0


def _run_unpublish(args: argparse.Namespace, _settings: Settings) -> int:
    from model_training.publish.stage import unpublish

    print(unpublish(args.engine_url, tap_schema_name=args.tap_schema_name, dachs_rd=args.dachs_rd))
    return 0
