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
  cut-outs at the end of the store, and (on SQLite, killed inside a commit)
  rows of a batch whose ``vosim.product`` rows never committed; the next run
  drops both, says so, and ingests what is missing;
- a file that cannot be ingested is one line in the report (``path:
  reason``); the rest is ingested and nothing already in the catalogue is
  lost.

Reading FITS, cutting out and writing previews run in a process pool; the
parent process alone writes the database and the cut-out store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.stored_urls import claim_stored_url_base

from .catalogue_writer import WRITTEN_SCHEMAS, KnownProduct, ProductCatalogue
from .cutout_store import CutoutStore, CutoutStoreError
from .fits_image import is_fits_name
from .identifiers import DidError, check_did, key_for_did
from .metadata import MetadataFile, MetadataValueError, metadata_digest, read_metadata
from .obscore_row import minted_did
from .prepare import PreparedProduct, ProductFailure, ProductTask
from .release_rule import RELEASE_AFTER_PERIOD, RELEASE_DEFAULTS, RELEASE_PUBLIC
from .worker_pool import prepare_in_order

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IngestError",
    "IngestReport",
    "find_fits_files",
    "ingest_folder",
    "ingest_session",
    "write_batch",
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
    no_release_date
        Images ingested or updated by this run with no release date (no
        DATE-OBS, no ``obs_release_date``): they stay proprietary.
    fallbacks
        For each ObsCore value that took a configured default because the
        header did not say (a line of `header_fallbacks`), the files concerned.
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
    no_release_date: int = 0
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
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
    release_default: str = RELEASE_AFTER_PERIOD,
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
    release_default
        Release date of images whose metadata gives none: ``obs+12mo``
        (observation date plus 12 months, proprietary without one),
        ``proprietary`` or ``public``.

    Returns
    -------
    IngestReport
        Counts, one line per failed file, warnings.

    Raises
    ------
    IngestError
        If the folder does not exist, another ingest holds the data directory,
        the cut-out store lacks rows the catalogue references, or
        ``release_default`` is not a known rule.
    model_training.ingest.metadata.MetadataError
        If the metadata file cannot be read or has no ``file`` column.
    """
    started = time.perf_counter()
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder; give the folder that holds the FITS files")
    if release_default not in RELEASE_DEFAULTS:
        raise IngestError(
            f"release default {release_default!r} is not one of {', '.join(RELEASE_DEFAULTS)}"
        )
    metadata = read_metadata(metadata_csv) if metadata_csv is not None else None
    report = IngestReport(warnings=list(metadata.warnings) if metadata else [])
    own_catalogue = catalogue is None
    catalogue = catalogue or open_catalogue(settings)
    try:
        with ingest_session(settings, catalogue, report) as (products, store, settings):
            tasks, previous = _plan(
                folder, settings, metadata, products.known_products(), report, reprocess
            )
            tasks = [dataclasses.replace(t, release_default=release_default) for t in tasks]
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
    report.warnings += _fallback_lines(report.fallbacks)
    if report.no_release_date:
        report.warnings.append(
            f"{report.no_release_date} images have no release date and stay proprietary;"
            " give obs_release_date in the metadata file, or choose"
            f" --release-default {RELEASE_PUBLIC}"
        )
    for line in report.warnings:
        logger.info("%s", line)
    report.seconds = time.perf_counter() - started
    return report


def _fallback_lines(fallbacks: dict[str, list[str]]) -> list[str]:
    """One report line per defaulted value: how many images, which line, an example file."""
    return [f"{len(paths)} images: {line} (e.g. {paths[0]})" for line, paths in fallbacks.items()]


@contextmanager
def ingest_session(
    settings: Settings, catalogue: Catalogue, report: IngestReport
) -> Iterator[tuple[ProductCatalogue, CutoutStore, Settings]]:
    """Hold the data directory for one writer and repair what a killed run left.

    What every writer of products (``vosim ingest``, ``vosim harvest``) does
    before its first product: take the ingest lock, delete rows of a torn
    commit, drop unreferenced cut-outs, and claim the stored URL base.

    Yields
    ------
    tuple
        The product tables, the cut-out store, and the settings whose public
        URL is the catalogue's recorded base (every stored URL shares it).
    """
    with _exclusive(settings.data_dir, report):
        products = ProductCatalogue(catalogue)
        store = CutoutStore(settings.cutout_store)
        _remove_uncommitted(products, report)
        dropped = _recover(store, products)
        if dropped:
            report.warnings.append(
                f"dropped {dropped} cut-outs left by an interrupted ingest; their files"
                " are ingested again"
            )
        stored_base = claim_stored_url_base(catalogue, settings.url_base)
        yield products, store, settings.with_changes(public_url=stored_base)


def find_fits_files(folder: Path) -> list[Path]:
    """Every ``.fits``/``.fits.gz`` file under a folder (hidden ones excluded), sorted."""
    found = []
    for root, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        found.extend(
            Path(root, name) for name in files if is_fits_name(name) and not name.startswith(".")
        )
    return sorted(found)


def _remove_uncommitted(products: ProductCatalogue, report: IngestReport) -> None:
    """Delete rows a crash inside a commit left without their product row; say so."""
    deleted = products.remove_uncommitted()
    if deleted:
        tables = ", ".join(f"{n} from {name}" for name, n in deleted.items())
        report.warnings.append(
            f"repaired an interrupted commit: removed {tables}, rows of images whose"
            " vosim.product row was never committed; their files are ingested again"
        )


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
    them. A product is its file: a file already ingested keeps its URL key
    even when its DID changes (then an update that moves everything to the
    new DID). A new file whose DID belongs to another existing file fails;
    one whose DID belongs to a file that is gone is taken as that file moved.
    """
    by_path = {product.file_path: product for product in known}
    by_did = {product.obs_publisher_did: product for product in known}
    claimed: dict[str, Path] = {}
    tasks: list[ProductTask] = []
    previous: dict[Path, KnownProduct] = {}
    for path in find_fits_files(folder):
        relative = path.relative_to(folder).as_posix()
        try:
            raw = metadata.raw_values(relative) if metadata else {}
            did = _did_of(settings, path, raw)
        except MetadataValueError as error:
            report.record_failure(f"{path}: {error}")
            continue
        known_product = by_path.get(str(path))
        owner = by_did.get(did)
        if owner is not None and owner is not known_product:
            if Path(owner.file_path).exists() or known_product is not None:
                report.record_failure(
                    f"{path}: its obs_publisher_did {did!r} already names {owner.file_path};"
                    " give each file its own DID (or rename one of the two files)"
                )
                continue
            known_product = owner
        if did in claimed:
            report.record_failure(
                f"{path}: its obs_publisher_did {did!r} also names {claimed[did]}; give each"
                " file its own DID (or rename one of the two files)"
            )
            continue
        claimed[did] = path
        try:
            stat = path.stat()
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
                key=known_product.product_key if known_product else key_for_did(did),
                did=did,
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


