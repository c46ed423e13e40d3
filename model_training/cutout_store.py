"""All cut-outs in one memory-mappable file (provisional: ingest owns this module).

Layout of ``cutouts.f32``: little-endian float32, C order, shape
``(N, 64, 64)``, no header; which product a row belongs to is recorded in
``vosim.product.cutout_index``. This is the minimal reader/writer the
training stage needs until ingest's full store lands; on merge, ingest's
version replaces it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CUTOUT_FILE_NAME", "CutoutStore", "CutoutStoreError"]

CUTOUT_FILE_NAME = "cutouts.f32"
CUTOUT_SIZE = 64
_ROW_BYTES = CUTOUT_SIZE * CUTOUT_SIZE * 4


class CutoutStoreError(Exception):
    """The cut-out store is missing or inconsistent."""


class CutoutStore:
    """The cut-out file of an installation (``settings.cutout_store / "cutouts.f32"``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CUTOUT_FILE_NAME

    @property
    def n_rows(self) -> int:
        """Number of complete rows in the file."""
        try:
            return self.path.stat().st_size // _ROW_BYTES
        except FileNotFoundError:
            return 0

    def append(self, cutouts: np.ndarray) -> range:
        """Append ``(k, 64, 64)`` cut-outs; return their rows."""
        rows = np.ascontiguousarray(cutouts, dtype="<f4").reshape(-1, CUTOUT_SIZE, CUTOUT_SIZE)
        self.directory.mkdir(parents=True, exist_ok=True)
        start = self.n_rows
        with self.path.open("ab") as stream:
            stream.write(rows.tobytes())
        return range(start, start + len(rows))

    def open_memmap(self) -> np.memmap:
        """Map all cut-outs read-only as an ``(N, 64, 64)`` float32 array."""
        if self.n_rows == 0:
            raise CutoutStoreError(f"no cut-outs in {self.path}: run ingest first")
        return np.memmap(
            self.path, dtype="<f4", mode="r", shape=(self.n_rows, CUTOUT_SIZE, CUTOUT_SIZE)
        )
