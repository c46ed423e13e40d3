"""QUICKSELECT=true: the five k-means representatives of the refined top 1000, 15 each."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.neighbours.quick_select import quick_select
from tests import served_archive as archive
from tests.tap.helpers import http
from tests.tap.server import RunningServer

CONTINUUM = [image for image in archive.PUBLIC if image.image_kind == "continuum"]


def document(server: RunningServer, ids: list[str], **params) -> dict:
    response = http.get(
        f"{server.url}/similarity/sync",
        params=[("ID", did) for did in ids]
        + [("RESPONSEFORMAT", "application/json"), ("QUICKSELECT", "true")]
        + [(k, str(v)) for k, v in params.items()],
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("selected", [[0], [1, 2]])
def test_quick_select_clusters_the_refined_ranking(
    archive_server: RunningServer, selected: list[int]
) -> None:
    ids = [CONTINUUM[i].did for i in selected]
    answer = document(archive_server, ids, MAXREC=2)
    ranking = [image for image, _ in archive.expected_ranking(ids)]
    vectors = np.stack([archive.vector(image) for image in ranking])
    want = quick_select(vectors)
    groups = answer["quick_select"]
    assert [group["representative"] for group in groups] == [
        ranking[i].did for i in want.representatives
    ]
    for group, members in zip(groups, want.preselected, strict=True):
        assert group["members"] == [ranking[i].did for i in members]
        assert group["members"][0] == group["representative"]
    assert len(answer["results"]) == 2, "the page asked for stays as asked"
    hidden = {image.did for image in archive.PROPRIETARY}
    listed = {did for group in groups for did in group["members"]}
    assert not listed & hidden and not listed & set(ids)


def test_quick_select_is_only_in_the_json_answer(archive_server: RunningServer) -> None:
    response = http.get(
        f"{archive_server.url}/similarity/sync",
        params={"ID": CONTINUUM[0].did, "QUICKSELECT": "true"},
    )
    assert response.status_code == 400
    assert b"RESPONSEFORMAT=application/json" in response.content
