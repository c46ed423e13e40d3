"""PNG previews of the 2-D maps, as the similarity page and DataLink show them.

Radio maps are mostly noise around zero with a few bright peaks, so a linear
scale shows either noise or a dot. The preview uses astropy.visualization's
asinh stretch from the 0.5th percentile (just under the noise) to the peak:
linear through the noise, logarithmic towards the peak, the way archives
show ALMA images, so faint structure stays visible next to a bright core.
Blanked (NaN) pixels are transparent.

Previews are written for every image during ingest, so they are built for
speed: maps larger than `PREVIEW_MAX_SIDE` are block-averaged down, the
stretch and colour map are one precomputed lookup table, and the PNG is an
8-bit palette image (a quarter of the bytes of RGBA, which matters because
noise does not compress).
"""

from __future__ import annotations

import math
import os
import warnings
from functools import cache
from pathlib import Path

import numpy as np
from astropy.visualization import AsinhStretch, AsymmetricPercentileInterval
from PIL import Image

__all__ = ["PREVIEW_MAX_SIDE", "render_preview", "write_preview"]

PREVIEW_MAX_SIDE = 256
"""Longest side of a preview in pixels."""

_NOISE_FLOOR = AsymmetricPercentileInterval(0.5, 100.0)
_STRETCH = AsinhStretch(a=0.1)
_COLORMAP = "inferno"
_LEVELS = 4096  # resolution of the stretch lookup table
_TRANSPARENT = 0  # palette index of blanked pixels; colours use 1..255
_MAX_LIMIT_SAMPLES = 1 << 14


def write_preview(flux_map: np.ndarray, path: Path) -> Path:
    """Write the preview PNG of a map atomically (temporary file, then rename).

    A reader of ``/preview/{key}.png`` therefore sees the old or the new
    preview, never half a file, even if ingest is killed while writing.

    Parameters
    ----------
    flux_map
        The 2-D map, ``[y, x]`` with FITS row 0 first; NaN where blanked.
    path
        Where the PNG goes; its directory is created if needed.

    Returns
    -------
    Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        render_preview(flux_map).save(
            tmp, format="PNG", compress_level=1, transparency=_TRANSPARENT
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_preview(flux_map: np.ndarray) -> Image.Image:
    """Render a map as a palette image: asinh stretch, inferno colours, NaN transparent.

    North (increasing FITS row) is up, as on the sky with a standard WCS.
    Save it with ``transparency=0`` to keep blanked pixels transparent.
    """
    small = _shrink(np.asarray(flux_map, dtype=np.float32))
    finite = np.isfinite(small)
    index = np.full(small.shape, _TRANSPARENT, dtype=np.uint8)
    if finite.any():
        values = small[finite]
        step = max(1, values.size // _MAX_LIMIT_SAMPLES)
        low = float(_NOISE_FLOOR.get_limits(values[::step])[0])
        high = float(values.max())
        scale = (_LEVELS - 1) / (high - low) if high > low else 0.0
        levels = np.clip((values - low) * scale, 0, _LEVELS - 1).astype(np.intp)
        index[finite] = _stretch_table()[levels]
    image = Image.fromarray(np.ascontiguousarray(index[::-1]), mode="P")
    image.putpalette(_palette())
    return image


def _shrink(flux_map: np.ndarray) -> np.ndarray:
    """Block-average by the smallest integer factor that fits `PREVIEW_MAX_SIDE`."""
    ny, nx = flux_map.shape
    factor = math.ceil(max(ny, nx) / PREVIEW_MAX_SIDE)
    if factor <= 1:
        return flux_map
    pad_y, pad_x = (-ny) % factor, (-nx) % factor
    padded = np.pad(flux_map, ((0, pad_y), (0, pad_x)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # blocks that are all NaN stay NaN
        return np.nanmean(blocks, axis=(1, 3))


@cache
def _stretch_table() -> np.ndarray:
    """Palette index (1..255) of each of `_LEVELS` linear levels after the asinh stretch."""
    stretched = _STRETCH(np.linspace(0.0, 1.0, _LEVELS), clip=True)
    return (1 + np.round(stretched * 254.0)).astype(np.uint8)


@cache
def _palette() -> list[int]:
    """RGB palette: index 0 for transparent pixels, then the colour map (matplotlib, no pyplot)."""
    import matplotlib

    colours = matplotlib.colormaps[_COLORMAP](np.linspace(0.0, 1.0, 255), bytes=True)[:, :3]
    return [0, 0, 0, *np.asarray(colours, dtype=np.uint8).reshape(-1).tolist()]
