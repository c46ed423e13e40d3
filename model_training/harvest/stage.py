"""Harvest: an archive's image products, read from its ObsCore over TAP, into the catalogue.

The other way into the first stage of the data flow (docs/architecture.md):
instead of a folder of FITS files and a metadata CSV, the archive's own VO
services. The archive's ``ivoa.obscore`` (`listing`) says which products
there are, with their DIDs and the values a header lacks; each product's
file is fetched (`download`) and ingested exactly as ``vosim ingest`` does
it: the same per-file work (`model_training.ingest.prepare`, in the same
worker pool) and the same catalogue writer, inside the same lock and
repairs (`model_training.ingest.stage.ingest_session`).

Incremental and restartable, by ``vosim.harvest_record`` (`records`):

- a product harvested before whose archive values have the same digest is
  unchanged and not fetched; a changed one is fetched and updated in place;
  a new DID whose file is the one last fetched for a DID the archive no
  longer lists is that product renamed (its vectors and neighbours follow);
  one whose release date moved into the future takes it, unfetched;
- a product whose release date is still to come, or that the archive
  refuses (401, 403, DataLink ``NotAuthorizedFault``; or any refusal of a
  product without release date), is held back: not fetched, recorded with
  the reason, tried again by the next harvest once released;
- each product commits alone, its bookkeeping row in the transaction of its
  catalogue rows, so a harvest killed at any point resumes with every
  product ingested exactly once.

Downloads run in ``workers`` threads ahead of the worker pool that reads
them; the parent alone writes the catalogue.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from model_training.archive_mapping import ArchiveMapping
from model_training.ingest.catalogue_writer import (
    WRITTEN_SCHEMAS,
    KnownProduct,
    ProductCatalogue,
)
from model_training.ingest.cutout_store import CutoutStore
from model_training.ingest.identifiers import DidError, check_did, key_for_did
from model_training.ingest.metadata import (
    MetadataValueError,
    metadata_digest,
    obscore_column_types,
    typed_value,
)
from model_training.ingest.prepare import PreparedProduct, ProductFailure, ProductTask
from model_training.ingest.stage import IngestReport, ingest_session, write_batch
from model_training.ingest.worker_pool import cpu_count, prepare_in_order
from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.release import utc_now

from .download import Fetched, Fetcher, FetchFailed, FetchLimits, Proprietary
from .listing import ArchiveRecord, Query, list_records, pyvo_query
from .records import FAILED, HARVESTED, HELD, HarvestRecord, HarvestRecords

__all__ = ["HarvestOptions", "HarvestReport", "harvest_archive"]

DOWNLOAD_FOLDER = "harvest-downloads"
"""Under the data directory: files being fetched, deleted once ingested."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HarvestOptions:
    """What to harvest and how.

    Parameters
    ----------
    where
        Extra ADQL condition on ``ivoa.obscore`` (alias ``o``).
    mapping
        Where the archive keeps release date, category and kind (the
        ``vosim publish`` mapping file).
    workers
        Concurrent downloads, and processes that read the files; default
        one per CPU core.
    keep_files
        Folder to keep the fetched files in (the catalogue then serves them
        itself); without it they are deleted once ingested and the
        catalogue points at the archive's URL of each.
    limits
        Size limit, retries and back-off of downloads.
    progress
        Show a progress bar.
    """

    where: str | None = None
    mapping: ArchiveMapping = field(default_factory=ArchiveMapping)
    workers: int | None = None
    keep_files: Path | None = None
    limits: FetchLimits = field(default_factory=FetchLimits)
    progress: bool = True


