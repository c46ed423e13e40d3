"""Every URL in every document is right when vosim is mounted under a prefix.

A link crawler starts from each kind of document (TAP capabilities,
tables, availability, examples, sync results with the stored ``access_url``
and ``preview_url``, an async job and its result, DataLink, the similarity
service's VOTable and JSON, the home and similarity pages) and follows
every URL it finds; each must be under the public base URL and answer.
Then: the same under a configured public URL and behind a trusted proxy;
forwarded headers ignored when not trusted; taplint on the mounted TAP
service.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import anyio
import httpx
import pytest

from tests import served_archive as archive
from tests.stilts_lint import needs_stilts, run_taplint
from vo_service.app import create_app

from .conftest import PREFIX, Mounted, archive_parent
from .crawler import crawl

PUBLIC = archive.PUBLIC[0]
CUBE = next(image for image in archive.PUBLIC if image.image_kind == "peak_flux")
OBSCORE_QUERY = "SELECT obs_publisher_did, access_url FROM ivoa.obscore"
PREVIEW_QUERY = "SELECT obs_publisher_did, preview_url FROM similarity.image"
UNTRUSTED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Prefix": "/evil",
    "Forwarded": 'proto=https;host="evil.example"',
}


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=60, follow_redirects=False) as http:
        yield http


def sync_url(server: Mounted, query: str) -> str:
    return f"{server.public_base}/tap/sync?" + urlencode({"LANG": "ADQL", "QUERY": query})


def run_async_job(server: Mounted, client: httpx.Client) -> str:
    """Create and run an async query of the stored URLs; return the job's (public) URL."""
    created = client.post(
        server.local(f"{server.public_base}/tap/async"),
        data={"LANG": "ADQL", "QUERY": OBSCORE_QUERY, "PHASE": "RUN"},
        headers=server.headers,
    )
    assert created.status_code == 303
    job_url = created.headers["location"]
    assert job_url.startswith(f"{server.public_base}/tap/async/"), job_url
    for _ in range(30):
        phase = client.get(server.local(job_url) + "/phase", headers=server.headers).text
        if phase not in ("PENDING", "QUEUED", "EXECUTING"):
            break
        client.get(  # blocks while the job stays in this phase (UWS 1.1, 2.2.1.1)
            server.local(job_url), params={"WAIT": "5", "PHASE": phase}, headers=server.headers
        )
    assert phase == "COMPLETED"
    return job_url


def seeds(server: Mounted, client: httpx.Client) -> list[str]:
    """One document of each kind vosim serves."""
    base = server.public_base
    did = PUBLIC.did
    ranking = {"ID": did, "RESPONSEFORMAT": "application/json", "QUICKSELECT": "true"}
    return [
        f"{base}/",
        f"{base}/similar?" + urlencode({"ID": did}),
        f"{base}/tap/capabilities",
        f"{base}/tap/tables",
        f"{base}/tap/availability",
        f"{base}/tap/examples",
        f"{base}/tap/async",
        sync_url(server, OBSCORE_QUERY),
        sync_url(server, PREVIEW_QUERY),
        run_async_job(server, client),
        f"{base}/datalink?" + urlencode([("ID", did), ("ID", CUBE.did)]),
        f"{base}/similarity/sync?" + urlencode({"ID": did}),
        f"{base}/similarity/sync?" + urlencode(ranking),
        f"{base}/similarity/capabilities",
        f"{base}/similarity/image?" + urlencode({"ID": did}),
    ]


def check_every_url(server: Mounted, client: httpx.Client) -> None:
    found = crawl(server, seeds(server, client), client)
    assert found.problems() == {}
    assert len(found.statuses) > 100, "the crawl followed too few links to mean anything"
    reached = {
        urlsplit(url).path.removeprefix(found.base_path).split("/")[1] for url in found.statuses
    }
    # the crawl reached every kind of resource, from the stored URLs and the generated ones
    assert reached >= {"", "tap", "datalink", "preview", "files", "similar", "similarity", "static"}
    assert any("/results/" in url for url in found.statuses)


def test_every_url_is_under_the_prefix(mounted: Mounted, client: httpx.Client) -> None:
    assert mounted.public_base.endswith(PREFIX)
    check_every_url(mounted, client)


def test_every_url_is_under_the_configured_public_url(
    public: Mounted, client: httpx.Client
) -> None:
    check_every_url(public, client)


def test_every_url_is_under_the_trusted_proxys_url(
    forwarded: Mounted, client: httpx.Client
) -> None:
    check_every_url(forwarded, client)


def test_forwarded_header_of_rfc_7239(forwarded: Mounted, client: httpx.Client) -> None:
    response = client.get(
        f"{forwarded.local_base}/tap/capabilities",
        headers={"Forwarded": 'for=192.0.2.60;proto=https;host="rfc.example.org:8443", for=x'},
    )
    assert f"https://rfc.example.org:8443{PREFIX}/tap/capabilities" in response.text


def test_untrusted_forwarded_headers_are_ignored(mounted: Mounted, client: httpx.Client) -> None:
    base = mounted.public_base
    for url in (
        f"{base}/tap/capabilities",
        sync_url(mounted, OBSCORE_QUERY),
        f"{base}/datalink?" + urlencode({"ID": PUBLIC.did}),
        f"{base}/similarity/sync?" + urlencode({"ID": PUBLIC.did}),
        f"{base}/similar?" + urlencode({"ID": PUBLIC.did}),
        f"{base}/",
    ):
        response = client.get(mounted.local(url), headers=UNTRUSTED)
        assert response.status_code == 200
        assert "evil" not in response.text
        assert f"{base}/" in response.text
    created = client.post(
        f"{base}/tap/async", data={"QUERY": OBSCORE_QUERY, "LANG": "ADQL"}, headers=UNTRUSTED
    )
    assert created.headers["location"].startswith(f"{base}/tap/async/")


def test_trusted_headers_that_are_no_url_are_ignored(
    forwarded: Mounted, client: httpx.Client
) -> None:
    response = client.get(
        f"{forwarded.local_base}/tap/capabilities",
        headers={"X-Forwarded-Host": "evil.example/<x>", "X-Forwarded-Prefix": "/a b"},
    )
    assert "evil" not in response.text and "/a b" not in response.text
    assert f"{forwarded.local_base}/tap/capabilities" in response.text


def test_vosim_answers_503_until_the_parent_runs_its_lifespan(mounted: Mounted) -> None:
    vosim = create_app(mounted.app.state.tap.settings, catalogue=mounted.app.state.catalogue)
    transport = httpx.ASGITransport(app=archive_parent(vosim))  # runs no lifespan

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://archive") as http:
            return await http.get(f"{PREFIX}/tap/capabilities")

    response = anyio.run(ask)
    assert response.status_code == 503
    assert "lifespan" in response.text


@needs_stilts
def test_taplint_is_clean_under_the_prefix(mounted: Mounted) -> None:
    report = run_taplint(f"{mounted.local_base}/tap")
    print(
        f"taplint under {PREFIX}: {report.errors} errors, {report.warnings} warnings, "
        f"{report.failures} failures"
    )
    assert report.errors == 0, report.describe("E")
    assert {m["stage"] for m in report.of_type("F")} <= {"LOC"}, report.describe("F")
