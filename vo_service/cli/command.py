"""``vosim``: the parser of every verb, and `main`, which runs one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tap_schema import Settings
from tap_schema.database import CatalogueUpgradeError

from .catalogue import add_categories, add_harvest, add_ingest, add_synth
from .demo import add_demo
from .learning import add_embed, add_evaluate, add_train, add_tune
from .neighbours import add_neighbours
from .options import Handler
from .publishing import add_publish, add_unpublish
from .serving import add_serve

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vosim`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when some inputs failed, 2 on usage errors.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except (ValueError, FileNotFoundError, FileExistsError, CatalogueUpgradeError) as error:
        print(f"vosim {args.verb}: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-command per verb, in pipeline order."""
    parser = argparse.ArgumentParser(
        prog="vosim",
        description="Morphological image-similarity search for astronomical archives, "
        "published through the Virtual Observatory.",
        epilog="Configuration: VOSIM_DATA_DIR, VOSIM_DB_URL, VOSIM_PUBLIC_URL, VOSIM_AUTHORITY.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add_verb in (
        add_synth,
        add_ingest,
        add_harvest,
        add_train,
        add_embed,
        add_evaluate,
        add_tune,
        add_categories,
        add_neighbours,
        add_demo,
        add_serve,
        add_publish,
        add_unpublish,
    ):
        add_verb(verbs)
    return parser
