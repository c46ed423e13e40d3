"""TAP_UPLOAD by URL cannot make the service probe the networks it can reach.

By default the service contacts public addresses only; every failure of a
URL upload (refused connection, closed port, internal address, redirect to
one, HTTP error, not a table) answers the same sentence, so that no answer
tells an open port from a closed one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.tap.helpers import http, query_status
from tests.tap.server import RunningServer, free_port
from vo_service.dali import DaliParameters
from vo_service.tap.errors import UploadError
from vo_service.tap.table_upload import UploadReference, read_upload

TABLE = b"did,weight\nivo://x/y?1,1\nivo://x/y?2,2\n"


class _Internal(BaseHTTPRequestHandler):
    """A loopback-only resource, and a redirect to a cloud metadata address."""

    contacted: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).contacted.append(self.path)
        if self.path == "/internal.csv":
            self.send_response(200)
            self.send_header("content-type", "text/csv")
            self.end_headers()
            self.wfile.write(TABLE)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        else:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not a table</html>")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def internal() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Internal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _upload(server: RunningServer, url: str) -> tuple[int, str]:
    response = http.post(
        f"{server.tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"},
        timeout=60,
    )
    [(status, message)] = query_status(response.content)
    assert status == "ERROR"
    return response.status_code, message


def test_every_url_failure_answers_the_same(tap_server: RunningServer, internal: str) -> None:
    attacks = [
        f"{internal}/internal.csv",  # a loopback-only table: refused, never fetched
        f"http://127.0.0.1:{free_port()}/x.csv",  # closed port
        f"http://localhost:{free_port()}/x.csv",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/x.csv",
        "http://192.168.1.1/x.csv",
        "http://[::1]/x.csv",
        "http://[::ffff:127.0.0.1]/x.csv",
        "http://0.0.0.0/x.csv",
        "http://no-such-host.invalid/x.csv",
    ]
    _Internal.contacted.clear()
    answers = {url: _upload(tap_server, url) for url in attacks}
    assert len(set(answers.values())) == 1, answers
    status, message = next(iter(answers.values()))
    assert status == 400 and "public http(s) address" in message
    assert _Internal.contacted == []


def _read(url: str, *, private: bool) -> object:
    return read_upload(
        UploadReference("t", url), DaliParameters(), max_bytes=10_000, private_urls=private
    )


def test_an_operator_may_allow_private_addresses(internal: str) -> None:
    table = _read(f"{internal}/internal.csv", private=True)
    assert len(table.rows) == 2
    with pytest.raises(UploadError) as refused:
        _read(f"{internal}/internal.csv", private=False)
    with pytest.raises(UploadError) as not_a_table:
        _read(f"{internal}/page.html", private=True)
    assert str(refused.value) == str(not_a_table.value)


def test_redirects_are_checked_again(internal: str) -> None:
    _Internal.contacted.clear()
    with pytest.raises(UploadError) as redirected:
        _read(f"{internal}/redirect", private=True)
    assert "public http(s) address" in str(redirected.value)
    assert _Internal.contacted == ["/redirect"]


def test_a_table_over_the_size_limit_is_cut_off(internal: str) -> None:
    with pytest.raises(UploadError):
        read_upload(
            UploadReference("t", f"{internal}/internal.csv"),
            DaliParameters(),
            max_bytes=10,
            private_urls=True,
        )
