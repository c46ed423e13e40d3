"""Publish: vosim's similarity tables into an archive's own database and TAP service.

The export stage of plugin mode, after the pipeline. An archive that
already runs a TAP service gets the ``similarity`` tables in its own
PostgreSQL database, described in its own TAP_SCHEMA, joined to its own
``ivoa.obscore`` on ``obs_publisher_did``: no second TAP server.

- Source: vosim's catalogue (`Settings`); target: the archive's database.
- Only public images go in (`publishable`): the archive's TAP service does
  not know vosim's proprietary rule, so the rows of proprietary images are
  never written there. ``refresh`` adds, incrementally, the images whose
  proprietary period has ended since (and takes out any that became
  proprietary again).
- Everything happens in one transaction of the archive's database, rows
  streamed with COPY: a failure leaves the archive as it was; a second run
  writes the same rows again.
- TAP_SCHEMA: the generic path (CADC-, Rubin-style services read TAP_SCHEMA)
  writes vosim's rows into the archive's TAP_SCHEMA. GAVO DaCHS serves only
  tables its resource descriptors declare, so there vosim writes such a
  descriptor instead (``tap_schema.dachs``) for ``dachs imp -m``.

Only the current model of each image kind (``is_current = 1``) is published,
with its vectors and neighbour lists: the archive serves one ranking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from model_training.ingest.obscore_row import preview_url
from tap_schema import Catalogue, Settings, open_catalogue
from tap_schema.bulk_copy import copy_rows
from tap_schema.dachs import partial_resource_descriptor, write_resource_descriptor
from tap_schema.plugin_database import PLUGIN_SCHEMA, ArchiveDatabase
from tap_schema.release import utc_now

from .archive_rows import ArchiveMapping, read_archive_images
from .selection import Selection, read_vosim_images, select_images

__all__ = [
    "PublishError",
    "PublishReport",
    "UnpublishReport",
    "publish",
    "unpublish",
]

logger = logging.getLogger(__name__)

_CHUNK = 500
"""Identifiers per ``IN (…)`` list: well below SQLite's limit on bound parameters."""

_FETCH = 10_000
"""Rows fetched from vosim's catalogue at a time."""


class PublishError(ValueError):
    """Publishing cannot go ahead as asked; nothing was changed in the archive."""


@dataclass
class PublishReport:
    """What a publication wrote into the archive.

    Parameters
    ----------
    refresh
        True for an incremental refresh, False for a full publication.
    rows
        Rows written per table (bare table names).
    removed_images
        Images taken out (a refresh, for images no longer public).
    selection
        Which images were published and why the others were not.
    created_tables
        Tables created by this run.
    tap_schema
        The archive's TAP_SCHEMA that now describes the tables, if vosim
        wrote it (generic path).
    dachs_rd
        The DaCHS resource descriptor written (DaCHS path).
    copy_seconds
        Time spent streaming each table's rows (reading vosim's catalogue,
        filtering and COPY together).
    rebuild_seconds
        Time spent building keys and indexes again after a full load.
    seconds
        Time of the whole publication.
    repaired
        One line per thing a cut-short earlier publication left, which this
        one made whole again (the DaCHS resource descriptor).
    """

    refresh: bool
    rows: dict[str, int] = field(default_factory=dict)
    removed_images: int = 0
    selection: Selection = field(default_factory=Selection)
    created_tables: list[str] = field(default_factory=list)
    tap_schema: str | None = None
    dachs_rd: Path | None = None
    copy_seconds: dict[str, float] = field(default_factory=dict)
    rebuild_seconds: float = 0.0
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)

    def copy_rate(self, table: str | None = None) -> float:
        """Rows per second streamed into one table, or into all of them."""
        names = [table] if table else list(self.rows)
        rows = sum(self.rows.get(name, 0) for name in names)
        seconds = sum(self.copy_seconds.get(name, 0.0) for name in names)
        return rows / seconds if seconds > 0 else 0.0

    def __str__(self) -> str:
        verb = "refreshed" if self.refresh else "published"
        counts = ", ".join(f"{count} {name}" for name, count in self.rows.items())
        lines = [
            f"{verb} {counts or 'nothing'} in {self.seconds:.1f} s "
            f"({self.copy_rate():,.0f} rows/s copied)"
        ]
        if self.removed_images:
            lines.append(f"removed {self.removed_images} images that are no longer public")
        held = self.selection
        lines.append(
            f"held back: {len(held.proprietary)} proprietary, "
            f"{len(held.not_in_archive)} not in the archive's table, "
            f"{len(held.disagreeing)} classified differently by the archive"
        )
        lines += [f"  {did}: {why}" for did, why in sorted(held.disagreeing.items())[:10]]
        if self.created_tables:
            lines.append(f"created {', '.join(self.created_tables)}")
        if self.tap_schema:
            lines.append(f"described in {self.tap_schema}")
        if self.dachs_rd:
            lines.append(f"now register the tables with DaCHS: dachs imp -m {self.dachs_rd}")
        lines += self.repaired
        return "\n".join(lines)


