"""``/similarity/sync`` over HTTP, as the page and a VO client use it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from tests import served_archive as archive
from tests.sky import cutout_centres
from tests.stilts_lint import run_votlint
from tests.tap.helpers import http, query_status, votable
from tests.tap.server import RunningServer

CONTINUUM = [image for image in archive.PUBLIC if image.image_kind == "continuum"]
START = CONTINUUM[0]
DOCUMENT_KEYS = {
    "selection",
    "excluded",
    "image_kind",
    "model_id",
    "total",
    "offset",
    "maxrec",
    "overflow",
    "min_separation",
    "hidden_nearby",
    "results",
}
RESULT_KEYS = {
    "rank",
    "obs_publisher_did",
    "target_name",
    "s_ra",
    "s_dec",
    "band_list",
    "scientific_category",
    "similarity",
    "preview_url",
    "datalink_url",
    "file_url",
    "page_url",
}


def sync(server: RunningServer, **params: object) -> object:
    return http.get(f"{server.url}/similarity/sync", params=params)


def ranking_json(server: RunningServer, ids, not_ids=(), **params: object) -> dict:
    response = http.get(
        f"{server.url}/similarity/sync",
        params=[("ID", i) for i in ids]
        + [("NOT_ID", i) for i in not_ids]
        + [("RESPONSEFORMAT", "application/json")]
        + [(k, str(v)) for k, v in params.items()],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_json_contract(archive_server: RunningServer) -> None:
    document = ranking_json(archive_server, [START.did], MAXREC=5)
    expected = archive.expected_ranking([START.did])
    assert document["selection"] == [START.did]
    assert document["excluded"] == []
    assert document["image_kind"] == "continuum"
    assert document["model_id"] == 2
    assert document["total"] == len(expected)
    assert document["overflow"] is True
    assert set(document) == DOCUMENT_KEYS
    assert document["min_separation"] == 0 and document["hidden_nearby"] == 0
    results = document["results"]
    assert [row["rank"] for row in results] == [1, 2, 3, 4, 5]
    assert all(set(row) == RESULT_KEYS for row in results)
    assert [row["obs_publisher_did"] for row in results] == [i.did for i, _ in expected[:5]]
    assert [row["similarity"] for row in results] == pytest.approx([s for _, s in expected[:5]])
    first = results[0]
    image = archive.BY_DID[first["obs_publisher_did"]]
    base = archive_server.url
    assert first["preview_url"] == f"{base}/preview/{image.key}.png"
    assert first["file_url"] == f"{base}/files/{image.key}.fits"
    assert first["datalink_url"].startswith(f"{base}/datalink?ID=ivo%3A%2F%2F")
    assert first["page_url"].startswith(f"{base}/similar?ID=ivo%3A%2F%2F")
    assert first["scientific_category"] == image.category


def test_paging_with_offset(archive_server: RunningServer) -> None:
    whole = ranking_json(archive_server, [START.did], MAXREC=12)["results"]
    page = ranking_json(archive_server, [START.did], MAXREC=3, OFFSET=2)
    assert [row["rank"] for row in page["results"]] == [3, 4, 5]
    assert page["results"] == whole[2:5]


def test_parameter_names_are_case_insensitive(archive_server: RunningServer) -> None:
    response = http.get(
        f"{archive_server.url}/similarity/sync",
        params={"id": START.did, "maxrec": "2", "responseformat": "application/json"},
    )
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_maxrec_above_the_hard_limit_is_lowered_and_said(archive_server: RunningServer) -> None:
    document = ranking_json(archive_server, [START.did], MAXREC=5000)
    assert document["maxrec"] == 12
    assert "lowered" in document["note"]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({}, 400, "at least one selected image"),
        ({"ID": "ivo://vosim.test/products?nothing"}, 404, "not a public product"),
        ({"ID": START.did, "MAXREC": "many"}, 400, "MAXREC"),
        ({"ID": START.did, "OFFSET": "-1"}, 400, "negative"),
        ({"ID": START.did, "QUICKSELECT": "perhaps"}, 400, "QUICKSELECT"),
        ({"ID": [START.did, archive.PUBLIC[-2].did]}, 400, "one kind"),
        ({"ID": START.did, "NOT_ID": START.did}, 400, "both as ID and as NOT_ID"),
    ],
)
def test_errors_as_json(archive_server: RunningServer, params, status, words) -> None:
    response = http.get(
        f"{archive_server.url}/similarity/sync",
        params={**params, "RESPONSEFORMAT": "application/json"},
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"]


def test_errors_as_dali_error_documents(archive_server: RunningServer) -> None:
    response = sync(archive_server, ID="ivo://vosim.test/products?nothing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    [(status, message)] = query_status(response.content)
    assert status == "ERROR" and "not a public product" in message
    response = sync(archive_server, ID=START.did, RESPONSEFORMAT="text/html")
    assert response.status_code == 400
    assert "RESPONSEFORMAT" in query_status(response.content)[0][1]


@pytest.mark.parametrize("image", archive.PROPRIETARY, ids=lambda image: image.stem)
def test_proprietary_images_are_refused_as_id_and_not_id(
    archive_server: RunningServer, image: archive.ArchiveImage
) -> None:
    for params in ({"ID": image.did}, {"ID": START.did, "NOT_ID": image.did}):
        response = sync(archive_server, **params, RESPONSEFORMAT="application/json")
        assert response.status_code == 404
        assert "not public" in response.json()["error"]
        assert image.key not in response.text.replace(image.did, "")


def test_no_proprietary_image_is_ever_ranked(archive_server: RunningServer) -> None:
    hidden = {image.did for image in archive.PROPRIETARY}
    for image in archive.PUBLIC:
        document = ranking_json(archive_server, [image.did], MAXREC=12)
        listed = {row["obs_publisher_did"] for row in document["results"]}
        assert listed and not listed & hidden
        assert document["total"] == len(archive.expected_ranking([image.did]))


def test_similar_image_describes_one_public_image(archive_server: RunningServer) -> None:
    response = http.get(f"{archive_server.url}/similarity/image", params={"ID": START.did})
    assert response.status_code == 200
    document = response.json()
    assert set(document) == (RESULT_KEYS - {"rank", "similarity"}) | {"image_kind"}
    assert document["obs_publisher_did"] == START.did
    for image in archive.PROPRIETARY:
        response = http.get(f"{archive_server.url}/similarity/image", params={"ID": image.did})
        assert response.status_code == 404
        assert "preview" not in response.text


def test_votable_result(archive_server: RunningServer) -> None:
    response = sync(archive_server, ID=START.did, MAXREC=4)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-votable+xml"
    table = votable(response.content).get_first_table().to_table()
    assert list(table.colnames) == [
        "rank",
        "obs_publisher_did",
        "target_name",
        "s_ra",
        "s_dec",
        "band_list",
        "scientific_category",
        "similarity",
        "preview_url",
        "datalink_url",
        "file_url",
        "page_url",
    ]
    expected = archive.expected_ranking([START.did])[:4]
    assert list(table["obs_publisher_did"]) == [image.did for image, _ in expected]
    assert query_status(response.content)[-1][0] == "OVERFLOW"
    url = f"{archive_server.url}/similarity/sync?" + urlencode(
        [("ID", START.did), ("ID", CONTINUUM[3].did), ("NOT_ID", CONTINUUM[5].did)]
    )
    assert run_votlint(url).messages == []


@pytest.mark.parametrize(
    ("selected", "excluded"),
    [
        ([0, 5], []),
        ([1, 2, 3], [6]),
        ([7], [0, 1]),
    ],
)
def test_combined_ranking_equals_brute_force(
    archive_server: RunningServer, selected: list[int], excluded: list[int]
) -> None:
    ids = [CONTINUUM[i].did for i in selected]
    not_ids = [CONTINUUM[i].did for i in excluded]
    document = ranking_json(archive_server, ids, not_ids, MAXREC=12)
    expected = archive.expected_ranking(ids, not_ids)
    assert document["selection"] == ids and document["excluded"] == not_ids
    assert document["total"] == len(expected)
    assert [row["obs_publisher_did"] for row in document["results"]] == [
        image.did for image, _ in expected
    ]
    assert [row["similarity"] for row in document["results"]] == pytest.approx(
        [score for _, score in expected], abs=1e-6
    )
    first = CONTINUUM[selected[0]].category
    assert all(archive.compatible(first, row["scientific_category"]) for row in document["results"])


def test_capabilities_describe_both_ways_of_calling(archive_server: RunningServer) -> None:
    response = http.get(f"{archive_server.url}/similarity/capabilities")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    capabilities = root.findall("capability")
    urls = [c.find("interface/accessURL").text for c in capabilities]
    assert urls[:2] == [f"{archive_server.url}/similarity/sync"] * 2
    assert capabilities[2].get("standardID") == "ivo://ivoa.net/std/DataLink#links-1.1"
    names = [p.find("name").text for p in capabilities[0].iter("param")]
    assert names == [
        "ID",
        "NOT_ID",
        "MIN_SEPARATION",
        "MAXREC",
        "OFFSET",
        "RESPONSEFORMAT",
        "QUICKSELECT",
    ]
    separation = next(
        p for p in capabilities[0].iter("param") if p.find("name").text == "MIN_SEPARATION"
    )
    assert separation.find("unit").text == "arcsec"
    assert separation.find("dataType").text == "real"
    assert [p.find("name").text for p in capabilities[1].iter("param")] == ["IMAGE"]


@pytest.mark.parametrize(
    ("selected", "excluded", "arcsec"),
    [([0], [], 0.01), ([0], [], 0.06), ([1, 5], [3], 0.01), ([1, 5], [3], 3600.0)],
)
def test_min_separation_leaves_out_the_selected_positions(
    archive_server: RunningServer, selected: list[int], excluded: list[int], arcsec: float
) -> None:
    """The test images' cut-outs are centred on a few places 0.05 arcsec apart.

    Each radius leaves out another set of them.
    The expected set is computed with astropy from the stored cut-out
    centres, among the candidates the ranking without the limit has: images
    that are not public (several lie at the same place) are neither listed
    nor counted.
    """
    ids = [CONTINUUM[i].did for i in selected]
    not_ids = [CONTINUUM[i].did for i in excluded]
    centres = cutout_centres(archive_server.catalogue)
    everything = archive.expected_ranking(ids, not_ids)
    near = {
        image.did
        for image, _ in everything
        if any(centres[image.did].separation(centres[did]).arcsec < arcsec for did in ids)
    }
    document = ranking_json(archive_server, ids, not_ids, MAXREC=12, MIN_SEPARATION=arcsec)
    kept = [image.did for image, _ in everything if image.did not in near]
    assert document["min_separation"] == arcsec
    assert document["hidden_nearby"] == len(near)
    assert document["total"] == len(kept)
    assert [row["obs_publisher_did"] for row in document["results"]] == kept[:12]
    if arcsec < 3600:
        assert near and kept, "the radius should leave out some candidates and keep others"


def test_min_separation_errors(archive_server: RunningServer) -> None:
    for value in ("-1", "NaN", "inf", "1_0", "٣", "ten"):
        response = http.get(
            f"{archive_server.url}/similarity/sync",
            params={"ID": START.did, "MIN_SEPARATION": value, "RESPONSEFORMAT": "json"},
        )
        assert response.status_code == 400, value
        assert "MIN_SEPARATION" in response.json()["error"]


def test_min_separation_in_the_votable(archive_server: RunningServer) -> None:
    url = f"{archive_server.url}/similarity/sync?" + urlencode(
        [("ID", START.did), ("MIN_SEPARATION", "0.06"), ("MAXREC", "5")]
    )
    response = http.get(url)
    infos = {info.name: info.value for info in votable(response.content).resources[0].infos}
    document = ranking_json(archive_server, [START.did], MIN_SEPARATION=0.06, MAXREC=5)
    assert float(infos["MIN_SEPARATION"]) == 0.06
    assert int(infos["hidden_nearby"]) == document["hidden_nearby"] > 0
    report = run_votlint(url)
    assert report.errors == report.warnings == 0, report.describe()


@pytest.mark.parametrize("arcsec", [0.01, 0.06])
def test_the_pages_adql_form_of_min_separation_gives_the_same_images(
    archive_server: RunningServer, arcsec: float
) -> None:
    """The page's "TAP query" leaves out the same images in ADQL, on SQLite and on pgsphere.

    The page writes MIN_SEPARATION as a correlated NOT EXISTS with DISTANCE
    of the cut-out centres (``templates/static/similar.js``, ``neighbourAdql``).
    """
    selected = [START.did, CONTINUUM[5].did]
    listed = ", ".join(f"'{did}'" for did in selected)
    query = (
        "SELECT i.obs_publisher_did FROM similarity.image AS i WHERE NOT EXISTS ("
        "SELECT * FROM similarity.image AS s "
        f"WHERE s.obs_publisher_did IN ({listed}) "
        "AND DISTANCE(POINT(s.cutout_ra, s.cutout_dec), POINT(i.cutout_ra, i.cutout_dec)) "
        f"< {arcsec} / 3600.0)"
    )
    response = http.get(
        f"{archive_server.tap_url}/sync",
        params={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query},
    )
    assert response.status_code == 200, response.text
    found = {
        str(did) for did in votable(response.content).get_first_table().array["obs_publisher_did"]
    }
    centres = cutout_centres(archive_server.catalogue)
    public = {image.did for image in archive.PUBLIC}
    expected = {
        did
        for did, position in centres.items()
        if did in public
        and all(position.separation(centres[other]).arcsec >= arcsec for other in selected)
    }
    assert expected and expected != public
    assert found == expected
