"""Bulk reads and writes of ``similarity.neighbour`` and its bookkeeping, on SQLite and PostgreSQL.

A full run writes N x k rows: 260 million for the paper's 260,000 continuum
images. So rows are never materialised as Python objects all at once; each
block of lists is streamed straight from numpy arrays into the database,
inside the caller's one transaction:

* **PostgreSQL**: one ``COPY ... FROM STDIN (FORMAT BINARY)`` per block
  (psycopg 3 ``cursor.copy``). Unlike `tap_schema.bulk_copy`, which
  hands psycopg one Python row at a time, the binary tuples are built by
  numpy as
  fixed-size records, one record layout per pair of DID lengths (archive DIDs
  come in a handful of lengths), so no per-row Python code runs and no
  similarity is formatted as text. For large loads the table's primary key,
  foreign keys and index are dropped first and rebuilt at the end
  (`bulk_load`): maintaining a B-tree on ``neighbour_did`` row by row
  slows COPY several times (benchmarks/README.md, "Neighbour writes").
* **SQLite**: ``executemany`` over a generator of tuples, in the caller's
  transaction (SQLite has no COPY; the embedded database is for the demo),
  with the ``neighbour_did`` index rebuilt after large loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection

from tap_schema import Catalogue
from tap_schema.bulk_copy import psycopg_connection
from tap_schema.release import utc_now

__all__ = [
    "BULK_LOAD_ROWS",
    "Member",
    "NeighbourWriter",
    "bulk_load",
    "delete_lists",
    "delete_members",
    "delete_models",
    "lists_containing",
    "read_lists",
    "read_members",
    "read_run",
    "vector_digest",
    "write_members",
    "write_run",
]

BULK_LOAD_ROWS = 1_000_000
"""From this many rows on, a load drops and rebuilds the table's indexes."""
_BATCH = 1000
"""DIDs per IN (...) list."""
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
_COPY_TRAILER = b"\xff\xff"
_COLUMNS = ("obs_publisher_did", "rank", "neighbour_did", "cosine_similarity", "model_id")


@dataclass(frozen=True)
class Member:
    """An image as it was when its list was computed (``vosim.neighbour_member``)."""

    scientific_category: str | None
    vector_digest: str
    n_neighbours: int
    last_similarity: float | None


def vector_digest(vector: np.ndarray) -> str:
    """BLAKE2b-128 of a vector's float32 bytes: tells a re-embedded image from an unchanged one."""
    return hashlib.blake2b(
        np.ascontiguousarray(vector, "<f4").tobytes(), digest_size=16
    ).hexdigest()