@dataclass
class UnpublishReport:
    """What `unpublish` removed."""

    dropped: list[str] = field(default_factory=list)
    tap_schema: str | None = None
    dachs_rd: Path | None = None

    def __str__(self) -> str:
        lines = [f"dropped {', '.join(self.dropped) or 'nothing (no vosim table was left)'}"]
        if self.tap_schema:
            lines.append(f"removed vosim's rows from {self.tap_schema}")
        if self.dachs_rd:
            lines.append(f"removed {self.dachs_rd}")
        return "\n".join(lines)


def publish(
    settings: Settings,
    engine_url: str,
    *,
    mapping: ArchiveMapping | None = None,
    tap_schema_name: str | None = None,
    dachs_rd: Path | None = None,
    refresh: bool = False,
    now: datetime | None = None,
) -> PublishReport:
    """Publish vosim's public similarity rows into an archive's database.

    Parameters
    ----------
    settings
        vosim's installation (its catalogue is the source; its public URL
        the base of the preview URLs written).
    engine_url
        SQLAlchemy URL of the archive's PostgreSQL database.
    mapping
        Where the archive keeps release dates, categories and kinds;
        standard ObsCore column names by default.
    tap_schema_name
        The archive's TAP_SCHEMA (default: the schema named TAP_SCHEMA in
        any case). Not used with ``dachs_rd``.
    dachs_rd
        For a GAVO DaCHS archive: where to write the resource descriptor
        (below DaCHS' inputs directory); DaCHS' TAP_SCHEMA is left to
        ``dachs imp -m``.
    refresh
        Only add the images that became public since the last publication
        (and remove any that are no longer public), rather than rewrite all.
    now
        Instant of publication (naive UTC); the current time by default.

    Raises
    ------
    PublishError
        If no public URL is configured, the archive cannot be reached, is a DaCHS database without
        ``dachs_rd``, has not been published to before a refresh, or its
        tables or TAP_SCHEMA do not fit; the archive is then unchanged.
    """
    if settings.public_url is None:
        raise PublishError(
            "set VOSIM_PUBLIC_URL to the URL where the archive serves vosim's endpoints (e.g. "
            "https://archive.example.org/vosim): the archive's tables get preview URLs under it"
        )
    started = time.perf_counter()
    mapping = mapping or ArchiveMapping()
    now = now or utc_now()
    report = PublishReport(refresh=refresh, dachs_rd=dachs_rd)
    catalogue = open_catalogue(settings, create=False)
    archive = ArchiveDatabase.connect(engine_url)
    try:
        try:
            vosim_images = read_vosim_images(catalogue)
        except sa.exc.DBAPIError as error:
            raise PublishError(
                f"cannot read vosim's catalogue {settings.db_url} ({error.orig}); run vosim "
                "ingest and the later stages first, with the same VOSIM_DATA_DIR / VOSIM_DB_URL"
            ) from None
        with _archive_transaction(archive) as conn:
            dachs = archive.is_dachs(conn)
            if dachs and dachs_rd is None:
                raise PublishError(
                    "this is a GAVO DaCHS database: DaCHS serves only tables that a resource "
                    "descriptor declares; publish with --dachs-rd PATH (below DaCHS' inputs "
                    "directory) and register it with dachs imp -m PATH"
                )
            if dachs_rd is None:
                report.tap_schema = archive.find_tap_schema(conn, tap_schema_name)
            else:
                report.repaired = _unfinished_descriptor(archive, conn, dachs_rd)
            described = read_archive_images(conn, mapping, vosim_images.keys())
            report.selection = select_images(vosim_images, described, mapping, now)
            copier = _Copier(catalogue, archive, conn, settings, report)
            if refresh:
                copier.refresh()
            else:
                report.created_tables = archive.create(conn)
                copier.replace_all()
            if report.tap_schema:
                archive.register(conn, report.tap_schema)
        if dachs_rd is not None:
            write_resource_descriptor(dachs_rd, PLUGIN_SCHEMA)
    finally:
        archive.dispose()
        catalogue.dispose()
    report.seconds = time.perf_counter() - started
    logger.info("%s", report)
    return report


