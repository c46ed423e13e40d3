"""``/preview/{key}.png`` and ``/files/{key}.fits``: public data only, with proper HTTP."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import served_archive as archive
from tests.tap.helpers import http
from tests.tap.server import RunningServer

PUBLIC = archive.PUBLIC[0]
PACKED = next(image for image in archive.IMAGES if image.file_name.endswith(".gz"))


def stored_file(server: RunningServer, image: archive.ArchiveImage) -> Path:
    return server.settings.data_dir.parent / "files" / image.file_name


def test_public_file_and_preview(archive_server: RunningServer) -> None:
    response = http.get(f"{archive_server.url}/files/{PUBLIC.key}.fits")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fits"
    assert response.content == stored_file(archive_server, PUBLIC).read_bytes()
    assert int(response.headers["content-length"]) == len(response.content)
    preview = http.get(f"{archive_server.url}/preview/{PUBLIC.key}.png")
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/png"
    assert preview.content.startswith(b"\x89PNG")


def test_percent_encoded_keys(archive_server: RunningServer) -> None:
    encoded = "".join(f"%{ord(c):02X}" for c in PUBLIC.key)
    response = http.get(f"{archive_server.url}/files/{encoded}.fits")
    assert response.status_code == 200


def test_gzipped_file_is_sent_as_stored(archive_server: RunningServer) -> None:
    response = http.get(f"{archive_server.url}/files/{PACKED.key}.fits")
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == gzip.decompress(stored_file(archive_server, PACKED).read_bytes())
    assert response.content.startswith(b"SIMPLE  =")


def test_conditional_get(archive_server: RunningServer) -> None:
    url = f"{archive_server.url}/preview/{PUBLIC.key}.png"
    first = http.get(url)
    again = http.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    later = http.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert later.status_code == 304
    changed = http.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    part = http.get(
        f"{archive_server.url}/files/{PUBLIC.key}.fits", headers={"Range": "bytes=0-79"}
    )
    assert part.status_code == 206 and part.content.startswith(b"SIMPLE")


@pytest.mark.parametrize("image", archive.PROPRIETARY, ids=lambda image: image.stem)
def test_proprietary_data_is_never_sent(
    archive_server: RunningServer, image: archive.ArchiveImage
) -> None:
    assert (archive_server.settings.preview_dir / f"{image.key}.png").is_file()
    for path in (f"files/{image.key}.fits", f"preview/{image.key}.png"):
        response = http.get(f"{archive_server.url}/{path}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/plain")
        assert "not public" in response.text
        assert b"SIMPLE" not in response.content and b"PNG" not in response.content


def test_unknown_keys_are_not_found(archive_server: RunningServer) -> None:
    for path in ("files/nothing.fits", "preview/nothing.png", "files/..%2F..%2Fetc.fits"):
        assert http.get(f"{archive_server.url}/{path}").status_code == 404


@contextmanager
def lost(path: Path) -> Iterator[Callable[[str], None]]:
    """Empty a stored file, then delete it (as the block asks), restoring it afterwards."""
    kept = path.read_bytes()
    try:
        yield lambda state: path.unlink() if state == "deleted" else path.write_bytes(b"")
    finally:
        path.write_bytes(kept)


@pytest.mark.parametrize("kind", ["preview", "files"])
def test_a_lost_or_empty_file_of_a_public_image_is_a_logged_server_fault(
    archive_server: RunningServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator lost a public image's preview or file (deleted, or emptied by a full disk)."""
    image = archive.PUBLIC[-1]
    if kind == "preview":
        path = archive_server.settings.preview_dir / f"{image.key}.png"
        url = f"{archive_server.url}/preview/{image.key}.png"
    else:
        path = stored_file(archive_server, image)
        url = f"{archive_server.url}/files/{image.key}.fits"
    answers = []
    with caplog.at_level(logging.ERROR), lost(path) as lose:
        for state in ("empty", "deleted"):
            lose(state)
            answers.append(http.get(url))
    for response in answers:
        assert response.status_code == 500
        assert "missing from the archive's storage" in response.text
        assert "release date" not in response.text and "not public" not in response.text
        assert b"PNG" not in response.content and b"SIMPLE" not in response.content
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and str(path) in r.message]
    assert len(logged) == 2, caplog.text
    assert http.get(url).status_code == 200


def test_a_lost_preview_of_a_proprietary_image_still_answers_as_unknown(
    archive_server: RunningServer,
) -> None:
    """Nothing tells an attacker that a lost file belongs to a proprietary image."""
    image = archive.PROPRIETARY[0]
    path = archive_server.settings.preview_dir / f"{image.key}.png"
    unknown = http.get(f"{archive_server.url}/preview/nothing.png")
    with lost(path) as lose:
        lose("deleted")
        hidden = http.get(f"{archive_server.url}/preview/{image.key}.png")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.text.replace(image.key, "nothing") == unknown.text
