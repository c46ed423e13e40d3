"""The ``neighbours`` verb: the exact most similar public images of every public image."""

from __future__ import annotations

import argparse

from tap_schema import Settings

from .options import Verbs, add_cluster, add_device

__all__ = ["add_neighbours"]


def add_neighbours(verbs: Verbs) -> None:
    """``vosim neighbours``: write ``similarity.neighbour``."""
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
    add_device(parser)
    parser.add_argument(
        "--block-size", type=int, default=None, help="vectors per search block (memory)"
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "faiss", "cuml"),
        help="search library for full recomputations (default: torch, always installed)",
    )
    add_cluster(parser)
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
        cluster=args.cluster,
    )
    for report in reports:
        print(report)
    return 0
