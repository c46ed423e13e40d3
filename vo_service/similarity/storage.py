"""The similarity service's reads from the catalogue: current vectors, categories, changes.

The only module of the similarity service that talks to the database. It
reads, per image kind, the vectors of the current model (``similarity.model``
``is_current = 1``) with each image's category, release date and cut-out
centre (``similarity.image``), the
category compatibility table, and a cheap fingerprint of all that, which the
service polls to know when to reload.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa

from tap_schema import Catalogue

__all__ = ["CurrentModel", "KindMetadata", "KindVectors", "VectorStorage"]

logger = logging.getLogger(__name__)

_FETCH_ROWS = 4_096
_ARRAY_HEADER_BYTES = 20
"""Header of a 1-D binary array: ndim, has-null flag, element type, size, lower bound."""
_ARRAY_ELEMENTS = np.dtype([("length", ">i4"), ("value", ">f4")])


class _PostgresFloatArray(sa.types.TypeDecorator):
    """``array_send`` of a ``REAL[]`` column, read straight into a float32 vector."""

    impl = sa.LargeBinary
    cache_ok = True

    def process_result_value(self, value: bytes | None, dialect: sa.Dialect) -> np.ndarray | None:
        if value is None:
            return None
        elements = np.frombuffer(value, dtype=_ARRAY_ELEMENTS, offset=_ARRAY_HEADER_BYTES)
        return elements["value"].astype(np.float32)


@dataclass(frozen=True)
class CurrentModel:
    """The model serving one image kind."""

    image_kind: str
    model_id: int


@dataclass(frozen=True)
class KindVectors:
    """Everything the index of one kind is built from, sorted by DID."""

    model: CurrentModel
    dids: list[str]
    vectors: np.ndarray
    categories: list[str | None]
    release_dates: list[datetime | None]
    cutout_centres: list[tuple[float | None, float | None]]


@dataclass(frozen=True)
class KindMetadata:
    """What can change about the images of an index without changing their vectors."""

    categories: list[str | None]
    release_dates: list[datetime | None]
    cutout_centres: list[tuple[float | None, float | None]]


class VectorStorage:
    """Reads the similarity tables for the service.

    Parameters
    ----------
    catalogue
        The open catalogue.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.model = catalogue.table("similarity.model")
        self.embedding = catalogue.table("similarity.embedding")
        self.obscore = catalogue.table("ivoa.obscore")
        self.compat = catalogue.table("similarity.category_compat")
        self.product = catalogue.table("vosim.product")
        self.image = catalogue.table("similarity.image")

    def current_models(self) -> list[CurrentModel]:
        """Return the current model of each image kind (the newest, should several be marked)."""
        query = (
            sa.select(self.model.c.image_kind, sa.func.max(self.model.c.model_id))
            .where(self.model.c.is_current == 1)
            .group_by(self.model.c.image_kind)
            .order_by(self.model.c.image_kind)
        )
        with self.catalogue.engine.connect() as connection:
            return [CurrentModel(kind, model_id) for kind, model_id in connection.execute(query)]

    def fingerprint(self) -> tuple[tuple, tuple]:
        """Return two values that change when what the index holds may have changed.

        The first covers the vectors: the current models and their number of
        vectors (training adds models, embedding adds vectors). The second
        covers what can change without them: the number and latest ingest
        time of the products (a re-ingest may change a release date or a
        category) and the compatibility table.
        """
        counts = (
            sa.select(
                self.model.c.model_id,
                self.model.c.image_kind,
                sa.select(sa.func.count())
                .select_from(self.embedding)
                .where(self.embedding.c.model_id == self.model.c.model_id)
                .scalar_subquery(),
            )
            .where(self.model.c.is_current == 1)
            .order_by(self.model.c.model_id)
        )
        products = sa.select(sa.func.count(), sa.func.max(self.product.c.ingested_at))
        pairs = sa.select(self.compat.c.scientific_category, self.compat.c.compatible_category)
        with self.catalogue.engine.connect() as connection:
            return (
                tuple(tuple(row) for row in connection.execute(counts)),
                (
                    tuple(connection.execute(products).one()),
                    tuple(sorted(tuple(row) for row in connection.execute(pairs))),
                ),
            )

    def compatibility(self) -> dict[str, frozenset[str]]:
        """For each category, the other categories whose images may be listed as similar."""
        pairs = sa.select(self.compat.c.scientific_category, self.compat.c.compatible_category)
        allowed: dict[str, set[str]] = {}
        with self.catalogue.engine.connect() as connection:
            for category, compatible in connection.execute(pairs):
                allowed.setdefault(category, set()).add(compatible)
        return {category: frozenset(others) for category, others in allowed.items()}

    def kind_vectors(self, model: CurrentModel) -> KindVectors:
        """Read the vectors of one model, for the images of its kind, sorted by DID."""
        dids: list[str] = []
        categories: list[str | None] = []
        releases: list[datetime | None] = []
        centres: list[tuple[float | None, float | None]] = []
        blocks: list[np.ndarray] = []
        for rows in self._vector_rows(model):
            dids.extend(row[0] for row in rows)
            blocks.append(np.stack([np.asarray(row[1], dtype=np.float32) for row in rows]))
            categories.extend(row[2] for row in rows)
            releases.extend(row[3] for row in rows)
            centres.extend((row[4], row[5]) for row in rows)
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
        blocks.clear()
        # a vector with NaN (stored before embed refused them) would rank as NaN: leave it out
        finite = np.isfinite(vectors).all(axis=1) if len(vectors) else np.zeros(0, bool)
        if not finite.all():
            logger.warning(
                "model %d: %d vectors are not finite and are not ranked, e.g. %s; delete them"
                " and run vosim embed again",
                model.model_id,
                int((~finite).sum()),
                dids[int(np.flatnonzero(~finite)[0])],
            )
        # sorted here, not in SQL: PostgreSQL's collation may order strings differently
        order = sorted(np.flatnonzero(finite).tolist(), key=dids.__getitem__)
        vectors = vectors[order]
        return KindVectors(
            model,
            [dids[i] for i in order],
            vectors,
            [categories[i] for i in order],
            [releases[i] for i in order],
            [centres[i] for i in order],
        )

    def kind_metadata(self, model: CurrentModel, dids: list[str]) -> KindMetadata:
        """Read the category, release date and cut-out centre of the images ``dids``, in order.

        An image whose ObsCore row is gone gets no release date: it is never public.
        """
        query = (
            sa.select(
                self.embedding.c.obs_publisher_did,
                self.obscore.c.scientific_category,
                self.obscore.c.obs_release_date,
                self.image.c.cutout_ra,
                self.image.c.cutout_dec,
            )
            .join(
                self.obscore,
                self.obscore.c.obs_publisher_did == self.embedding.c.obs_publisher_did,
            )
            .outerjoin(
                self.image, self.image.c.obs_publisher_did == self.embedding.c.obs_publisher_did
            )
            .where(self.embedding.c.model_id == model.model_id)
            .where(self.obscore.c.image_kind == model.image_kind)
        )
        with self.catalogue.engine.connect() as connection:
            found = {row[0]: tuple(row[1:]) for row in connection.execute(query)}
        rows = [found.get(did, (None, None, None, None)) for did in dids]
        return KindMetadata(
            [row[0] for row in rows],
            [row[1] for row in rows],
            [(row[2], row[3]) for row in rows],
        )

    def _vector_rows(self, model: CurrentModel) -> Iterator[list[tuple]]:
        vector: sa.ColumnElement = self.embedding.c.vector
        if self.catalogue.dialect == "postgresql":
            # REAL[] in PostgreSQL's binary array format: psycopg would build a
            # Python float per element (half a billion for 260,000 x 2048)
            vector = sa.func.array_send(vector, type_=_PostgresFloatArray())
        query = (
            sa.select(
                self.embedding.c.obs_publisher_did,
                vector,
                self.obscore.c.scientific_category,
                self.obscore.c.obs_release_date,
                self.image.c.cutout_ra,
                self.image.c.cutout_dec,
            )
            .join(
                self.obscore,
                self.obscore.c.obs_publisher_did == self.embedding.c.obs_publisher_did,
            )
            .outerjoin(
                self.image, self.image.c.obs_publisher_did == self.embedding.c.obs_publisher_did
            )
            .where(self.embedding.c.model_id == model.model_id)
            .where(self.obscore.c.image_kind == model.image_kind)
        )
        with self.catalogue.engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(query)
            for partition in result.partitions(_FETCH_ROWS):
                yield [tuple(row) for row in partition]