def unpublish(
    engine_url: str,
    *,
    tap_schema_name: str | None = None,
    dachs_rd: Path | None = None,
) -> UnpublishReport:
    """Remove from an archive exactly what `publish` added, in one transaction.

    Drops vosim's tables (and the ``similarity`` schema if publish created
    it), deletes vosim's TAP_SCHEMA rows (generic path) and the DaCHS
    resource descriptor (DaCHS path). In a DaCHS database, DaCHS must have
    been told first (``dachs drop PATH``): its own registry of the tables is
    DaCHS' to change.

    Raises
    ------
    PublishError
        If DaCHS still serves the tables, or the archive cannot be reached.
    """
    report = UnpublishReport()
    archive = ArchiveDatabase.connect(engine_url)
    try:
        with _archive_transaction(archive) as conn:
            if archive.is_dachs(conn):
                _refuse_while_dachs_serves(conn, dachs_rd)
            else:
                present = archive.existing_tables(conn)
                if present or tap_schema_name is not None:
                    report.tap_schema = archive.find_tap_schema(conn, tap_schema_name)
                    archive.unregister(conn, report.tap_schema)
            report.dropped = archive.drop(conn)
        if dachs_rd is not None and dachs_rd.is_file():
            dachs_rd.unlink()
            report.dachs_rd = dachs_rd
    finally:
        archive.dispose()
    return report


def _unfinished_descriptor(archive: ArchiveDatabase, conn: Connection, path: Path) -> list[str]:
    """Return a repair line if the last publication committed its tables but not its RD.

    The RD is written after the archive's transaction commits (a file cannot
    join it): a publication killed in between leaves tables DaCHS cannot
    serve, or a ``.partial`` RD. This run writes the RD again; the line says so.
    """
    if partial_resource_descriptor(path.resolve()).exists():
        why = "was cut short while writing it"
    elif archive.existing_tables(conn) and not path.is_file():
        why = "committed the tables but not it"
    else:
        return []
    line = f"repaired: the last publication {why}; {path} is written again"
    logger.warning("%s", line)
    return [line]


def _refuse_while_dachs_serves(conn: Connection, dachs_rd: Path | None) -> None:
    served = conn.execute(
        sa.text("SELECT tablename FROM dc.tablemeta WHERE lower(tablename) LIKE :prefix"),
        {"prefix": f"{PLUGIN_SCHEMA}.%"},
    ).scalars()
    served = sorted(served)
    if served:
        where = dachs_rd or "PATH-OF-THE-RD"
        raise PublishError(
            f"GAVO DaCHS still serves {', '.join(served)}; run dachs drop {where} first"
        )


