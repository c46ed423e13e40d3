"""No endpoint tells a proprietary image from one the archive has never heard of.

An attacker who can tell "not public yet" from "unknown" learns which
identifiers the archive holds before their release (and, from a product
key, which files). Every endpoint that takes an identifier or a product key
is asked about each proprietary image and about an unknown one: status,
content type and body must be the same, the identifier apart, on both
backends. A control asks about a public image, which is served.
"""

from __future__ import annotations

import re

import pytest

from tests.tap import catalogue as small
from tests.tap.helpers import http
from tests.tap.server import RunningServer

UNKNOWN = 99
PUBLIC = 1  # of the same kind as proprietary image 7
_TIMINGS = re.compile(rb'(name="(?:[a-zA-Z_]*[Tt]ime[a-zA-Z_]*|date|DATE)"[^>]*value=")[^"]*"')


def _key(index: int) -> str:
    return f"image-{index:03d}"


# name: (method, path, parameters), {did} and {key} for the probed image, {public} a public DID
PROBES = {
    "datalink-get": ("GET", "/datalink", {"ID": "{did}"}),
    "datalink-post": ("POST", "/datalink", {"ID": "{did}"}),
    "datalink-with-public": ("GET", "/datalink", {"ID": ["{public}", "{did}"]}),
    "similarity-votable": ("GET", "/similarity/sync", {"ID": "{did}"}),
    "similarity-json": ("GET", "/similarity/sync", {"ID": "{did}", "RESPONSEFORMAT": "json"}),
    "similarity-post": ("POST", "/similarity/sync", {"ID": "{did}"}),
    "similarity-second-id": ("GET", "/similarity/sync", {"ID": ["{public}", "{did}"]}),
    "similarity-not-id": ("GET", "/similarity/sync", {"ID": "{public}", "NOT_ID": "{did}"}),
    "similarity-image": ("GET", "/similarity/image", {"ID": "{did}"}),
    "page": ("GET", "/similar", {"ID": "{did}"}),
    "page-not-id": ("GET", "/similar", {"ID": "{public}", "NOT_ID": "{did}"}),
    "preview": ("GET", "/preview/{key}.png", {}),
    "preview-head": ("HEAD", "/preview/{key}.png", {}),
    "file": ("GET", "/files/{key}.fits", {}),
    "file-head": ("HEAD", "/files/{key}.fits", {}),
    "tap-similarity": (
        "GET",
        "/tap/sync",
        {
            "LANG": "ADQL",
            "QUERY": "SELECT vosim_similarity('{did}', '{public}') AS s, "
            "vosim_similarity('{public}', '{did}') AS t FROM ivoa.obscore "
            "WHERE obs_publisher_did = '{public}'",
        },
    ),
}


def _filled(value: object, index: int) -> object:
    if isinstance(value, list):
        return [_filled(item, index) for item in value]
    return str(value).format(did=small.did(index), key=_key(index), public=small.did(PUBLIC))


def _ask(server: RunningServer, probe: str, index: int) -> tuple[int, str, bytes]:
    method, path, params = PROBES[probe]
    url = server.url + str(_filled(path, index))
    values = {name: _filled(value, index) for name, value in params.items()}
    if method == "POST":
        response = http.post(url, data=values)
    else:
        response = http.request(method, url, params=values)
    body = response.content
    for old, new in ((small.did(index), b"<DID>"), (_key(index), b"<KEY>")):
        body = body.replace(old.encode(), new)
    return (
        response.status_code,
        response.headers.get("content-type", ""),
        _TIMINGS.sub(rb"\1*", body),
    )


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_proprietary_image_answers_as_an_unknown_one(tap_server: RunningServer, probe: str) -> None:
    unknown = _ask(tap_server, probe, UNKNOWN)
    for hidden in (7, 8):
        assert _ask(tap_server, probe, hidden) == unknown, (probe, hidden)


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_a_public_image_is_answered_otherwise(tap_server: RunningServer, probe: str) -> None:
    """The probes are live: a public image gets a different answer (it is served)."""
    answer = _ask(tap_server, probe, 3)  # public, continuum like the public image
    assert answer != _ask(tap_server, probe, UNKNOWN), probe


def test_the_not_found_wording_is_one(tap_server: RunningServer) -> None:
    """The same sentence on DataLink, the similarity service and the files."""
    did = small.did(7)
    sentence = f"{did} is not a public product of this archive"
    assert sentence in http.get(f"{tap_server.url}/datalink", params={"ID": did}).text
    assert sentence in http.get(f"{tap_server.url}/similarity/sync", params={"ID": did}).text
    files = http.get(f"{tap_server.url}/files/{_key(7)}.fits")
    assert files.status_code == 404
    assert f"{_key(7)}.fits is not a public product of this archive" in files.text