class NeighbourWriter:
    """Append neighbour lists to ``similarity.neighbour`` in the caller's transaction.

    Parameters
    ----------
    conn
        Connection with an open transaction.
    catalogue
        The catalogue (for the table and the dialect).
    model_id
        Model whose lists are written.
    dids
        The DIDs that the query and neighbour indices of `write` refer to.
    """

    def __init__(
        self, conn: Connection, catalogue: Catalogue, model_id: int, dids: Sequence[str]
    ) -> None:
        self.conn = conn
        self.catalogue = catalogue
        self.model_id = model_id
        self.dids = list(dids)
        self.rows_written = 0
        self._records = _BinaryRecords(self.dids) if catalogue.dialect == "postgresql" else None

    def write(self, queries: np.ndarray, similarities: np.ndarray, neighbours: np.ndarray) -> int:
        """Write one block of lists.

        Parameters
        ----------
        queries
            ``(r,)`` indices into ``dids`` of the query images.
        similarities
            ``(r, k)`` float32, best first, ``-inf`` past the end of a list.
        neighbours
            ``(r, k)`` indices into ``dids`` of the neighbours.

        Returns
        -------
        int
            Rows written.
        """
        valid = np.isfinite(similarities)
        lengths = valid.sum(1)
        query = np.repeat(np.asarray(queries, np.int64), lengths)
        rank = np.nonzero(valid)[1].astype(np.int32) + 1
        neighbour = np.asarray(neighbours)[valid].astype(np.int64)
        similarity = similarities[valid].astype(np.float32)
        if query.size == 0:
            return 0
        if self._records is not None:
            self._copy(query, rank, neighbour, similarity)
        else:
            self._executemany(query, rank, neighbour, similarity)
        self.rows_written += query.size
        return int(query.size)

    def _copy(
        self, query: np.ndarray, rank: np.ndarray, neighbour: np.ndarray, similarity: np.ndarray
    ) -> None:
        assert self._records is not None
        cursor = psycopg_connection(self.conn).cursor()
        sql = f"COPY similarity.neighbour ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.write(_COPY_SIGNATURE)
            for chunk in self._records.encode(query, rank, neighbour, similarity, self.model_id):
                copy.write(chunk)
            copy.write(_COPY_TRAILER)

    def _executemany(
        self, query: np.ndarray, rank: np.ndarray, neighbour: np.ndarray, similarity: np.ndarray
    ) -> None:
        cursor = self.conn.connection.driver_connection.cursor()
        dids = self.dids
        rows = zip(
            map(dids.__getitem__, query.tolist()),
            rank.tolist(),
            map(dids.__getitem__, neighbour.tolist()),
            similarity.tolist(),
            repeat(self.model_id),
            strict=False,
        )
        placeholders = ", ".join("?" * len(_COLUMNS))
        cursor.executemany(
            f"INSERT INTO similarity.neighbour ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            rows,
        )


class _BinaryRecords:
    """Encode neighbour rows as PostgreSQL binary COPY tuples with numpy.

    A tuple is ``int16 5`` then, per column, ``int32 length`` and the value
    in network byte order. Rows whose two DIDs have the same lengths have the
    same layout, so each such group is one numpy structured array whose bytes
    are the tuples; the order of rows in a COPY does not matter.
    """

    def __init__(self, dids: Sequence[str]) -> None:
        encoded = [did.encode() for did in dids]
        self.lengths = np.array([len(did) for did in encoded], dtype=np.int64)
        self.local = np.zeros(len(encoded), dtype=np.int64)
        self.by_length: dict[int, np.ndarray] = {}
        for length in np.unique(self.lengths).tolist():
            members = np.nonzero(self.lengths == length)[0]
            self.by_length[length] = np.array([encoded[i] for i in members], dtype=f"S{length}")
            self.local[members] = np.arange(members.size)

    def encode(
        self,
        query: np.ndarray,
        rank: np.ndarray,
        neighbour: np.ndarray,
        similarity: np.ndarray,
        model_id: int,
    ) -> Iterator[bytes]:
        """Yield the binary tuples of some rows, one chunk per layout."""
        layout = self.lengths[query] * 65536 + self.lengths[neighbour]
        order = np.argsort(layout, kind="stable")
        layouts, starts = np.unique(layout[order], return_index=True)
        stops = [*starts[1:].tolist(), order.size]
        for code, start, stop in zip(layouts.tolist(), starts.tolist(), stops, strict=True):
            rows = order[start:stop]
            query_length, neighbour_length = divmod(code, 65536)
            record = np.empty(rows.size, dtype=_tuple_layout(query_length, neighbour_length))
            record["fields"] = len(_COLUMNS)
            record["query_length"] = query_length
            record["query"] = self.by_length[query_length][self.local[query[rows]]]
            record["rank_length"] = 4
            record["rank"] = rank[rows]
            record["neighbour_length"] = neighbour_length
            record["neighbour"] = self.by_length[neighbour_length][self.local[neighbour[rows]]]
            record["similarity_length"] = 8
            record["similarity"] = similarity[rows]
            record["model_length"] = 4
            record["model"] = model_id
            yield record.tobytes()


