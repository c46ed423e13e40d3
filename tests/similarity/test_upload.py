"""Search by an uploaded FITS image: ``POST /similarity/sync`` with a file field ``IMAGE``."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from model_training.ingest.cutout import make_cutout
from model_training.ingest.fits_image import read_fits_image
from tests import served_archive as archive
from tests.fits_factory import source_image, write_cube, write_image
from tests.stilts_lint import run_votlint
from tests.tap.helpers import http, query_status, votable
from tests.tap.server import RunningServer


def continuum_file(folder: Path) -> Path:
    return write_image(folder / "mine.fits", source_image(96, 96, snr=40.0, seed=77))


def cube_file(folder: Path) -> Path:
    cube = np.random.default_rng(5).normal(0.0, 1e-3, size=(6, 40, 40))
    cube[2:4, 12, 30] += 0.03
    return write_cube(folder / "cube.fits", cube, freq_hz=100e9, channel_width_hz=1e6)


def upload(server: RunningServer, path: Path | None, content: bytes | None = None, **params):
    files = {"IMAGE": (path.name if path else "x.fits", path.read_bytes() if path else content)}
    return http.post(f"{server.url}/similarity/sync", data=params, files=files)


def expected(path: Path, kind: str, excluded: list[str] = ()):
    image = read_fits_image(path)
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    _, vector = archive.PooledEmbedder().embed(kind, cutout.pixels)
    return archive.expected_upload_ranking(vector, kind, excluded)


@pytest.mark.parametrize(
    ("make", "kind"), [(continuum_file, "continuum"), (cube_file, "peak_flux")]
)
def test_ranking_against_an_uploaded_image(
    archive_server: RunningServer, tmp_path: Path, make, kind: str
) -> None:
    path = make(tmp_path)
    response = upload(archive_server, path, RESPONSEFORMAT="application/json", MAXREC=12)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["selection"] == [] and document["image_kind"] == kind
    assert document["upload"]["file_name"] == path.name
    assert document["upload"]["image_kind"] == kind
    assert document["upload"]["cutout_rule"] == "peak"
    want = expected(path, kind)
    assert document["total"] == len(want)
    want = want[:12]
    assert [row["obs_publisher_did"] for row in document["results"]] == [i.did for i, _ in want]
    assert [row["similarity"] for row in document["results"]] == pytest.approx(
        [score for _, score in want], abs=1e-5
    )


def test_excluded_images_with_an_upload(archive_server: RunningServer, tmp_path: Path) -> None:
    path = continuum_file(tmp_path)
    avoided = archive.PUBLIC[0].did
    response = upload(
        archive_server, path, RESPONSEFORMAT="application/json", MAXREC=12, NOT_ID=avoided
    )
    assert response.status_code == 200, response.text
    want = expected(path, "continuum", [avoided])[:12]
    assert [r["obs_publisher_did"] for r in response.json()["results"]] == [i.did for i, _ in want]


def test_selected_images_refine_an_uploaded_image(
    archive_server: RunningServer, tmp_path: Path
) -> None:
    """IMAGE and ID together: the upload is the search's start, the IDs further selections."""
    path = continuum_file(tmp_path)
    image = read_fits_image(path)
    _, uploaded = archive.PooledEmbedder().embed(
        "continuum", make_cutout(image.flux_map, image.wcs, image.noise).pixels
    )
    chosen = [archive.PUBLIC[1].did, archive.PUBLIC[5].did]
    response = upload(archive_server, path, RESPONSEFORMAT="application/json", MAXREC=12, ID=chosen)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["selection"] == chosen
    query = np.mean([uploaded, *(archive.vector(archive.BY_DID[d]) for d in chosen)], axis=0)
    query /= np.linalg.norm(query)
    want = [
        pair
        for pair in archive.expected_upload_ranking(query, "continuum")
        if pair[0].did not in chosen
    ]
    assert document["total"] == len(want)
    assert [row["obs_publisher_did"] for row in document["results"]] == [
        i.did for i, _ in want[:12]
    ]


def test_the_upload_answer_carries_the_cutout(archive_server: RunningServer, tmp_path: Path):
    path = continuum_file(tmp_path)
    document = upload(archive_server, path, RESPONSEFORMAT="application/json").json()
    described = document["upload"]
    image = read_fits_image(path)
    cutout = make_cutout(image.flux_map, image.wcs, image.noise)
    assert described["cutout_rule"] == cutout.rule == "peak"
    assert described["peak_snr"] == pytest.approx(cutout.peak_snr)
    assert (described["cutout_ra"], described["cutout_dec"]) == pytest.approx(
        (cutout.ra, cutout.dec)
    )
    picture = described["cutout_image"]
    pixels = np.frombuffer(base64.b64decode(picture["rgba"]), dtype=np.uint8)
    assert (picture["width"], picture["height"]) == (64, 64)
    rgba = pixels.reshape(64, 64, 4)
    assert (rgba[..., 3] == 255).all()
    row, column = np.unravel_index(np.argmax(rgba[..., :3].sum(axis=2)), (64, 64))
    assert (row, column) == (31, 32), "the peak is at the centre, north up (row 31 from the top)"


