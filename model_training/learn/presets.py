"""Training configurations: every hyperparameter of a run, and the named presets.

A `TrainingConfig` is stored with every checkpoint and, as JSON, in the
``hyperparameters`` column of ``similarity.model``, so that any model can be
rebuilt and any score traced to the settings that produced it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["PRESETS", "TrainingConfig", "preset"]


@dataclass(frozen=True)
class TrainingConfig:
    """All hyperparameters of one training run.

    Attributes
    ----------
    backbone, width
        Residual network (`model_training.learn.backbone.ARCHITECTURES`) and the
        channels of its first stage.
    pooling_grid, pooled_stages
        How the backbone pools its representation (`model_training.learn.backbone.ResNet`):
        grid 1 of the ``last`` stage is the usual global average pooling;
        a larger grid keeps the layout, ``all`` stages the early features.
    polar_radii
        0: the network sees the image grid; else a polar grid of this many
        radii and twice as many angles, pooled over all angles
        (`model_training.learn.backbone.PolarSampling`): rotation-invariant
        by construction.
    polar_inner
        0: the polar grid's radii are evenly spaced; else they are spaced
        logarithmically from this fraction of the half-width out to it
        (`model_training.learn.backbone.PolarSampling`): a zoom is then a
        shift along the radii, which convolutions follow.
    polar_harmonics
        0: each feature of a polar grid is pooled by its mean over all
        angles; else also by the amplitudes of its angular harmonics up to
        this one (`model_training.learn.backbone.ResNet`), still invariant.
    projector_hidden_dim, projector_output_dim
        Projection head sizes; the output is what NT-Xent compares.
    temperature
        τ of NT-Xent.
    crop_size, view_size, scale_min, scale_max, max_shear_deg, max_rotation_deg, flip,
    fill, noise_std, gain_min, gain_max, max_blur, blur_axis_ratio, beam_pixels, max_offset,
    snr_min, renormalise, scale_target, scale_zoom_max
        The augmentation (`model_training.learn.augment.AffineAugmentation`);
        ``view_size`` None renders the crop at the cut-out's resolution;
        a positive ``scale_target`` zooms every view and every embedded
        cut-out alike so that its source is about that radius in pixels
        (`model_training.learn.augment.canonical_zoom`).
    local_views, local_crop_size
        Multi-crop (Caron et al. 2020, SwAV section 3.2): besides the two
        views of the whole crop, this many views of a smaller central crop
        of ``local_crop_size`` cut-out pixels (a part of the source, or the
        source seen larger), each pulled towards both whole views; 0: none.
    normalisation
        Intensity stretch before the network: ``linear`` or ``asinh``.
    batch_size
        Images per step over all processes (each gives two views).
    epochs, warmup_epochs
        Length of the run and of the linear learning-rate warm-up.
    optimizer, learning_rate, weight_decay, momentum
        ``lars`` or ``adamw``; peak learning rate at ``batch_size``.
    representation
        What the similarity vectors are: ``backbone`` output or ``projection``.
    embed_input
        What the network sees when embedding: the ``full`` 64-pixel cut-out
        or its ``centre`` crop of ``crop_size`` pixels.
    embed_group
        Symmetry group the vectors are averaged over, at embed and upload
        time alike (`model_training.learn.inference.group_views`): ``none``,
        ``d4`` (right-angle rotations and mirrors) or ``d8`` (also 45°).
    embed_zooms
        Magnifications the vectors are also averaged over, at embed and
        upload time alike (`model_training.learn.inference.zoom_views`):
        ``(1.0,)`` for the image alone; a pyramid makes an image and its
        copy zoomed out by one of its steps share most levels.
    embed_renormalise
        Whether embedded inputs are normalised as the views were
        (with ``renormalise``). False for models stored without the key,
        whose vectors were embedded so: their uploads still match them.
    embed_whitening
        None: the served vectors are the network's; else they are centred
        and whitened by the mean and covariance of the training images'
        vectors, fitted when training ends and stored with the weights
        (`model_training.learn.whitening.Whitening`), with this shrinkage of
        the covariance towards its mean eigenvalue (0 whitens fully, 1 only
        centres). None for models stored without the key.
    seed
        Seed of the weights, the data order and the augmentations.
    compile
        Compile the backbone with ``torch.compile`` (CUDA only).
    """

    backbone: str = "resnet50"
    width: int = 64
    pooling_grid: int = 1
    pooled_stages: str = "last"
    polar_radii: int = 0
    polar_inner: float = 0.0
    polar_harmonics: int = 0
    projector_hidden_dim: int = 2048
    projector_output_dim: int = 2048
    temperature: float = 0.2
    crop_size: int = 48
    view_size: int | None = None
    beam_pixels: float = 0.0
    scale_min: float = 0.4
    scale_max: float = 2.0
    max_shear_deg: float = 10.0
    max_rotation_deg: float = 180.0
    flip: bool = True
    fill: str = "zero"
    noise_std: float = 0.0
    gain_min: float = 1.0
    gain_max: float = 1.0
    max_blur: float = 0.0
    blur_axis_ratio: float = 1.0
    max_offset: float | None = None
    snr_min: float = 0.0
    renormalise: bool = False
    scale_target: float = 0.0
    scale_zoom_max: float = 2.0
    local_views: int = 0
    local_crop_size: int = 24
    normalisation: str = "linear"
    batch_size: int = 256
    epochs: int = 100
    warmup_epochs: int = 10
    optimizer: str = "lars"
    learning_rate: float = 0.3
    weight_decay: float = 1e-6
    momentum: float = 0.9
    representation: str = "backbone"
    embed_input: str = "full"
    embed_group: str = "none"
    embed_zooms: tuple[float, ...] = (1.0,)
    embed_renormalise: bool = False
    embed_whitening: float | None = None
    seed: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        if self.representation not in ("backbone", "projection"):
            raise ValueError("representation must be 'backbone' or 'projection'")
        if self.embed_input not in ("full", "centre"):
            raise ValueError("embed_input must be 'full' or 'centre'")
        if self.embed_group not in ("none", "d4", "d8"):
            raise ValueError("embed_group must be 'none', 'd4' or 'd8'")
        object.__setattr__(self, "embed_zooms", tuple(float(z) for z in self.embed_zooms))
        if not self.embed_zooms or min(self.embed_zooms) <= 0:
            raise ValueError("embed_zooms must be one or more positive magnifications")
        if self.embed_whitening is not None and not 0.0 <= self.embed_whitening <= 1.0:
            raise ValueError("embed_whitening must be None or a shrinkage in [0, 1]")
        if self.batch_size < 2:
            raise ValueError("NT-Xent needs a batch of at least 2 images")

    def replace(self, **changes: Any) -> TrainingConfig:
        """Return a copy with some hyperparameters changed."""
        unknown = set(changes) - {field.name for field in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown hyperparameters: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the hyperparameters as a plain dictionary."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Return the hyperparameters as the JSON stored in ``similarity.model``."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Rebuild a configuration stored by `to_dict` (unknown keys are an error)."""
        return cls().replace(**values)


