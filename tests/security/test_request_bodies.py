"""A request body is counted as it arrives: no body is read past the limit, whatever it declares.

The issue's attack: a chunked POST (no ``Content-Length``) of 1 GB was read
to its end before the 413. Here each endpoint that reads a body gets a
chunked body far over its limit, from a raw socket that keeps sending
until the answer comes: the answer must be a 413 DALI error document (the
similarity service's JSON when asked for JSON), and must come after a small
multiple of the limit, not after the whole body. A body that declares a
small ``Content-Length`` and sends more is refused in the same way by the
HTTP server itself (it reads no more than declared).
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.tap.helpers import query_status
from tests.tap.server import RunningServer

CHUNK = 64 * 1024
MOST_SENT = 512 * 1024 * 1024
"""What the attacker is ready to send: 512 MB, ten times the largest limit."""
BUFFERS = 16 * 1024 * 1024
"""Room for what the sockets' buffers hold when the answer comes."""

FORM = b"application/x-www-form-urlencoded"
MULTIPART = b"multipart/form-data; boundary=xyz"
ENDPOINTS = {
    "tap-sync": ("/tap/sync", FORM),
    "tap-sync-multipart": ("/tap/sync", MULTIPART),
    "tap-async": ("/tap/async", FORM),
    "tap-async-multipart": ("/tap/async", MULTIPART),
    "datalink": ("/datalink", FORM),
    "similarity": ("/similarity/sync", MULTIPART),
}


def _limit(server: RunningServer, endpoint: str) -> int:
    """The most bytes the endpoint reads (its limit, with its margin for the form fields)."""
    if endpoint.startswith("tap"):
        return server.app.state.tap.limits.upload_limit_bytes + (1 << 20)
    if endpoint == "datalink":
        return 1 << 20
    return server.app.state.similarity.limits.upload_limit_bytes + (64 << 10)


def _chunked_post(server: RunningServer, path: str, content_type: bytes) -> tuple[int, bytes, int]:
    """POST an endless chunked body; return the status, the response and the bytes sent."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        if content_type.startswith(b"multipart"):
            first = b'--xyz\r\nContent-Disposition: form-data; name="QUERY"\r\n\r\n'
        else:
            first = b"QUERY="
        chunk = b"%x\r\n" % CHUNK + (first + b"x" * (CHUNK - len(first))) + b"\r\n"
        filler = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
        connection.setblocking(False)
        sent, answer, pending = 0, b"", chunk
        while sent < MOST_SENT:
            try:
                answer += connection.recv(65536)
                if b"\r\n\r\n" in answer:
                    break
            except BlockingIOError:
                pass
            try:
                written = connection.send(pending)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += written
            pending = pending[written:] or filler
        connection.setblocking(True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                more = connection.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not more:
                break
            answer += more
            if _complete(answer):
                break
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    return status, _dechunked(head, body), sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        return body.endswith(b"0\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _dechunked(head: bytes, body: bytes) -> bytes:
    if b"transfer-encoding: chunked" not in head.lower():
        return body
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        out += rest[:length]
        body = rest[length + 2 :]
    return out


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_chunked_body_over_the_limit_is_refused_at_the_limit(
    tap_server: RunningServer, endpoint: str
) -> None:
    path, content_type = ENDPOINTS[endpoint]
    status, body, sent = _chunked_post(tap_server, path, content_type)
    assert status == 413, body[:300]
    assert sent < _limit(tap_server, endpoint) + BUFFERS, sent
    [(value, message)] = query_status(body)
    assert value == "ERROR" and "the most this service accepts" in message


def test_a_body_under_the_limit_still_works_chunked(tap_server: RunningServer) -> None:
    """A chunked request of ordinary size is read whole and answered."""
    import httpx

    def body():
        yield b"LANG=ADQL&QUERY=SELECT%20COUNT(*)%20AS%20n%20"
        yield b"FROM%20ivoa.obscore"

    response = httpx.post(
        f"{tap_server.tap_url}/sync",
        content=body(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text[:300]
