"""The convolutional network that turns a one-channel cut-out into a representation.

A residual network (He et al. 2016, "Deep Residual Learning for Image
Recognition", table 1) with the change the paper describes: the stem's
striding is removed. ImageNet's ResNet reduces a 224-pixel input by 4 before
the first residual stage (a 7x7 stride-2 convolution and a stride-2 max-pool);
on a 48-pixel crop that would leave 12 pixels for the first stage and a
2-pixel map for the last. Here the stem is a single 3x3 stride-1 convolution
without max-pool, so the four stages see 48, 24, 12 and 6 pixels.

Written with plain torch because torchvision is not available here; the
blocks follow the paper's table 1 (bottleneck for ResNet-50, basic for
ResNet-18) with torchvision's conventions (stride on the 3x3 convolution,
"ResNet v1.5"), plus a ``width`` knob so that the CPU preset can use a
narrower network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

__all__ = [
    "ARCHITECTURES",
    "POOLED_STAGES",
    "BasicBlock",
    "Bottleneck",
    "PolarSampling",
    "ResNet",
    "build_backbone",
]

POOLED_STAGES = ("last", "all")
"""Which residual stages the representation is pooled from."""


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class PolarSampling(nn.Module):
    """Resample images ``(N, C, S, S)`` on a polar grid about their centre: ``(N, C, R, 2R)``.

    Rows are ``R`` radii out to the image's half-width, columns ``2R``
    position angles. A rotation of the image about its centre is a cyclic
    shift of the columns, which convolutions that wrap around in angle
    (`_PolarConv2d`) follow, and averaging over all angles at the end
    forgets: the network is then rotation-invariant by construction (exactly
    for turns by a multiple of its coarsest angle step, nearly in between),
    where a network on the image grid has to learn it.

    With ``inner`` > 0 the radii are spaced logarithmically from ``inner``
    (a fraction of the half-width) to the half-width, a log-polar grid: a
    zoom about the centre is then a shift along the radii, which the
    convolutions follow and pooling over all radii forgets (up to the
    grid's ends and the beam, which does not zoom with the source).
    """

    def __init__(self, n_radii: int, inner: float = 0.0) -> None:
        super().__init__()
        if not 0 <= inner < 1:
            raise ValueError(f"polar inner radius must be in [0, 1), got {inner}")
        if inner > 0:
            radius = inner ** (1 - torch.arange(n_radii) / (n_radii - 1))
        else:
            radius = (torch.arange(n_radii) + 0.5) / n_radii
        angle = torch.arange(2 * n_radii) * (torch.pi / n_radii)
        grid = torch.stack(
            [radius[:, None] * torch.cos(angle), radius[:, None] * torch.sin(angle)], -1
        )
        self.register_buffer("grid", grid[None], persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """Sample the images bilinearly at the grid's points."""
        grid = self.grid.to(images.dtype).expand(len(images), -1, -1, -1)
        return functional.grid_sample(images, grid, mode="bilinear", align_corners=False)


class _PolarConv2d(nn.Conv2d):
    """A 3x3 convolution on a polar grid: periodic in angle (columns), zero-padded in radius."""

    def forward(self, x: Tensor) -> Tensor:
        """Pad (wrapping the angles), then convolve without padding."""
        x = functional.pad(x, (1, 1, 0, 0), mode="circular")
        x = functional.pad(x, (0, 0, 1, 1))
        return functional.conv2d(
            x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The normalisation whose scale starts at zero (see `ResNet`)."""
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a shortcut (ResNet-50/101)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = _conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = _conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The normalisation whose scale starts at zero (see `ResNet`)."""
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(_conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


@dataclass(frozen=True)
class Architecture:
    """Block type and number of blocks per stage of a named residual network."""

    block: type[BasicBlock] | type[Bottleneck]
    blocks_per_stage: tuple[int, ...]


ARCHITECTURES: dict[str, Architecture] = {
    "resnet10": Architecture(BasicBlock, (1, 1, 1, 1)),
    "resnet18": Architecture(BasicBlock, (2, 2, 2, 2)),
    "resnet34": Architecture(BasicBlock, (3, 4, 6, 3)),
    "resnet50": Architecture(Bottleneck, (3, 4, 6, 3)),
    "resnet101": Architecture(Bottleneck, (3, 4, 23, 3)),
}
"""He et al. (2016) table 1, plus ResNet-10 (one block per stage) for CPU demos."""


class ResNet(nn.Module):
    """Residual network without stem striding; returns the pooled representation.

    Parameters
    ----------
    block
        `BasicBlock` or `Bottleneck`.
    blocks_per_stage
        Number of blocks in each stage; stage ``i`` has ``width * 2**i``
        channels before the block's expansion and halves the map from stage 2 on.
    width
        Channels of the stem and the first stage (64 in He et al.).
    in_channels
        Input channels: 1 for a cut-out of one map.
    pooling_grid
        Side of the grid each pooled stage is average-pooled to: 1 is the
        global average pooling of He et al. (the paper's 2048-d vector).
    pooled_stages
        ``last`` pools the last stage only (He et al.); ``all`` pools every
        stage and concatenates them.
    polar_radii, polar_inner
        The polar grid the image is resampled on (`PolarSampling`), or 0.
    polar_harmonics
        On a polar grid, besides each feature's mean over all angles, the
        amplitudes of its angular harmonics 1 to this number (as far as the
        stage's angles allow), in each radial bin: a rotation shifts the
        angles and leaves the amplitudes, so the network stays invariant
        while keeping how a feature is arranged around the centre (two
        opposite lobes, three arms), which the mean forgets.

    Notes
    -----
    The scale of the last normalisation in every residual branch starts at
    zero, so that each block starts as the identity (Goyal et al. 2017,
    section 5.1), which SimCLR's large-batch training relies on.

    With a grid larger than 1 or several stages, the representation keeps
    where on the cut-out a feature lies and the early stages' small-scale
    features, which global pooling of the last stage averages away. Cut-outs
    are centred on the source, so the place relative to the centre means the
    same in every image; and repeated observations of a source keep its
    orientation on the sky. On the demo archive that layout carries most of
    what tells sources apart (see `model_training.learn.presets.CPU`). Each
    stage's block is L2-normalised before concatenation, so that no stage
    outweighs the others by its number of channels or its activation scale,
    and the whole is scaled to unit length.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks_per_stage: Sequence[int],
        width: int = 64,
        in_channels: int = 1,
        pooling_grid: int = 1,
        pooled_stages: str = "last",
        polar_radii: int = 0,
        polar_inner: float = 0.0,
        polar_harmonics: int = 0,
    ) -> None:
        super().__init__()
        if pooled_stages not in POOLED_STAGES:
            raise ValueError(f"pooled_stages must be one of {POOLED_STAGES}, got {pooled_stages!r}")
        if pooling_grid < 1:
            raise ValueError(f"pooling_grid must be at least 1, got {pooling_grid}")
        self.stem = nn.Sequential(
            _conv3x3(in_channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        stage_channels: list[int] = []
        channels_in = width
        for index, n_blocks in enumerate(blocks_per_stage):
            channels = width * 2**index
            stride = 1 if index == 0 else 2
            blocks: list[nn.Module] = []
            for block_index in range(n_blocks):
                blocks.append(block(channels_in, channels, stride if block_index == 0 else 1))
                channels_in = channels * block.expansion
            stages.append(nn.Sequential(*blocks))
            stage_channels.append(channels_in)
        self.stages = nn.Sequential(*stages)
        self.polar = PolarSampling(polar_radii, polar_inner) if polar_radii else None
        if self.polar is None:
            self.pool = nn.AdaptiveAvgPool2d(pooling_grid)
            cells = pooling_grid**2
        else:
            self.pool = nn.AdaptiveAvgPool2d((pooling_grid, 1))
            cells = pooling_grid
            for module in self.modules():
                if isinstance(module, nn.Conv2d) and module.padding == (1, 1):
                    module.__class__ = _PolarConv2d
        self.pooling_grid = pooling_grid
        self.pooled_stages = pooled_stages
        self.harmonics = [0] * len(stage_channels)
        if self.polar is not None and polar_harmonics > 0:
            # Angles per stage: 2R on the stem and the first stage, halved by each later one.
            angles = [2 * polar_radii // 2**index for index in range(len(stage_channels))]
            self.harmonics = [min(polar_harmonics, count // 2) for count in angles]
        pooled = [
            channels * (1 + harmonics)
            for channels, harmonics in zip(stage_channels, self.harmonics, strict=True)
        ]
        if pooled_stages == "last":
            pooled = pooled[-1:]
        self.representation_dim = sum(pooled) * cells
        self._initialise()

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, BasicBlock | Bottleneck):
                nn.init.zeros_(module.last_norm.weight)

    def forward(self, images: Tensor) -> Tensor:
        """Map images ``(N, C, H, W)`` of any size to representations ``(N, D)``."""
        if self.polar is not None:
            images = self.polar(images)
        features = self.stem(images)
        if self.pooling_grid == 1 and self.pooled_stages == "last":
            return torch.flatten(self.pool(self.stages(features)), 1)
        blocks = []
        for index, stage in enumerate(self.stages):
            features = stage(features)
            if self.pooled_stages == "all" or index == len(self.stages) - 1:
                pooled = self._pool(features, self.harmonics[index])
                blocks.append(functional.normalize(pooled, dim=1))
        return torch.cat(blocks, 1) / len(blocks) ** 0.5

    def _pool(self, features: Tensor, harmonics: int) -> Tensor:
        """Pool a stage's features ``(N, C, H, W)``: the grid's means, then harmonics."""
        means = torch.flatten(self.pool(features), 1)
        if not harmonics:
            return means
        radial = functional.adaptive_avg_pool2d(features, (self.pooling_grid, features.shape[-1]))
        spectrum = torch.fft.rfft(radial.float(), dim=-1)[..., 1 : harmonics + 1]
        # |c|, kept differentiable where a harmonic vanishes.
        amplitude = (spectrum.real**2 + spectrum.imag**2 + 1e-12).sqrt() / features.shape[-1]
        return torch.cat([means, torch.flatten(amplitude.to(means.dtype), 1)], 1)


def build_backbone(
    name: str,
    width: int = 64,
    in_channels: int = 1,
    *,
    pooling_grid: int = 1,
    pooled_stages: str = "last",
    polar_radii: int = 0,
    polar_inner: float = 0.0,
    polar_harmonics: int = 0,
) -> ResNet:
    """Build a named residual network with the stem striding removed.

    Parameters
    ----------
    name
        A key of `ARCHITECTURES`, e.g. ``resnet50``.
    width
        Channels of the first stage (64 is the standard width).
    in_channels
        Input channels.
    pooling_grid, pooled_stages
        How the representation is pooled (see `ResNet`); the defaults are
        He et al.'s global average pooling of the last stage.
    polar_radii
        0 for the usual image grid; else the network sees the image
        resampled on a polar grid of this many radii (`PolarSampling`).
    polar_inner
        Innermost radius of a logarithmic polar grid, or 0 for even radii.
    polar_harmonics
        Angular harmonics pooled besides the mean on a polar grid (`ResNet`).

    Returns
    -------
    ResNet
        The network; ``representation_dim`` is 2048 for ``resnet50`` at width 64.
    """
    try:
        architecture = ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise ValueError(f"unknown backbone {name!r}; known: {known}") from None
    return ResNet(
        architecture.block,
        architecture.blocks_per_stage,
        width,
        in_channels,
        pooling_grid=pooling_grid,
        pooled_stages=pooled_stages,
        polar_radii=polar_radii,
        polar_inner=polar_inner,
        polar_harmonics=polar_harmonics,
    )
