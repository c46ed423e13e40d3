"""Whitening of the served vectors: what it fits, that invariance stays exact, old models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model_training.evaluate.stage import evaluate_network
from model_training.learn.checkpoints import load_network, save_network
from model_training.learn.image_set import SourceLabels
from model_training.learn.inference import compute_vectors, fit_whitening
from model_training.learn.morphology import dihedral_views
from model_training.learn.presets import CPU, TrainingConfig
from model_training.learn.simclr import build_method
from model_training.learn.whitening import Whitening
from tests.toy_archive import TINY_CONFIG, toy_cutouts

WHITENED = TINY_CONFIG.replace(embed_group="d4", embed_input="centre", embed_whitening=0.1)


def _correlated(n: int = 2000, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[3.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.5, 0.2]])
    return torch.randn(n, 3, generator=generator) @ mixing + torch.tensor([5.0, -2.0, 1.0])


def test_full_whitening_gives_zero_mean_and_equal_variances() -> None:
    vectors = _correlated()
    whitening = Whitening(3)
    whitening.fit(vectors, shrinkage=0.0)
    white = whitening(vectors)
    assert white.mean(0).abs().max() < 1e-4
    covariance = torch.cov(white.T)
    assert torch.allclose(covariance, covariance[0, 0] * torch.eye(3), atol=1e-3)


def test_full_shrinkage_only_centres() -> None:
    vectors = _correlated()
    whitening = Whitening(3)
    whitening.fit(vectors, shrinkage=1.0)
    assert torch.allclose(whitening.matrix, torch.eye(3), atol=1e-5)
    assert torch.allclose(whitening(vectors), vectors - vectors.mean(0), atol=1e-4)
    with pytest.raises(ValueError):
        whitening.fit(vectors, shrinkage=1.5)


def test_unfitted_whitening_is_the_identity() -> None:
    vectors = _correlated(10)
    assert torch.equal(Whitening(3)(vectors), vectors)


def _fitted_method(seed: int = 3):
    cutouts, _, _ = toy_cutouts(6, 2, seed=seed)
    torch.manual_seed(0)
    method = build_method(WHITENED)
    fit_whitening(method, cutouts, WHITENED)
    return method, torch.from_numpy(cutouts)


def test_whitened_embedding_keeps_the_group_exact() -> None:
    method, images = _fitted_method()
    dim = method.whitening.matrix.shape[0]
    assert not torch.allclose(method.whitening.matrix, torch.eye(dim))
    vectors = compute_vectors(method, images, WHITENED)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(len(vectors)), atol=1e-5)
    for view in dihedral_views(images)[1:]:
        assert (compute_vectors(method, view, WHITENED) * vectors).sum(1).min() >= 0.9999
    # The whitening changed the ranking's vectors, and can be switched off.
    plain = compute_vectors(method, images, WHITENED, whiten=False)
    assert (plain * vectors).sum(1).min() < 0.99


def test_whitening_is_stored_with_the_weights(tmp_path: Path) -> None:
    # An upload embedded by the loaded model gets the vector the embedding stage stored.
    method, images = _fitted_method()
    stored = compute_vectors(method, images, WHITENED)
    save_network(tmp_path / "model.pt", method, WHITENED)
    loaded, config = load_network(tmp_path / "model.pt")
    assert config.embed_whitening == 0.1
    assert torch.allclose(compute_vectors(loaded, images[2:3], config)[0], stored[2], atol=1e-5)


def test_a_model_stored_before_whitening_embeds_as_it_did(tmp_path: Path) -> None:
    # A model file written without the keys of whitening and angular harmonics
    # (and without the buffers) loads with neither and gives exactly the
    # vectors it gave before.
    stored = CPU.to_dict()
    del stored["embed_whitening"], stored["polar_harmonics"]
    old = TrainingConfig.from_dict(stored)
    assert old.embed_whitening is None and old.polar_harmonics == 0
    config = TINY_CONFIG.replace(
        embed_group="d4", embed_input="centre", polar_radii=8, pooled_stages="all"
    )
    torch.manual_seed(0)
    method = build_method(config)
    assert method.whitening is None
    state = method.state_dict()
    assert not any(name.startswith("whitening") for name in state)
    saved = config.to_dict()
    del saved["embed_whitening"], saved["polar_harmonics"]
    torch.save({"config": saved, "state_dict": state}, tmp_path / "old.pt")
    loaded, loaded_config = load_network(tmp_path / "old.pt")
    cutouts, _, _ = toy_cutouts(4, 1, seed=5)
    before = compute_vectors(method, cutouts, config)
    assert torch.equal(compute_vectors(loaded, cutouts, loaded_config), before)
    fit_whitening(loaded, cutouts, loaded_config)  # nothing to fit: no change
    assert torch.equal(compute_vectors(loaded, cutouts, loaded_config), before)


def test_evaluation_scores_a_whitened_model_before_its_whitening_too() -> None:
    cutouts, source, classes = toy_cutouts(6, 2, seed=3)
    torch.manual_seed(0)
    method = build_method(WHITENED)
    fit_whitening(method, cutouts, WHITENED)
    labels = SourceLabels(source, classes, "truth")
    rows = evaluate_network(method, WHITENED, cutouts, labels, baselines=False)
    names = [row.name.strip() for row in rows]
    assert "without whitening" in names
    plain = rows[names.index("without whitening")]
    assert plain.role == "variant"
    assert rows[0].morphology is not None and plain.morphology is not None
