"""The arguments several verbs share, written once."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tap_schema import Settings

if TYPE_CHECKING:
    from model_training.learn.presets import TrainingConfig

__all__ = [
    "KIND_CHOICES",
    "Handler",
    "Verbs",
    "add_archive_options",
    "add_archive_size",
    "add_device",
    "add_host_and_port",
    "add_model",
    "add_preset",
    "add_threads",
    "add_truth",
    "training_config",
]

KIND_CHOICES = ("continuum", "peak_flux")

Verbs = argparse._SubParsersAction
"""The sub-parsers a verb is added to."""

Handler = Callable[[argparse.Namespace, Settings], int]
"""What a verb runs: its parsed arguments and the settings to an exit status."""


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``: where the network or the search runs."""
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 … (default: a GPU if any)"
    )


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads``: CPU threads instead of this process's fair share of the cores."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the network (default: OMP_NUM_THREADS if set, else a fair "
        "share of the cores this process may use, given the other busy processes)",
    )


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model``: one model id instead of the current model of each kind."""
    parser.add_argument(
        "--model", type=int, default=None, help="model id (default: the current one per kind)"
    )


def add_truth(parser: argparse.ArgumentParser) -> None:
    """``--truth``: the demo archive's same-source labels, for the scores."""
    parser.add_argument("--truth", type=Path, default=None, help="demo archive truth.csv")


def add_preset(parser: argparse.ArgumentParser, what: str) -> None:
    """``--preset`` and ``--hyperparameters``: the configuration, read by `training_config`."""
    parser.add_argument("--preset", default="cpu", help=f"{what}: cpu or paper")
    parser.add_argument(
        "--hyperparameters",
        type=Path,
        default=None,
        help="JSON file of hyperparameters overriding the preset (e.g. the best of vosim tune)",
    )


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """Return the preset named by ``--preset``, with ``--hyperparameters`` applied."""
    from model_training.learn.presets import preset

    config = preset(args.preset)
    if args.hyperparameters is not None:
        config = config.replace(**json.loads(args.hyperparameters.read_text()))
    return config


def add_archive_size(parser: argparse.ArgumentParser) -> None:
    """Add ``--sources``, ``--views`` and ``--seed``: the synthetic archive's size and seed."""
    parser.add_argument("--sources", type=int, default=300, help="number of sky sources")
    parser.add_argument("--views", type=int, default=4, help="observations of each source")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")


def add_host_and_port(parser: argparse.ArgumentParser) -> None:
    """``--host`` and ``--port`` of the server."""
    from vo_service.server import DEFAULT_HOST, DEFAULT_PORT

    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )


def add_archive_options(parser: argparse.ArgumentParser) -> None:
    """Which archive database ``publish`` and ``unpublish`` work on."""
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
