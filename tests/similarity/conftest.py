"""Fixtures of the similarity tests: the server on the ingested test archive."""

from tests.served_server import _archive_pg_database, archive_server

__all__ = ["_archive_pg_database", "archive_server"]