def _tuple_layout(query_length: int, neighbour_length: int) -> np.dtype:
    return np.dtype(
        [
            ("fields", ">i2"),
            ("query_length", ">i4"),
            ("query", f"S{query_length}"),
            ("rank_length", ">i4"),
            ("rank", ">i4"),
            ("neighbour_length", ">i4"),
            ("neighbour", f"S{neighbour_length}"),
            ("similarity_length", ">i4"),
            ("similarity", ">f8"),  # Felis float: double precision
            ("model_length", ">i4"),
            ("model", ">i4"),
        ]
    )


@contextmanager
def bulk_load(conn: Connection, catalogue: Catalogue, n_rows: int) -> Iterator[None]:
    """Drop the indexes (and on PostgreSQL the keys) of ``similarity.neighbour`` around a load.

    Below `BULK_LOAD_ROWS` rows nothing is dropped. On PostgreSQL the primary
    key, the foreign keys and the ``neighbour_did`` index go; on SQLite the
    ``neighbour_did`` index (its primary key belongs to the table), which
    made inserts about 2.5 times faster there. The DDL is part of the
    caller's transaction, so a failed load leaves everything as it was;
    while it runs, readers of the table wait (the DDL locks it).
    """
    if n_rows < BULK_LOAD_ROWS:
        yield
        return
    table = catalogue.table("similarity.neighbour")
    inspector = sa.inspect(conn)
    present = {index["name"] for index in inspector.get_indexes(table.name, schema=table.schema)}
    indexes = [index for index in table.indexes if index.name in present]
    foreign_keys, primary_key = [], None
    if catalogue.dialect == "postgresql":
        primary_key = inspector.get_pk_constraint(table.name, schema=table.schema)["name"]
        names = {key["name"] for key in inspector.get_foreign_keys(table.name, schema=table.schema)}
        foreign_keys = [key for key in table.foreign_key_constraints if key.name in names]
    for index in indexes:
        conn.execute(sa.schema.DropIndex(index))
    for key in foreign_keys:
        conn.execute(sa.schema.DropConstraint(key))
    if primary_key:
        conn.execute(sa.text(f'ALTER TABLE similarity.neighbour DROP CONSTRAINT "{primary_key}"'))
    yield
    if primary_key:
        conn.execute(sa.schema.AddConstraint(table.primary_key))
    for key in foreign_keys:
        conn.execute(sa.schema.AddConstraint(key))
    for index in indexes:
        conn.execute(sa.schema.CreateIndex(index))


def delete_models(conn: Connection, catalogue: Catalogue, model_ids: Sequence[int]) -> None:
    """Delete every list of some models (TRUNCATE when that is every row, on PostgreSQL)."""
    table = catalogue.table("similarity.neighbour")
    if catalogue.dialect == "postgresql":
        others = conn.execute(
            sa.select(sa.literal(1)).where(table.c.model_id.not_in(model_ids)).limit(1)
        ).first()
        if others is None:
            conn.execute(sa.text("TRUNCATE similarity.neighbour"))
            return
    conn.execute(table.delete().where(table.c.model_id.in_(model_ids)))


def delete_lists(
    conn: Connection, catalogue: Catalogue, model_id: int, dids: Iterable[str]
) -> None:
    """Delete the lists of some query images."""
    table = catalogue.table("similarity.neighbour")
    for batch in _batches(dids):
        conn.execute(
            table.delete().where(
                (table.c.model_id == model_id) & table.c.obs_publisher_did.in_(batch)
            )
        )


def lists_containing(
    conn: Connection, catalogue: Catalogue, model_id: int, dids: Iterable[str]
) -> set[str]:
    """Query images whose lists contain any of some images (uses the neighbour_did index)."""
    table = catalogue.table("similarity.neighbour")
    found: set[str] = set()
    for batch in _batches(dids):
        found.update(
            conn.execute(
                sa.select(table.c.obs_publisher_did)
                .distinct()
                .where((table.c.model_id == model_id) & table.c.neighbour_did.in_(batch))
            ).scalars()
        )
    return found


