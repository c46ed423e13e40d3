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
    seed: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        if self.representation not in ("backbone", "projection"):
            raise ValueError("representation must be 'backbone' or 'projection'")
        if self.embed_input not in ("full", "centre"):
            raise ValueError("embed_input must be 'full' or 'centre'")
        if self.embed_group not in ("none", "d4", "d8"):
            raise ValueError("embed_group must be 'none', 'd4' or 'd8'")
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
    epochs=40,
    warmup_epochs=5,
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=1e-4,
    representation="projection",
    embed_input="centre",
    embed_group="d4",
)
"""Small enough to train both image kinds of the demo archive on two CPU cores in minutes.

Since 2026-12-03 chosen by class retrieval (the morphology objective,
`model_training.learn.morphology`) on a held-out scoring archive
(``--sources 100 --seed 2``, never trained on) after training on the demo
archive (``--sources 300 --seed 1``), both made by the demo generator whose
observations now mostly resolve their sources (2 to 7 beams in radius).
Continuum class precision@10 after 30 epochs, the rotation-aligned pixel
match scoring 0.356: the preset before 0.312; views of 16 → 24 pixels
0.335; global pooling 0.311; peak S/N redrawn down to 10 instead of 3 and
beam blur up to 1 pixel 0.327; a canonical zoom to one source radius
(``scale_target`` 8) 0.293 (earlier archive); a polar grid of 12 radii
(``polar_radii``) 0.342, of 16 radii at 24-pixel views 0.364, that with
the S/N and blur change 0.395 (hi-S/N 0.458): the preset, now with 40
epochs (0.412, hi-S/N 0.488; the README's training section has the full
table). The polar grid makes the network rotation-invariant by construction
(averaging over all angles); the D4 averaging stays for the mirror images.
The text below is the history of the earlier choices.

Chosen by time and by the same-source score (`model_training.evaluate.stage`) on
the demo archive (``--sources 300 --views 4 --seed 1``, continuum, 707
images of 294 sources), measured on the shared 2 cores. The demo archive
is built as ALMA archives are: each source is observed about four times
with a different restoring beam, pixel scale (so its size in pixels
differs by up to six times), depth (peak S/N 3 to 300, median about 7) and
centring, and the SAME orientation on the sky.

- Network: ResNet-10 of width 16, views rendered at 16 pixels (the 48-pixel
  crop averaged down by area, as the embedding stage resamples cut-outs):
  about ten times the views per second of a ResNet-18 at 48 pixels.
- Representation: every stage average-pooled to a 3x3 grid, each stage
  L2-normalised, concatenated (2160-d). The global average of the last
  stage (the paper's) scored 0.032 mAP after 12 epochs, barely above the
  untrained network (0.030); the pooled layout of all stages 0.076
  untrained and 0.082–0.092 trained (12–40 epochs). The cut-outs are centred
  on the source and repeated observations keep its orientation, so where a
  feature lies is what tells sources apart; early stages keep the small
  scales.
- Rotation by any angle and flips, as the paper: astronomers search by
  morphology, and a disc at any position angle is a disc. (Earlier,
  without them, because repeated observations share the orientation: with
  a pooled layout, rotation by any angle had lowered the same-source mAP
  from 0.060 to 0.051.) Vectors are averaged over D4, the right-angle
  rotations and mirror images (``embed_group``), at embed and upload time,
  so orientation is ignored by construction, not only by training. Scale
  0.4–2.0 and shear 10° stay (pixel scales differ by up to six times;
  beams are elliptical).
- Views like observations, not like copies: an elliptical beam blur (up to
  2 crop pixels, axis ratio up to 2, any position angle), the peak S/N
  redrawn between 3 and its own with beam-correlated noise, shifts of at
  most 3 pixels, and each view normalised to median 0 / std 1 as ingest
  normalises cut-outs. Without them the two views shared the noise pattern
  and level and training lowered the score (0.066 untrained, 0.060–0.066
  after 12 epochs); with them it raised it (0.076 after 12).
- AdamW at 2e-3, 5 warm-up epochs then cosine, 60 epochs (measured on the
  cut-outs before ingest's primary-beam fix, 40 epochs: 0.083 mAP after 12
  epochs, 0.092 after 40, 0.091 after 60; after it, with the beam kept
  below, projection output: 0.121 after 40, 0.133 after 60). On batches of
  64, LARS (whose trust ratio exists for batches of thousands) scored
  lower with the earlier preset (0.029 against 0.032). Temperature 0.2:
  0.1 scored 0.079 against 0.080 (2x2 grid), 0.5 0.083 against 0.084
  (3x3), 12 epochs, and 0.121 against 0.121 with the projection output
  (40 epochs); an asinh stretch 0.079; width 24 0.084 for 1.3 times the
  time.
- Zoomed-out views keep the 5-pixel restoring beam (``beam_pixels``): a
  coarser observation of a source shows it small but at the same pixels
  per beam, not sharper. Class precision@10 of the projection output 0.293
  → 0.327 (mAP 0.122 → 0.121), 40 epochs; a wider scale range (0.25–2.0)
  0.119.
- Vectors are the projection head's output (128-d), not the backbone's
  (SimCLR's choice, and the paper's): here the head scores higher on
  same-source retrieval (0.133 against 0.103 mAP, 60 epochs) and, with the
  beam kept, on class precision (0.328 against 0.314). A 256-d head
  scored the same (0.121, 40 epochs). From the central 48 pixels
  (``embed_input="centre"``).
- Tried and left out: repeated observations of a target (same ObsCore
  target name) as positive pairs instead of two views of one image,
  trained on 70 % of the sources and scored on the others: no gain
  (0.127 against 0.125 mAP, projection output).

With `vosim train` (one network for both kinds, the default) and `vosim
evaluate`, demo archive above: see the README's evaluation section for the
tables. In short, continuum mAP 0.131 against 0.099 for the best baseline
(1.32x), peak-flux 0.162 against 0.127 (1.28x), with higher recall@10
and @100 and a lower median first rank on both kinds, and class
precision@10 0.336 against 0.312 (continuum) and 0.291 against 0.286
(peak-flux). Training both kinds took 3 min 19 s inside `vosim demo` on
the 2 cores at load 1.0–1.8.
"""


PRESETS: dict[str, TrainingConfig] = {"paper": PAPER, "cpu": CPU}


def preset(name: str) -> TrainingConfig:
    """Return a named preset (``paper`` or ``cpu``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