def test_min_separation_is_measured_from_the_uploaded_cutout(
    archive_server: RunningServer, tmp_path: Path
) -> None:
    path = continuum_file(tmp_path)
    whole = upload(archive_server, path, RESPONSEFORMAT="json", MAXREC=12).json()
    near = upload(archive_server, path, RESPONSEFORMAT="json", MAXREC=12, MIN_SEPARATION=3600)
    assert near.status_code == 200, near.text
    assert near.json()["hidden_nearby"] == whole["total"], "every test image lies in one field"
    assert near.json()["total"] == 0 and near.json()["results"] == []


def test_votable_answer_to_an_upload(archive_server: RunningServer, tmp_path: Path) -> None:
    response = upload(archive_server, continuum_file(tmp_path), MAXREC=3)
    assert response.status_code == 200
    table = votable(response.content)
    infos = {info.name: info.value for info in table.resources[0].infos}
    assert infos["upload_image_kind"] == "continuum"
    saved = tmp_path / "result.xml"
    saved.write_bytes(response.content)
    assert run_votlint(str(saved)).messages == []


def test_upload_errors(archive_server: RunningServer, tmp_path: Path) -> None:
    path = continuum_file(tmp_path)
    cube = upload(archive_server, path, ID=archive.PUBLIC[-2].did, RESPONSEFORMAT="json")
    assert cube.status_code == 400 and "only compared within one kind" in cube.json()["error"]
    junk = upload(archive_server, None, b"this is no FITS file" * 10, RESPONSEFORMAT="json")
    assert junk.status_code == 400
    assert junk.json()["error"].startswith("the uploaded image cannot be used: ")
    empty = upload(archive_server, None, b"", RESPONSEFORMAT="json")
    assert empty.status_code == 400
    plain = http.post(f"{archive_server.url}/similarity/sync", data={"IMAGE": "mine.fits"})
    assert plain.status_code == 400
    assert "multipart" in query_status(plain.content)[0][1]
    hidden = upload(archive_server, path, NOT_ID=archive.PROPRIETARY[0].did)
    assert hidden.status_code == 404


def test_oversized_uploads_are_refused_before_they_are_read(
    archive_server: RunningServer,
) -> None:
    limit = 300_000  # TEST_SIMILARITY_LIMITS
    large = upload(archive_server, None, b"\0" * (limit + 200_000))
    assert large.status_code == 413
    [(status, message)] = query_status(large.content)
    assert status == "ERROR" and "request body has" in message, "refused on its Content-Length"
    just_over = upload(archive_server, None, b"\0" * (limit + 10), RESPONSEFORMAT="json")
    assert just_over.status_code == 413
    assert f"at most {limit} bytes" in just_over.json()["error"]


def test_the_upload_answer_carries_the_vector_for_adql(
    archive_server: RunningServer, tmp_path: Path
) -> None:
    """The vector comes back (JSON list, VOTable INFO), so that ADQL can rank by it."""
    path = continuum_file(tmp_path)
    image = read_fits_image(path)
    _, vector = archive.PooledEmbedder().embed(
        "continuum", make_cutout(image.flux_map, image.wcs, image.noise).pixels
    )
    document = upload(archive_server, path, RESPONSEFORMAT="application/json").json()
    assert document["upload"]["vector"] == pytest.approx(vector.tolist(), abs=1e-6)
    table = votable(upload(archive_server, path).content)
    infos = {info.name: info.value for info in table.resources[0].infos}
    text = infos["upload_vector"]
    assert np.array(text.split(), dtype=np.float32) == pytest.approx(vector, abs=1e-6)
    best = document["results"][0]
    response = http.get(
        f"{archive_server.url}/tap/sync",
        params={
            "LANG": "ADQL",
            "QUERY": "SELECT vosim_similarity_vector(obs_publisher_did, "
            f"'{text}') AS sim FROM ivoa.obscore "
            f"WHERE obs_publisher_did = '{best['obs_publisher_did']}'",
        },
    )
    sim = votable(response.content).get_first_table().array["sim"][0]
    assert float(sim) == pytest.approx(best["similarity"], abs=1e-5)
