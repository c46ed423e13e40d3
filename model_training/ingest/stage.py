"""Ingest: a folder of FITS images and their metadata into the catalogue.

The first stage of the data flow (docs/architecture.md). For every ``*.fits`` and
``*.fits.gz`` file under a folder it writes, per image, one row in each of
``ivoa.obscore``, ``similarity.image`` and ``vosim.product``, the paper's
64×64 cut-out into the cut-out store, and a preview PNG. Proprietary images
are ingested like all others; the serving layers hide them.

The stage is idempotent and restartable:

- a file whose path, size, mtime and metadata row match ``vosim.product`` is
  skipped; a changed one is re-ingested in place (its rows updated, its
  cut-out row overwritten); new files are added;
- batches of files are committed one at a time, cut-outs fsynced before the
  rows that reference them, so a killed ingest leaves at most unreferenced
  cut-outs at the end of the store, which the next run drops before it
  ingests what is missing;
- a file that cannot be ingested is one line in the report (``path:
  reason``); the rest is ingested and nothing already in the catalogue is
  lost.

Reading FITS, cutting out and writing previews run in a process pool; the
parent process alone writes the database and the cut-out store.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.stored_urls import claim_stored_url_base

from .catalogue_writer import KnownProduct, ProductCatalogue
from .cutout_store import CutoutStore, CutoutStoreError
from .fits_image import is_fits_name
from .metadata import MetadataFile, MetadataValueError, metadata_digest, read_metadata
from .obscore_row import product_key
from .prepare import PreparedProduct, ProductFailure, ProductTask
from .worker_pool import prepare_in_order

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IngestError",
    "IngestReport",
    "find_fits_files",
    "ingest_folder",
]

DEFAULT_BATCH_SIZE = 64
"""Files per catalogue transaction: large enough to amortise a commit, small
enough that a restart redoes little."""

_LOCK_FILE = "ingest.lock"

logger = logging.getLogger(__name__)


class IngestError(ValueError):
    """Ingest cannot start: no such folder, another ingest running, a broken store.

    A `ValueError`, like every other bad-argument error, so that callers such
    as the command line report it as a usage error.
    """


@dataclass
class IngestReport:
    """What an ingest did.

    Parameters
    ----------
    ingested
        Images added to the catalogue.
    unchanged
        Images skipped because file and metadata are as when they were ingested.
    updated
        Images re-ingested in place because the file or its metadata changed.
    failed
        Files that could not be ingested.
    failures
        One line per failed file: ``path: reason``.
    warnings
        Problems that stopped no file (unknown metadata columns, metadata rows
        that match no file, cut-outs dropped after an interrupted ingest).
    seconds
        Wall-clock time of the whole ingest.
    """

    ingested: int = 0
    unchanged: int = 0
    updated: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_status(self) -> int:
        """0 if every file is in the catalogue, 1 if some failed."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        """One line of counts, for the command line."""
        return (
            f"{self.ingested} ingested, {self.updated} updated, {self.unchanged} unchanged,"
            f" {self.failed} failed in {self.seconds:.1f} s"
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"failed: {line}" for line in self.failures]
        lines += [f"warning: {line}" for line in self.warnings]
        return "\n".join(lines)

    def record_failure(self, line: str) -> None:
        """Count a failed file and keep its ``path: reason`` line."""
        line = line.replace("\r", " ").replace("\n", " ")  # one line, whatever a library said
        self.failed += 1
        self.failures.append(line)
        logger.info("%s", line)


def ingest_folder(
    settings: Settings,
    folder: Path | str,
    metadata_csv: Path | str | None = None,
    *,
    catalogue: Catalogue | None = None,
    progress: bool = True,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reprocess: bool = False,
) -> IngestReport:
    """Ingest every FITS image under a folder; re-running it changes only what changed.

    Parameters
    ----------
    settings
        The installation: catalogue, cut-out store, preview folder, URLs.
    folder
        Searched recursively for ``*.fits`` and ``*.fits.gz``.
    metadata_csv
        Optional CSV of ObsCore values by file (see `model_training.ingest.metadata`).
    catalogue
        An open catalogue; opened (and created) from ``settings`` if omitted.
    progress
        Show a tqdm progress bar.
    workers
        Processes that read FITS files; default: one per CPU core. 1 reads in
        this process.
    batch_size
        Files per catalogue transaction.
    reprocess
        Read every file again, also unchanged ones: after an upgrade that
        changes how cut-outs, previews or ObsCore rows are made (they are
        then counted as updated).

    Returns
    -------
    IngestReport
        Counts, one line per failed file, warnings.

    Raises
    ------
    IngestError
        If the folder does not exist, another ingest holds the data directory,
        or the cut-out store lacks rows the catalogue references.
    model_training.ingest.metadata.MetadataError
        If the metadata file cannot be read or has no ``file`` column.
    """
    started = time.perf_counter()
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder; give the folder that holds the FITS files")
    metadata = read_metadata(metadata_csv) if metadata_csv is not None else None
    report = IngestReport(warnings=list(metadata.warnings) if metadata else [])
    own_catalogue = catalogue is None
    catalogue = catalogue or open_catalogue(settings)
    try:
        with _exclusive(settings.data_dir):
            products = ProductCatalogue(catalogue)
            store = CutoutStore(settings.cutout_store)
            dropped = _recover(store, products)
            if dropped:
                report.warnings.append(
                    f"dropped {dropped} cut-outs left by an interrupted ingest; their files"
                    " are ingested again"
                )
            # every stored URL shares the catalogue's one recorded base (rewritten on output)
            stored_base = claim_stored_url_base(catalogue, settings.url_base)
            settings = settings.with_changes(public_url=stored_base)
            tasks, previous = _plan(
                folder, settings, metadata, products.known_products(), report, reprocess
            )
            _ingest(tasks, previous, products, store, report, progress, workers, batch_size)
            if metadata is not None and metadata.unused_rows():
                unused = metadata.unused_rows()
                report.warnings.append(
                    f"{metadata.path}: {len(unused)} rows match no FITS file under {folder},"
                    f" e.g. {unused[0]!r}"
                )
    finally:
        if own_catalogue:
            catalogue.dispose()
    for line in report.warnings:
        logger.info("%s", line)
    report.seconds = time.perf_counter() - started
    return report


def find_fits_files(folder: Path) -> list[Path]:
    """Every ``.fits``/``.fits.gz`` file under a folder (hidden ones excluded), sorted."""
    found = []
    for root, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        found.extend(
            Path(root, name) for name in files if is_fits_name(name) and not name.startswith(".")
        )
    return sorted(found)


def _recover(store: CutoutStore, products: ProductCatalogue) -> int:
    """Drop cut-outs that no committed product references (an interrupted batch)."""
    try:
        return store.truncate(products.referenced_cutout_rows())
    except CutoutStoreError as error:
        raise IngestError(str(error)) from error


def _plan(
    folder: Path,
    settings: Settings,
    metadata: MetadataFile | None,
    known: list[KnownProduct],
    report: IngestReport,
    reprocess: bool = False,
) -> tuple[list[ProductTask], dict[Path, KnownProduct]]:
    """Decide per file: skip (unchanged), ingest (new), re-ingest (changed), or fail.

    Returns the tasks and, for re-ingested files, what the catalogue knew of
    them. A file whose product key belongs to another existing file fails; a
    file whose key belongs to a file that is gone is taken as that file moved.
    """
    by_path = {product.file_path: product for product in known}
    by_key = {product.product_key: product for product in known}
    claimed: dict[str, Path] = {}
    tasks: list[ProductTask] = []
    previous: dict[Path, KnownProduct] = {}
    for path in find_fits_files(folder):
        relative = path.relative_to(folder).as_posix()
        key = product_key(path.name)
        known_product = by_path.get(str(path))
        if known_product is None and key in by_key:
            owner = by_key[key]
            if Path(owner.file_path).exists():
                report.record_failure(
                    f"{path}: its product key '{key}' already names {owner.file_path};"
                    " rename one of the two files"
                )
                continue
            known_product = owner
        if key in claimed:
            report.record_failure(
                f"{path}: its product key '{key}' also names {claimed[key]}; rename one of"
                " the two files"
            )
            continue
        claimed[key] = path
        try:
            stat = path.stat()
            raw = metadata.raw_values(relative) if metadata else {}
            digest = metadata_digest(raw)
            if (
                not reprocess
                and known_product is not None
                and known_product.file_path == str(path)
                and known_product.file_size == stat.st_size
                and known_product.file_mtime == stat.st_mtime
                and known_product.metadata_digest == digest
            ):
                report.unchanged += 1
                continue
            values = metadata.values_for(relative) if metadata else {}
        except (OSError, MetadataValueError) as error:
            report.record_failure(f"{path}: {error}")
            continue
        tasks.append(
            ProductTask(
                path=path,
                relative_path=relative,
                key=key,
                file_size=stat.st_size,
                file_mtime=stat.st_mtime,
                metadata=values,
                metadata_digest=digest,
                settings=settings,
            )
        )
        if known_product is not None:
            previous[path] = known_product
    return tasks, previous


def _ingest(
    tasks: list[ProductTask],
    previous: dict[Path, KnownProduct],
    products: ProductCatalogue,
    store: CutoutStore,
    report: IngestReport,
    progress: bool,
    workers: int | None,
    batch_size: int,
) -> None:
    batch: list[PreparedProduct] = []
    with tqdm(total=len(tasks), unit="image", desc="ingest", disable=not progress) as bar:
        for result in prepare_in_order(tasks, workers):
            bar.update(1)
            if isinstance(result, ProductFailure):
                report.record_failure(result.line)
                continue
            problems = products.problems(result)
            if problems:
                report.record_failure(f"{result.task.path}: {'; '.join(problems)}")
                continue
            batch.append(result)
            if len(batch) >= batch_size:
                _commit(batch, previous, products, store, report)
                batch = []
        if batch:
            _commit(batch, previous, products, store, report)


def _commit(
    batch: list[PreparedProduct],
    previous: dict[Path, KnownProduct],
    products: ProductCatalogue,
    store: CutoutStore,
    report: IngestReport,
) -> None:
    """Write a batch: cut-outs first (fsynced), then the rows in one transaction.

    If the database refuses the batch, its cut-outs are dropped again and the
    files are committed one by one, so that one refused file fails alone.
    """
    try:
        _write(batch, previous, products, store)
    except SQLAlchemyError:
        for prepared in batch:
            try:
                _write([prepared], previous, products, store)
            except SQLAlchemyError as error:
                reason = getattr(error, "orig", None) or error
                report.record_failure(
                    f"{prepared.task.path}: the catalogue refused its rows ({reason})"
                )
            else:
                _count(report, [prepared], previous)
    else:
        _count(report, batch, previous)


def _write(
    batch: list[PreparedProduct],
    previous: dict[Path, KnownProduct],
    products: ProductCatalogue,
    store: CutoutStore,
) -> None:
    """Append new cut-outs, overwrite re-ingested ones, then commit all rows at once.

    A crash after an overwrite but before the commit leaves a new cut-out
    under old rows; those rows still carry the old size and mtime, so the
    next run re-ingests the file and the two agree again.
    """
    new = [prepared for prepared in batch if prepared.task.path not in previous]
    updated = [(p, previous[p.task.path]) for p in batch if p.task.path in previous]
    first_new_row = store.n_rows
    rows = store.append(np.stack([p.cutout for p in new])) if new else range(0)
    for prepared, known in updated:
        store.write(known.cutout_index, prepared.cutout)
    try:
        with products.catalogue.begin() as conn:
            products.write(conn, zip(new, rows, strict=True), updated)
    except SQLAlchemyError:
        store.truncate(first_new_row)
        raise


def _count(
    report: IngestReport, committed: list[PreparedProduct], previous: dict[Path, KnownProduct]
) -> None:
    for prepared in committed:
        if prepared.task.path in previous:
            report.updated += 1
        else:
            report.ingested += 1


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's ingest lock: two ingests would append to one store."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / _LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(
                f"another ingest is running on {data_dir}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