@dataclass
class HarvestReport:
    """What a harvest did.

    Attributes
    ----------
    harvested, updated
        Products fetched and ingested: new ones, and changed ones re-ingested.
    unchanged
        Products harvested before whose archive values are the same.
    held_back
        Proprietary products, not fetched (``held``: one ``did: reason`` line each).
    failed
        Products that could not be harvested (``failures``: ``did: reason``).
    warnings
        Problems that stopped no product (repairs after a killed run).
    fetched_bytes, seconds
        Bytes downloaded, wall-clock time.
    """

    harvested: int = 0
    updated: int = 0
    unchanged: int = 0
    held_back: int = 0
    failed: int = 0
    held: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fetched_bytes: int = 0
    seconds: float = 0.0

    @property
    def exit_status(self) -> int:
        """0 if every product is harvested or held back, 1 if some failed."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        """One line of counts and rates, for the command line."""
        done = self.harvested + self.updated
        rate = done / self.seconds if self.seconds else 0.0
        megabytes = self.fetched_bytes / 1e6
        return (
            f"{self.harvested} harvested, {self.updated} updated, {self.unchanged} unchanged,"
            f" {self.held_back} held back, {self.failed} failed in {self.seconds:.1f} s"
            f" ({megabytes:.1f} MB, {rate:.1f} products/s)"
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"held back: {line}" for line in self.held]
        lines += [f"failed: {line}" for line in self.failures]
        lines += [f"warning: {line}" for line in self.warnings]
        return "\n".join(lines)


@dataclass
class _Job:
    """One product to fetch and ingest."""

    record: ArchiveRecord
    key: str
    known: KnownProduct | None
    attempts: int
    file_url: str | None = None
    kept: Path | None = None


def harvest_archive(
    settings: Settings,
    tap_url: str,
    options: HarvestOptions | None = None,
    *,
    catalogue: Catalogue | None = None,
    query: Query | None = None,
) -> HarvestReport:
    """Harvest an archive's image and cube products into the catalogue.

    Parameters
    ----------
    settings
        The installation.
    tap_url
        The archive's TAP service.
    options
        Selection, mapping, workers, limits (`HarvestOptions`).
    catalogue
        An open catalogue; opened (and created) from ``settings`` if omitted.
    query
        Runs ADQL on the archive; pyvo on ``tap_url`` if omitted.

    Returns
    -------
    HarvestReport
        Counts, and a line per held-back and failed product.
    """
    started = time.perf_counter()
    options = options or HarvestOptions()
    own_catalogue = catalogue is None
    catalogue = catalogue or open_catalogue(settings)
    session_report = IngestReport()
    report = HarvestReport()
    try:
        with ingest_session(settings, catalogue, session_report) as (products, store, stored):
            downloads = stored.data_dir / DOWNLOAD_FOLDER
            shutil.rmtree(downloads, ignore_errors=True)
            downloads.mkdir(parents=True)
            records = HarvestRecords(catalogue)
            run = _Run(tap_url, stored, options, products, store, records, report)
            limits = options.limits
            query = query or pyvo_query(tap_url, limits.retries, limits.backoff_s, limits.timeout_s)
            listed = list_records(query, options.mapping, options.where)
            jobs = run.plan(listed)
            run.fetch_and_ingest(jobs, downloads)
            shutil.rmtree(downloads, ignore_errors=True)
    finally:
        if own_catalogue:
            catalogue.dispose()
    report.warnings[:0] = session_report.warnings
    report.seconds = time.perf_counter() - started
    for line in report.warnings:
        logger.info("%s", line)
    return report


class _Run:
    """One harvest: the plan, then the downloads and the commits."""

    def __init__(
        self,
        tap_url: str,
        settings: Settings,
        options: HarvestOptions,
        products: ProductCatalogue,
        store: CutoutStore,
        records: HarvestRecords,
        report: HarvestReport,
    ) -> None:
        self.tap_url = tap_url
        self.settings = settings
        self.options = options
        self.products = products
        self.store = store
        self.records = records
        self.report = report
        self.column_types = obscore_column_types()
        self.workers = options.workers or cpu_count()
        self.unlisted: dict[str, KnownProduct] = {}
        """Harvested products the archive no longer lists, by the URL their file came from."""

    def plan(self, listed: Iterator[ArchiveRecord | tuple[str, str]]) -> list[_Job]:
        """Sort the archive's products into unchanged, held back, failed and to fetch."""
        known = {product.obs_publisher_did: product for product in self.products.known_products()}
        recorded = self.records.load()
        now = utc_now()
        jobs: list[_Job] = []
        seen: set[str] = set()
        for item in listed:
            if isinstance(item, tuple):
                did, reason = item
                self._fail_listed(did, reason, recorded.get(did))
                continue
            if item.did in seen:
                continue  # a service that repeats a row at a page boundary
            seen.add(item.did)
            previous = recorded.get(item.did)
            same = previous is not None and previous.record_digest == item.digest
            if same and previous.state == HARVESTED and _has_file(known.get(item.did)):
                self.report.unchanged += 1
                continue
            attempts = previous.attempts + 1 if same else 1
            try:
                check_did(item.did)
            except DidError as error:
                self._finish(item, FAILED, attempts, str(error))
                continue
            if item.is_proprietary(now):
                reason = f"proprietary until {item.release_date:%Y-%m-%d %H:%M:%S} UTC"
                self._finish(item, HELD, attempts, reason, withhold=item.did in known)
                continue
            product = known.get(item.did)
            key = product.product_key if product else key_for_did(item.did)
            jobs.append(_Job(item, key, product, attempts))
        self.unlisted = {
            record.file_url: known[did]
            for did, record in recorded.items()
            if did not in seen
            and did in known
            and record.state == HARVESTED
            and record.file_url
            and record.archive_url == self.tap_url
        }
        return jobs

    def fetch_and_ingest(self, jobs: list[_Job], downloads: Path) -> None:
        """Fetch ahead in threads, read in the worker pool, commit each product alone."""
        counted = _ByteCounter()
        fetcher = Fetcher(self.options.limits, counted.add)
        bar = _ProgressBar(len(jobs), counted, disable=not self.options.progress)
        by_path: dict[Path, _Job] = {}
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="harvest") as threads:
                fetched = self._fetched(jobs, threads, fetcher, downloads, by_path, bar)
                for result in prepare_in_order(fetched, self.workers):
                    job = by_path.pop(result.task.path)
                    committed = self._commit(job, result)
                    if committed and job.kept is not None:
                        job.kept.parent.mkdir(parents=True, exist_ok=True)
                        shutil.move(result.task.path, job.kept)
                    else:
                        result.task.path.unlink(missing_ok=True)
                    bar.advance()
        finally:
            bar.close()
            fetcher.close()
            self.report.fetched_bytes = counted.total

    def _fetched(
        self,
        jobs: list[_Job],
        threads: ThreadPoolExecutor,
        fetcher: Fetcher,
        downloads: Path,
        by_path: dict[Path, _Job],
        bar: _ProgressBar,
    ) -> Iterator[ProductTask]:
        """Yield the ingest task of each download in order, ``2 × workers`` downloads ahead.

        Products the archive holds back or fails are recorded here and not yielded.
        """
        queue = iter(jobs)
        pending: deque[tuple[_Job, Future[Fetched]]] = deque()

        def submit(job: _Job) -> None:
            pending.append((job, threads.submit(self._fetch, fetcher, job, downloads)))

        for job in islice(queue, 2 * self.workers):
            submit(job)
        while pending:
            job, future = pending.popleft()
            following = next(queue, None)
            if following is not None:
                submit(following)
            task = self._task_of(job, future)
            if task is None:
                bar.advance()
                continue
            by_path[task.path] = job
            yield task

    def _task_of(self, job: _Job, future: Future[Fetched]) -> ProductTask | None:
        """Wait for a download; return its task, or None (recorded as held back or failed)."""
        try:
            fetched = future.result()
        except Proprietary as error:
            self._finish(job.record, HELD, job.attempts, str(error))
            return None
        except FetchFailed as error:
            if error.refused and job.record.release_date is None:
                reason = f"no release date, and the archive does not serve it: {error}"
                self._finish(job.record, HELD, job.attempts, reason)
            else:
                self._finish(job.record, FAILED, job.attempts, str(error))
            return None
        if job.known is None and fetched.url in self.unlisted:
            # the file of a product the archive no longer lists under its old DID: renamed
            job.known = self.unlisted.pop(fetched.url)
            job.key = job.known.product_key
        job.file_url = fetched.url
        return self._task(job, fetched)

    def _fetch(self, fetcher: Fetcher, job: _Job, downloads: Path) -> Fetched:
        record = job.record
        return fetcher.fetch(
            record.did, record.access_url, record.access_format, downloads / f"{job.key}.fits"
        )

    def _task(self, job: _Job, fetched: Fetched) -> ProductTask | None:
        """Return the ingest task of a downloaded file, or None (recorded as failed)."""
        record = job.record
        try:
            values = {
                name: typed_value(name, self.column_types[name], raw)
                for name, raw in record.values.items()
            }
        except MetadataValueError as error:
            fetched.path.unlink(missing_ok=True)
            self._finish(record, FAILED, job.attempts, str(error))
            return None
        path, stored = fetched.path, fetched.url
        if self.options.keep_files is not None:
            # moved there once committed: a failed product leaves no file, an update its old one
            gzipped = fetched.path.name.endswith(".gz")
            job.kept = self.options.keep_files / f"{job.key}.fits{'.gz' if gzipped else ''}"
            stored = str(job.kept.resolve())
        return ProductTask(
            path=path,
            relative_path=record.did,
            key=job.key,
            did=record.did,
            file_size=fetched.size,
            file_mtime=path.stat().st_mtime,
            metadata=values,
            metadata_digest=metadata_digest(record.values),
            settings=self.settings,
            stored_path=stored,
        )

    def _commit(self, job: _Job, result: PreparedProduct | ProductFailure) -> bool:
        """Write a product's rows and bookkeeping row in one transaction; False if it failed."""
        record = job.record
        if isinstance(result, ProductFailure):
            self._finish(record, FAILED, job.attempts, result.reason)
            return False
        problems = self.products.problems(result)
        if problems:
            self._finish(record, FAILED, job.attempts, "; ".join(problems))
            return False
        done = HarvestRecord(
            record.did,
            self.tap_url,
            record.digest,
            HARVESTED,
            job.attempts,
            file_url=job.file_url,
        )
        previous = {result.task.path: job.known} if job.known else {}
        renamed = job.known.obs_publisher_did if job.known else record.did

        def bookkeeping(conn: Connection) -> None:
            if renamed != record.did:
                self.records.delete(conn, renamed)
            self.records.put(conn, done)

        try:
            write_batch([result], previous, self.products, self.store, also=bookkeeping)
        except SQLAlchemyError as error:
            reason = getattr(error, "orig", None) or error
            self._finish(record, FAILED, job.attempts, f"the catalogue refused its rows ({reason})")
            return False
        if job.known is None:
            self.report.harvested += 1
        else:
            self.report.updated += 1
        return True

    def _finish(
        self,
        record: ArchiveRecord,
        state: str,
        attempts: int,
        reason: str,
        *,
        withhold: bool = False,
    ) -> None:
        """Record a held-back or failed product, and count it.

        With ``withhold``, a product harvested before that the archive now
        holds back (a release date moved into the future) takes that release
        date in the catalogue too, in the same transaction, so that it is no
        longer served.
        """
        reason = reason.replace("\r", " ").replace("\n", " ")
        row = HarvestRecord(
            record.did,
            self.tap_url,
            record.digest,
            state,
            attempts,
            reason,
            record.release_date if state == HELD else None,
        )
        if withhold:
            with self.products.catalogue.begin_writing(WRITTEN_SCHEMAS) as conn:
                self.products.set_release_date(conn, record.did, record.release_date)
                self.records.put(conn, row)
        else:
            self.records.put_alone(row)
        line = f"{record.did}: {reason}"
        if state == HELD:
            self.report.held_back += 1
            self.report.held.append(line)
        else:
            self.report.failed += 1
            self.report.failures.append(line)
        logger.info("%s %s", state, line)

    def _fail_listed(self, did: str, reason: str, previous: HarvestRecord | None) -> None:
        """Count a row that cannot be harvested at all (no DID or URL, bad release date)."""
        if did.startswith("ivo://"):
            attempts = previous.attempts + 1 if previous else 1
            self.records.put_alone(HarvestRecord(did, self.tap_url, "", FAILED, attempts, reason))
        self.report.failed += 1
        self.report.failures.append(f"{did}: {reason}")


