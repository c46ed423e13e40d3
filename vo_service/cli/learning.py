"""Verbs of the learning stages: ``train``, ``embed``, ``evaluate``, ``tune``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tap_schema import Settings

from .options import (
    KIND_CHOICES,
    Verbs,
    add_device,
    add_model,
    add_preset,
    add_threads,
    add_truth,
    training_config,
)

__all__ = ["add_embed", "add_evaluate", "add_train", "add_tune"]


def add_train(verbs: Verbs) -> None:
    """``vosim train``: the self-supervised network."""
    parser = verbs.add_parser("train", help="train the self-supervised similarity network")
    parser.add_argument(
        "--kind",
        choices=(*KIND_CHOICES, "both", "each"),
        default="both",
        help="image kind to train on: one kind, 'both' (one network serving both kinds, "
        "each kind its own model row; default: it scored higher than two) or 'each' "
        "(a network per kind)",
    )
    add_preset(parser, "hyperparameter preset")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--resume", action="store_true", help="continue the last unfinished run")
    add_device(parser)
    add_threads(parser)
    add_truth(parser)
    parser.add_argument(
        "--no-current", action="store_true", help="do not serve the new model (keep the old one)"
    )
    parser.add_argument(
        "--include-proprietary",
        action="store_true",
        help="train on every image, also those whose release date has not passed (default: "
        "public images only, since a network can memorise its training images; recorded in "
        "similarity.model.includes_proprietary)",
    )
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.learn.checkpoints import ModelNotFoundError
    from model_training.learn.image_set import IMAGE_KINDS
    from model_training.learn.presets import preset
    from model_training.learn.train import TrainingRunError, train_model

    config = training_config(args)
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
                threads=args.threads,
                include_proprietary=args.include_proprietary,
            )
            if outcome is not None:
                print(outcome)
    except (TrainingRunError, ModelNotFoundError) as error:
        print(f"vosim train: error: {error}", file=sys.stderr)
        return 2
    return 0


def add_embed(verbs: Verbs) -> None:
    """``vosim embed``: one vector per public image."""
    parser = verbs.add_parser("embed", help="store the vector of every public image")
    add_model(parser)
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--batch-size", type=int, default=256, help="cut-outs per forward pass")
    parser.set_defaults(handler=_run_embed)


def _run_embed(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.learn.checkpoints import ModelNotFoundError
    from model_training.learn.embed import embed_images

    try:
        report = embed_images(
            settings,
            args.model,
            device=args.device,
            batch_size=args.batch_size,
            threads=args.threads,
        )
    except ModelNotFoundError as error:
        print(f"vosim embed: error: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0


def add_evaluate(verbs: Verbs) -> None:
    """``vosim evaluate``: same-source retrieval scores next to baselines."""
    parser = verbs.add_parser(
        "evaluate", help="score a model by same-source retrieval, next to baselines"
    )
    add_model(parser)
    parser.add_argument(
        "--kind", choices=KIND_CHOICES, default=None, help="image kind (default: every kind)"
    )
    add_truth(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plots", type=Path, default=None, help="folder for PNG plots")
    parser.add_argument("--no-baselines", action="store_true", help="score the model only")
    add_device(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
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


def add_tune(verbs: Verbs) -> None:
    """``vosim tune``: an optuna search of hyperparameters."""
    parser = verbs.add_parser(
        "tune", help="search hyperparameters by held-out same-source retrieval (optuna)"
    )
    parser.add_argument("--kind", choices=KIND_CHOICES, default="continuum", help="image kind")
    add_preset(parser, "preset the search is centred on")
    parser.add_argument("--trials", type=int, default=6, help="trials to run now")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial")
    parser.add_argument("--study", default=None, help="study name (continued if it exists)")
    add_truth(parser)
    add_device(parser)
    parser.set_defaults(handler=_run_tune)


def _run_tune(args: argparse.Namespace, settings: Settings) -> int:
    from model_training.evaluate.tune import tune

    outcome = tune(
        settings,
        args.kind,
        base=training_config(args),
        base_name=args.preset,
        n_trials=args.trials,
        epochs=args.epochs,
        truth=args.truth,
        study_name=args.study,
        device=args.device,
    )
    print(outcome)
    return 0
