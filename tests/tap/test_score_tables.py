"""The binary COPY rows of a query's similarity scores, against PostgreSQL's row format."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from vo_service.tap.score_tables import _CopyTemplate


def _rows(dids: list[str], scores: np.ndarray) -> bytes:
    """Each row as PostgreSQL's binary COPY writes it: 2 fields, each length-prefixed."""
    out = b""
    for did, score in zip(dids, scores, strict=True):
        if not np.isnan(score):
            encoded = did.encode()
            out += struct.pack("!hi", 2, len(encoded)) + encoded + struct.pack("!id", 8, score)
    return out


@pytest.mark.parametrize(
    "dids",
    [
        [f"ivo://a/b?image-{i:05d}" for i in range(40)],
        [f"ivo://a/{'x' * (i % 7)}{i}" for i in range(40)],
        ["ivo://é/ü", "ivo://a"],
    ],
    ids=["one-length", "lengths-differ", "non-ascii"],
)
def test_rows_hold_the_scores_and_leave_out_the_nan_ones(dids: list[str]) -> None:
    template = _CopyTemplate.build(dids)
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(len(dids))
    assert template.data(scores) == _rows(dids, scores)
    scores[rng.random(len(dids)) < 0.4] = np.nan
    scores[0] = np.nan
    assert template.data(scores) == _rows(dids, scores)
    assert template.data(np.full(len(dids), np.nan)) == b""