def _did_of(settings: Settings, path: Path, raw: dict[str, str]) -> str:
    """Return a file's DID: the metadata's (checked), else the one vosim mints."""
    given = raw.get("obs_publisher_did")
    if not given:
        return minted_did(settings, path.name)
    try:
        return check_did(given)
    except DidError as error:
        raise MetadataValueError(f"metadata column {error}") from None


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
        write_batch(batch, previous, products, store)
    except SQLAlchemyError:
        for prepared in batch:
            try:
                write_batch([prepared], previous, products, store)
            except SQLAlchemyError as error:
                reason = getattr(error, "orig", None) or error
                report.record_failure(
                    f"{prepared.task.path}: the catalogue refused its rows ({reason})"
                )
            else:
                _count(report, [prepared], previous)
    else:
        _count(report, batch, previous)


def write_batch(
    batch: list[PreparedProduct],
    previous: dict[Path, KnownProduct],
    products: ProductCatalogue,
    store: CutoutStore,
    also: Callable[[Connection], None] | None = None,
) -> None:
    """Append new cut-outs, overwrite re-ingested ones, then commit all rows at once.

    A crash after an overwrite but before the commit leaves a new cut-out
    under old rows; those rows still carry the old size and mtime, so the
    next run re-ingests the file and the two agree again.

    Parameters
    ----------
    batch
        Prepared products; those whose path is in ``previous`` replace a known product.
    previous
        What the catalogue knew of re-ingested products, by task path.
    products, store
        Where the rows and the cut-outs go.
    also
        More writes for the same transaction (harvest's bookkeeping row), so
        that they commit with the products or not at all.
    """
    new = [prepared for prepared in batch if prepared.task.path not in previous]
    updated = [(p, previous[p.task.path]) for p in batch if p.task.path in previous]
    first_new_row = store.n_rows
    rows = store.append(np.stack([p.cutout for p in new])) if new else range(0)
    for prepared, known in updated:
        store.write(known.cutout_index, prepared.cutout)
    try:
        with products.catalogue.begin_writing(WRITTEN_SCHEMAS) as conn:
            products.write(conn, zip(new, rows, strict=True), updated)
            if also is not None:
                also(conn)
    except SQLAlchemyError:
        store.truncate(first_new_row)
        raise


def _count(
    report: IngestReport, committed: list[PreparedProduct], previous: dict[Path, KnownProduct]
) -> None:
    for prepared in committed:
        if prepared.obscore["obs_release_date"] is None:
            report.no_release_date += 1
        for line in prepared.fallbacks:
            report.fallbacks.setdefault(line, []).append(prepared.task.relative_path)
        if prepared.task.path in previous:
            report.updated += 1
        else:
            report.ingested += 1


@contextmanager
def _exclusive(data_dir: Path, report: IngestReport) -> Iterator[None]:
    """Hold the data directory's ingest lock: two ingests would append to one store.

    The lock file records the holder's PID. When the lock is held but that
    process is gone, the holders are processes it left behind (workers of an
    older vosim that outlived a killed ingest): they are killed, and the
    report says so.
    """
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / _LOCK_FILE
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _take_stale_lock(lock, path, report)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)
            fcntl.flock(lock, fcntl.LOCK_UN)


def _take_stale_lock(lock: IO[str], path: Path, report: IngestReport) -> None:
    """Take a lock whose recorded owner is dead by killing the processes that still hold it."""
    import fcntl

    lock.seek(0)
    recorded = lock.read().strip()
    owner = int(recorded) if recorded.isdigit() else None
    if owner is None or _alive(owner):
        running = f" (process {owner})" if owner else ""
        raise IngestError(
            f"another ingest is running on {path.parent}{running}; wait for it to finish"
        )
    holders = [pid for pid in _processes_holding(path) if pid != os.getpid()]
    for pid in holders:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.05)
    else:
        raise IngestError(
            f"{path} is held by processes {holders} left by ingest {owner}, which is gone,"
            " and they did not end when killed; end them and run ingest again"
        )
    report.warnings.append(
        f"repaired: {path} was held by processes {holders} left behind by ingest {owner},"
        " which had been killed; they were ended"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes_holding(path: Path) -> list[int]:
    """PIDs of the processes with ``path`` open (Linux ``/proc``; empty elsewhere)."""
    found = []
    target = os.fspath(path.resolve())
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
