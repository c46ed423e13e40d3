"""All cut-outs in one memory-mappable file, the training set of the network.

Training reads every cut-out many times per epoch; one flat file of raw
float32 lets it memory-map them all at once (``np.memmap``) without a
database round trip or a file per image. Layout of ``cutouts.f32``:
little-endian float32, C order, shape ``(N, 64, 64)``, no header; row ``i``
starts at byte ``i × 64 × 64 × 4``. Which product a row belongs to is
recorded in the catalogue (``vosim.product.cutout_index``), never here.

Crash safety follows one rule: cut-outs are written and fsynced *before*
the catalogue rows that reference them are committed. A crash can therefore
leave rows at the end of the file that nothing references, never a
reference to a row that is missing; `CutoutStore.truncate` drops those rows
when ingest restarts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cutout import CUTOUT_SIZE

__all__ = ["CUTOUT_DTYPE", "CUTOUT_FILE_NAME", "CutoutStore", "CutoutStoreError"]

CUTOUT_FILE_NAME = "cutouts.f32"
CUTOUT_DTYPE = np.dtype("<f4")
_ROW_SHAPE = (CUTOUT_SIZE, CUTOUT_SIZE)
_ROW_BYTES = CUTOUT_SIZE * CUTOUT_SIZE * CUTOUT_DTYPE.itemsize


class CutoutStoreError(Exception):
    """The cut-out store and the catalogue disagree in a way ingest cannot repair."""


class CutoutStore:
    """The cut-out file of an installation (``settings.cutout_store / "cutouts.f32"``).

    Parameters
    ----------
    directory
        Directory of the store, created on first write.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CUTOUT_FILE_NAME

    @property
    def n_rows(self) -> int:
        """Number of complete rows in the file (a torn last row does not count)."""
        try:
            return self.path.stat().st_size // _ROW_BYTES
        except FileNotFoundError:
            return 0

    def append(self, cutouts: np.ndarray) -> range:
        """Append cut-outs after the last complete row and fsync them.

        Parameters
        ----------
        cutouts
            ``(k, 64, 64)`` or ``(64, 64)`` array.

        Returns
        -------
        range
            The row indices the cut-outs were written to.
        """
        rows = self._as_rows(cutouts)
        self.directory.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size // _ROW_BYTES
            os.pwrite(fd, rows.tobytes(), start * _ROW_BYTES)
            os.ftruncate(fd, (start + len(rows)) * _ROW_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.directory)
        return range(start, start + len(rows))

    def write(self, row: int, cutout: np.ndarray) -> None:
        """Overwrite one existing row in place (a re-ingested product keeps its row) and fsync."""
        if not 0 <= row < self.n_rows:
            raise CutoutStoreError(
                f"cut-out row {row} is not in {self.path} ({self.n_rows} rows): the store is"
                " shorter than the catalogue says; re-create both with a fresh ingest"
            )
        (data,) = self._as_rows(cutout)
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.pwrite(fd, data.tobytes(), row * _ROW_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, row: int) -> np.ndarray:
        """One cut-out as a ``(64, 64)`` float32 array (a copy)."""
        if not 0 <= row < self.n_rows:
            raise IndexError(f"cut-out row {row} out of range ({self.n_rows} rows)")
        with self.path.open("rb") as stream:
            stream.seek(row * _ROW_BYTES)
            data = stream.read(_ROW_BYTES)
        return np.frombuffer(data, dtype=CUTOUT_DTYPE).reshape(_ROW_SHAPE).astype(np.float32)

    def truncate(self, n_rows: int) -> int:
        """Drop every row from ``n_rows`` on; return how many were dropped.

        Used on restart with ``n_rows`` = one past the highest row a committed
        catalogue row references, so rows of an interrupted batch disappear.

        Raises
        ------
        CutoutStoreError
            If the file has fewer than ``n_rows`` rows: the catalogue references
            cut-outs that are gone, which truncating cannot repair.
        """
        have = self.n_rows
        if n_rows > have:
            raise CutoutStoreError(
                f"the catalogue references {n_rows} cut-out rows but {self.path} holds only"
                f" {have}: the store was deleted or replaced; restore it, or re-ingest into"
                " an empty data directory"
            )
        size = self.path.stat().st_size if self.path.exists() else 0
        if size == n_rows * _ROW_BYTES:
            return 0
        with self.path.open("r+b") as stream:
            stream.truncate(n_rows * _ROW_BYTES)
            stream.flush()
            os.fsync(stream.fileno())
        return have - n_rows

    def open_memmap(self) -> np.memmap:
        """Map all cut-outs read-only as an ``(N, 64, 64)`` float32 array, for training.

        Raises
        ------
        CutoutStoreError
            If the store is empty (``np.memmap`` cannot map zero bytes).
        """
        n_rows = self.n_rows
        if n_rows == 0:
            raise CutoutStoreError(f"no cut-outs in {self.path}: run ingest first")
        return np.memmap(self.path, dtype=CUTOUT_DTYPE, mode="r", shape=(n_rows, *_ROW_SHAPE))

    @staticmethod
    def _as_rows(cutouts: np.ndarray) -> np.ndarray:
        rows = np.asarray(cutouts)
        if rows.shape == _ROW_SHAPE:
            rows = rows[np.newaxis]
        if rows.ndim != 3 or rows.shape[1:] != _ROW_SHAPE:
            raise ValueError(f"cut-outs must be (k, 64, 64) or (64, 64), not {rows.shape}")
        return np.ascontiguousarray(rows, dtype=CUTOUT_DTYPE)


def _fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable, so the file survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