def _has_file(product: KnownProduct | None) -> bool:
    """Whether a product is in the catalogue with its file: the archive's URL, or a kept copy.

    A kept copy can be missing after a harvest killed between the commit
    and the move, or deleted by hand: the product is then fetched again.
    """
    if product is None:
        return False
    path = product.file_path
    return path.startswith(("http://", "https://")) or Path(path).is_file()


class _ByteCounter:
    """Bytes downloaded by all threads, for the bytes/s figure."""

    def __init__(self) -> None:
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n


class _ProgressBar(tqdm):
    """Products done, and their rates: products/s and MB/s, both averaged since the start.

    tqdm's own rate is smoothed over the last updates by default; here both
    figures divide by the same elapsed time, so that MB/s over products/s
    is the mean size of a product, and the last figures are the run's.
    """

    def __init__(self, total: int, counted: _ByteCounter, *, disable: bool) -> None:
        super().__init__(total=total, unit="product", desc="harvest", smoothing=0, disable=disable)
        self.counted = counted

    def advance(self) -> None:
        """Count one product done (harvested, held back or failed), and show the MB/s."""
        self.update(1)
        elapsed = self.format_dict.get("elapsed") or 0.0
        if elapsed:
            rate = self.counted.total / elapsed / 1e6
            self.set_postfix_str(f"{rate:.2f} MB/s", refresh=False)
