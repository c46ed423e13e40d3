"""The evaluation stage: a model's same-source retrieval score next to simple baselines.

The paper chose its hyperparameters "using only visual inspection" and
proposed, as its outlook, a score from images known to show the same
source. This stage computes that score (`model_training.learn.retrieval`) for a
trained model within one image kind, as the service ranks images, and for
three baselines on the very same images, so that the number means something:

- raw pixels: cosine similarity of the centre crops (what any archive could
  do without learning);
- PCA of pixels: the same after projecting on the leading principal
  components of the evaluated cut-outs (a linear, learned-without-labels
  baseline);
- untrained network: the model's architecture with its initial weights;
- rotation-aligned pixels: the raw-pixel cosine, maximised over the 8
  right-angle rotations and mirror images of the query (the dihedral group
  D4), what a pixel match can do about orientation without learning;
- polar Fourier descriptor (`model_training.learn.descriptor`): amplitudes
  of the angular harmonics on circles about the centre, invariant to
  rotation and mirroring by construction, with no training.

Where morphology classes are known, every row also gets the morphology
scores of `model_training.learn.morphology`: class precision@10 and mAP
(overall, per class, high-S/N subset), rotated and flipped copies and
copies zoomed out by 0.5 ranked against the originals (embedded by the
same function as an upload), and the combined morphology score.

Two variants of the model itself are scored as well (the projection-head
output instead of the backbone output; the other input size), because they
are the choices SimCLR practice makes by habit and this archive can check;
a model whose vectors are whitened (``embed_whitening``) also gets its
vectors before the whitening, the same network's paired comparison.
Two more columns test the invariance the augmentations were meant to teach.
Self-retrieval transforms each image once (rotation by any angle, shear up
to 10°, scale 0.7–1.4) and asks whether its original is among its 10
nearest images. "mAP, any orientation" repeats the same-source score with
every image turned by its own random angle: repeated observations of a
source keep its orientation on the sky, which a pixel comparison exploits
and a rotation-invariant network (the paper's choice: orientation carries no
morphological meaning) deliberately ignores; this column scores both as if
orientation were unknown, as it is between two different sources.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import Tensor

from model_training.learn.augment import AffineAugmentation
from model_training.learn.checkpoints import TrainedModel, load_model, load_network
from model_training.learn.descriptor import PolarFourierDescriptor
from model_training.learn.image_set import ImageSet, SourceLabels, load_image_set, source_labels
from model_training.learn.inference import centre_crop, compute_vectors, pick_device
from model_training.learn.morphology import dihedral_views, score_morphology
from model_training.learn.presets import TrainingConfig
from model_training.learn.retrieval import retrieval_scores, self_retrieval_rate
from model_training.learn.simclr import SimCLR, build_method
from tap_schema import Settings, open_catalogue

from .scores import Evaluation, MethodScores

__all__ = ["evaluate_model", "evaluate_network"]

SELF_RETRIEVAL_TRANSFORM = AffineAugmentation(
    crop_size=64, scale_range=(0.7, 1.4), max_shear_deg=10.0, flip=False
)
"""A single random rotation (any angle), shear (±10°) and rescaling (0.7–1.4) per image."""

ORIENTATION_TRANSFORM = AffineAugmentation(
    crop_size=64, scale_range=(1.0, 1.0), max_shear_deg=0.0, flip=False
)
"""A random rotation (any angle) of each image, nothing else."""

Embedder = Callable[[Tensor], Tensor]


def evaluate_network(
    method: SimCLR,
    config: TrainingConfig,
    cutouts: np.ndarray,
    labels: SourceLabels,
    *,
    device: torch.device | str = "cpu",
    name: str = "model",
    baselines: bool = True,
    variants: bool = True,
    seed: int = 0,
) -> list[MethodScores]:
    """Score a network, its variants and the baselines on the same cut-outs.

    Parameters
    ----------
    method
        The trained network.
    config
        Its configuration (which output and input are served).
    cutouts
        ``(N, 64, 64)`` cut-outs of one image kind.
    labels
        Source (and morphology) of each cut-out.
    device
        Where to run the networks.
    name
        Label of the model's row.
    baselines, variants
        Also score the baselines / the model's alternative output and input.
    seed
        Seed of the self-retrieval transforms and of the untrained network.

    Returns
    -------
    list of MethodScores
        The model first, then its variants, then the baselines.
    """
    images = torch.from_numpy(np.ascontiguousarray(cutouts, dtype=np.float32))
    transformed = SELF_RETRIEVAL_TRANSFORM(
        images.unsqueeze(1), torch.Generator().manual_seed(seed)
    ).squeeze(1)
    turned = ORIENTATION_TRANSFORM(
        images.unsqueeze(1), torch.Generator().manual_seed(seed + 1)
    ).squeeze(1)

    def network(
        net: SimCLR, representation: str, embed_input: str, whiten: bool = True
    ) -> Embedder:
        def embed(batch: Tensor) -> Tensor:
            return compute_vectors(
                net,
                batch,
                config,
                device=device,
                representation=representation,
                embed_input=embed_input,
                whiten=whiten,
            )

        return embed

    served = (config.representation, config.embed_input)
    candidates: list[tuple[str, str, Embedder]] = [
        (
            f"{name} ({served[0]}, {_input_name(served[1], config)})",
            "model",
            network(method, *served),
        )
    ]
    if variants:
        other_output = "projection" if served[0] == "backbone" else "backbone"
        other_input = "centre" if served[1] == "full" else "full"
        candidates += [
            (
                f"  {other_output} output",
                "variant",
                network(method, other_output, served[1]),
            ),
            (
                f"  {_input_name(other_input, config)} input",
                "variant",
                network(method, served[0], other_input),
            ),
        ]
        if getattr(method, "whitening", None) is not None:
            candidates.append(
                ("  without whitening", "variant", network(method, *served, whiten=False))
            )
    if baselines:
        crop = config.crop_size
        pca = PCA(n_components=min(128, len(images) - 1), random_state=seed)
        pca.fit(centre_crop(images, crop).flatten(1).numpy())
        descriptor = PolarFourierDescriptor()
        descriptor.fit(images)
        torch.manual_seed(config.seed)
        untrained = build_method(config)
        candidates += [
            (
                f"raw pixels ({crop}-px centre)",
                "baseline",
                lambda b: centre_crop(b, crop).flatten(1),
            ),
            (
                f"PCA of pixels ({pca.n_components_} comp.)",
                "baseline",
                lambda b: torch.from_numpy(pca.transform(centre_crop(b, crop).flatten(1).numpy())),
            ),
            ("untrained network", "baseline", network(untrained, *served)),
            (
                "polar Fourier descriptor",
                "baseline",
                lambda b: descriptor(b.unsqueeze(1)),
            ),
            (
                "rotation-aligned pixels (D4)",
                "baseline",
                lambda b: torch.stack(
                    [centre_crop(v, crop).flatten(1) for v in dihedral_views(b)], dim=1
                ),
            ),
        ]
    rows = []
    for row_name, role, embed in candidates:
        vectors = embed(images)
        scores = retrieval_scores(vectors, labels.source, labels.morphology)
        self_rate = self_retrieval_rate(vectors, embed(transformed))
        any_orientation = retrieval_scores(embed(turned), labels.source, labels.morphology)
        morphology = None
        if labels.morphology is not None:
            morphology = score_morphology(
                embed,
                images,
                labels.morphology,
                scores.mean_average_precision,
                vectors=vectors,
                seed=seed,
            )
        rows.append(MethodScores(row_name, role, scores, self_rate, any_orientation, morphology))
    return rows


def _input_name(embed_input: str, config: TrainingConfig) -> str:
    return "64-px cut-out" if embed_input == "full" else f"{config.crop_size}-px centre"


def evaluate_model(
    settings: Settings,
    *,
    model_id: int | None = None,
    image_kind: str = "continuum",
    truth: Path | None = None,
    device: str | None = None,
    baselines: bool = True,
    plots_dir: Path | None = None,
    model_file: Path | None = None,
) -> Evaluation:
    """Evaluate a model (by default the current one of a kind) against the baselines.

    Parameters
    ----------
    settings
        The installation.
    model_id
        The model; by default the current model of ``image_kind``.
    image_kind
        Kind of images to evaluate on (a given model's own kind wins).
    truth
        A demo archive's ``truth.csv`` (sources and morphology classes);
        without it, images are grouped into sources by ObsCore target name.
    device
        Where to run the networks.
    baselines
        Score the baselines too.
    plots_dir
        Write the neighbour mosaic and the recall curves there (PNG).
    model_file
        A network file (``model.pt`` of a training run) to score instead of
        a model of this catalogue: a model trained on one archive is then
        scored on another one it never saw (``image_kind`` says which images).

    Returns
    -------
    Evaluation
        All rows, model first.
    """
    catalogue = open_catalogue(settings)
    torch_device = pick_device(device)
    if model_file is not None:
        method, config = load_network(model_file, device=torch_device)
        model = TrainedModel(None, image_kind, method, config)
    else:
        model = load_model(catalogue, model_id, image_kind, device=torch_device)
    images: ImageSet = load_image_set(catalogue, model.image_kind)
    labels = source_labels(images, truth)
    cutouts = images.cutouts(settings)
    rows = evaluate_network(
        model.method,
        model.config,
        cutouts,
        labels,
        device=torch_device,
        name=f"model {model.model_id or model_file.parent.name}",
        baselines=baselines,
    )
    evaluation = Evaluation(
        image_kind=model.image_kind,
        model_id=model.model_id,
        n_images=len(images),
        n_sources=len(set(labels.source)),
        labels="truth file" if labels.origin == "truth" else "ObsCore target names",
        rows=rows,
    )
    if plots_dir is not None:
        from .plots import write_mosaic, write_recall_curves

        plots_dir.mkdir(parents=True, exist_ok=True)
        vectors = compute_vectors(model.method, cutouts, model.config, device=torch_device)
        write_mosaic(plots_dir / f"neighbours-{model.image_kind}.png", cutouts, vectors, labels)
        write_recall_curves(plots_dir / f"recall-{model.image_kind}.png", evaluation)
    return evaluation
