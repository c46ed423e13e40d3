"""``vosim demo``: from nothing to a served archive in one command, on a laptop.

Runs every stage of the data flow (docs/architecture.md) on a synthetic ALMA-like
archive, in order: synth → ingest → categories → train (``cpu`` preset) →
embed → neighbours → serve. With ``--from TAP_URL`` the images come from a
real archive instead (``vosim harvest``), and the categories step is left
out (an archive's TAP service lists no publications): each category is then
compatible with itself and with uncategorised images only.

Each stage is the function its own verb calls, and each skips what is
already done (an existing archive, unchanged files, a current model,
stored vectors and lists), so a second ``vosim demo`` serves at once and
an interrupted one resumes where it stopped.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from tap_schema import Settings, open_catalogue
from vo_service.urls import ServiceUrls

from .options import Verbs, add_archive_size, add_device, add_host_and_port, add_threads

__all__ = ["DemoOptions", "add_demo", "run_demo"]

STAGES = 7
T = TypeVar("T")


@dataclass(frozen=True)
class DemoOptions:
    """What ``vosim demo`` builds and where it serves.

    Attributes
    ----------
    sources, views, seed
        Size and seed of the synthetic archive (``vosim synth``).
    host, port
        Where the server listens.
    serve
        Serve after the pipeline; False stops after the neighbours (for
        tests and scripted setups).
    device
        Device for training, embedding and the neighbour search.
    epochs
        Training epochs instead of the ``cpu`` preset's (shorter runs for
        tests; the preset's own is what the demo is measured with).
    threads
        CPU threads of training and embedding (``--threads``); None for
        the fair share (`model_training.learn.threads`).
    archive_url, mapping, where
        Harvest this TAP service (with this mapping file and ADQL
        condition) instead of building the synthetic archive.
    """

    sources: int = 300
    views: int = 4
    seed: int = 1
    host: str = "127.0.0.1"
    port: int = 8000
    serve: bool = True
    device: str | None = None
    epochs: int | None = None
    threads: int | None = None
    archive_url: str | None = None
    mapping: Path | None = None
    where: str | None = None


def add_demo(verbs: Verbs) -> None:
    """``vosim demo``: build a demo archive, run every stage on it and serve it."""
    parser = verbs.add_parser(
        "demo",
        help="build a demo archive, run every stage on it and serve it (SQLite, CPU)",
    )
    add_archive_size(parser)
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: the cpu preset's)"
    )
    add_device(parser)
    add_threads(parser)
    add_host_and_port(parser)
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the pipeline instead of serving"
    )
    parser.add_argument(
        "--from",
        dest="archive_url",
        default=None,
        metavar="TAP_URL",
        help="harvest a real archive's images from its TAP service instead of the synthetic one",
    )
    parser.add_argument(
        "--mapping", type=Path, default=None, help="with --from: the archive's mapping file"
    )
    parser.add_argument(
        "--where", default=None, help="with --from: ADQL condition on ivoa.obscore (alias o)"
    )
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace, settings: Settings) -> int:
    options = DemoOptions(
        sources=args.sources,
        views=args.views,
        seed=args.seed,
        host=args.host,
        port=args.port,
        serve=not args.no_serve,
        device=args.device,
        epochs=args.epochs,
        threads=args.threads,
        archive_url=args.archive_url,
        mapping=args.mapping,
        where=args.where,
    )
    return run_demo(settings, options)


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """Run the whole pipeline on the demo archive, then serve it.

    Returns
    -------
    int
        The command's exit status: 0, or that of the first stage that failed.
    """
    started = time.perf_counter()
    archive = settings.data_dir / "demo-archive"
    if options.archive_url is None:
        _stage(1, f"demo archive in {archive}", lambda: _synthesize(archive, options))
        report = _stage(2, f"ingest into {settings.db_url}", lambda: _ingest(settings, archive))
        if report.exit_status:
            return report.exit_status
        _stage(3, "category compatibility", lambda: _categories(settings, archive))
        truth: Path | None = archive / "truth.csv"
    else:
        title = f"harvest {options.archive_url} into {settings.db_url}"
        report = _stage(1, title, lambda: _harvest(settings, options))
        if report.harvested + report.updated + report.unchanged == 0:
            print("the archive lists no image this installation may use; nothing to train on")
            return report.exit_status or 1
        print(f"[2/{STAGES}] ingest: done by the harvest")
        print(f"[3/{STAGES}] category compatibility: no publications from an archive; skipped")
        truth = None
    _stage(4, "training (cpu preset)", lambda: _train(settings, truth, options))
    _stage(5, "embedding", lambda: _embed(settings, options))
    _stage(6, "neighbours", lambda: _neighbours(settings, options))
    print(f"demo pipeline done in {_minutes(time.perf_counter() - started)}")
    base = f"http://{options.host}:{options.port}"
    print(_addresses(settings, ServiceUrls(base)))
    if not options.serve:
        return 0
    print(f"[7/{STAGES}] serving on {base} (Ctrl-C stops)", flush=True)
    from vo_service.server import serve

    serve(settings, host=options.host, port=options.port)
    return 0


def _stage(number: int, title: str, action: Callable[[], T]) -> T:
    """Run one stage between a heading and its time."""
    print(f"[{number}/{STAGES}] {title}", flush=True)
    started = time.perf_counter()
    outcome = action()
    if outcome is not None:
        print(outcome)
    print(f"      ({_minutes(time.perf_counter() - started)})", flush=True)
    return outcome


def _synthesize(archive: Path, options: DemoOptions) -> str:
    from model_training.demo_archive.generator import synthesize_archive

    if (archive / "metadata.csv").is_file():
        return "already written; delete the folder to draw a new one"
    return str(synthesize_archive(archive, options.sources, options.views, options.seed))


def _ingest(settings: Settings, archive: Path):
    from model_training.ingest.stage import ingest_folder

    return ingest_folder(settings, archive, archive / "metadata.csv")


def _harvest(settings: Settings, options: DemoOptions):
    from model_training.archive_mapping import ArchiveMapping
    from model_training.harvest.listing import ListingError
    from model_training.harvest.stage import HarvestOptions, harvest_archive

    assert options.archive_url is not None
    mapping = ArchiveMapping.from_toml(options.mapping) if options.mapping else ArchiveMapping()
    try:
        return harvest_archive(
            settings, options.archive_url, HarvestOptions(where=options.where, mapping=mapping)
        )
    except ListingError as error:  # the archive refused or failed the listing: one line
        raise ValueError(str(error)) from None


def _categories(settings: Settings, archive: Path) -> str:
    from model_training.categories import derive_categories, render_matrix

    compatibility = derive_categories(settings, archive / "publications.csv")
    return render_matrix(compatibility)


def _train(settings: Settings, truth: Path | None, options: DemoOptions) -> str:
    from model_training.learn.checkpoints import current_model_id
    from model_training.learn.image_set import IMAGE_KINDS
    from model_training.learn.presets import preset
    from model_training.learn.train import BOTH_KINDS, train_model

    config = preset("cpu")
    if options.epochs is not None:
        config = config.replace(epochs=options.epochs)

    with open_catalogue(settings).begin() as connection:
        current = {kind: current_model_id(connection, kind) for kind in IMAGE_KINDS}
    missing = [kind for kind, model_id in current.items() if model_id is None]
    if not missing:
        return "\n".join(
            f"{kind}: model {model_id} is already current" for kind, model_id in current.items()
        )
    # One network for both kinds scored higher on the demo archive than one per kind
    # (README, "Training"); each kind still gets its own model row and neighbours.
    outcome = train_model(
        settings,
        BOTH_KINDS if len(missing) == len(IMAGE_KINDS) else missing[0],
        config,
        preset_name="cpu" if options.epochs is None else "cpu+custom",
        device=options.device,
        truth=truth,
        skip_if_empty=True,
        threads=options.threads,
    )
    return "no images to train on" if outcome is None else str(outcome)


def _embed(settings: Settings, options: DemoOptions) -> str:
    from model_training.learn.embed import embed_images

    return str(embed_images(settings, device=options.device, threads=options.threads))


def _neighbours(settings: Settings, options: DemoOptions) -> str:
    from model_training.neighbours.stage import compute_neighbours

    reports = compute_neighbours(settings, device=options.device)
    return "\n".join(str(report) for report in reports)


def _addresses(settings: Settings, urls: ServiceUrls) -> str:
    """Return the addresses to open: the page, TAP, and the DataLink of a public image."""
    example = _public_example(settings)
    lines = [
        f"  similarity page  {urls.base}/",
        f"  TAP service      {urls.base}/tap  (TOPCAT: VO > Table Access Protocol)",
    ]
    if example is not None:
        lines.append(f"  an image         {urls.page(example)}")
        lines.append(f"  its DataLink     {urls.datalink(example)}")
    return "\n".join(lines)


def _public_example(settings: Settings) -> str | None:
    """Return a public image with a neighbour list (only public images have one)."""
    catalogue = open_catalogue(settings)
    neighbour = catalogue.table("similarity.neighbour")
    with catalogue.begin() as connection:
        return connection.execute(sa.select(sa.func.min(neighbour.c.obs_publisher_did))).scalar()


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"
