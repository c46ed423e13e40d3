"""The backbone's representation: global pooling as He et al., or a pooled layout of every stage."""

from __future__ import annotations

import pytest
import torch

from model_training.learn.backbone import build_backbone


def test_global_pooling_gives_the_last_stage_channels() -> None:
    network = build_backbone("resnet10", width=4).eval()
    vectors = network(torch.randn(3, 1, 16, 16))
    assert network.representation_dim == 32
    assert vectors.shape == (3, 32)


def test_pooled_layout_of_every_stage_is_unit_length_per_stage() -> None:
    network = build_backbone("resnet10", width=4, pooling_grid=3, pooled_stages="all").eval()
    with torch.no_grad():
        vectors = network(torch.randn(5, 1, 16, 16))
    stage_dims = [c * 9 for c in (4, 8, 16, 32)]
    assert network.representation_dim == sum(stage_dims) == vectors.shape[1]
    assert vectors.norm(dim=1) == pytest.approx(torch.ones(5), abs=1e-5)
    # Each stage's block has the same weight: length 1/2 of the four.
    for block in vectors.split(stage_dims, dim=1):
        assert block.norm(dim=1) == pytest.approx(torch.full((5,), 0.5), abs=1e-5)


def test_pooled_layout_tells_apart_what_global_pooling_cannot() -> None:
    # The same blob left or right of the centre: a 2x2 grid sees where it is.
    left, right = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    left[..., 6:10, 2:6] = 1.0
    right[..., 6:10, 10:14] = 1.0
    images = torch.cat([left, right, right.flip(-1)])  # a blob on a flat sky: shift-equivariant
    torch.manual_seed(0)
    layout = build_backbone("resnet10", width=4, pooling_grid=2, pooled_stages="all").eval()
    pooled = build_backbone("resnet10", width=4, pooled_stages="all").eval()
    with torch.no_grad():
        a, b, _ = layout(images)
        c, d, _ = pooled(images)
    assert torch.allclose(c, d, atol=1e-5)  # global pooling: same features, same vector
    assert not torch.allclose(a, b, atol=1e-3)


def test_unknown_pooled_stages_is_an_error() -> None:
    with pytest.raises(ValueError, match="pooled_stages"):
        build_backbone("resnet10", width=4, pooled_stages="first")


def test_polar_network_ignores_rotations_by_its_angle_step() -> None:
    # 32 angles: a quarter turn is a cyclic shift by 8 columns, which every stride-2
    # stage (32, 16, 8, 4 columns) follows exactly, and the pooling over all
    # angles forgets; no dihedral averaging is needed for it.
    torch.manual_seed(0)
    net = build_backbone("resnet10", width=8, pooling_grid=2, pooled_stages="all", polar_radii=16)
    net.eval()
    for module in net.modules():  # non-zero residual branches, so every stage counts
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    images = torch.randn(3, 1, 32, 32)
    turned = torch.rot90(images, 1, dims=(-2, -1))
    with torch.no_grad():
        original, rotated = net(images), net(turned)
    assert net.representation_dim == (8 + 16 + 32 + 64) * 2
    assert torch.allclose(original, rotated, atol=1e-4)
    assert not torch.allclose(original[0], original[1], atol=1e-2)


def test_angular_harmonics_keep_the_invariance() -> None:
    # Amplitudes of the angular harmonics are unchanged by a quarter turn (a
    # cyclic shift of the angles by a whole number of columns at every stage).
    torch.manual_seed(0)
    net = build_backbone(
        "resnet10", width=8, pooling_grid=2, pooled_stages="all", polar_radii=16, polar_harmonics=3
    )
    net.eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    # Harmonics 1-3 where a stage has the angles for them (32, 16, 8, 4 angles).
    assert net.representation_dim == (8 * 4 + 16 * 4 + 32 * 4 + 64 * 3) * 2
    images = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        original = net(images)
        rotated = net(torch.rot90(images, 1, dims=(-2, -1)))
    assert original.shape == (3, net.representation_dim)
    assert torch.allclose(original, rotated, atol=1e-4)
    assert not torch.allclose(original[0], original[1], atol=1e-2)
