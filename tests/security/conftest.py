"""The security suite attacks the TAP tests' served archive (both backends, proprietary images)."""

from tests.tap.conftest import _pg_session_database, new_server, tap_server

__all__ = ["_pg_session_database", "new_server", "tap_server"]