@contextmanager
def _archive_transaction(archive: ArchiveDatabase) -> Iterator[Connection]:
    """One transaction on the archive's database; failing to connect is a `PublishError`."""
    try:
        connection = archive.engine.connect()
    except OperationalError as error:
        url = archive.engine.url.render_as_string(hide_password=True)
        raise PublishError(f"cannot connect to the archive's database {url}: {error}") from None
    with connection, connection.begin():
        yield connection


class _Copier:
    """Streams the rows of the published images from vosim's catalogue into the archive."""

    def __init__(
        self,
        catalogue: Catalogue,
        archive: ArchiveDatabase,
        conn: Connection,
        settings: Settings,
        report: PublishReport,
    ) -> None:
        self.catalogue = catalogue
        self.archive = archive
        self.conn = conn
        self.settings = settings
        self.report = report
        self.published = report.selection.published
        self.models = self._current_models()

    def replace_all(self) -> None:
        """Empty the tables and copy every published row again."""
        self.archive.empty(self.conn)
        with self.archive.keys_and_indexes_rebuilt(self.conn):
            self._copy("model", self._table_rows("model"))
            self._copy("image", self._image_rows(None))
            self._copy("embedding", self._embedding_rows(None))
            self._copy("neighbour", self._neighbour_rows(None))
            self._copy("category_compat", self._table_rows("category_compat"))
            rebuilding = time.perf_counter()
        self.report.rebuild_seconds = time.perf_counter() - rebuilding

    def refresh(self) -> None:
        """Add newly public images' rows, remove those of images no longer public."""
        self.archive.check_published(self.conn)
        model = self.archive.table("model")
        published_models = set(self.conn.execute(sa.select(model.c.model_id)).scalars())
        if published_models != set(self.models):
            raise PublishError(
                f"the current models changed since the last publication (archive: "
                f"{sorted(published_models)}, vosim: {sorted(self.models)}); run vosim publish "
                "without --refresh"
            )
        image = self.archive.table("image")
        in_archive = set(self.conn.execute(sa.select(image.c.obs_publisher_did)).scalars())
        added, removed = self.published - in_archive, in_archive - self.published
        self._remove(removed)
        self.report.removed_images = len(removed)
        self._copy("image", self._image_rows(added))
        self._copy("embedding", self._embedding_rows(added))
        self._copy("neighbour", self._neighbour_rows(added))
        self.conn.execute(self.archive.table("category_compat").delete())
        self._copy("category_compat", self._table_rows("category_compat"))

    def _current_models(self) -> list[int]:
        model = self.catalogue.table("similarity.model")
        with self.catalogue.begin() as source:
            query = sa.select(model.c.model_id).where(model.c.is_current == 1)
            return sorted(source.execute(query).scalars())

    def _remove(self, dids: set[str]) -> None:
        neighbour = self.archive.table("neighbour")
        embedding, image = self.archive.table("embedding"), self.archive.table("image")
        for chunk in _chunks(dids):
            self.conn.execute(
                neighbour.delete().where(
                    neighbour.c.obs_publisher_did.in_(chunk) | neighbour.c.neighbour_did.in_(chunk)
                )
            )
            self.conn.execute(embedding.delete().where(embedding.c.obs_publisher_did.in_(chunk)))
            self.conn.execute(image.delete().where(image.c.obs_publisher_did.in_(chunk)))

    def _copy(self, name: str, rows: Iterable[Sequence[Any]]) -> None:
        started = time.perf_counter()
        count = copy_rows(self.conn, self.archive.table(name), rows)
        seconds = self.report.copy_seconds
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        self.report.rows[name] = self.report.rows.get(name, 0) + count

    def _select(self, name: str) -> tuple[sa.Table, list[str], sa.Select]:
        """Return the source table, the target's column names, and a query of those columns.

        Rows of per-model tables are restricted to the current models.
        """
        source = self.catalogue.table(f"{PLUGIN_SCHEMA}.{name}")
        names = [column.name for column in self.archive.table(name).columns]
        query = sa.select(*(source.c[name] for name in names))
        if "model_id" in names:
            query = query.where(source.c.model_id.in_(self.models))
        return source, names, query

    def _table_rows(self, name: str) -> Iterator[tuple[Any, ...]]:
        """Every row of a table that describes no single image (models, categories)."""
        return self._stream(self._select(name)[2])

    def _embedding_rows(self, dids: set[str] | None) -> Iterator[tuple[Any, ...]]:
        """Vectors of the published images (None), or of some of them."""
        source, names, query = self._select("embedding")
        return self._of_images(query, source.c.obs_publisher_did, names, dids)

    def _of_images(
        self, query: sa.Select, column: sa.Column, names: list[str], dids: set[str] | None
    ) -> Iterator[tuple[Any, ...]]:
        """Keep the rows of ``query`` whose ``column`` is one of ``dids`` (None: published).

        All published images are filtered in Python in one pass over the
        table; a few (a refresh) are looked up by index, a chunk at a time.
        """
        position = names.index(column.name)
        if dids is None:
            published = self.published
            return (row for row in self._stream(query) if row[position] in published)
        return (
            row for chunk in _chunks(dids) for row in self._stream(query.where(column.in_(chunk)))
        )

    def _image_rows(self, dids: set[str] | None) -> Iterator[tuple[Any, ...]]:
        """Image rows, their preview URLs written for the configured public URL.

        Ingest wrote each preview URL with the public URL of its day; the
        archive gets URLs under the public URL vosim is reachable at now
        (``VOSIM_PUBLIC_URL``), rebuilt from the product key.
        """
        source = self.catalogue.table("similarity.image")
        product = self.catalogue.table("vosim.product")
        names = [column.name for column in self.archive.table("image").columns]
        query = sa.select(*(source.c[name] for name in names), product.c.product_key).select_from(
            source.outerjoin(product, product.c.obs_publisher_did == source.c.obs_publisher_did)
        )
        position = names.index("preview_url")
        for row in self._of_images(query, source.c.obs_publisher_did, names, dids):
            values, key = list(row[:-1]), row[-1]
            if key is not None:
                values[position] = preview_url(self.settings, key)
            yield tuple(values)

    def _neighbour_rows(self, dids: set[str] | None) -> Iterator[tuple[Any, ...]]:
        """Neighbour rows with both ends published; with ``dids``, only those touching them."""
        source, names, query = self._select("neighbour")
        query_at, neighbour_at = names.index("obs_publisher_did"), names.index("neighbour_did")
        published = self.published
        if dids is None:
            for row in self._stream(query):
                if row[query_at] in published and row[neighbour_at] in published:
                    yield row
            return
        for row in self._of_images(query, source.c.obs_publisher_did, names, dids):
            if row[neighbour_at] in published:
                yield row
        for row in self._of_images(query, source.c.neighbour_did, names, dids):
            # rows that start at one of ``dids`` were written just above
            if row[query_at] in published and row[query_at] not in dids:
                yield row

    def _stream(self, query: sa.Select) -> Iterator[tuple[Any, ...]]:
        """Stream the rows of a query on vosim's catalogue, 10,000 at a time.

        Where SQLAlchemy would pass every value through unchanged (no vector
        or SQLite timestamp to convert), the driver's own cursor is read:
        SQLAlchemy's row objects cost about twice the time of reading the
        rows themselves, and a neighbour table has a thousand rows per image.
        """
        with self.catalogue.engine.connect() as source:
            dialect = source.dialect
            if any(
                column.type.dialect_impl(dialect).result_processor(dialect, None) is not None
                for column in query.selected_columns
            ):
                result = source.execution_options(yield_per=_FETCH).execute(query)
                for row in result:
                    yield tuple(row)
                return
            compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
            parameters: Any = compiled.params
            if compiled.positional:
                parameters = tuple(parameters[name] for name in compiled.positiontup or ())
            cursor = source.connection.driver_connection.cursor()
            try:
                cursor.execute(str(compiled), parameters)
                while rows := cursor.fetchmany(_FETCH):
                    yield from rows
            finally:
                cursor.close()


def _chunks(values: set[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]
