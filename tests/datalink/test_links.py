"""``/datalink``: DataLink 1.1 ``{links}`` of public, proprietary and unknown records."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import pyvo
from astropy.io.votable import parse_single_table
from astropy.table import Table

from tests import served_archive as archive
from tests.stilts_lint import run_datalinklint, run_votlint
from tests.tap.helpers import http, query_status, votable
from tests.tap.server import RunningServer

DATALINK_TYPE = "application/x-votable+xml;content=datalink"
JAVA_ACCEPT = "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"
PUBLIC = archive.PUBLIC[0]
CUBE = next(image for image in archive.PUBLIC if image.image_kind == "peak_flux")
UNKNOWN = "ivo://vosim.test/products?nothing-here"


def links_url(server: RunningServer, *ids: str) -> str:
    return f"{server.url}/datalink?" + urlencode([("ID", did) for did in ids])


@pytest.mark.parametrize(
    "ids",
    [
        [PUBLIC.did],
        [CUBE.did],
        [archive.PROPRIETARY[0].did],
        [UNKNOWN],
        [PUBLIC.did, archive.PROPRIETARY[0].did, UNKNOWN, CUBE.did],
    ],
    ids=["public", "cube", "proprietary", "unknown", "several"],
)
def test_datalinklint_finds_no_error(archive_server: RunningServer, ids: list[str]) -> None:
    report = run_datalinklint(links_url(archive_server, *ids))
    assert (report.errors, report.warnings, report.failures) == (0, 0, 0), report.describe()
    assert run_votlint(links_url(archive_server, *ids)).messages == []


def test_links_of_a_public_image(archive_server: RunningServer) -> None:
    response = http.get(links_url(archive_server, PUBLIC.did), headers={"Accept": JAVA_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"] == DATALINK_TYPE
    table = votable(response.content).get_first_table()
    assert [f.name for f in table.fields][:8] == [
        "ID",
        "access_url",
        "service_def",
        "error_message",
        "semantics",
        "description",
        "content_type",
        "content_length",
    ]
    ucds = {f.name: f.ucd for f in table.fields}
    assert ucds["service_def"] == "meta.ref"
    assert ucds["ID"] == "meta.id;meta.main"
    rows = table.to_table()
    assert list(rows["semantics"]) == ["#this", "#preview", "#auxiliary", "#auxiliary"]
    assert set(rows["ID"]) == {PUBLIC.did}
    this, preview, service, page = rows
    key = quote(PUBLIC.key, safe="")
    assert this["access_url"] == f"{archive_server.url}/files/{key}.fits"
    assert this["content_type"] == "application/fits"
    assert this["content_qualifier"] == "image"
    data = http.get(this["access_url"])
    assert data.status_code == 200 and len(data.content) == this["content_length"]
    assert preview["content_type"] == "image/png"
    picture = http.get(preview["access_url"])
    assert picture.headers["content-type"] == "image/png"
    assert len(picture.content) == preview["content_length"]
    assert service["service_def"] == "similar-images"
    assert service["local_semantics"] == "similar-images"
    assert page["content_type"] == "text/html"
    assert page["local_semantics"] == "similar-images-page"
    assert page["access_url"].startswith(f"{archive_server.url}/similar?ID=")


@pytest.mark.parametrize(
    "image", [*archive.PROPRIETARY, None], ids=[*(i.stem for i in archive.PROPRIETARY), "unknown"]
)
def test_unknown_or_proprietary_ids_get_one_error_row(
    archive_server: RunningServer, image: archive.ArchiveImage | None
) -> None:
    did = UNKNOWN if image is None else image.did
    response = http.get(links_url(archive_server, did), headers={"Accept": JAVA_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"] == DATALINK_TYPE
    [row] = votable(response.content).get_first_table().to_table()
    assert row["error_message"].startswith("NotFoundFault: ")
    assert row["semantics"] == "#this"
    text = response.text
    assert "/files/" not in text and "/preview/" not in text and "similar?" not in text
    assert "similar-images" not in text


def test_several_ids_by_post_in_consecutive_rows(archive_server: RunningServer) -> None:
    ids = [PUBLIC.did, UNKNOWN, CUBE.did]
    response = http.post(f"{archive_server.url}/datalink", data={"ID": ids})
    assert response.status_code == 200
    rows = votable(response.content).get_first_table().to_table()
    order = [did for i, did in enumerate(rows["ID"]) if i == 0 or rows["ID"][i - 1] != did]
    assert order == ids


def test_missing_id_or_other_format_is_a_usage_fault(archive_server: RunningServer) -> None:
    response = http.get(f"{archive_server.url}/datalink")
    assert response.status_code == 400
    [(status, message)] = query_status(response.content)
    assert status == "ERROR" and message.startswith("UsageFault")
    response = http.get(links_url(archive_server, PUBLIC.did) + "&RESPONSEFORMAT=text/csv")
    assert response.status_code == 400
    response = http.get(links_url(archive_server, PUBLIC.did) + "&responseformat=votable")
    assert response.status_code == 200
    assert response.headers["content-type"] == DATALINK_TYPE


def test_tap_results_lead_to_datalink_with_pyvo(archive_server: RunningServer) -> None:
    tap = pyvo.dal.TAPService(archive_server.tap_url)
    result = tap.run_sync(
        "SELECT obs_publisher_did, target_name, access_url, access_format FROM ivoa.obscore"
    )
    assert result.get_adhocservice_by_ivoid("ivo://ivoa.net/std/DataLink")
    public = {image.did for image in archive.PUBLIC}
    seen = set()
    for links in result.iter_datalinks():
        did = links.original_row["obs_publisher_did"]
        seen.add(did)
        files = list(links.bysemantics("#this", include_narrower=False))
        if did in public:
            assert files[0].access_url.endswith(".fits")
            assert files[0].content_type == "application/fits"
        else:
            assert files[0].error_message.startswith("NotFoundFault")
            assert not list(links.bysemantics("#preview", include_narrower=False))
    assert seen == {image.did for image in archive.IMAGES}


def test_the_similarity_service_descriptor_runs_with_pyvo(archive_server: RunningServer) -> None:
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(links_url(archive_server, PUBLIC.did))
    [service] = [row for row in links if row.service_def]
    assert service.semantics == "#auxiliary"
    assert {param.name for param in service.input_params} >= {"ID", "MAXREC"}
    stream = service.process(maxrec=3)
    table = parse_single_table(io.BytesIO(stream.read())).to_table()
    expected = archive.expected_ranking([PUBLIC.did])[:3]
    assert list(table["obs_publisher_did"]) == [image.did for image, _ in expected]


def test_the_readme_pyvo_example_gives_an_astropy_table(archive_server: RunningServer) -> None:
    """The README's DataLink example, run as written, on an ObsCore access_url."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```python\nimport io\n\nimport pyvo\n")
    code = readme[start + len("```python\n") : readme.index("```", start + 3)]
    scope = {"access_url": links_url(archive_server, PUBLIC.did)}
    exec(compile(code, "README.md", "exec"), scope)
    similar = scope["similar"]
    assert isinstance(similar, Table)
    assert isinstance(scope["fits_file"].read(), bytes)
    expected = archive.expected_ranking([PUBLIC.did])
    assert list(similar["obs_publisher_did"]) == [image.did for image, _ in expected][:12]
    assert similar["similarity"].dtype.kind == "f"


