"""The augmentation puts every pixel where the composed affine transform says."""

from __future__ import annotations

import math

import pytest
import torch

from model_training.learn.augment import (
    AffineAugmentation,
    affine_matrices,
    apply_affine,
    beam_blur,
    canonical_zoom,
    gaussian_blur,
    robust_noise,
    source_radius,
)

SIZE = 64
CENTRE = (SIZE - 1) / 2  # pixel-centre coordinate of the image centre


def _without_geometry(**options: object) -> AffineAugmentation:
    """An augmentation that neither scales, shears, turns nor flips, plus ``options``."""
    fixed = {
        "scale_range": (1.0, 1.0),
        "max_shear_deg": 0.0,
        "max_rotation_deg": 0.0,
        "flip": False,
    }
    return AffineAugmentation(**(fixed | options))


def _point_image(row: int, col: int) -> torch.Tensor:
    image = torch.zeros(1, 1, SIZE, SIZE, dtype=torch.float64)
    image[0, 0, row, col] = 1.0
    return image


def _transform(
    image, *, angle=0.0, shear=0.0, scale=1.0, flip=False, offset=(0.0, 0.0), out=SIZE, pixels=None
):
    theta = affine_matrices(
        angle=torch.tensor([angle], dtype=torch.float64),
        shear=torch.tensor([shear], dtype=torch.float64),
        scale=torch.tensor([scale], dtype=torch.float64),
        flip=torch.tensor([flip]),
        offset=torch.tensor([offset], dtype=torch.float64),
        input_size=SIZE,
        crop_size=out,
    )
    return apply_affine(image, theta, pixels or out)[0, 0]


def _expected(row, col, *, angle=0.0, shear=0.0, scale=1.0, flip=False, offset=(0, 0), out=SIZE):
    """Where a cut-out pixel lands: v = R(angle) H(shear) s F (u - c), as documented."""
    x, y = col - CENTRE - offset[0], row - CENTRE - offset[1]
    if flip:
        x = -x
    x, y = scale * x, scale * y
    x = x + math.tan(shear) * y
    x, y = math.cos(angle) * x - math.sin(angle) * y, math.sin(angle) * x + math.cos(angle) * y
    centre_out = (out - 1) / 2
    return y + centre_out, x + centre_out


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    rows, cols = torch.meshgrid(
        torch.arange(image.shape[0], dtype=image.dtype),
        torch.arange(image.shape[1], dtype=image.dtype),
        indexing="ij",
    )
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def test_quarter_turn_moves_a_pixel_exactly() -> None:
    # x along a row (to the right), y down the rows: +90° turns +x into +y.
    result = _transform(_point_image(31, 41), angle=math.pi / 2)
    assert float(result.max()) == pytest.approx(1.0)
    row, col = divmod(int(result.argmax()), SIZE)
    assert (row, col) == (41, 32)
    assert (row, col) == tuple(round(v) for v in _expected(31, 41, angle=math.pi / 2))


@pytest.mark.parametrize(
    "params",
    [
        {"angle": math.radians(30)},
        {"angle": math.radians(-127), "scale": 1.5},
        {"angle": math.radians(200), "shear": math.radians(10), "scale": 1.2, "flip": True},
        {"angle": math.radians(73), "offset": (5.0, -3.0), "out": 48},
        {"shear": math.radians(-10), "scale": 2.0, "offset": (7.5, -6.0), "out": 48},
    ],
)
def test_composed_transform_lands_where_expected(params: dict) -> None:
    row, col = 27, 38
    result = _transform(_point_image(row, col), **params)
    assert float(result.sum()) > 0.5  # the pixel is inside the view
    expected = _expected(row, col, **params)
    assert _centroid(result) == pytest.approx(expected, abs=0.35)


def test_coarser_view_renders_the_same_crop_at_half_resolution() -> None:
    image = torch.zeros(1, 1, SIZE, SIZE, dtype=torch.float64)
    image[0, 0, 26:28, 38:40] = 1.0  # a 2x2 block: one pixel at half resolution
    params = {"angle": math.pi / 2, "offset": (4.0, -4.0), "out": 48}
    half = _transform(image, pixels=24, **params)
    full_row, full_col = _expected(26.5, 38.5, **params)
    # Pixel centres of the coarse view: coarse index i covers fine pixels 2i, 2i + 1.
    assert _centroid(half) == pytest.approx(((full_row - 0.5) / 2, (full_col - 0.5) / 2), abs=0.05)
    assert float(half.sum()) == pytest.approx(1.0)


