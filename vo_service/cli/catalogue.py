"""Verbs that build the catalogue: ``synth``, ``ingest``, ``harvest``, ``categories``."""

from __future__ import annotations

import argparse
from pathlib import Path

from model_training.ingest.release_rule import RELEASE_AFTER_PERIOD, RELEASE_DEFAULTS
from tap_schema import Settings

from .options import Verbs, add_archive_size

__all__ = ["add_categories", "add_harvest", "add_ingest", "add_synth"]


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
    parser.add_argument(
        "--release-default",
        choices=RELEASE_DEFAULTS,
        default=RELEASE_AFTER_PERIOD,
        help="release date of images whose metadata gives none: obs+12mo (observation date "
        "plus 12 months; proprietary without one, the default), proprietary (until the "
        "metadata gives one), public (from the observation, or from now without one)",
    )
    parser.set_defaults(handler=_run_ingest)


def _run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.ingest.stage import ingest_folder

    metadata = args.metadata
    if metadata is None and (args.folder / "metadata.csv").is_file():
        metadata = args.folder / "metadata.csv"
    report = ingest_folder(
        settings,
        args.folder,
        metadata,
        reprocess=args.reprocess,
        release_default=args.release_default,
    )
    print(report)
    return report.exit_status


def add_harvest(verbs: Verbs) -> None:
    """``vosim harvest``: an archive's image products, from its ObsCore over TAP."""
    parser = verbs.add_parser(
        "harvest",
        help="ingest an archive's images and cubes straight from its TAP service (ivoa.obscore)",
        description="Read the archive's ivoa.obscore (image and cube products), fetch each "
        "file (directly, or through its DataLink #this link) and ingest it as 'vosim ingest' "
        "does, keeping the archive's DIDs. A second harvest fetches only new or changed "
        "products; proprietary ones are held back and fetched once released.",
    )
    parser.add_argument("tap_url", help="the archive's TAP service, e.g. https://archive.org/tap")
    parser.add_argument(
        "--where",
        default=None,
        help="extra ADQL condition on ivoa.obscore (alias o), e.g. \"o.obs_collection = 'ALMA'\"",
    )
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="TOML file naming the archive's release-date, category and kind columns "
        "(the file 'vosim publish' reads)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="concurrent downloads (default: all cores)"
    )
    parser.add_argument(
        "--keep-files",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the fetched files in DIR and serve them (default: delete them once "
        "ingested; /files then sends clients to the archive)",
    )
    parser.add_argument(
        "--max-file-size",
        type=float,
        default=4096,
        metavar="MB",
        help="largest file fetched, in MB (default 4096)",
    )
    parser.add_argument(
        "--retries", type=int, default=4, help="retries after a 5xx or a timeout (default 4)"
    )
    parser.set_defaults(handler=_run_harvest)


def _run_harvest(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.archive_mapping import ArchiveMapping
    from model_training.harvest.download import FetchLimits
    from model_training.harvest.listing import ListingError
    from model_training.harvest.stage import HarvestOptions, harvest_archive

    options = HarvestOptions(
        where=args.where,
        mapping=ArchiveMapping.from_toml(args.mapping) if args.mapping else ArchiveMapping(),
        workers=args.workers,
        keep_files=args.keep_files,
        limits=FetchLimits(max_bytes=int(args.max_file_size * 1e6), retries=args.retries),
    )
    try:
        report = harvest_archive(settings, args.tap_url, options)
    except ListingError as error:  # the archive refused or failed the listing: one line
        raise ValueError(str(error)) from None
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