def test_the_descriptor_passes_min_separation(archive_server: RunningServer) -> None:
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(links_url(archive_server, PUBLIC.did))
    [service] = [row for row in links if row.service_def]
    params = {param.name: param for param in service.input_params}
    assert params["MIN_SEPARATION"].unit == "arcsec"
    document = votable(service.process(maxrec=12, min_separation=3600).read())
    infos = {info.name: info.value for info in document.resources[0].infos}
    assert document.get_first_table().to_table().colnames[:2] == ["rank", "obs_publisher_did"]
    assert len(document.get_first_table().array) == 0, "the test images lie within 2 arcsec"
    assert int(infos["hidden_nearby"]) == len(archive.expected_ranking([PUBLIC.did]))


def test_tap_votable_with_descriptor_passes_votlint(archive_server: RunningServer) -> None:
    url = f"{archive_server.tap_url}/sync?" + urlencode(
        {"LANG": "ADQL", "QUERY": "SELECT TOP 3 * FROM ivoa.obscore"}
    )
    assert run_votlint(url).messages == []
    response = http.get(url)
    assert b'ID="obs_publisher_did"' in response.content
    assert b'value="ivo://ivoa.net/std/DataLink#links-1.1"' in response.content


def test_too_many_ids_are_answered_in_part(
    archive_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vo_service.datalink.links.MAX_IDS", 2)
    ids = [PUBLIC.did, UNKNOWN, CUBE.did]
    response = http.post(f"{archive_server.url}/datalink", data={"ID": ids})
    assert response.status_code == 200
    rows = votable(response.content).get_first_table().to_table()
    assert set(rows["ID"]) == {PUBLIC.did, UNKNOWN}
    assert query_status(response.content)[-1][0] == "OVERFLOW"


def test_a_lost_or_empty_preview_is_a_fatal_fault_row_and_logged(
    archive_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    path = archive_server.settings.preview_dir / f"{PUBLIC.key}.png"
    kept = path.read_bytes()
    try:
        with caplog.at_level(logging.ERROR):
            path.write_bytes(b"")
            empty = http.get(links_url(archive_server, PUBLIC.did))
            path.unlink()
            gone = http.get(links_url(archive_server, PUBLIC.did))
    finally:
        path.write_bytes(kept)
    for response in (empty, gone):
        rows = votable(response.content).get_first_table().to_table()
        [preview] = [row for row in rows if row["semantics"] == "#preview"]
        assert preview["error_message"].startswith("FatalFault: ")
        assert "missing from storage" in preview["error_message"]
        assert "/preview/" not in response.text
    assert sum(str(path) in record.message for record in caplog.records) == 2