def test_flip_mirrors_along_rows() -> None:
    result = _transform(_point_image(20, 10), flip=True)
    row, col = divmod(int(result.argmax()), SIZE)
    assert (row, col) == (20, SIZE - 1 - 10)


def test_zoom_out_fills_with_the_median_and_noise_fill_matches_background() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 1, SIZE, SIZE, generator=generator)
    zero = AffineAugmentation(crop_size=48, scale_range=(0.4, 0.4), fill="zero")
    views = zero(images, torch.Generator().manual_seed(1))
    assert views.shape == (8, 1, 48, 48)
    corner = views[:, :, :4, :4]
    assert float(corner.abs().max()) == 0.0  # beyond the cut-out: 0, the median
    noisy = AffineAugmentation(crop_size=48, scale_range=(0.4, 0.4), fill="noise")
    corner = noisy(images, torch.Generator().manual_seed(1))[:, :, :4, :4]
    assert float(corner.std()) == pytest.approx(1.0, rel=0.25)


def test_views_are_reproducible_from_the_generator() -> None:
    images = torch.randn(4, 1, SIZE, SIZE)
    augmentation = AffineAugmentation()
    first = augmentation(images, torch.Generator().manual_seed(7))
    again = augmentation(images, torch.Generator().manual_seed(7))
    other = augmentation(images, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_blur_spreads_a_point_by_its_own_sigma() -> None:
    images = torch.zeros(3, 1, 33, 33, dtype=torch.float64)
    images[:, 0, 16, 16] = 1.0
    blurred = gaussian_blur(images, torch.tensor([0.0, 1.0, 2.0]), radius=8)
    assert torch.allclose(blurred[0], images[0], atol=1e-12)
    rows = torch.arange(33, dtype=torch.float64) - 16
    for index, sigma in ((1, 1.0), (2, 2.0)):
        profile = blurred[index, 0].sum(1)
        assert float(profile.sum()) == pytest.approx(1.0, rel=1e-4)
        assert float((profile * rows**2).sum()) == pytest.approx(sigma**2, rel=0.02)


@pytest.mark.parametrize("scale_target", [0.0, 8.0])
def test_coarse_identity_view_is_what_the_embedding_stage_feeds_the_network(
    scale_target: float,
) -> None:
    # Training views and embedding inputs must be the same kind of image: the
    # crop zoomed to the source's canonical size (when asked) and averaged
    # down by area, not a sparse sample of the fine pixels.
    from model_training.learn.inference import network_input
    from model_training.learn.presets import CPU

    images = torch.randn(4, 1, SIZE, SIZE) + 10 * _blob(3.0)
    identity = _without_geometry(
        crop_size=48, view_size=16, max_offset=0.0, scale_target=scale_target, renormalise=True
    )
    views = identity(images, torch.Generator().manual_seed(0))
    config = CPU.replace(crop_size=48, view_size=16, scale_target=scale_target)
    expected = network_input(images, config, "centre")
    assert views.shape == expected.shape == (4, 1, 16, 16)
    assert torch.allclose(views, expected, atol=1e-5)


def test_offset_stays_within_max_offset() -> None:
    shifted = _without_geometry(crop_size=48, max_offset=3.0)
    images = _point_image(32, 32).float().repeat(64, 1, 1, 1)
    views = shifted(images, torch.Generator().manual_seed(3))
    for view in views[:, 0]:
        row, col = _centroid(view)
        assert abs(row - (32 - 8)) <= 3.01 and abs(col - (32 - 8)) <= 3.01


def test_observation_like_views_are_normalised_and_shallower() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(32, 1, SIZE, SIZE, generator=generator)
    images = noise + 100 * _point_image(32, 32).float()  # peak S/N 100
    observed = _without_geometry(
        crop_size=48,
        max_offset=0.0,
        max_blur=1.0,
        blur_axis_ratio=2.0,
        snr_min=3.0,
        renormalise=True,
    )
    views = observed(images, torch.Generator().manual_seed(1))
    flat = views.flatten(1)
    assert flat.median(1).values == pytest.approx(torch.zeros(32), abs=1e-5)
    assert flat.std(1) == pytest.approx(torch.ones(32), abs=1e-5)
    snr = flat.amax(1) / robust_noise(views).flatten()
    assert float(snr.max()) < 100 and float(snr.min()) > 1.5
    assert float(snr.median()) < 40  # redrawn log-uniformly between 3 and 100


def test_beam_blur_has_the_drawn_axes_and_angle() -> None:
    images = torch.zeros(1, 1, 41, 41, dtype=torch.float64)
    images[0, 0, 20, 20] = 1.0
    angle = torch.tensor([math.radians(30)], dtype=torch.float64)
    blurred = beam_blur(images, torch.tensor([3.0]), torch.tensor([1.5]), angle, 3.0)[0, 0]
    offsets = torch.arange(41, dtype=torch.float64) - 20
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    along = math.cos(angle) * x + math.sin(angle) * y
    across = -math.sin(angle) * x + math.cos(angle) * y
    assert float(blurred.sum()) == pytest.approx(1.0)
    assert float((blurred * along**2).sum()) == pytest.approx(9.0, rel=0.1)
    assert float((blurred * across**2).sum()) == pytest.approx(2.25, rel=0.05)
    assert abs(float((blurred * along * across).sum())) < 0.05  # square kernel edge


@pytest.mark.parametrize("scale", [0.3, 0.5, 1.0])
def test_zoomed_out_view_keeps_the_restoring_beam(scale: float) -> None:
    # A source at the resolution limit (a 5-pixel beam) zoomed out by `scale` would shrink
    # with its beam; a coarser observation shows it at the same 5 pixels per beam.
    sigma = 5.0 / (2 * math.sqrt(2 * math.log(2)))
    offsets = torch.arange(SIZE, dtype=torch.float32) - SIZE // 2
    blob = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    augmentation = _without_geometry(scale_range=(scale, scale), beam_pixels=5.0)
    view = augmentation(blob[None, None], torch.Generator().manual_seed(0))[0, 0]
    profile = view.sum(0) / view.sum()
    rows = torch.arange(view.shape[1], dtype=torch.float32)
    centre = float((profile * rows).sum())
    width = math.sqrt(float((profile * (rows - centre) ** 2).sum()))
    assert width == pytest.approx(sigma, rel=0.1)


def _blob(sigma: float) -> torch.Tensor:
    """A round Gaussian of unit peak on the cut-out's centre, ``(1, 1, SIZE, SIZE)``."""
    offsets = torch.arange(SIZE, dtype=torch.float32) - CENTRE
    return torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))[None, None]


