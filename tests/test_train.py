"""The training loop: exact resumption, the multi-process path, and a short real training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from model_training.learn.inference import compute_vectors
from model_training.learn.loss import nt_xent_loss
from model_training.learn.morphology import class_scores, dihedral_views
from model_training.learn.retrieval import retrieval_scores
from model_training.learn.simclr import build_method
from model_training.learn.train import fit
from tests.toy_archive import TINY_CONFIG as TINY
from tests.toy_archive import toy_cutouts


class _InterruptedError(Exception):
    pass


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    cutouts = torch.from_numpy(toy_cutouts(8, 4, seed=1)[0])
    torch.manual_seed(0)
    whole = build_method(TINY)
    # One thread in both runs: a count chosen by the load could change the sums' order.
    whole_history = fit(
        whole, cutouts, TINY, checkpoint=tmp_path / "a.pt", progress=False, threads=1
    )

    def crash_after_two(record) -> None:
        if record.epoch == 2:
            raise _InterruptedError

    torch.manual_seed(0)
    first = build_method(TINY)
    with pytest.raises(_InterruptedError):
        fit(
            first,
            cutouts,
            TINY,
            checkpoint=tmp_path / "b.pt",
            on_epoch_end=crash_after_two,
            threads=1,
        )
    torch.manual_seed(123)  # other initial weights: everything must come from the checkpoint
    resumed = build_method(TINY)
    history = fit(resumed, cutouts, TINY, checkpoint=tmp_path / "b.pt", resume=True, threads=1)
    assert [r.loss for r in history] == [r.loss for r in whole_history]
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def _distributed_worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        # The loss with negatives gathered from both processes equals the loss
        # of the whole batch on one process, and so do its gradients.
        generator = torch.Generator().manual_seed(5)
        z1, z2 = torch.randn(8, 6, generator=generator), torch.randn(8, 6, generator=generator)
        local1 = z1[rank * 4 : rank * 4 + 4].clone().requires_grad_()
        local2 = z2[rank * 4 : rank * 4 + 4].clone().requires_grad_()
        loss = nt_xent_loss(local1, local2, 0.2)
        loss.backward()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        torch.save(
            {"loss": mean_loss / 2, "grad1": local1.grad * 1, "grad2": local2.grad * 1},
            f"{out_dir}/loss-{rank}.pt",
        )
        cutouts = torch.from_numpy(toy_cutouts(8, 4, seed=1)[0])
        torch.manual_seed(0)
        method = build_method(TINY)
        history = fit(method, cutouts, TINY.replace(epochs=2), progress=False)
        torch.save(
            {"state": method.state_dict(), "loss": [r.loss for r in history]},
            f"{out_dir}/rank-{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_two_processes_train_one_model_with_the_global_loss(tmp_path: Path) -> None:
    mp.spawn(_distributed_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    generator = torch.Generator().manual_seed(5)
    z1 = torch.randn(8, 6, generator=generator).requires_grad_()
    z2 = torch.randn(8, 6, generator=generator).requires_grad_()
    loss = nt_xent_loss(z1, z2, 0.2)
    loss.backward()
    parts = [torch.load(tmp_path / f"loss-{rank}.pt") for rank in (0, 1)]
    assert float(parts[0]["loss"]) == pytest.approx(float(loss), rel=1e-6)
    # DistributedDataParallel averages gradients over the 2 processes.
    grad1 = torch.cat([p["grad1"] for p in parts]) / 2
    grad2 = torch.cat([p["grad2"] for p in parts]) / 2
    assert torch.allclose(grad1, z1.grad, atol=1e-6)
    assert torch.allclose(grad2, z2.grad, atol=1e-6)
    ranks = [torch.load(tmp_path / f"rank-{rank}.pt") for rank in (0, 1)]
    assert ranks[0]["loss"] == ranks[1]["loss"]
    assert all(np.isfinite(ranks[0]["loss"]))
    for name, value in ranks[0]["state"].items():
        if value.is_floating_point() and "running" not in name:
            assert torch.equal(value, ranks[1]["state"][name]), name


def test_short_training_beats_raw_pixels() -> None:
    cutouts, source, _ = toy_cutouts(12, 4, seed=2)
    images = torch.from_numpy(cutouts)
    # The cpu preset's choices on a tiny network: a pooled layout of every
    # stage, no rotation (the toy sources, like ALMA's, keep their
    # orientation), views like repeated observations, AdamW.
    config = TINY.replace(
        width=8,
        epochs=16,
        batch_size=24,
        pooling_grid=3,
        pooled_stages="all",
        max_rotation_deg=0.0,
        flip=False,
        max_offset=3.0,
        fill="noise",
        max_blur=2.0,
        blur_axis_ratio=2.0,
        snr_min=3.0,
        renormalise=True,
        optimizer="adamw",
        learning_rate=2e-3,
        weight_decay=1e-4,
        embed_input="centre",
        embed_group="none",  # orientation kept, as the toy sources keep theirs
    )
    torch.manual_seed(0)
    method = build_method(config)
    fit(method, images, config, progress=False)
    learned = retrieval_scores(compute_vectors(method, cutouts, config), source)
    raw = retrieval_scores(images[:, 8:56, 8:56].flatten(1), source)
    assert learned.mean_average_precision > raw.mean_average_precision


@pytest.mark.parametrize(
    "polar",
    [{}, {"polar_radii": 8, "polar_harmonics": 3, "pooling_grid": 3}],
    ids=["image grid", "polar grid with angular harmonics"],
)
def test_short_invariant_training_beats_rotation_aligned_pixels(polar: dict) -> None:
    # Toy sources at random position angles: a class is found at any
    # orientation. Rotations and flips on (the preset's default), vectors
    # averaged over D4; the pixel match gets the best of D4 too.
    cutouts, _, classes = toy_cutouts(12, 4, seed=2)
    images = torch.from_numpy(cutouts)
    config = TINY.replace(
        **polar,
        width=8,
        epochs=12,
        batch_size=24,
        pooled_stages="all",
        max_offset=3.0,
        fill="noise",
        max_blur=2.0,
        blur_axis_ratio=2.0,
        snr_min=3.0,
        renormalise=True,
        optimizer="adamw",
        learning_rate=2e-3,
        weight_decay=1e-4,
        embed_input="centre",
        embed_group="d4",
    )
    torch.manual_seed(0)
    method = build_method(config)
    fit(method, images, config, progress=False)
    learned = class_scores(compute_vectors(method, cutouts, config), classes)
    aligned = torch.stack([view[:, 8:56, 8:56].flatten(1) for view in dihedral_views(images)], 1)
    baseline = class_scores(aligned, classes)
    assert learned.precision_at_10 > baseline.precision_at_10


def test_multi_crop_views_show_the_central_part_and_train() -> None:
    cutouts, _, _ = toy_cutouts(4, 2, seed=3)
    images = torch.from_numpy(cutouts)
    config = TINY.replace(local_views=2, local_crop_size=24, scale_min=1.0, scale_max=1.0)
    method = build_method(config)
    local = method.local_augmentation
    # Half the crop at the whole view's resolution: 8 pixels for 24 cut-out pixels.
    assert (local.crop_size, local.view_size) == (24, 8)
    loss = method(images, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
