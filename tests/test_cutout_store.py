"""The cut-out store: one raw float32 (N, 64, 64) file, appended, overwritten, truncated, mapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_training.ingest.cutout_store import CutoutStore, CutoutStoreError


def _cutouts(k: int, offset: float = 0.0) -> np.ndarray:
    return (np.arange(k * 64 * 64, dtype=np.float32).reshape(k, 64, 64) + offset) / 1000.0


def test_append_returns_rows_and_layout_is_raw_float32(tmp_path: Path) -> None:
    store = CutoutStore(tmp_path / "cutouts")
    assert store.n_rows == 0
    assert store.append(_cutouts(3)) == range(0, 3)
    assert store.append(_cutouts(1, 7.0)[0]) == range(3, 4)
    assert store.path == tmp_path / "cutouts" / "cutouts.f32"
    raw = np.fromfile(store.path, dtype="<f4")
    assert raw.size == 4 * 64 * 64
    np.testing.assert_array_equal(raw[: 3 * 4096].reshape(3, 64, 64), _cutouts(3))


def test_overwrite_one_row_in_place(tmp_path: Path) -> None:
    store = CutoutStore(tmp_path)
    store.append(_cutouts(3))
    replacement = np.full((64, 64), -1.0, dtype=np.float32)
    store.write(1, replacement)
    assert store.n_rows == 3
    np.testing.assert_array_equal(store.read(1), replacement)
    np.testing.assert_array_equal(store.read(2), _cutouts(3)[2])
    with pytest.raises(CutoutStoreError, match="not in"):
        store.write(3, replacement)


def test_open_memmap_is_read_only(tmp_path: Path) -> None:
    store = CutoutStore(tmp_path)
    with pytest.raises(CutoutStoreError, match="run ingest first"):
        store.open_memmap()
    store.append(_cutouts(2))
    mapped = store.open_memmap()
    assert mapped.shape == (2, 64, 64)
    assert mapped.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(mapped, _cutouts(2))
    with pytest.raises(ValueError, match="read-only"):
        mapped[0, 0, 0] = 1.0


def test_truncate_drops_unreferenced_rows_and_torn_writes(tmp_path: Path) -> None:
    store = CutoutStore(tmp_path)
    store.append(_cutouts(5))
    with store.path.open("ab") as stream:  # half a row from a write cut short
        stream.write(b"\0" * 1000)
    assert store.n_rows == 5
    assert store.truncate(3) == 2
    assert store.path.stat().st_size == 3 * 64 * 64 * 4
    assert store.truncate(3) == 0
    assert store.append(_cutouts(1)) == range(3, 4)


def test_truncate_refuses_to_grow(tmp_path: Path) -> None:
    store = CutoutStore(tmp_path)
    store.append(_cutouts(1))
    with pytest.raises(CutoutStoreError, match="references 2 cut-out rows"):
        store.truncate(2)


def test_wrong_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64, 64"):
        CutoutStore(tmp_path).append(np.zeros((2, 32, 32)))
