"""The ``vosim`` command: one verb per pipeline stage, plus the server and the demo.

Each verb parses its options, calls the plain Python function of its stage
and turns the outcome into an exit status. The work itself lives in
``model_training`` (the pipeline stages) and ``vo_service`` (the server).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tap_schema import Settings
from tap_schema.database import CatalogueUpgradeError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace, Settings], int]


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
    """Build the argument parser with one sub-command per verb."""
    parser = argparse.ArgumentParser(
        prog="vosim",
        description="Morphological image-similarity search for astronomical archives, "
        "published through the Virtual Observatory.",
        epilog="Configuration: VOSIM_DATA_DIR, VOSIM_DB_URL, VOSIM_PUBLIC_URL, VOSIM_AUTHORITY.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add_verb in (
        _add_synth,
        _add_ingest,
        _add_train,
        _add_embed,
        _add_evaluate,
        _add_tune,
        _add_categories,
        _add_neighbours,
        _add_demo,
        _add_serve,
        _add_publish,
        _add_unpublish,
    ):
        add_verb(verbs)
    return parser


def _add_synth(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("synth", help="write a realistic synthetic ALMA-like demo archive")
    parser.add_argument("out", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--sources", type=int, default=300, help="number of sky sources")
    parser.add_argument("--views", type=int, default=4, help="observations of each source")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.set_defaults(handler=_run_synth)


def _run_synth(args: argparse.Namespace, _settings: Settings) -> int:
    from model_training.demo_archive.generator import synthesize_archive

    summary = synthesize_archive(
        args.out, args.sources, args.views, args.seed, workers=args.workers
    )
    print(summary)
    return 0


def _add_ingest(verbs: argparse._SubParsersAction) -> None:
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


KIND_CHOICES = ("continuum", "peak_flux")


def _add_train(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("train", help="train the self-supervised similarity network")
    parser.add_argument(
        "--kind",
        choices=(*KIND_CHOICES, "both", "each"),
        default="both",
        help="image kind to train on: one kind, 'both' (one network serving both kinds, "
        "each kind its own model row; default: it scored higher than two) or 'each' "
        "(a network per kind)",
    )
    parser.add_argument("--preset", default="cpu", help="hyperparameter preset: cpu or paper")
    parser.add_argument(
        "--hyperparameters",
        type=Path,
        default=None,
        help="JSON file of hyperparameters overriding the preset (e.g. vosim tune's best)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--resume", action="store_true", help="continue the last unfinished run")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: a GPU)")
    parser.add_argument("--truth", type=Path, default=None, help="demo truth.csv for the score")
    parser.add_argument(
        "--no-current", action="store_true", help="do not serve the new model (keep the old one)"
    )
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from model_training.learn.checkpoints import ModelNotFoundError
    from model_training.learn.image_set import IMAGE_KINDS
    from model_training.learn.presets import preset
    from model_training.learn.train import TrainingRunError, train_model

    config = preset(args.preset)
    if args.hyperparameters is not None:
        config = config.replace(**json.loads(args.hyperparameters.read_text()))
    if args.epochs is not None:
        config = config.replace(epochs=args.epochs)
    name = args.preset if config == preset(args.preset) else args.preset + "+custom"
    kinds = IMAGE_KINDS if args.kind == "each" else (args.kind,)
    try:
        for kind in kinds:
            outcome = train_model(
                settings,
                kind,
                config,
                preset_name=name,
                resume=args.resume,
                device=args.device,
                truth=args.truth,
                make_current=not args.no_current,
                skip_if_empty=args.kind == "each",
            )
            if outcome is not None:
                print(outcome)
    except (TrainingRunError, ModelNotFoundError) as error:
        print(f"vosim train: error: {error}", file=sys.stderr)
        return 2
    return 0


def _add_embed(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("embed", help="store the vector of every public image")
    parser.add_argument(
        "--model", type=int, default=None, help="model id (default: the current one per kind)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: a GPU)")
    parser.add_argument("--batch-size", type=int, default=256, help="cut-outs per forward pass")
    parser.set_defaults(handler=_run_embed)


def _run_embed(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.learn.checkpoints import ModelNotFoundError
    from model_training.learn.embed import embed_images

    try:
        report = embed_images(settings, args.model, device=args.device, batch_size=args.batch_size)
    except ModelNotFoundError as error:
        print(f"vosim embed: error: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0


def _add_evaluate(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "evaluate", help="score a model by same-source retrieval, next to baselines"
    )
    parser.add_argument("--model", type=int, default=None, help="model id (default: current)")
    parser.add_argument(
        "--kind", choices=KIND_CHOICES, default=None, help="image kind (default: every kind)"
    )
    parser.add_argument("--truth", type=Path, default=None, help="demo archive truth.csv")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plots", type=Path, default=None, help="folder for PNG plots")
    parser.add_argument("--no-baselines", action="store_true", help="score the model only")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: a GPU)")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from model_training.evaluate.stage import evaluate_model
    from model_training.learn.checkpoints import ModelNotFoundError

    if args.model is not None:
        targets = [(args.model, args.kind or "continuum")]
    else:
        targets = [(None, kind) for kind in ((args.kind,) if args.kind else KIND_CHOICES)]
    results = []
    for model_id, kind in targets:
        try:
            results.append(
                evaluate_model(
                    settings,
                    model_id=model_id,
                    image_kind=kind,
                    truth=args.truth,
                    device=args.device,
                    baselines=not args.no_baselines,
                    plots_dir=args.plots,
                )
            )
        except ModelNotFoundError as error:
            if args.model is not None or args.kind is not None:
                print(f"vosim evaluate: error: {error}", file=sys.stderr)
                return 2
    if not results:
        print("vosim evaluate: error: no trained model: run 'vosim train'", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([result.to_json() for result in results], indent=2))
    else:
        print("\n\n".join(result.table() for result in results))
    return 0


def _add_tune(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "tune", help="search hyperparameters by held-out same-source retrieval (optuna)"
    )
    parser.add_argument("--kind", choices=KIND_CHOICES, default="continuum", help="image kind")
    parser.add_argument("--preset", default="cpu", help="preset the search is centred on")
    parser.add_argument(
        "--hyperparameters",
        type=Path,
        default=None,
        help="JSON file of hyperparameters overriding the preset the search is centred on",
    )
    parser.add_argument("--trials", type=int, default=6, help="trials to run now")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial")
    parser.add_argument("--study", default=None, help="study name (continued if it exists)")
    parser.add_argument("--truth", type=Path, default=None, help="demo archive truth.csv")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: a GPU)")
    parser.set_defaults(handler=_run_tune)


def _run_tune(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from model_training.evaluate.tune import tune
    from model_training.learn.presets import preset

    base = preset(args.preset)
    if args.hyperparameters is not None:
        base = base.replace(**json.loads(args.hyperparameters.read_text()))
    outcome = tune(
        settings,
        args.kind,
        base=base,
        base_name=args.preset,
        n_trials=args.trials,
        epochs=args.epochs,
        truth=args.truth,
        study_name=args.study,
        device=args.device,
    )
    print(outcome)
    return 0


def _add_categories(verbs: argparse._SubParsersAction) -> None:
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


def _add_neighbours(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "neighbours",
        help="compute the exact most similar public images of every public image",
        description="Write similarity.neighbour for the current model of each image kind: "
        "exact top-k by cosine similarity, same kind, compatible categories, public images "
        "only; updates the stored lists incrementally unless --full.",
    )
    parser.add_argument("--k", type=int, default=1000, help="neighbours per image (default 1000)")
    parser.add_argument(
        "--model", type=int, default=None, help="this model only (default: the current ones)"
    )
    parser.add_argument("--full", action="store_true", help="recompute every list")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: a GPU if any)")
    parser.add_argument(
        "--block-size", type=int, default=None, help="vectors per search block (memory)"
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "faiss", "cuml"),
        help="search library for full recomputations (default: torch, always installed)",
    )
    parser.set_defaults(handler=_run_neighbours)


def _run_neighbours(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.neighbours.stage import compute_neighbours

    reports = compute_neighbours(
        settings,
        k=args.k,
        model_id=args.model,
        full=args.full,
        device=args.device,
        block_size=args.block_size,
        backend=args.backend,
    )
    for report in reports:
        print(report)
    return 0


def _add_demo(verbs: argparse._SubParsersAction) -> None:
    from vo_service.server import DEFAULT_HOST, DEFAULT_PORT

    parser = verbs.add_parser(
        "demo",
        help="build a demo archive, run every stage on it and serve it (SQLite, CPU)",
    )
    parser.add_argument("--sources", type=int, default=300, help="number of sky sources")
    parser.add_argument("--views", type=int, default=4, help="observations of each source")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the demo archive")
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: the cpu preset's)"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: a GPU if any)")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the pipeline instead of serving"
    )
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from vo_service.demo import DemoOptions, run_demo

    options = DemoOptions(
        sources=args.sources,
        views=args.views,
        seed=args.seed,
        host=args.host,
        port=args.port,
        serve=not args.no_serve,
        device=args.device,
        epochs=args.epochs,
    )
    return run_demo(settings, options)


def _add_publish(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "publish",
        help="publish the similarity tables of public images into an archive's own "
        "PostgreSQL database and TAP service (plugin mode)",
    )
    _add_archive_options(parser)
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


def _add_unpublish(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "unpublish", help="remove from an archive's database exactly what publish added"
    )
    _add_archive_options(parser)
    parser.set_defaults(handler=_run_unpublish)


def _add_archive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine-url",
        required=True,
        help="the archive's database, postgresql+psycopg://user:password@host/database",
    )
    parser.add_argument(
        "--tap-schema-name",
        default=None,
        help="the archive's TAP_SCHEMA (default: the schema named TAP_SCHEMA in any case)",
    )
    parser.add_argument(
        "--dachs-rd",
        type=Path,
        default=None,
        help="GAVO DaCHS archives: the resource descriptor to write (or remove), below DaCHS' "
        "inputs directory; DaCHS then registers the tables with dachs imp -m PATH",
    )


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


def _add_serve(verbs: argparse._SubParsersAction) -> None:
    from vo_service.server import DEFAULT_HOST, DEFAULT_PORT

    parser = verbs.add_parser("serve", help="serve TAP (and the other endpoints) over HTTP")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from vo_service.server import serve

    serve(settings, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