def test_source_radius_is_the_rms_radius_of_the_emission() -> None:
    # A round Gaussian of sigma s has an rms radius of sqrt(2) s about its centre.
    blobs = torch.cat([_blob(2.0), _blob(4.0)])
    assert source_radius(blobs).tolist() == pytest.approx([2 * 2**0.5, 4 * 2**0.5], rel=0.02)
    assert source_radius(torch.zeros(1, 1, SIZE, SIZE)).tolist() == [0.0]


def test_canonical_zoom_brings_sources_to_one_size_within_its_limit() -> None:
    blobs = torch.cat([_blob(2.0), _blob(4.0), _blob(1.0)])
    zoomed = canonical_zoom(blobs, target=4 * 2**0.5, zoom_max=2.0)
    radii = source_radius(zoomed).tolist()
    assert radii[:2] == pytest.approx([4 * 2**0.5] * 2, rel=0.05)
    assert radii[2] == pytest.approx(2 * 2**0.5, rel=0.1), "zoomed by at most 2"


def test_canonical_zoom_commutes_with_rotations_and_mirrors() -> None:
    # The dihedral averaging of the embedding stays exact with the zoom before it.
    images = torch.randn(3, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    images[:, :, 20:26, 22:30] += 8.0
    zoomed = canonical_zoom(images, 8.0, 2.0)
    for transform in (lambda x: torch.rot90(x, 1, (-2, -1)), lambda x: torch.flip(x, (-1,))):
        again = canonical_zoom(transform(images), 8.0, 2.0)
        assert torch.allclose(again, transform(zoomed), atol=1e-4)
