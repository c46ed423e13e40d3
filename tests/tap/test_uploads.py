"""TAP_UPLOAD (TAP 1.1 section 2.3.8, DALI 1.1 3.2.4): inline VOTable and CSV, URLs, limits."""

from __future__ import annotations

import io

from astropy.io.votable import from_table
from astropy.table import Table

from . import catalogue as small
from .conftest import TEST_LIMITS
from .helpers import http, query_status, votable
from .server import RunningServer

JOIN = (
    "SELECT u.label, u.weight, o.target_name FROM TAP_UPLOAD.mine AS u "
    "JOIN ivoa.obscore AS o ON o.obs_publisher_did = u.did ORDER BY u.weight"
)


def _votable_bytes(table: Table) -> bytes:
    buffer = io.BytesIO()
    from_table(table).to_xml(buffer)
    return buffer.getvalue()


def _post(server: RunningServer, query: str, files: dict, upload: str = "mine,param:mine", **extra):
    data = {"LANG": "ADQL", "QUERY": query, "UPLOAD": upload, **extra}
    return http.post(f"{server.tap_url}/sync", data=data, files=files, timeout=60)


def test_inline_votable_upload_joins_with_obscore(tap_server: RunningServer) -> None:
    table = Table(
        {"did": [small.did(1), small.did(5)], "label": ["first", "fifth"], "weight": [1.5, 2.5]}
    )
    response = _post(tap_server, JOIN, {"mine": ("mine.xml", _votable_bytes(table))})
    assert response.status_code == 200, response.text
    result = votable(response.content).get_first_table().array
    assert list(result["label"]) == ["first", "fifth"]
    assert list(result["target_name"]) == ["HH212", "SPT2145-40"]


def test_inline_csv_upload(tap_server: RunningServer) -> None:
    content = f"did,label,weight\n{small.did(2)},second,1\n{small.did(3)},third,2\n".encode()
    response = _post(tap_server, JOIN, {"mine": ("mine.csv", content, "text/csv")})
    assert response.status_code == 200, response.text
    assert list(votable(response.content).get_first_table().array["label"]) == ["second", "third"]


def test_select_star_round_trips_the_uploaded_metadata(tap_server: RunningServer) -> None:
    table = Table({"did": [small.did(1)], "count": [3], "flux": [0.25]})
    table["flux"].unit = "Jy"
    table["flux"].meta["ucd"] = "phot.flux.density"
    response = _post(
        tap_server, "SELECT * FROM TAP_UPLOAD.mine", {"mine": ("m.xml", _votable_bytes(table))}
    )
    assert response.status_code == 200, response.text
    fields = {f.name: f for f in votable(response.content).get_first_table().fields}
    assert set(fields) == {"did", "count", "flux"}
    assert fields["count"].datatype == "long"
    assert str(fields["flux"].unit) == "Jy"


def test_upload_from_an_http_url(tap_server: RunningServer) -> None:
    source = (
        f"{tap_server.tap_url}/sync?LANG=ADQL&QUERY="
        "SELECT%20obs_publisher_did%20AS%20did,%20calib_level%20FROM%20ivoa.obscore"
    )
    response = http.post(
        f"{tap_server.tap_url}/sync",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.remote",
            "UPLOAD": f"remote,{source}",
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert int(votable(response.content).get_first_table().array["n"][0]) == 8


def test_upload_larger_than_the_limit_is_refused_with_a_clear_message(
    tap_server: RunningServer,
) -> None:
    rows = TEST_LIMITS.upload_limit_bytes // 30 + 10
    content = b"did,weight\n" + b"".join(b"ivo://x/y?%020d,1\n" % i for i in range(rows))
    assert len(content) > TEST_LIMITS.upload_limit_bytes
    response = _post(tap_server, "SELECT * FROM TAP_UPLOAD.mine", {"mine": ("m.csv", content)})
    assert response.status_code == 400
    [(status, message)] = query_status(response.content)
    assert (
        status == "ERROR" and "limit" in message and str(TEST_LIMITS.upload_limit_bytes) in message
    )


def test_upload_names_are_checked(tap_server: RunningServer) -> None:
    content = b"a,b\n1,2\n"
    for upload in ("1abc,param:x", "bad-name,param:x", "noscheme", "t,ftp://x/y"):
        response = _post(
            tap_server, "SELECT * FROM TAP_UPLOAD.t", {"x": ("x.csv", content)}, upload
        )
        assert response.status_code == 400, upload
        assert query_status(response.content)[0][0] == "ERROR"
    response = _post(
        tap_server, "SELECT * FROM TAP_UPLOAD.t", {"x": ("x.csv", content)}, "t,param:x;T,param:x"
    )
    assert response.status_code == 400
    assert "twice" in query_status(response.content)[0][1]


def test_missing_part_and_garbage_content(tap_server: RunningServer) -> None:
    response = _post(tap_server, "SELECT * FROM TAP_UPLOAD.mine", {"other": ("x.csv", b"a\n1\n")})
    assert response.status_code == 400
    assert "multipart" in query_status(response.content)[0][1]
    response = _post(
        tap_server, "SELECT * FROM TAP_UPLOAD.mine", {"mine": ("x.xml", b"<VOTABLE><oops")}
    )
    assert response.status_code == 400


def test_uploaded_tables_do_not_outlive_the_query(tap_server: RunningServer) -> None:
    content = b"did,weight\nivo://x/y?1,1\n"
    first = _post(tap_server, "SELECT * FROM TAP_UPLOAD.mine", {"mine": ("m.csv", content)})
    assert first.status_code == 200
    response = http.get(
        f"{tap_server.tap_url}/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.mine"},
    )
    assert response.status_code == 400


def test_characters_xml_forbids_do_not_break_the_votable(tap_server: RunningServer) -> None:
    content = b"did,note\nivo://x/y?1,bell\x07and<tag>&amp\n"
    response = _post(tap_server, "SELECT note FROM TAP_UPLOAD.mine", {"mine": ("m.csv", content)})
    assert response.status_code == 200, response.text
    for serialization in ("votable/td", "votable/b2"):
        response = _post(
            tap_server,
            "SELECT note FROM TAP_UPLOAD.mine",
            {"mine": ("m.csv", content)},
            RESPONSEFORMAT=serialization,
        )
        [note] = votable(response.content).get_first_table().array["note"]
        assert note.endswith("and<tag>&amp") and note.startswith("bell")


TIMESTAMPS = f"""<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE>
<FIELD name="did" datatype="char" arraysize="*"/>
<FIELD name="seen" datatype="char" arraysize="*" xtype="timestamp"/>
<DATA><TABLEDATA>
<TR><TD>{small.did(1)}</TD><TD>2019-05-06T07:08:09</TD></TR>
<TR><TD>{small.did(2)}</TD><TD>2022-01-02T03:04:05.500</TD></TR>
</TABLEDATA></DATA>
</TABLE></RESOURCE>
</VOTABLE>
""".encode()


def test_uploaded_timestamps_compare_and_round_trip(tap_server: RunningServer) -> None:
    response = _post(
        tap_server,
        "SELECT did, seen FROM TAP_UPLOAD.mine WHERE seen > '2020-01-01T00:00:00'",
        {"mine": ("m.xml", TIMESTAMPS)},
    )
    assert response.status_code == 200, response.text
    table = votable(response.content).get_first_table()
    assert list(table.array["did"]) == [small.did(2)]
    assert table.array["seen"][0].startswith("2022-01-02T03:04:05.5")
    assert table.get_field_by_id("seen").xtype == "timestamp"
