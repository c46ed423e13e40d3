"""The paper's augmentations: random crop, rotation by any angle, shear, scale and flip.

SimCLR (Chen et al. 2020, section 3) learns what stays the same under the
transformations it is shown. For sky images the paper's choice is geometric:
the orientation of a source on the sky and its apparent size carry no
morphological meaning, so each view is an affine transform of the cut-out
with rotation by any angle, shear up to 10 degrees, scale 0.4 to 2.0 (zooming
out, scale below 1, "had a very positive effect") and a reflection, cut to a
48-pixel crop.

The whole batch is transformed on the training device in one
`torch.nn.functional.grid_sample` call: crop, rotation, shear, scale and
flip of each image are composed into one 2x3 matrix, so nothing runs per
image in Python and the interpolation happens once. (kornia's
``RandomAffine`` + ``RandomCrop`` would interpolate twice and draw from the
global random state, which defeats exact resumption of a training run.)

Where a zoomed-out view reaches beyond the cut-out it is filled with 0, the
cut-out's median (ingest normalises every cut-out to median 0 and standard
deviation 1), or with Gaussian noise of the cut-out's robust background
level (``fill="noise"``), so that the network cannot tell a zoomed-out view
by its flat border. The noise fill also covers blanked pixels (the NaN
edge of an image beyond the primary-beam limit, stored as exactly 0): their
outline is the same in both views of an image but differs between
observations of a source, an easy cue for telling images apart that says
nothing about the source.

Two views of one image share its noise realisation, its pixel grid and its
signal-to-noise ratio, while two observations of a source share none of
them. Matching views by their noise texture or their noise level is then an
easy way to win the contrastive task that finds no other observation of the
source. The observation-like options break that: an elliptical Gaussian
blur with a random position angle (a different restoring beam), fresh noise
with the beam's correlation length that redraws the view's peak
signal-to-noise ratio (a different depth), a translation of a few pixels
(a different centring), and the cut-out's own normalisation (median 0,
standard deviation 1) applied to the view, as ingest applies it to every
cut-out, so that the noise level shows in the view as it does in a cut-out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional

__all__ = [
    "AffineAugmentation",
    "affine_matrices",
    "apply_affine",
    "beam_blur",
    "canonical_zoom",
    "normalise_views",
    "robust_noise",
    "source_radius",
]

FILL_MODES = ("zero", "noise")

NOISE_BEAM_SIGMA = 5.0 / (2 * math.sqrt(2 * math.log(2)))
"""Correlation length (Gaussian sigma, cut-out pixels) of the noise a view gets.

Interferometric image noise is correlated over the restoring beam; the ALMA
pipeline (and the demo archive) grids about five pixels per beam, so a
beam's full width at half maximum is about 5 cut-out pixels."""


FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))
"""Ratio of a Gaussian's full width at half maximum to its standard deviation."""


