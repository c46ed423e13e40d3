"""The training stage: SimCLR on the cut-outs of one image kind, checkpointed every epoch.

`fit` is the loop: it draws batches of cut-outs, asks the method for the
loss (``loss = method(images, generator)``, see `model_training.learn.simclr`),
steps the optimiser and the schedule, and writes a checkpoint after every
epoch. It knows nothing of SimCLR. `train_model` is the stage: it reads the
images of a kind from the catalogue, runs `fit`, scores the result with the
same-source retrieval score and records the run in ``similarity.model``.

Speed (the paper trained 100 000 images for 100 epochs in 1.8 h on three
GPUs): the cut-outs of the training set are held on the training device
(16 KiB each: 1.6 GB for 100 000), augmentations run there in one batched
call, and on CUDA the network runs in bfloat16 autocast, channels-last, with
TF32 matrix products and optionally ``torch.compile``. Several GPUs are used
through ``torchrun`` (DistributedDataParallel, one process per GPU; the loss
gathers the projections of every process, `model_training.learn.loss`).

Exact resumption: the random streams of an epoch (data order, augmentations)
are derived from (seed, epoch, process rank), and the checkpoint holds the
model, optimiser, schedule and global random states after the epoch, so a
resumed run continues bit for bit as if never interrupted (on the CPU at a
fixed thread count, ``threads``: a fair share that follows the load may
change the order of sums; GPU kernels are not bitwise deterministic).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tap_schema import Settings, open_catalogue

from .checkpoints import model_row, register_model, save_network
from .image_set import IMAGE_KINDS, ImageSet, load_image_set, source_labels
from .inference import compute_vectors, fit_whitening, pick_device
from .morphology import score_morphology
from .optim import build_optimizer, warmup_cosine_schedule
from .presets import TrainingConfig, preset
from .retrieval import RetrievalScores, retrieval_scores
from .simclr import SimCLR, build_method
from .threads import ThreadBudget

__all__ = [
    "BOTH_KINDS",
    "EpochRecord",
    "TrainingOutcome",
    "TrainingRunError",
    "fit",
    "train_model",
    "views_per_second",
]

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
PROPRIETARY_MARK = "includes-proprietary"
BOTH_KINDS = "both"


class TrainingRunError(RuntimeError):
    """A training run cannot start or resume as asked."""


@dataclass(frozen=True)
class EpochRecord:
    """Loss and speed of one epoch."""

    epoch: int
    loss: float
    seconds: float
    views_per_second: float


@dataclass(frozen=True)
class Distributed:
    """Rank of a process in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, rows and output."""
        return self.rank == 0

    @classmethod
    def join(cls) -> Distributed:
        """Join the ``torchrun`` job this process was started in, if any.

        ``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the
        rendezvous address; NCCL connects the GPUs, gloo the CPUs (for tests).
        The group stays up until the process ends, so that one command can
        train a model per image kind.
        """
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls.current()

    @classmethod
    def current(cls) -> Distributed:
        """Describe the process group that is initialised, if any."""
        if dist.is_available() and dist.is_initialized():
            local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
            return cls(dist.get_rank(), dist.get_world_size(), local_rank)
        return cls()


def _stream_seed(*parts: int) -> int:
    """Derive the seed of one random stream from the run seed, epoch and rank."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def _configure_cuda(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def fit(
    method: nn.Module,
    cutouts: Tensor,
    config: TrainingConfig,
    *,
    device: torch.device | str = "cpu",
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    threads: ThreadBudget | int | None = None,
) -> list[EpochRecord]:
    """Train a method on cut-outs for ``config.epochs`` epochs.

    Parameters
    ----------
    method
        Module whose ``forward(images, generator)`` returns the training loss.
    cutouts
        ``(N, 64, 64)`` float32 cut-outs (moved to ``device`` here).
    config
        Batch size, epochs, optimiser, schedule and seed.
    device
        Training device; in a ``torchrun`` job, this process's GPU.
    checkpoint
        File written after every epoch; None for none.
    resume
        Continue from ``checkpoint`` if it exists.
    progress
        Show a progress bar with the loss and the images per second.
    on_epoch_end
        Called after each epoch's checkpoint; may raise to stop the run
        (a hyperparameter search prunes trials that way).
    threads
        CPU threads: a count, or None for this process's fair share of the
        cores (`model_training.learn.threads`), re-evaluated every 10 s when
        training on the CPU (on a GPU the threads barely matter, the pauses
        to sample would).

    Returns
    -------
    list of EpochRecord
        One record per epoch of the whole run, including resumed ones.
    """
    device = torch.device(device)
    _configure_cuda(device)
    budget = threads if isinstance(threads, ThreadBudget) else ThreadBudget(threads)
    world = Distributed.current()
    method = method.to(device)
    if device.type == "cuda":
        method = method.to(memory_format=torch.channels_last)
        if world.world_size > 1:
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        if config.compile:
            method.backbone.compile()
    network: nn.Module = method
    if world.world_size > 1:
        network = DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    images = cutouts.to(device, torch.float32)
    n_images = images.shape[0]
    batch = min(config.batch_size, n_images) // world.world_size * world.world_size
    if batch < 2 * world.world_size:
        raise TrainingRunError(f"{n_images} images are too few for contrastive training")
    local_batch = batch // world.world_size
    steps_per_epoch = n_images // batch
    optimizer = build_optimizer(
        config.optimizer, method, config.learning_rate, config.weight_decay, config.momentum
    )
    schedule = warmup_cosine_schedule(
        optimizer, config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch
    )
    history: list[EpochRecord] = []
    if resume and checkpoint is not None and checkpoint.is_file():
        history = _load_checkpoint(checkpoint, method, optimizer, schedule, config, device)
    bar = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=len(history) * steps_per_epoch,
        desc=f"train ({budget.choice.count})",
        unit="step",
        disable=not (progress and world.is_main),
    )
    augment_rng = torch.Generator(device)
    with bar:
        for epoch in range(len(history), config.epochs):
            method.train()
            order = torch.randperm(
                n_images, generator=torch.Generator().manual_seed(_stream_seed(config.seed, epoch))
            ).to(device)
            augment_rng.manual_seed(_stream_seed(config.seed, epoch, world.rank + 1))
            started = time.perf_counter()
            total_loss = torch.zeros((), device=device)
            for step in range(steps_per_epoch):
                first = step * batch + world.rank * local_batch
                batch_images = images[order[first : first + local_batch]]
                with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                    loss = network(batch_images, augment_rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += loss.detach()
                bar.update()
                if device.type == "cpu" and budget.refresh():
                    bar.set_description(f"train ({budget.choice.count})")
                if step % 10 == 0 or step == steps_per_epoch - 1:
                    seconds = time.perf_counter() - started
                    bar.set_postfix(
                        epoch=epoch + 1,
                        loss=f"{loss.item():.3f}",
                        img_s=f"{(step + 1) * batch / seconds:.0f}",
                    )
            if world.world_size > 1:
                dist.all_reduce(total_loss)
                total_loss /= world.world_size
            seconds = time.perf_counter() - started
            record = EpochRecord(
                epoch + 1,
                float(total_loss) / steps_per_epoch,
                seconds,
                2 * batch * steps_per_epoch / seconds,
            )
            history.append(record)
            if checkpoint is not None and world.is_main:
                _save_checkpoint(checkpoint, method, optimizer, schedule, config, history)
            if on_epoch_end is not None:
                on_epoch_end(record)
    method.eval()
    return history


def _save_checkpoint(
    path: Path,
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    config: TrainingConfig,
    history: list[EpochRecord],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "config": config.to_dict(),
        "model": method.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "history": [asdict(record) for record in history],
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _load_checkpoint(
    path: Path,
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    config: TrainingConfig,
    device: torch.device,
) -> list[EpochRecord]:
    state = torch.load(path, map_location=device, weights_only=True)
    saved = TrainingConfig.from_dict(state["config"])
    if saved != config:
        raise TrainingRunError(
            f"{path} was written with other hyperparameters; start a new run instead of resuming"
        )
    method.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"].cpu())
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    return [EpochRecord(**record) for record in state["history"]]


def views_per_second(history: list[EpochRecord]) -> float:
    """Return the speed of a whole run: all its views over all its epochs' wall-clock time.

    Not the last epoch's speed: on a shared machine epochs differ by tens of
    times (a run that ended alone reported 1254 views/s over 2,125 s in which
    it averaged 65).
    """
    seconds = sum(record.seconds for record in history)
    views = sum(record.views_per_second * record.seconds for record in history)
    return views / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class TrainingOutcome:
    """A finished training run: its model rows, files, history and scores."""

    model_ids: dict[str, int]
    run_dir: Path
    history: list[EpochRecord]
    scores: dict[str, RetrievalScores] = field(default_factory=dict)
    made_current: bool = True
    threads: str = ""
    training_set: str = ""

    def __str__(self) -> str:
        last = self.history[-1]
        on_threads = f" on {self.threads}" if self.threads else ""
        lines = [
            f"trained {last.epoch} epochs in {sum(r.seconds for r in self.history):.0f} s "
            f"at {views_per_second(self.history):.0f} views/s{on_threads}, "
            f"final loss {last.loss:.3f}; weights in {self.run_dir}"
        ]
        if self.training_set:
            lines.append(f"trained on {self.training_set}")
        for kind, model_id in self.model_ids.items():
            score = self.scores.get(kind)
            summary = (
                f"same-source mAP {score.mean_average_precision:.3f}, "
                f"recall@10 {score.recall_at_10:.3f}"
                if score is not None and score.n_queries
                else "no source seen twice, no score"
            )
            role = "current" if self.made_current else "not current"
            lines.append(f"model {model_id} ({kind}, {role}): {summary}")
        return "\n".join(lines)


def train_model(
    settings: Settings,
    image_kind: str,
    config: TrainingConfig | str = "cpu",
    *,
    preset_name: str | None = None,
    resume: bool = False,
    device: str | None = None,
    truth: Path | None = None,
    progress: bool = True,
    make_current: bool = True,
    skip_if_empty: bool = False,
    threads: int | None = None,
    include_proprietary: bool = False,
) -> TrainingOutcome | None:
    """Train SimCLR on the cut-outs of an image kind and record the run.

    Parameters
    ----------
    settings
        The installation (catalogue, cut-out store, ``model_dir``).
    image_kind
        ``continuum``, ``peak_flux``, or ``both`` for one network serving
        both kinds (one model row per kind present, one weights file; each
        kind keeps its own vectors and neighbours).
    config
        A `TrainingConfig` or the name of a preset.
    preset_name
        Name recorded for a `TrainingConfig` (default ``custom``).
    resume
        Continue the latest unfinished run of this kind and configuration.
    device
        Training device; by default the GPU of this ``torchrun`` process,
        else the first GPU, else the CPU.
    truth
        A demo archive's ``truth.csv`` for the score (else sources are
        grouped by ObsCore target name).
    progress
        Show progress bars.
    make_current
        Serve the new model for its kind(s) from now on.
    skip_if_empty
        Return None instead of failing when no image of the kind is ingested.
    threads
        CPU threads (``--threads``); None for the fair share (`fit`).
    include_proprietary
        Train on every image, also those whose release date has not passed
        or is unknown (``--include-proprietary``); by default only on the
        public ones (`tap_schema.release`), since a network can memorise
        its training images. Recorded in ``similarity.model.includes_proprietary``.

    Returns
    -------
    TrainingOutcome or None
        Model ids per kind, the run directory, the history and the scores;
        None on the other processes of a ``torchrun`` job (rank 0 records
        the run).
    """
    if isinstance(config, str):
        preset_name, config = config, preset(config)
    preset_name = preset_name or "custom"
    kinds = IMAGE_KINDS if image_kind == BOTH_KINDS else (image_kind,)
    world = Distributed.join()
    torch_device = (
        torch.device("cuda", world.local_rank)
        if device is None and world.world_size > 1 and torch.cuda.is_available()
        else pick_device(device)
    )
    catalogue = open_catalogue(settings, create=world.is_main)
    images = load_image_set(catalogue, kinds, public_only=not include_proprietary)
    if skip_if_empty and len(images) == 0:
        return None
    kinds = tuple(kind for kind in kinds if (images.image_kind == kind).any()) or kinds
    if len(images) < 2:
        raise TrainingRunError(
            f"only {len(images)} {'' if include_proprietary else 'public '}{image_kind} images "
            "ingested: run ingest first"
            + ("" if include_proprietary else " (or train on all: --include-proprietary)")
        )
    run_dir = _run_directory(
        settings, image_kind, preset_name, config, resume, world, include_proprietary
    )
    torch.manual_seed(config.seed)
    method = build_method(config)
    started = datetime.now(UTC)
    budget = ThreadBudget(threads)
    training_cutouts = torch.from_numpy(images.cutouts(settings))
    history = fit(
        method,
        training_cutouts,
        config,
        device=torch_device,
        checkpoint=run_dir / CHECKPOINT_NAME,
        resume=resume,
        progress=progress,
        threads=budget,
    )
    if not world.is_main:
        dist.barrier()
        return None
    fit_whitening(method, training_cutouts, config, device=torch_device)
    model_path = run_dir / MODEL_NAME
    save_network(model_path, method, config, image_kinds=list(kinds))
    scores, model_ids = {}, {}
    for kind in kinds:
        kind_images = images.subset(images.image_kind == kind)
        scores[kind], morphology, scored_on = _score(
            settings, method, config, kind_images, truth, torch_device
        )
        row = _model_row(run_dir.name, kind, kinds, preset_name, method, config, history)
        row["n_images"] = len(images)
        row["includes_proprietary"] = int(include_proprietary)
        row |= scores[kind].model_columns() | {"scored_on": scored_on}
        row["morphology_score"] = morphology
        row["trained_at"] = started.replace(tzinfo=None)
        with catalogue.begin() as conn:
            model_ids[kind] = register_model(conn, catalogue, row, model_path, current=make_current)
    if world.world_size > 1:
        dist.barrier()
    n_proprietary = int((~images.is_public).sum())
    training_set = f"{len(images)} images" + (
        f", {n_proprietary} of them proprietary (--include-proprietary)"
        if include_proprietary
        else ", public only"
    )
    return TrainingOutcome(
        model_ids, run_dir, history, scores, make_current, str(budget.choice), training_set
    )


def _run_directory(
    settings: Settings,
    image_kind: str,
    preset_name: str,
    config: TrainingConfig,
    resume: bool,
    world: Distributed,
    include_proprietary: bool,
) -> Path:
    """Make a new run directory, or find the latest unfinished one when resuming.

    A run trained on proprietary images says so by a file ``includes-proprietary``
    in its directory, so that resuming cannot change the training set.
    """
    prefix = f"{image_kind}-{preset_name}-"
    if resume:
        unfinished = sorted(
            path.parent
            for path in settings.model_dir.glob(f"{prefix}*/{CHECKPOINT_NAME}")
            if not (path.parent / MODEL_NAME).exists()
        )
        if not unfinished:
            raise TrainingRunError(
                f"no unfinished {image_kind} run of preset {preset_name} in {settings.model_dir}"
            )
        if (unfinished[-1] / PROPRIETARY_MARK).exists() != include_proprietary:
            was = "public images only" if include_proprietary else "all images"
            raise TrainingRunError(
                f"{unfinished[-1]} was trained on {was}: resume it with the same "
                "--include-proprietary choice, or start a new run"
            )
        return unfinished[-1]
    name = [prefix + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")]
    if world.world_size > 1:
        dist.broadcast_object_list(name, src=0)
    run_dir = settings.model_dir / name[0]
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "hyperparameters.json").write_text(json.dumps(config.to_dict(), indent=2))
        if include_proprietary:
            (run_dir / PROPRIETARY_MARK).touch()
    return run_dir


def _score(
    settings: Settings,
    method: SimCLR,
    config: TrainingConfig,
    images: ImageSet,
    truth: Path | None,
    device: torch.device,
) -> tuple[RetrievalScores, float | None, str]:
    """Same-source scores, and the morphology score where classes are known."""
    labels = source_labels(images, truth)
    cutouts = images.cutouts(settings)
    vectors = compute_vectors(method, cutouts, config, device=device)
    scores = retrieval_scores(vectors, labels.source, labels.morphology)
    morphology = None
    if labels.morphology is not None:
        morphology = score_morphology(
            lambda batch: compute_vectors(method, batch, config, device=device),
            cutouts,
            labels.morphology,
            scores.mean_average_precision,
            vectors=vectors,
        ).score
    n_sources = len(set(labels.source))
    where = "truth file" if labels.origin == "truth" else "ObsCore target names"
    return (
        scores,
        morphology,
        (
            f"{len(images)} training images of {n_sources} sources ({where}), "
            f"{scores.n_queries} with another image of their source"
        ),
    )


def _model_row(
    name: str,
    kind: str,
    kinds: tuple[str, ...],
    preset_name: str,
    method: SimCLR,
    config: TrainingConfig,
    history: list[EpochRecord],
) -> dict:
    return {
        **model_row(name, kind, preset_name, method, config, "+".join(kinds)),
        "training_seconds": sum(record.seconds for record in history),
    }