PAPER = TrainingConfig(embed_group="d8")
"""The paper's choices (Stoehr et al. 2024), with an invariant embedding.

ResNet-50 with the stem striding removed, one input channel, 2048-d
representation; batch 256; 48-pixel crops; rotation by any angle, shear 10°,
scale 0.4–2.0, flips; normalisation median 0 / standard deviation 1
("linear"); output vector 2048 (the projection head is 2048→2048→2048, so
that both the backbone and the head give the paper's 2048-d vector). Not
the paper's: vectors averaged over the 16 rotations and mirror images of
D8 (``embed_group``), so that orientation is ignored by construction.
"""

CPU = PAPER.replace(
    backbone="resnet10",
    width=16,
    pooling_grid=3,
    pooled_stages="all",
    polar_radii=16,
    polar_harmonics=3,
    projector_hidden_dim=256,
    projector_output_dim=128,
    view_size=24,
    max_offset=3.0,
    fill="noise",
    max_blur=1.0,
    blur_axis_ratio=2.0,
    beam_pixels=5.0,
    snr_min=10.0,
    renormalise=True,
    batch_size=64,
    epochs=60,
    warmup_epochs=5,
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=1e-4,
    representation="projection",
    embed_input="centre",
    embed_group="d4",
    embed_renormalise=True,
)
"""Small enough to train both image kinds of the demo archive on two CPU cores in minutes.

Chosen by class retrieval (the morphology objective,
`model_training.learn.morphology`) on a held-out scoring archive made by
the demo generator from another seed, never trained on, and by training
time (the measurements: README's training section and benchmarks/README.md,
"Choosing the cpu preset"). The demo archive observes its sources as ALMA
does: about four times each, with a different restoring beam, pixel scale,
depth and centring, most resolved over several beams. Each choice and why:

- A polar grid of 16 radii over 24-pixel views (``polar_radii``): the
  convolutions wrap around in angle and each feature is pooled by its mean
  over every angle and the amplitudes of its angular harmonics 1-3
  (``polar_harmonics``), so the network ignores rotation by construction
  and still sees how a feature is arranged around the centre (two opposite
  lobes, three arms); the D4 averaging stays for the mirror images. The
  harmonics raised class precision@10 by 0.02-0.07 for 10-20 % more time
  per training step.
- ResNet-10 of width 16 on 24-pixel renderings of the 48-pixel crop,
  averaged down by area as the embedding stage resamples cut-outs: many
  times the views per second of a ResNet-18 at 48 pixels.
- Rotation by any angle and flips, as the paper: astronomers search by
  morphology, and a disc at any position angle is a disc. The vectors are
  averaged over D4 (``embed_group``) at embed and upload time, so
  orientation is ignored by construction, not only by training. Scale
  0.4–2.0 and shear 10° because pixel scales differ by up to six times and
  beams are elliptical.
- Views that differ as two observations differ: an elliptical beam blur at
  any position angle, the peak S/N redrawn between 10 and its own with
  beam-correlated noise, shifts of at most 3 pixels, each view normalised
  as ingest normalises cut-outs. Views that share the noise pattern and
  level let the network match noise instead of sources. Each embedded
  crop is normalised the same way (`model_training.learn.inference.network_input`),
  or a zoomed-out copy, whose source fills less of the field, looks faint.
- Zoomed-out views keep the 5-pixel restoring beam (``beam_pixels``): a
  coarser observation shows a source smaller at the same pixels per beam,
  not sharper.
- AdamW at 2e-3 (LARS's trust ratio is for batches of thousands, this one
  is 64), 5 warm-up epochs then a cosine, 60 epochs (better than 40 in
  every paired run, and training both kinds stays well inside the demo's
  5 minutes on 2 cores), temperature 0.2.
- No whitening of the vectors (``embed_whitening``): measured on the same
  networks it traded zoomed-copy recall and same-source mAP for class
  precision, within the spread of two seeds.
- The vectors are the projection head's 128-d output (SimCLR's choice and
  the paper's) from the central 48 pixels (``embed_input="centre"``).
"""


PRESETS: dict[str, TrainingConfig] = {"paper": PAPER, "cpu": CPU}


def preset(name: str) -> TrainingConfig:
    """Return a named preset (``paper`` or ``cpu``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
