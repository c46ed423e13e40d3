"""Morphology scores on hand-made cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_training.learn.inference import compute_vectors, group_views, zoom_views
from model_training.learn.morphology import (
    ZOOMED_COPY,
    class_scores,
    copy_scores,
    dihedral_views,
    morphology_score,
    pairwise_similarity,
    peak_snr,
)
from model_training.learn.presets import CPU, TrainingConfig
from model_training.learn.retrieval import retrieval_scores
from model_training.learn.simclr import build_method
from tests.toy_archive import TINY_CONFIG, toy_cutouts


def test_class_scores_known_answer() -> None:
    # Two classes on two axes: a, a, b with a third "a" that looks like b.
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    classes = np.array(["a", "a", "b", "a"])
    scores = class_scores(vectors, classes, np.array([True, False, False, False]), k=1)
    # Nearest: 0->1 (a, hit), 1->0 (hit), 2->3 (miss), 3->2 (miss).
    assert scores.precision_at_10 == pytest.approx(0.5)
    # AP: query 0 ranks 1, 3, 2 -> hits at 1, 2: 1; query 1: 0, 3, 2 -> 1;
    # query 2 (class b, no other b): no relevant image, left out;
    # query 3: 2, 1, 0 -> hits at 2, 3: (1/2 + 2/3) / 2.
    assert scores.mean_average_precision == pytest.approx((1 + 1 + (0.5 + 2 / 3) / 2) / 3)
    assert scores.per_class["a"][0] == pytest.approx(2 / 3)
    assert scores.per_class["b"][0] == 0.0
    assert scores.high_snr_precision_at_10 == 1.0
    assert scores.n_high_snr == 1


def test_copy_scores_known_answer() -> None:
    originals = torch.eye(3)
    copies = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    scores = copy_scores(originals, copies, k=1)
    assert scores.recall_at_10 == pytest.approx(2 / 3)
    assert scores.mean_cosine == pytest.approx(2 / 3)


def test_dihedral_views_are_the_eight_symmetries() -> None:
    image = torch.arange(16.0).view(4, 4)
    views = dihedral_views(image)
    assert torch.equal(views[0], image)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    # The group is closed: every view of a view is one of the eight.
    flat = {tuple(v.flatten().tolist()) for v in views}
    assert all(tuple(w.flatten().tolist()) in flat for v in views for w in dihedral_views(v))


def _aligned(images: torch.Tensor) -> torch.Tensor:
    return torch.stack([v.flatten(1) for v in dihedral_views(images)], dim=1)


def test_rotation_aligned_baseline_matches_a_turned_image() -> None:
    generator = torch.Generator().manual_seed(0)
    gallery = torch.rand(6, 8, 8, generator=generator)
    query = torch.rot90(torch.flip(gallery[4], dims=(-1,)), 1, dims=(-2, -1))[None]
    unit = torch.nn.functional.normalize
    aligned = pairwise_similarity(unit(_aligned(query), dim=-1), unit(_aligned(gallery), dim=-1))
    assert aligned.argmax().item() == 4
    assert aligned[0, 4].item() == pytest.approx(1.0, abs=1e-6)
    # The best over the group is the best of the 8 plain cosines, by brute force.
    for j in range(6):
        best = max(
            float(unit(v.flatten(), dim=0) @ unit(gallery[j].flatten(), dim=0))
            for v in dihedral_views(query[0])
        )
        assert aligned[0, j].item() == pytest.approx(best, abs=1e-6)
    # Plain pixels do not find it, and the copy score agrees.
    plain = unit(query.flatten(1), dim=1) @ unit(gallery.flatten(1), dim=1).T
    assert plain[0, 4] < 0.999
    copies = _aligned(torch.stack([torch.rot90(g, 3, dims=(-2, -1)) for g in gallery]))
    assert copy_scores(_aligned(gallery), copies).mean_cosine == pytest.approx(1.0, abs=1e-6)
    sources = np.array([0, 1, 2, 3, 4, 5, 4])
    both = torch.cat([_aligned(gallery), _aligned(query)])
    assert (
        retrieval_scores(both, sources).recall_at_1 == 1.0
    )  # gallery[4] and its turned copy find each other


def test_peak_snr_of_a_source_in_noise() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(0.0, 2.0, (2, 64, 64)).astype(np.float32)
    images[0, 32, 32] += 100.0
    snr = peak_snr(images)
    assert snr[0] == pytest.approx(50.0, rel=0.1)
    assert snr[1] < 6


def test_morphology_score_weights() -> None:
    classes = class_scores(torch.eye(2), np.array(["a", "b"]))
    perfect = copy_scores(torch.eye(2), torch.eye(2))
    # No class has a second image: class precision 0, class mAP NaN (counts 0).
    assert morphology_score(classes, perfect, perfect, 1.0) == pytest.approx(0.2 + 0.1 + 0.1)


@pytest.mark.parametrize("group", ["d4", "d8"])
def test_group_pooled_embedding_is_invariant(group: str) -> None:
    cutouts, _, _ = toy_cutouts(4, 1, seed=3)
    config = TINY_CONFIG.replace(embed_group=group, embed_input="centre")
    torch.manual_seed(0)
    method = build_method(config)
    images = torch.from_numpy(cutouts)
    vectors = compute_vectors(method, images, config)
    for view in dihedral_views(images)[1:]:
        cosine = (compute_vectors(method, view, config) * vectors).sum(1)
        assert cosine.min() >= 0.99
    # Without pooling the same network is not invariant.
    plain = compute_vectors(method, images, config, group="none")
    turned = compute_vectors(method, torch.rot90(images, 1, dims=(-2, -1)), config, group="none")
    assert (plain * turned).sum(1).min() < 0.99


def test_one_cutout_pools_like_a_batch() -> None:
    # CurrentModelEmbedder (uploads) embeds one cut-out through compute_vectors.
    cutouts, _, _ = toy_cutouts(2, 1, seed=4)
    config = TINY_CONFIG.replace(embed_group="d8")
    torch.manual_seed(0)
    method = build_method(config)
    stored = compute_vectors(method, cutouts, config)
    one = compute_vectors(method, cutouts[1:2], config)  # one cut-out, as an upload
    assert torch.allclose(stored[1], one[0], atol=1e-5)
    # A 45-degree turn is nearly free under D8 (the same up to interpolation).
    turned = group_views(torch.from_numpy(cutouts).unsqueeze(1), "d8")[8].squeeze(1)
    assert (compute_vectors(method, turned, config) * stored).sum(1).min() >= 0.99


PYRAMID = (2**0.5, 1.0, 2**-0.5)


def test_zoom_pyramid_keeps_the_group_exact() -> None:
    # The fill beyond a zoomed-out field is symmetric under D4, so the
    # right-angle rotations and mirrors still give the same vector.
    cutouts, _, _ = toy_cutouts(4, 1, seed=3)
    config = TINY_CONFIG.replace(embed_group="d4", embed_input="centre", embed_zooms=PYRAMID)
    torch.manual_seed(0)
    method = build_method(config)
    images = torch.from_numpy(cutouts)
    vectors = compute_vectors(method, images, config)
    for view in dihedral_views(images)[1:]:
        assert (compute_vectors(method, view, config) * vectors).sum(1).min() >= 0.9999


def test_zoom_pyramid_one_cutout_pools_like_a_batch() -> None:
    # The fill is fixed, not drawn per batch: an upload gets the stored vector.
    cutouts, _, _ = toy_cutouts(2, 1, seed=4)
    config = TINY_CONFIG.replace(embed_group="d4", embed_zooms=PYRAMID, beam_pixels=5.0)
    torch.manual_seed(0)
    method = build_method(config)
    stored = compute_vectors(method, cutouts, config)
    one = compute_vectors(method, cutouts[1:2], config)
    assert torch.allclose(stored[1], one[0], atol=1e-5)


def test_zoom_level_is_the_zoomed_out_copy() -> None:
    # Level 0.5 of an image's pyramid is, inside the original field, the copy
    # zoomed out by 0.5 that the morphology score makes: same resampling,
    # same beam restored; only the noise beyond the field differs.
    cutouts, _, _ = toy_cutouts(3, 1, seed=5)
    images = torch.from_numpy(cutouts).unsqueeze(1)
    level = zoom_views(images, (0.5,), beam_pixels=5.0)[0]
    copy = ZOOMED_COPY(images, torch.Generator().manual_seed(0))
    inner = slice(22, 42)  # the original field is the central 32 pixels
    assert torch.allclose(level[..., inner, inner], copy[..., inner, inner], atol=1e-4)
    assert zoom_views(images, (1.0,), beam_pixels=5.0)[0] is images


def test_renormalised_network_ignores_the_intensity_scale() -> None:
    # A network trained on views normalised to median 0 / std 1 gets its
    # embedded inputs normalised the same way: a zoomed-out copy, whose source
    # fills less of the field, no longer looks faint, and an image scaled in
    # intensity (another flux calibration) gets the same vector.
    cutouts, _, _ = toy_cutouts(3, 1, seed=6)
    config = TINY_CONFIG.replace(
        embed_input="centre", renormalise=True, embed_renormalise=True, embed_zooms=PYRAMID
    )
    torch.manual_seed(0)
    method = build_method(config)
    for module in method.modules():  # offsets, as training leaves them: not scale-free
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.bias.data.normal_()
            module.running_mean.normal_()
    images = torch.from_numpy(cutouts)
    vectors = compute_vectors(method, images, config)
    scaled = compute_vectors(method, 0.3 * images, config)
    assert (scaled * vectors).sum(1).min() >= 0.9999


def test_a_model_stored_before_the_embedded_normalisation_embeds_as_it_did() -> None:
    # Its stored vectors were made without the normalisation: an upload's
    # vector must be made the same way to match them.
    stored = CPU.to_dict()
    del stored["embed_renormalise"]
    assert not TrainingConfig.from_dict(stored).embed_renormalise
    assert CPU.embed_renormalise
