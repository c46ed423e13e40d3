"""Hyperparameter search: the paper's searched parameters, scored on held-out sources.

The paper searched the scale range, shear, crop size, normalisation, batch
size and output dimension by eye; its outlook proposes doing it against a
score of images known to show one source. Here optuna (TPE sampler) draws
those plus the temperature and the learning rate; each trial trains on the
images of 70 % of the sources and is scored on the images of the other 30 %
(split by source, never by image: an image's siblings must not have been
trained on when it is scored) by the morphology score
(`model_training.learn.morphology.morphology_score`) where morphology
classes are known (a truth file), else by the same-source mean average
precision.
Trials report the held-out score during training, and optuna's median
pruner stops those below the median of earlier trials at the same epoch.

Every finished trial becomes a ``similarity.model`` row (never current;
preset ``tune:<study>``) with its hyperparameters and held-out scores, and
the study keeps a journal file in ``model_dir`` so that it can be continued,
or run by several processes at once (one per GPU) for a real search:

    for gpu in 0 1 2 3; do
        CUDA_VISIBLE_DEVICES=$gpu vosim tune --preset paper --study big --trials 25 &
    done

The best trial's hyperparameters are written to
``model_dir/tune-<study>/best-hyperparameters.json`` for ``vosim train
--hyperparameters``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from model_training.learn.checkpoints import model_row, register_model, save_network
from model_training.learn.image_set import load_image_set, source_labels
from model_training.learn.inference import compute_vectors, fit_whitening, pick_device
from model_training.learn.morphology import score_morphology
from model_training.learn.presets import TrainingConfig, preset
from model_training.learn.retrieval import RetrievalScores, retrieval_scores
from model_training.learn.simclr import build_method
from model_training.learn.train import EpochRecord, fit
from tap_schema import Settings, open_catalogue
from tap_schema.release import utc_now

__all__ = ["TuneOutcome", "search_space", "split_by_source", "tune"]


def split_by_source(
    source: np.ndarray, held_out_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split images into training and held-out positions, keeping each source on one side.

    Only sources seen at least twice can be scored, so they are split in
    the given proportion; sources seen once all go to training.
    """
    names, counts = np.unique(source, return_counts=True)
    repeated = names[counts > 1]
    rng = np.random.default_rng(seed)
    n_held = round(len(repeated) * held_out_fraction)
    if n_held == 0 or n_held == len(repeated):
        raise ValueError(
            f"{len(repeated)} sources have more than one image: too few to hold some out"
        )
    held_out = rng.permutation(repeated)[:n_held]
    is_held = np.isin(source, held_out)
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def search_space(trial: optuna.Trial, base: TrainingConfig) -> TrainingConfig:
    """Draw one configuration around a base preset.

    The paper's searched parameters (scale range, shear, crop size,
    normalisation, batch size, output dimension) plus temperature and
    learning rate; the choices are placed around the base preset's values so
    that the same search serves the CPU and the paper preset.
    """
    crops = sorted({c for c in range(base.crop_size - 16, base.crop_size + 17, 8) if 16 <= c <= 64})
    batches = sorted({max(16, base.batch_size // 2), base.batch_size, base.batch_size * 2})
    dims = sorted({64, 128, 512, base.projector_output_dim})
    return base.replace(
        scale_min=trial.suggest_float("scale_min", 0.3, 1.0, log=True),
        scale_max=trial.suggest_float("scale_max", 1.0, 2.5, log=True),
        max_shear_deg=trial.suggest_float("max_shear_deg", 0.0, 20.0),
        crop_size=trial.suggest_categorical("crop_size", crops),
        normalisation=trial.suggest_categorical("normalisation", ["linear", "asinh"]),
        batch_size=trial.suggest_categorical("batch_size", batches),
        projector_output_dim=trial.suggest_categorical("projector_output_dim", dims),
        temperature=trial.suggest_float("temperature", 0.05, 1.0, log=True),
        learning_rate=trial.suggest_float(
            "learning_rate", base.learning_rate / 10, base.learning_rate * 10, log=True
        ),
    )


@dataclass(frozen=True)
class TuneOutcome:
    """The study after this run: best trial, its configuration, and the files written."""

    study_name: str
    best_value: float
    best_config: TrainingConfig
    n_complete: int
    n_pruned: int
    summary_path: Path

    def __str__(self) -> str:
        return (
            f"study {self.study_name}: {self.n_complete} trials complete, {self.n_pruned} "
            f"pruned; best held-out score {self.best_value:.3f}; summary and best "
            f"hyperparameters in {self.summary_path.parent}"
        )


def tune(
    settings: Settings,
    image_kind: str = "continuum",
    *,
    base: TrainingConfig | str = "cpu",
    base_name: str | None = None,
    n_trials: int = 6,
    epochs: int | None = None,
    report_every: int = 2,
    held_out_fraction: float = 0.3,
    truth: Path | None = None,
    study_name: str | None = None,
    device: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TuneOutcome:
    """Search hyperparameters on one image kind by held-out same-source mAP.

    Parameters
    ----------
    settings
        The installation.
    image_kind
        Kind of images to train and score on.
    base
        Preset (or configuration) the search is centred on.
    base_name
        Name recorded for a configuration (default: the preset's, or ``custom``).
    n_trials
        Trials to run in this call (the study may already hold others).
    epochs
        Epochs per trial (default: the base preset's).
    report_every
        Score the held-out sources every this many epochs (for pruning).
    held_out_fraction
        Share of the repeatedly observed sources held out for scoring.
    truth
        Demo archive truth file; else sources are grouped by target name.
    study_name
        Name of the study (continued if it exists); default: kind and date.
    device
        Training device.
    seed
        Seed of the split and of the sampler.
    progress
        Show progress bars.

    Returns
    -------
    TuneOutcome
        The best trial so far.
    """
    base_config = preset(base) if isinstance(base, str) else base
    base_name = base_name or (base if isinstance(base, str) else "custom")
    if epochs is not None:
        base_config = base_config.replace(
            epochs=epochs, warmup_epochs=min(base_config.warmup_epochs, epochs // 5)
        )
    study_name = study_name or f"{image_kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    study_dir = settings.model_dir / f"tune-{study_name}"
    study_dir.mkdir(parents=True, exist_ok=True)
    catalogue = open_catalogue(settings)
    torch_device = pick_device(device)
    images = load_image_set(catalogue, image_kind, public_only=True)  # as vosim train's default
    labels = source_labels(images, truth)
    train_at, held_at = split_by_source(labels.source, held_out_fraction, seed)
    cutouts = images.cutouts(settings)
    train_cutouts = torch.from_numpy(cutouts[train_at])
    held_cutouts, held_source = cutouts[held_at], labels.source[held_at]
    held_class = None if labels.morphology is None else labels.morphology[held_at]
    scored_on = (
        f"held-out: {len(held_at)} images of {len(set(held_source))} sources "
        f"(trained on {len(train_at)} images of other sources)"
    )

    def objective(trial: optuna.Trial) -> float:
        config = search_space(trial, base_config)
        torch.manual_seed(config.seed)
        method = build_method(config)

        def embed(batch: torch.Tensor) -> torch.Tensor:
            return compute_vectors(method, batch, config, device=torch_device)

        def held_out_score() -> tuple[RetrievalScores, float | None]:
            vectors = embed(torch.from_numpy(held_cutouts))
            scores = retrieval_scores(vectors, held_source, held_class)
            if held_class is None:
                return scores, None
            morphology = score_morphology(
                embed, held_cutouts, held_class, scores.mean_average_precision, vectors=vectors
            )
            return scores, morphology.score

        def objective_value(scores: RetrievalScores, morphology: float | None) -> float:
            return scores.mean_average_precision if morphology is None else morphology

        def report(record: EpochRecord) -> None:
            if record.epoch % report_every == 0 and record.epoch < config.epochs:
                trial.report(objective_value(*held_out_score()), record.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        history = fit(
            method,
            train_cutouts,
            config,
            device=torch_device,
            progress=progress,
            on_epoch_end=report,
        )
        fit_whitening(method, train_cutouts, config, device=torch_device)
        scores, morphology = held_out_score()
        path = study_dir / f"trial-{trial.number:03d}.pt"
        save_network(path, method, config, image_kinds=[image_kind])
        row = _trial_row(study_name, trial.number, image_kind, base_name, method, config)
        row |= scores.model_columns() | {
            "n_images": len(train_at),
            "scored_on": scored_on,
            "training_seconds": sum(r.seconds for r in history),
            "includes_proprietary": 0,
            "trained_at": utc_now(),
            "morphology_score": morphology,
        }
        with catalogue.begin() as conn:
            model_id = register_model(conn, catalogue, row, path, current=False)
        trial.set_user_attr("model_id", model_id)
        return objective_value(scores, morphology)

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study_dir / "journal.log"))
    )
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=report_every),
    )
    study.set_user_attr("image_kind", image_kind)
    study.set_user_attr("scored_on", scored_on)
    study.optimize(objective, n_trials=n_trials)
    return _summarise(study, base_config, study_dir)


def _trial_row(
    study: str, number: int, kind: str, base_name: str, method: Any, config: TrainingConfig
) -> dict:
    name = f"tune {study} trial {number}"
    return model_row(name, kind, f"tune:{base_name}", method, config, kind)


def _summarise(study: optuna.Study, base: TrainingConfig, study_dir: Path) -> TuneOutcome:
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    if not complete:
        raise ValueError(f"no trial of study {study.study_name} completed")
    best = study.best_trial
    best_config = base.replace(**best.params)
    summary = {
        "study": study.study_name,
        "scored_on": study.user_attrs.get("scored_on"),
        "best": {"value": best.value, "params": best.params, **best.user_attrs},
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "intermediate": t.intermediate_values,
                **t.user_attrs,
            }
            for t in study.trials
        ],
    }
    summary_path = study_dir / "study.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    (study_dir / "best-hyperparameters.json").write_text(
        json.dumps(best_config.to_dict(), indent=2)
    )
    return TuneOutcome(
        study.study_name, float(best.value), best_config, len(complete), len(pruned), summary_path
    )
