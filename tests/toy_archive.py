"""A tiny ingested archive of toy sources, written straight into a catalogue.

The training-stage tests need images of known sources without running the
synthetic-archive generator and ingest (minutes): a few morphologies drawn
as analytic shapes, and the catalogue rows ingest would write for them. As
in ALMA archives (and the demo archive), repeated observations of a source
keep its orientation on the sky but not its size in pixels: the cell size
follows the beam (a few pixels per beam), and beams differ by several times
between array configurations and bands. So each view draws a pixel scale
(log-uniform over a factor 4), a fixed beam of ~1.5 pixels and a noise level.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np

from model_training.ingest.cutout_store import CutoutStore
from model_training.learn.presets import PAPER
from tap_schema import Settings, open_catalogue
from tests import fixture_archive as fixture

TINY_CONFIG = PAPER.replace(
    backbone="resnet10",
    width=4,
    projector_hidden_dim=32,
    projector_output_dim=16,
    crop_size=48,
    view_size=16,
    batch_size=16,
    epochs=3,
    warmup_epochs=1,
)
"""A network small enough that tests train it in seconds (the paper's optimiser and geometry)."""

SIZE = 64
MORPHOLOGIES = ("point", "disc", "ring", "double")


def _render(morphology: str, params: dict, pixel_scale: float, blur: float) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    x, y = x * pixel_scale, y * pixel_scale
    c, s = np.cos(params["pa"]), np.sin(params["pa"])
    u, v = c * x + s * y, -s * x + c * y
    size = params["size"]
    if morphology == "point":
        image = np.exp(-(x**2 + y**2) / (2 * 1.5**2))
    elif morphology == "disc":
        image = np.exp(-((u / size) ** 2 + (v / (size * params["ratio"])) ** 2) / 2)
    elif morphology == "ring":
        radius = np.hypot(u, v / params["ratio"])
        image = np.exp(-((radius - size) ** 2) / (2 * 1.5**2))
    else:
        image = np.exp(-((u - size) ** 2 + v**2) / 8) + params["ratio"] * np.exp(
            -((u + size) ** 2 + v**2) / 8
        )
    # Resolution: smooth with a Gaussian of `blur` pixels (separable, by FFT).
    kernel = np.exp(
        -(np.fft.fftfreq(SIZE)[:, None] ** 2 + np.fft.fftfreq(SIZE) ** 2)
        * (2 * np.pi * blur) ** 2
        / 2
    )
    return np.real(np.fft.ifft2(np.fft.fft2(image) * kernel))


def toy_cutouts(
    n_sources: int, n_views: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return cut-outs ``(n_sources * n_views, 64, 64)``, their source ids and morphologies."""
    rng = np.random.default_rng(seed)
    cutouts, sources, classes = [], [], []
    for source in range(n_sources):
        morphology = MORPHOLOGIES[source % len(MORPHOLOGIES)]
        params = {
            "pa": rng.uniform(0, np.pi),
            "size": rng.uniform(5, 13),
            "ratio": rng.uniform(0.3, 1.0),
        }
        for _ in range(n_views):
            pixel_scale = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
            image = _render(morphology, params, pixel_scale, rng.uniform(1.2, 1.8))
            image = image / image.max() * rng.uniform(10, 60) + rng.normal(size=image.shape)
            image = (image - np.median(image)) / image.std()
            cutouts.append(image.astype(np.float32))
            sources.append(f"toy{seed}-{source:04d}")
            classes.append(morphology)
    return np.stack(cutouts), np.array(sources), np.array(classes)


def write_toy_archive(
    settings: Settings,
    n_sources: int,
    n_views: int,
    *,
    kinds: tuple[str, ...] = ("continuum",),
    seed: int = 0,
    proprietary: frozenset[int] = frozenset(),
    truth: Path | None = None,
) -> list[str]:
    """Write toy images into the catalogue and cut-out store as ingest would.

    The rows are the shared fixture archive's (`tests.fixture_archive`);
    every image gets the source's name as ObsCore target name. Positions in
    ``proprietary`` get a release date in the future. Returns the DIDs.
    """
    catalogue = open_catalogue(settings)
    dids: list[str] = []
    truth_rows = []
    store = CutoutStore(settings.cutout_store)
    for kind_index, kind in enumerate(kinds):
        cutouts, sources, classes = toy_cutouts(n_sources, n_views, seed + kind_index)
        keys = [f"toy{seed}-{kind}-{position:05d}" for position in range(len(cutouts))]
        images = [
            fixture.FixtureImage(
                key=key,
                image_kind=kind,
                target=str(sources[position]),
                release=datetime(2099, 1, 1) if position in proprietary else datetime(2020, 1, 1),
                obscore={"obs_collection": "TOY", "dataproduct_type": "image"},
            )
            for position, key in enumerate(keys)
        ]
        rows = fixture.image_rows(images, settings.authority)
        for product, store_row in zip(rows["vosim.product"], store.append(cutouts), strict=True):
            product["cutout_index"] = store_row
        fixture.write_rows(catalogue, rows)
        dids += [row["obs_publisher_did"] for row in rows["ivoa.obscore"]]
        truth_rows += [
            (f"images/{key}.fits", sources[position], classes[position])
            for position, key in enumerate(keys)
        ]
    if truth is not None:
        with truth.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "source_id", "morphology_class", "view"])
            writer.writerows((*row, 0) for row in truth_rows)
    catalogue.dispose()
    return dids
