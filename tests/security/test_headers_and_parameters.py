"""Every response carries the security headers; parameters take ASCII digits only."""

from __future__ import annotations

import pytest

from tests.tap.helpers import http, query_status
from tests.tap.server import RunningServer
from vo_service.security_headers import CONTENT_SECURITY_POLICY


def test_every_kind_of_response_carries_the_headers(tap_server: RunningServer) -> None:
    urls = [
        f"{tap_server.url}/",
        f"{tap_server.tap_url}/capabilities",
        f"{tap_server.tap_url}/sync?LANG=ADQL&QUERY=SELECT%20TOP%201%20*%20FROM%20ivoa.obscore",
        f"{tap_server.tap_url}/sync?LANG=ADQL&QUERY=SELEC",  # a DALI error
        f"{tap_server.url}/no/such/path",
        f"{tap_server.url}/similarity/capabilities",
    ]
    for url in urls:
        headers = http.get(url).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, url
        assert headers["x-content-type-options"] == "nosniff", url
        assert headers["x-frame-options"] == "SAMEORIGIN", url
    assert "connect-src 'self' http://localhost:21012 http://127.0.0.1:21012" in (
        CONTENT_SECURITY_POLICY
    )


@pytest.mark.parametrize("maxrec", ["\u0663", "\uff13", "3\u0660", "\u00b2"])
def test_maxrec_takes_ascii_digits_only(tap_server: RunningServer, maxrec: str) -> None:
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT * FROM ivoa.obscore", "MAXREC": maxrec},
    )
    assert response.status_code == 400
    [(status, message)] = query_status(response.content)
    assert status == "ERROR" and "MAXREC" in message


def test_ascii_maxrec_still_works(tap_server: RunningServer) -> None:
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT * FROM ivoa.obscore", "MAXREC": " 3 "},
    )
    assert response.status_code == 200
    assert query_status(response.content)[-1][0] == "OVERFLOW"
