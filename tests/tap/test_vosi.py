"""VOSI and DALI documents: capabilities (each feature works), tables, availability, examples."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vo_service.adql.similarity_udf import FUNCTIONS as SIMILARITY_FUNCTIONS
from vo_service.tap.capabilities import FEATURE_GROUPS
from vo_service.votable.formats import OUTPUT_FORMATS

from . import catalogue as small
from .helpers import http, query_status, sync, tap_schema_columns, votable
from .server import RunningServer

TR = "ivo://ivoa.net/std/TAPRegExt#"
CONE = "CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 83.8, -5.4, 0.05))"
FEATURE_QUERIES = {
    "POINT": "SELECT TOP 1 POINT('ICRS', s_ra, s_dec) AS p FROM ivoa.obscore",
    "CIRCLE": "SELECT TOP 1 CIRCLE('ICRS', s_ra, s_dec, 1) AS c FROM ivoa.obscore",
    "BOX": "SELECT obs_id FROM ivoa.obscore "
    "WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), BOX('ICRS', 83.85, -5.45, 1, 1))",
    "POLYGON": "SELECT obs_id FROM ivoa.obscore WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "POLYGON('ICRS', 83, -6, 85, -6, 85, -5, 83, -5))",
    "CONTAINS": f"SELECT obs_id FROM ivoa.obscore WHERE 1 = {CONE}",
    "INTERSECTS": "SELECT obs_id FROM ivoa.obscore "
    "WHERE 1 = INTERSECTS(s_region, CIRCLE('ICRS', 83.8, -5.4, 0.05))",
    "DISTANCE": "SELECT obs_id FROM ivoa.obscore "
    "WHERE DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 83.8, -5.4)) < 0.05",
    "AREA": "SELECT TOP 1 AREA(CIRCLE('ICRS', 10, 10, 1)) AS a FROM ivoa.obscore",
    "CENTROID": "SELECT TOP 1 CENTROID(CIRCLE('ICRS', 10, 10, 1)) AS c FROM ivoa.obscore",
    "COORD1": "SELECT TOP 1 COORD1(POINT('ICRS', s_ra, s_dec)) AS c FROM ivoa.obscore",
    "COORD2": "SELECT TOP 1 COORD2(POINT('ICRS', s_ra, s_dec)) AS c FROM ivoa.obscore",
    "COORDSYS": "SELECT TOP 1 COORDSYS(POINT('ICRS', s_ra, s_dec)) AS c FROM ivoa.obscore",
    "LOWER": "SELECT obs_id FROM ivoa.obscore WHERE LOWER(target_name) = 'hh212'",
    "UPPER": "SELECT obs_id FROM ivoa.obscore WHERE UPPER(target_name) = 'HH212'",
    "ILIKE": "SELECT obs_id FROM ivoa.obscore WHERE target_name ILIKE 'hh%'",
    "UNION": "SELECT obs_id FROM ivoa.obscore UNION SELECT obs_id FROM ivoa.obscore",
    "EXCEPT": "SELECT obs_id FROM ivoa.obscore EXCEPT SELECT obs_id FROM ivoa.obscore "
    "WHERE band_list = '3'",
    "INTERSECT": "SELECT obs_id FROM ivoa.obscore INTERSECT SELECT obs_id FROM ivoa.obscore",
    "WITH": "WITH t AS (SELECT obs_id FROM ivoa.obscore) SELECT obs_id FROM t",
    "CAST": "SELECT CAST(calib_level AS DOUBLE PRECISION) AS c FROM ivoa.obscore",
    "OFFSET": "SELECT obs_id FROM ivoa.obscore ORDER BY obs_id OFFSET 2",
    SIMILARITY_FUNCTIONS["VOSIM_SIMILARITY"][0]: "SELECT obs_id FROM ivoa.obscore WHERE "
    f"vosim_similarity(obs_publisher_did, '{small.did(1)}') > 0.99",
    SIMILARITY_FUNCTIONS["VOSIM_SIMILARITY_VECTOR"][0]: "SELECT e.obs_publisher_did "
    "FROM similarity.embedding AS e "
    "WHERE vosim_similarity_vector(e.obs_publisher_did, e.vector) > 0.99",
}


def _capabilities(server: RunningServer) -> ET.Element:
    response = http.get(f"{server.tap_url}/capabilities")
    assert response.status_code == 200
    return ET.fromstring(response.content)


def _tap_capability(root: ET.Element) -> ET.Element:
    [tap] = [c for c in root.iter("capability") if c.get("standardID") == "ivo://ivoa.net/std/TAP"]
    return tap


def test_capabilities_declare_the_service(tap_server: RunningServer) -> None:
    root = _capabilities(tap_server)
    assert root.tag == "{http://www.ivoa.net/xml/VOSICapabilities/v1.0}capabilities"
    standards = {c.get("standardID") for c in root.iter("capability")}
    assert {
        "ivo://ivoa.net/std/TAP",
        "ivo://ivoa.net/std/VOSI#capabilities",
        "ivo://ivoa.net/std/VOSI#availability",
        "ivo://ivoa.net/std/VOSI#tables-1.1",
        "ivo://ivoa.net/std/DALI#examples",
    } <= standards
    tap = _tap_capability(root)
    assert tap.find("interface/accessURL").text == tap_server.tap_url
    assert [m.get("ivo-id") for m in tap.iter("dataModel")] == [
        "ivo://ivoa.net/std/ObsCore#core-1.1"
    ]
    versions = [v.text for v in tap.iter("version")]
    assert versions == ["2.0", "2.1"]
    assert tap.find("outputLimit/hard").text == "5000"
    assert tap.find("uploadLimit/hard").text == "200000"
    assert tap.find("executionDuration/hard").text == "120"
    types = {group.get("type") for group in tap.iter("languageFeatures")}
    # Debian's STILTS 3.4.7 rejects this key (docs/validators.md): never declare it
    assert TR + "features-adql-conditional" not in types
    mimes = {f.findtext("mime") for f in tap.iter("outputFormat")}
    assert mimes == {f.mime for f in OUTPUT_FORMATS}


def test_every_declared_feature_is_exercised_by_a_test() -> None:
    declared = {feature.form for group in FEATURE_GROUPS for feature in group.features}
    assert declared == set(FEATURE_QUERIES)


@pytest.mark.parametrize("form", sorted(FEATURE_QUERIES))
def test_declared_feature_works(tap_server: RunningServer, form: str) -> None:
    response = sync(tap_server.tap_url, FEATURE_QUERIES[form])
    assert response.status_code == 200, query_status(response.content)
    assert len(votable(response.content).get_first_table().array) > 0


@pytest.mark.parametrize("output", OUTPUT_FORMATS, ids=lambda f: f.aliases[0])
def test_every_declared_output_format_works(tap_server: RunningServer, output) -> None:
    for name in (output.mime, *output.aliases):
        response = sync(
            tap_server.tap_url, "SELECT TOP 2 obs_id FROM ivoa.obscore", RESPONSEFORMAT=name
        )
        assert response.status_code == 200, name
        assert response.content


def test_tables_say_what_tap_schema_says(tap_server: RunningServer) -> None:
    response = http.get(f"{tap_server.tap_url}/tables")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.ivoa.net/xml/VOSITables/v1.0}tableset"
    tables = {t.findtext("name"): t for t in root.iter("table")}
    assert {"ivoa.obscore", "similarity.neighbour", "TAP_SCHEMA.columns"} <= set(tables)
    assert not any(name.startswith("vosim.") for name in tables)
    published = tap_schema_columns(tap_server.catalogue, "ivoa.obscore")
    columns = {c.findtext("name"): c for c in tables["ivoa.obscore"].iter("column")}
    assert set(columns) == set(published)
    region = columns["s_region"]
    assert region.find("dataType").get("extendedType") == "adql:REGION"
    assert region.findtext("unit") is None
    assert "indexed" in {f.text for f in columns["obs_publisher_did"].iter("flag")}
    keys = tables["similarity.neighbour"].findall("foreignKey")
    assert {k.findtext("targetTable") for k in keys} == {"similarity.model", "similarity.image"}
    minimal = ET.fromstring(
        http.get(f"{tap_server.tap_url}/tables", params={"detail": "min"}).content
    )
    assert not list(minimal.iter("column"))


def test_one_table_and_unknown_table(tap_server: RunningServer) -> None:
    response = http.get(f"{tap_server.tap_url}/tables/similarity.model")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.ivoa.net/xml/VOSITables/v1.0}table"
    assert root.findtext("name") == "similarity.model"
    published = tap_schema_columns(tap_server.catalogue, "similarity.model")
    assert {c.findtext("name") for c in root.findall("column")} == set(published)
    assert http.get(f"{tap_server.tap_url}/tables/vosim.uws_job").status_code == 404


def test_availability(tap_server: RunningServer) -> None:
    root = ET.fromstring(http.get(f"{tap_server.tap_url}/availability").content)
    ns = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"
    assert root.findtext(f"{ns}available") == "true"


def test_examples_are_rdfa_and_every_query_returns_rows(tap_server: RunningServer) -> None:
    response = http.get(f"{tap_server.tap_url}/examples")
    assert response.headers["content-type"].startswith("application/xhtml+xml")
    root = ET.fromstring(response.content)  # well-formed XML, as DALI 1.1 requires
    xhtml = "{http://www.w3.org/1999/xhtml}"
    [container] = [e for e in root.iter() if e.get("vocab")]
    assert container.get("vocab") == "http://www.ivoa.net/rdf/examples#"
    examples = [e for e in container.iter() if e.get("typeof") == "example"]
    assert len(examples) >= 6
    for example in examples:
        assert example.get("resource") == "#" + example.get("id")
        [name] = [e for e in example.iter() if e.get("property") == "name"]
        [query] = [e for e in example.iter() if e.get("property") == "query"]
        assert name.text and query.tag == f"{xhtml}pre"
        result = sync(tap_server.tap_url, query.text)
        assert result.status_code == 200, (example.get("id"), query_status(result.content))
        assert len(votable(result.content).get_first_table().array) > 0, example.get("id")


def test_the_base_url_leads_a_browser_to_the_capabilities(tap_server: RunningServer) -> None:
    response = http.get(tap_server.tap_url, follow_redirects=True)
    assert response.status_code == 200
    assert str(response.url) == f"{tap_server.tap_url}/capabilities"
    assert b"capabilities" in response.content
