"""Host-header poisoning: only the names the operator allows are answered.

Without ``VOSIM_PUBLIC_URL`` the URLs in documents follow the request's
``Host``; a stored async result written under ``Host: evil.example`` would
hand that host's links to everyone who reads it. ``vosim serve`` answers
only the loopback names (and the public URL's host) unless told otherwise.
"""

from __future__ import annotations

import httpx

from tap_schema import Settings, open_catalogue
from tests.tap import catalogue as small
from tests.tap.server import running_server
from vo_service.server import LOOPBACK_NAMES, allowed_hosts


def test_serve_allows_loopback_and_the_public_host_by_default(sqlite_settings: Settings) -> None:
    assert allowed_hosts(sqlite_settings) == list(LOOPBACK_NAMES)
    public = sqlite_settings.with_changes(public_url="https://archive.example.org/vosim")
    assert allowed_hosts(public) == [*LOOPBACK_NAMES, "archive.example.org"]
    chosen = sqlite_settings.with_changes(allowed_hosts=" archive.example.org , *")
    assert allowed_hosts(chosen) == ["archive.example.org", "*"]
    assert Settings.from_env({"VOSIM_ALLOWED_HOSTS": "a.example,b.example"}).allowed_host_names == [
        "a.example",
        "b.example",
    ]


def test_a_foreign_host_is_refused_before_any_job_is_written(any_settings: Settings) -> None:
    catalogue = open_catalogue(any_settings)
    small.fill(catalogue)
    catalogue.dispose()
    with running_server(any_settings, allowed_hosts=allowed_hosts(any_settings)) as server:
        query = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 * FROM ivoa.obscore", "PHASE": "RUN"}
        with httpx.Client(timeout=60) as client:
            poisoned = client.post(
                f"{server.tap_url}/async", data=query, headers={"host": "evil.example"}
            )
            assert poisoned.status_code == 400
            listed = client.get(f"{server.tap_url}/async")
            assert listed.status_code == 200
            assert b"evil.example" not in listed.content
            assert b"<uws:jobref" not in listed.content
            page = client.get(f"{server.url}/", headers={"host": "evil.example"})
            assert page.status_code == 400
            assert client.get(f"{server.url}/").status_code == 200
            capabilities = client.get(
                f"{server.tap_url}/capabilities", headers={"host": "localhost"}
            )
            assert capabilities.status_code == 200
            assert b"http://localhost" in capabilities.content