def read_lists(
    conn: Connection, catalogue: Catalogue, model_id: int, dids: Sequence[str]
) -> Iterator[tuple[str, np.ndarray, list[str]]]:
    """Yield ``(did, similarities, neighbour DIDs)`` of stored lists, best first."""
    table = catalogue.table("similarity.neighbour")
    for batch in _batches(dids):
        rows = conn.execute(
            sa.select(table.c.obs_publisher_did, table.c.neighbour_did, table.c.cosine_similarity)
            .where((table.c.model_id == model_id) & table.c.obs_publisher_did.in_(batch))
            .order_by(table.c.obs_publisher_did, table.c.rank)
        ).all()
        start = 0
        while start < len(rows):
            did = rows[start][0]
            stop = start
            while stop < len(rows) and rows[stop][0] == did:
                stop += 1
            part = rows[start:stop]
            yield (
                did,
                np.array([row[2] for row in part], dtype=np.float32),
                [row[1] for row in part],
            )
            start = stop


def read_members(conn: Connection, catalogue: Catalogue, model_id: int) -> dict[str, Member]:
    """Read the images the stored lists of a model were computed over."""
    table = catalogue.table("vosim.neighbour_member")
    rows = conn.execute(
        sa.select(
            table.c.obs_publisher_did,
            table.c.scientific_category,
            table.c.vector_digest,
            table.c.n_neighbours,
            table.c.last_similarity,
        ).where(table.c.model_id == model_id)
    )
    return {did: Member(category, digest, n, last) for did, category, digest, n, last in rows}


def write_members(
    conn: Connection, catalogue: Catalogue, model_id: int, members: dict[str, Member]
) -> None:
    """Insert (after `delete_members`) the bookkeeping rows of some images."""
    table = catalogue.table("vosim.neighbour_member")
    rows = [
        {
            "model_id": model_id,
            "obs_publisher_did": did,
            "scientific_category": member.scientific_category,
            "vector_digest": member.vector_digest,
            "n_neighbours": member.n_neighbours,
            "last_similarity": member.last_similarity,
        }
        for did, member in members.items()
    ]
    for start in range(0, len(rows), 50_000):
        conn.execute(table.insert(), rows[start : start + 50_000])


def delete_members(
    conn: Connection, catalogue: Catalogue, model_id: int, dids: Iterable[str] | None = None
) -> None:
    """Delete the bookkeeping rows of some images (of every image when ``dids`` is None)."""
    table = catalogue.table("vosim.neighbour_member")
    if dids is None:
        conn.execute(table.delete().where(table.c.model_id == model_id))
        return
    for batch in _batches(dids):
        conn.execute(
            table.delete().where(
                (table.c.model_id == model_id) & table.c.obs_publisher_did.in_(batch)
            )
        )


def read_run(conn: Connection, catalogue: Catalogue, model_id: int) -> tuple[int, str] | None:
    """``(k, compatibility digest)`` the stored lists of a model were computed with."""
    table = catalogue.table("vosim.neighbour_run")
    row = conn.execute(
        sa.select(table.c.k, table.c.compatibility_digest).where(table.c.model_id == model_id)
    ).first()
    return None if row is None else (row[0], row[1])


def write_run(
    conn: Connection,
    catalogue: Catalogue,
    model_id: int,
    k: int,
    compatibility_digest: str,
    n_images: int,
) -> None:
    """Record how the stored lists of a model were computed."""
    table = catalogue.table("vosim.neighbour_run")
    conn.execute(table.delete().where(table.c.model_id == model_id))
    conn.execute(
        table.insert(),
        {
            "model_id": model_id,
            "k": k,
            "compatibility_digest": compatibility_digest,
            "n_images": n_images,
            "computed_at": utc_now(),
        },
    )


def _batches(values: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for value in values:
        batch.append(value)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
