"""Preview PNGs: at most 256 px, blanked pixels transparent, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_training.ingest.preview import write_preview
from tests.fits_factory import source_image


def test_small_map_keeps_its_size_and_north_is_up(tmp_path: Path) -> None:
    flux_map = source_image(100, 60, snr=80, x0=10, y0=50)  # source near the top left
    path = write_preview(flux_map, tmp_path / "p" / "a.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (100, 60)
        rgba = np.asarray(image.convert("RGBA"), dtype=float)
    brightness = rgba[..., :3].sum(axis=2)
    y, x = np.unravel_index(np.argmax(brightness), brightness.shape)
    assert (x, y) == (10, 60 - 1 - 50)  # FITS row 50 from the bottom


@pytest.mark.parametrize(("shape", "size"), [((1000, 700), (175, 250)), ((300, 300), (150, 150))])
def test_large_map_is_shrunk_to_256(
    tmp_path: Path, shape: tuple[int, int], size: tuple[int, int]
) -> None:
    flux_map = np.random.default_rng(0).normal(size=shape)
    with Image.open(write_preview(flux_map, tmp_path / "big.png")) as image:
        assert image.size == size
        assert max(image.size) <= 256


def test_nan_is_transparent(tmp_path: Path) -> None:
    flux_map = source_image(64, 64)
    flux_map[:16] = np.nan
    with Image.open(write_preview(flux_map, tmp_path / "nan.png")) as image:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
    assert (alpha[-16:] == 0).all()  # FITS rows 0-15 are the bottom of the picture
    assert (alpha[:-16] == 255).all()


def _rgba(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGBA")).reshape(-1, 4)


def test_constant_map_is_one_opaque_colour(tmp_path: Path) -> None:
    pixels = _rgba(write_preview(np.full((8, 8), 2.0), tmp_path / "flat.png"))
    assert len(pixels) == 64
    assert len(np.unique(pixels, axis=0)) == 1  # nothing to show, and no division by zero
    assert (pixels[:, 3] == 255).all()


def test_all_nan_map_is_fully_transparent(tmp_path: Path) -> None:
    pixels = _rgba(write_preview(np.full((8, 8), np.nan), tmp_path / "blank.png"))
    assert len(pixels) == 64
    assert (pixels[:, 3] == 0).all()


def test_written_atomically_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    write_preview(source_image(32, 32), target)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
