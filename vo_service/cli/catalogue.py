"""Verbs that build the catalogue: ``synth``, ``ingest``, ``categories``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tap_schema import Settings

from .options import Verbs, add_archive_size

__all__ = ["add_categories", "add_ingest", "add_synth"]


def add_synth(verbs: Verbs) -> None:
    """``vosim synth``: write the demo archive."""
    parser = verbs.add_parser("synth", help="write a realistic synthetic ALMA-like demo archive")
    parser.add_argument("out", type=Path, help="folder to create (must not exist or be empty)")
    add_archive_size(parser)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.set_defaults(handler=_run_synth)


def _run_synth(args: argparse.Namespace, _settings: Settings) -> int:
    from model_training.demo_archive.generator import synthesize_archive

    summary = synthesize_archive(
        args.out, args.sources, args.views, args.seed, workers=args.workers
    )
    print(summary)
    return 0


def add_ingest(verbs: Verbs) -> None:
    """``vosim ingest``: a folder of FITS files into the catalogue."""
    parser = verbs.add_parser("ingest", help="ingest a folder of FITS images into the catalogue")
    parser.add_argument("folder", type=Path, help="folder searched recursively for *.fits")
    parser.add_argument(
        "--metadata",
        type=Path,
        default=None,
        help="CSV keyed by 'file' whose columns (ObsCore names, scientific_category, "
        "obs_release_date, t_exptime) fill or override header values; "
        "default: FOLDER/metadata.csv when it exists",
    )
    parser.add_argument(
        "--reprocess",
        action="store_true",
        help="read every file again, also unchanged ones (after an upgrade that changes "
        "cut-outs, previews or ObsCore rows)",
    )
    parser.set_defaults(handler=_run_ingest)


def _run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.ingest.stage import ingest_folder

    metadata = args.metadata
    if metadata is None and (args.folder / "metadata.csv").is_file():
        metadata = args.folder / "metadata.csv"
    report = ingest_folder(settings, args.folder, metadata, reprocess=args.reprocess)
    print(report)
    return report.exit_status


def add_categories(verbs: Verbs) -> None:
    """``vosim categories``: which scientific categories may be listed as similar to which."""
    parser = verbs.add_parser(
        "categories",
        help="derive which scientific categories may be listed as similar to which",
        description="Derive similarity.category_compat from the categories publications use "
        "together (see model_training.categories for the rule), apply an operator's override "
        "file, store it and print the matrix.",
    )
    parser.add_argument("publications", type=Path, help="CSV with columns bibcode, categories")
    parser.add_argument(
        "--override",
        type=Path,
        default=None,
        help="CSV with columns scientific_category, compatible_category[, compatible yes/no]; "
        "each row adds (or with 'no' removes) a pair, in both directions",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="let the override file replace the derived pairs instead of amending them",
    )
    parser.add_argument(
        "--min-papers", type=int, default=5, help="papers that must use both (default 5)"
    )
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.05,
        help="share of the less used category's papers that must use both (default 0.05)",
    )
    parser.set_defaults(handler=_run_categories)


def _run_categories(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.categories import CompatibilityRule, derive_categories, render_matrix

    rule = CompatibilityRule(args.min_papers, args.min_fraction)
    compatibility = derive_categories(
        settings, args.publications, args.override, replace=args.replace, rule=rule
    )
    print(f"{compatibility.n_publications_read} publications; {rule}")
    print(render_matrix(compatibility))
    return 0
