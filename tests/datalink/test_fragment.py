"""The DataLink fragment: an archive's own ``{links}`` response, plus vosim's similar images.

The archive here is a minimal other DataLink service: its own FIELD order
(``semantics`` first, no optional columns) and its own XML ID on the ID
FIELD. Its response with the fragment pasted in must pass ``stilts
datalinklint``, and pyvo must find and invoke the similar-images service
from it, as from vosim's own ``{links}``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyvo
from astropy.io.votable import parse, parse_single_table

from tests import served_archive as archive
from tests.stilts_lint import run_datalinklint, run_votlint
from tests.tap.helpers import http
from tests.tap.server import RunningServer
from vo_service.datalink.fragment import similarity_links

PUBLIC = archive.PUBLIC[0]
ARCHIVE_COLUMNS = (
    ("semantics", 'datatype="char" arraysize="*" ucd="meta.code"'),
    ("ID", 'ID="archive-id" datatype="char" arraysize="*" ucd="meta.id;meta.main"'),
    ("access_url", 'datatype="char" arraysize="*" ucd="meta.ref.url"'),
    ("service_def", 'datatype="char" arraysize="*" ucd="meta.ref"'),
    ("error_message", 'datatype="char" arraysize="*" ucd="meta.code.error"'),
    ("description", 'datatype="char" arraysize="*" ucd="meta.note"'),
    ("content_type", 'datatype="char" arraysize="*" ucd="meta.code.mime"'),
    ("content_length", 'datatype="long" unit="byte" ucd="phys.size;meta.file"'),
)


def archive_links(server: RunningServer, did: str) -> str:
    """The archive's own ``{links}`` response for ``did``, with vosim's fragment pasted in."""
    columns = [name for name, _ in ARCHIVE_COLUMNS]
    fragment = similarity_links(
        did,
        server.url,
        id_ref="archive-id",
        columns=columns,
        similarity=server.app.state.similarity,
    )
    fields = "\n".join(
        f'<FIELD name="{name}" {attributes}/>' for name, attributes in ARCHIVE_COLUMNS
    )
    own_row = (
        f"<TR><TD>#this</TD><TD>{did}</TD><TD>{server.url}/files/{PUBLIC.key}.fits</TD>"
        "<TD/><TD/><TD>The archive's own copy</TD><TD>application/fits</TD><TD/></TR>"
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results">
<INFO name="standardID" value="ivo://ivoa.net/std/DataLink#links-1.1"/>
<TABLE>
{fields}
<DATA><TABLEDATA>
{own_row}
{fragment.table_rows()}
</TABLEDATA></DATA>
</TABLE>
</RESOURCE>
{fragment.service_resource()}
</VOTABLE>
"""


def test_the_fragment_gives_the_rows_of_vosims_own_links(archive_server: RunningServer) -> None:
    fragment = similarity_links(
        PUBLIC.did, archive_server.url, similarity=archive_server.app.state.similarity
    )
    own = http.get(f"{archive_server.url}/datalink", params={"ID": PUBLIC.did})
    table = parse_single_table(io.BytesIO(own.content)).to_table()
    names = ("access_url", "service_def", "semantics", "description", "local_semantics")
    expected = [
        tuple(str(row[name]) or None for name in names)
        for row in table
        if row["local_semantics"] in ("similar-images", "similar-images-page")
    ]
    positions = [fragment.columns.index(name) for name in names]
    assert [tuple(row[p] for p in positions) for row in fragment.rows] == expected
    assert len(expected) == 2


def test_an_archive_response_with_the_fragment_passes_datalinklint(
    archive_server: RunningServer, tmp_path: Path
) -> None:
    document = tmp_path / "links.xml"
    document.write_text(archive_links(archive_server, PUBLIC.did))
    report = run_datalinklint(str(document))
    assert (report.errors, report.failures) == (0, 0), report.describe()
    assert run_votlint(str(document)).messages == []

    links = pyvo.dal.adhoc.DatalinkResults(parse(str(document)))
    [service] = [row for row in links if row.service_def]
    assert service.service_def == "similar-images"
    stream = service.process(maxrec=3)
    table = parse_single_table(io.BytesIO(stream.read())).to_table()
    expected = archive.expected_ranking([PUBLIC.did])[:3]
    assert list(table["obs_publisher_did"]) == [image.did for image, _ in expected]


def test_no_rows_for_an_image_vosim_cannot_show(archive_server: RunningServer) -> None:
    similarity = archive_server.app.state.similarity
    for did in (archive.PROPRIETARY[0].did, "ivo://vosim.test/products?nothing-here"):
        fragment = similarity_links(did, archive_server.url, similarity=similarity)
        assert fragment.rows == ()
        assert fragment.table_rows().strip() == ""