@dataclass(frozen=True)
class AffineAugmentation:
    """Draws random affine views of a batch of cut-outs.

    Parameters
    ----------
    crop_size
        Side of each view in pixels (the paper: 48 from 64-pixel cut-outs).
    scale_range
        Smallest and largest magnification; drawn log-uniformly so that
        zooming out by 2 is as likely as zooming in by 2.
    max_shear_deg
        Largest shear angle (degrees), drawn uniformly in ``±max_shear_deg``.
    max_rotation_deg
        Largest rotation (degrees), drawn uniformly in ``±max_rotation_deg``;
        180 (the paper's choice) is any angle.
    flip
        Reflect half of the views (with rotation by any angle, one mirror
        axis gives every reflection).
    fill
        ``zero`` (the median) or ``noise`` outside the cut-out.
    noise_std
        Largest standard deviation of extra Gaussian noise added to a view, in
        units of the cut-out's robust background noise; each view draws its
        own level uniformly between 0 and this (0: no noise added).
    gain_range
        Smallest and largest factor the view's intensities are multiplied by,
        drawn log-uniformly per view ((1, 1): none).
    max_blur
        Largest Gaussian smoothing (standard deviation along the major axis,
        in crop pixels), drawn uniformly per view (0: none). Repeated
        observations of a source differ in resolution, not only in pixel
        scale; smoothing is also one of SimCLR's own augmentations (Chen et
        al. 2020, appendix A).
    blur_axis_ratio
        Largest ratio of the blur's major to minor axis, drawn uniformly per
        view, with a random position angle: ALMA's restoring beams are
        elliptical, and their orientation differs between observations
        while the source's does not (1: round).
    max_offset
        Largest shift of the crop centre from the cut-out centre, in cut-out
        pixels, per axis; None for anywhere the crop stays inside the
        cut-out. Cut-outs are centred on the brightest pixel, so repeated
        observations of a source differ in centring by a few pixels only.
    snr_min
        When positive, each view's peak signal-to-noise ratio is redrawn
        log-uniformly between this and its own, by adding noise correlated
        over a beam (`NOISE_BEAM_SIGMA`): a shallower observation of the
        same source (0: off).
    renormalise
        Normalise each view to median 0 and standard deviation 1, as ingest
        normalises every cut-out; the gain is then irrelevant.
    beam_pixels
        Full width at half maximum of the images' restoring beam in cut-out
        pixels (ALMA's pipeline grids five pixels per beam), or 0. A view
        zoomed out by ``s < 1`` shrinks the beam with the source; a real
        coarser observation of the same source shows it at the same pixels
        per beam, so the view is smoothed by ``sqrt(1 - s**2)`` beams (in
        quadrature with ``max_blur``'s draw) to restore it. Repeated
        observations differ in pixel scale by up to six times, and without
        this the network never sees a small source at the beam it has.
    scale_target, scale_zoom_max
        When ``scale_target`` is positive, each finished view is zoomed
        (`canonical_zoom`) so that its source's radius becomes about
        ``scale_target`` crop pixels, by at most ``scale_zoom_max`` either
        way: the embedding does the same to every cut-out, so that a
        source's size in pixels matters less than its shape.
    view_size
        Side of the view in pixels; None for ``crop_size``. A smaller value
        renders the same crop at a coarser resolution (48 → 24 halves it),
        which costs the network four times less: the CPU preset's choice.
        The view is rendered at the crop's resolution first and then
        averaged down by area, exactly as the embedding stage resamples a
        cut-out (`model_training.learn.inference.network_input`); sampling the coarse
        grid directly would keep the full pixel noise that the averaging
        removes, and the network would learn on noisier images than it
        embeds.
    """

    crop_size: int = 48
    scale_range: tuple[float, float] = (0.4, 2.0)
    max_shear_deg: float = 10.0
    max_rotation_deg: float = 180.0
    flip: bool = True
    fill: str = "zero"
    noise_std: float = 0.0
    gain_range: tuple[float, float] = (1.0, 1.0)
    max_blur: float = 0.0
    blur_axis_ratio: float = 1.0
    max_offset: float | None = None
    snr_min: float = 0.0
    renormalise: bool = False
    view_size: int | None = None
    beam_pixels: float = 0.0
    scale_target: float = 0.0
    scale_zoom_max: float = 2.0

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale range must satisfy 0 < min <= max, got {self.scale_range}")
        if self.fill not in FILL_MODES:
            raise ValueError(f"fill must be one of {FILL_MODES}, got {self.fill!r}")
        if self.blur_axis_ratio < 1:
            raise ValueError(f"blur axis ratio must be at least 1, got {self.blur_axis_ratio}")

    @property
    def needs_noise(self) -> bool:
        """Whether the views depend on the cut-outs' `robust_noise` (noise fill or depth)."""
        return self.fill == "noise" or self.noise_std > 0 or self.snr_min > 0

    def __call__(
        self,
        images: Tensor,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Return one random view of each image.

        Parameters
        ----------
        images
            Cut-outs ``(N, 1, S, S)`` (or ``(N, S, S)``), on the training device.
        generator
            Source of randomness, on the same device as ``images``.
        noise
            `robust_noise` of ``images`` if already known: the two views of
            a batch share it, and its medians are a fifth of a view's cost.

        Returns
        -------
        Tensor
            Views ``(N, 1, view_size, view_size)``.
        """
        if images.ndim == 3:
            images = images.unsqueeze(1)
        n, _, size, _ = images.shape
        if self.crop_size > size:
            raise ValueError(f"crop of {self.crop_size} pixels from {size}-pixel cut-outs")
        device = images.device
        rand = torch.rand(n, 6, generator=generator, device=device)
        log_low, log_high = math.log(self.scale_range[0]), math.log(self.scale_range[1])
        margin = (size - self.crop_size) / 2
        if self.max_offset is not None:
            margin = min(margin, self.max_offset)
        scale = torch.exp(log_low + rand[:, 2] * (log_high - log_low))
        theta = affine_matrices(
            angle=(2 * rand[:, 0] - 1) * math.radians(self.max_rotation_deg),
            shear=(2 * rand[:, 1] - 1) * math.radians(self.max_shear_deg),
            scale=scale,
            flip=(rand[:, 3] < 0.5) if self.flip else torch.zeros_like(rand[:, 3], dtype=bool),
            offset=(2 * rand[:, 4:6] - 1) * margin,
            input_size=size,
            crop_size=self.crop_size,
        )
        sigma = None
        if self.needs_noise:
            sigma = robust_noise(images) if noise is None else noise
        views = apply_affine(images, theta, self.crop_size, with_coverage=self.fill == "noise")
        if self.fill == "noise":
            views, coverage = views[:, :1], views[:, 1:]
            noise = torch.randn(views.shape, generator=generator, device=device)
            views = views + (1 - coverage) * noise * sigma
        if self.max_blur > 0:
            beam = torch.rand(n, 3, generator=generator, device=device)
            major = beam[:, 0] * self.max_blur
            minor = major / (1 + beam[:, 1] * (self.blur_axis_ratio - 1))
            views = beam_blur(views, major, minor, beam[:, 2] * math.pi, self.max_blur)
        if self.beam_pixels > 0:
            # Gaussians compose: a round blur after the elliptical one is the beam
            # with both axes widened in quadrature, at the cost of two 1-D passes.
            beam_sigma = self.beam_pixels / FWHM_PER_SIGMA
            restore = beam_sigma * (1 - scale.square()).clamp_min(0).sqrt()
            views = gaussian_blur(views, restore, math.ceil(2.5 * beam_sigma))
        if self.snr_min > 0:
            views = views + self._depth_noise(views, sigma, generator)
        if self.noise_std > 0:
            level = torch.rand(n, 1, 1, 1, generator=generator, device=device)
            noise = torch.randn(views.shape, generator=generator, device=device)
            views = views + self.noise_std * level * sigma * noise
        if self.scale_target > 0:
            views = canonical_zoom(views, self.scale_target, self.scale_zoom_max)
        if self.gain_range != (1.0, 1.0):
            log_gain = torch.rand(n, 1, 1, 1, generator=generator, device=device)
            low, high = math.log(self.gain_range[0]), math.log(self.gain_range[1])
            views = views * torch.exp(low + log_gain * (high - low))
        if self.renormalise:
            views = normalise_views(views)
        view_size = self.view_size or self.crop_size
        if view_size != self.crop_size:
            views = functional.interpolate(views, size=(view_size, view_size), mode="area")
        return views

    def _depth_noise(
        self, views: Tensor, sigma: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """Beam-correlated noise that brings each view's peak S/N to a fresh, lower draw."""
        n = views.shape[0]
        peak = views.amax((1, 2, 3), keepdim=True)
        own = (peak / sigma).clamp_min(self.snr_min)
        draw = torch.rand(n, 1, 1, 1, generator=generator, device=views.device)
        low = math.log(self.snr_min)
        target = torch.exp(low + draw * (own.log() - low))
        extra = ((peak / target) ** 2 - sigma**2).clamp_min(0).sqrt()
        white = torch.randn(views.shape, generator=generator, device=views.device)
        radius = math.ceil(3 * NOISE_BEAM_SIGMA)
        beam = torch.full((n,), NOISE_BEAM_SIGMA, device=views.device)
        correlated = gaussian_blur(white, beam, radius)
        correlated = correlated / correlated.flatten(1).std(1).view(-1, 1, 1, 1)
        return extra * correlated


def affine_matrices(
    angle: Tensor,
    shear: Tensor,
    scale: Tensor,
    flip: Tensor,
    offset: Tensor,
    input_size: int,
    crop_size: int,
) -> Tensor:
    """Compose crop, flip, shear, rotation and scale into `affine_grid` matrices.

    The transform maps a cut-out pixel ``u`` (relative to the crop centre
    ``c``, in pixels) to the view pixel ``v = R(angle) H(shear) s F u``: first
    the optional reflection ``F`` (x → −x), then magnification ``s``, a shear
    along x by ``tan(shear)``, and a rotation by ``angle`` that turns the +x
    axis (along a row) towards the +y axis (down the rows), on the pixel grid.
    `torch.nn.functional.affine_grid`
    needs the inverse, from normalised view coordinates to normalised cut-out
    coordinates (``align_corners=False``: ±1 are the outer pixel edges).

    Parameters
    ----------
    angle, shear
        Radians, shape ``(N,)``.
    scale
        Magnification (> 1 zooms in), shape ``(N,)``.
    flip
        Booleans, shape ``(N,)``.
    offset
        Crop centre relative to the cut-out centre, in pixels ``(N, 2)`` as (x, y).
    input_size, crop_size
        Side of the cut-outs and of the crop (at scale 1), in cut-out pixels.
        The matrices do not depend on how many pixels the view is rendered
        with (`apply_affine`'s ``output_size``).

    Returns
    -------
    Tensor
        ``theta`` of shape ``(N, 2, 3)``.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward linear map A = R H s F, built on the (x, y) pixel axes.
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear_matrix = torch.zeros_like(rotation)
    shear_matrix[:, 0, 0] = 1
    shear_matrix[:, 0, 1] = torch.tan(shear)
    shear_matrix[:, 1, 1] = 1
    mirror = torch.ones_like(angle)
    mirror = torch.where(flip, -mirror, mirror)
    forward = rotation @ shear_matrix * scale[:, None, None]
    forward = forward * torch.stack([mirror, torch.ones_like(mirror)], -1)[:, None, :]
    inverse = torch.linalg.inv(forward)
    theta = torch.empty(angle.shape[0], 2, 3, dtype=angle.dtype, device=angle.device)
    theta[:, :, :2] = inverse * (crop_size / input_size)
    theta[:, :, 2] = offset * (2 / input_size)
    return theta


def apply_affine(
    images: Tensor, theta: Tensor, output_size: int, *, with_coverage: bool = False
) -> Tensor:
    """Resample each image with its matrix, in one `grid_sample` call.

    Parameters
    ----------
    images
        ``(N, 1, S, S)``.
    theta
        ``(N, 2, 3)`` from `affine_matrices`.
    output_size
        Side of the result.
    with_coverage
        Also return, as a second channel, the fraction of each output pixel
        that has data: inside the cut-out and not blanked (ingest stores
        blanked pixels, NaN in the map, as exactly 0), for noise filling.

    Returns
    -------
    Tensor
        ``(N, 1, output_size, output_size)``, or ``(N, 2, …)`` with coverage.
        Outside the cut-out the value is 0, the median of a normalised cut-out.
    """
    n = images.shape[0]
    if with_coverage:
        images = torch.cat([images, (images[:, :1] != 0).to(images.dtype)], 1)
    grid = functional.affine_grid(
        theta.to(images.dtype), [n, images.shape[1], output_size, output_size], align_corners=False
    )
    return functional.grid_sample(
        images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )


def gaussian_blur(images: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Smooth each image ``(N, 1, H, W)`` with its own round Gaussian ``sigma[i]`` (pixels).

    ``radius`` is how far (pixels) the smoothing may reach beyond an image's
    edge, where it sees zeros; a sigma of 0 leaves the image unchanged.
    """
    return beam_blur(images, sigma, sigma, torch.zeros_like(sigma), radius / 2.5)


def beam_blur(
    images: Tensor, major: Tensor, minor: Tensor, angle: Tensor, max_sigma: float
) -> Tensor:
    """Smooth each image ``(N, 1, H, W)`` with its own elliptical Gaussian (a beam).

    ``major`` and ``minor`` are the standard deviations along the axes (pixels),
    ``angle`` the major axis's angle from +x towards +y (radians), one per
    image; ``max_sigma`` bounds ``major``: the images are padded with zeros
    by 2.5 times it, so that the smoothing sees zeros beyond the edges, as a
    zero-padded convolution does.

    Multiplies by the Gaussian's transfer function,
    ``exp(-2 pi^2 (major^2 f_along^2 + minor^2 f_across^2))``, in Fourier
    space: one real FFT each way for the whole batch. A convolution with a
    different kernel per image (a grouped convolution) was half of an
    augmentation step's time on the CPU.
    """
    height, width = images.shape[-2:]
    pad = math.ceil(2.5 * max_sigma)
    padded_height, padded_width = height + pad, width + pad
    dtype = images.dtype if images.dtype == torch.float64 else torch.float32
    fy = torch.fft.fftfreq(padded_height, device=images.device, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(padded_width, device=images.device, dtype=dtype)[None, :]
    cos = torch.cos(angle).to(dtype)[:, None, None, None]
    sin = torch.sin(angle).to(dtype)[:, None, None, None]
    along, across = cos * fx + sin * fy, -sin * fx + cos * fy
    major = major.to(dtype)[:, None, None, None]
    minor = minor.to(dtype)[:, None, None, None]
    transfer = torch.exp(-2 * math.pi**2 * ((major * along) ** 2 + (minor * across) ** 2))
    spectrum = torch.fft.rfft2(images.to(dtype), s=(padded_height, padded_width))
    smoothed = torch.fft.irfft2(spectrum * transfer, s=(padded_height, padded_width))
    return smoothed[..., :height, :width].to(images.dtype)


def normalise_views(views: Tensor) -> Tensor:
    """Median 0 and standard deviation 1 per view: ingest's rule for cut-outs."""
    flat = views.flatten(1)
    median = flat.median(dim=1).values.view(-1, 1, 1, 1)
    spread = flat.std(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (views - median) / spread


def robust_noise(images: Tensor) -> Tensor:
    """Background noise of each image: 1.4826 times the median absolute deviation.

    Blanked pixels (exactly 0) are left out. Returns a tensor of shape
    ``(N, 1, 1, 1)`` that broadcasts over the images.
    """
    flat = images.flatten(1)
    flat = flat.masked_fill(flat == 0, float("nan"))
    median = flat.nanmedian(dim=1, keepdim=True).values
    mad = (flat - median).abs().nanmedian(dim=1).values.nan_to_num(1.0)
    return (1.4826 * mad).clamp_min(1e-6).view(-1, 1, 1, 1)


def source_radius(images: Tensor, threshold: float = 3.0) -> Tensor:
    """Flux-weighted rms radius (pixels) of each image's emission about its centroid.

    Only what rises above ``threshold`` times the image's `robust_noise`
    counts, weighted by the excess, so that noise adds little; an image with
    nothing above it gets radius 0. ``images`` is ``(N, 1, H, W)``; returns ``(N,)``.
    """
    height, width = images.shape[-2:]
    weight = (images - threshold * robust_noise(images)).clamp_min(0).flatten(1)
    y = torch.arange(height, dtype=images.dtype, device=images.device)
    x = torch.arange(width, dtype=images.dtype, device=images.device)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    yy, xx = yy.flatten(), xx.flatten()
    total = weight.sum(1).clamp_min(1e-12)
    mean_y, mean_x = (weight @ yy) / total, (weight @ xx) / total
    spread = (weight @ (yy**2 + xx**2)) / total - mean_y**2 - mean_x**2
    return torch.where(weight.sum(1) > 0, spread.clamp_min(0).sqrt(), torch.zeros_like(total))


def canonical_zoom(images: Tensor, target: float, zoom_max: float) -> Tensor:
    """Zoom each image ``(N, 1, S, S)`` about its centre so its source is ``target`` px in radius.

    The magnification ``target / source_radius`` is clamped to
    ``[1 / zoom_max, zoom_max]``; zooming out leaves 0 (the median of a
    normalised cut-out) beyond the image. Repeated observations of a source
    show it at sizes up to six times apart in pixels, and a zoomed-out copy
    at half its size: measured and undone here, size stops deciding what
    is near what, as the dihedral averaging stops orientation deciding.
    A rotation or mirror image of the input gives the same rotation or
    mirror image of the output.
    """
    radius = source_radius(images)
    zoom = (target / radius.clamp_min(1e-6)).clamp(1 / zoom_max, zoom_max)
    zoom = torch.where(radius > 0, zoom, torch.ones_like(zoom))
    n = images.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    return functional.grid_sample(
        images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
