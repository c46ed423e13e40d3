"""TAP's error oracle is closed: no predicate can make a proprietary row change an answer.

Each attack is a query that raises an error (or does not) depending on one
image's row, the way an attacker bisects a hidden value: the error fires
only on the row of the named image. Named after a proprietary image, every
attack must answer exactly as when it names an image the archive has never
heard of: same status, same body (the identifier apart), sync and async, on
both backends and for every table of image data. A control names a public
image: there the same predicates do fire, so the attacks are live.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.tap import catalogue as small
from tests.tap.helpers import http
from tests.tap.server import RunningServer

UNKNOWN = small.did(99)
PUBLIC_IMAGE = small.did(1)  # its neighbours include the proprietary images

# {row}: the probed row's image identifier; {n}: a positive whole number of that row.
# Each is placed as CASE WHEN <row is the target> THEN <it> ELSE 0 END = 0.
ERRORS = {
    "integer-overflow": "ABS(CAST({n} AS BIGINT) * 0 - 9223372036854775807 - 1)",
    "division-by-zero": "1 / ({n} - {n})",
    "modulo-by-zero": "MOD(1, {n} - {n})",
    "cast-of-text": "CAST({row} AS INTEGER)",
    "cast-of-string-function": "CAST(LOWER({row}) AS INTEGER)",
    "log-of-zero": "LOG({n} - {n})",
    "log10-of-negative": "LOG10(-{n})",
    "sqrt-of-negative": "SQRT(-{n})",
    "power-overflow": "POWER(10.0, {n} * 1000)",
    "exp-overflow": "EXP({n} * 1000.0)",
    "acos-domain": "ACOS({n} + 1)",
    "null-string-by-zero": "CAST(UPPER(CAST(NULL AS VARCHAR)) AS INTEGER) / ({n} - {n})",
    "subquery-rows": "(SELECT o.s_xel1 FROM ivoa.obscore AS o WHERE {row} IS NOT NULL)",
}

# table: (ADQL name, the column naming the probed image, a positive whole number of the row)
TABLES = {
    "image": ("similarity.image", "obs_publisher_did", "CAST(t.peak_snr AS INTEGER)"),
    "embedding": ("similarity.embedding", "obs_publisher_did", "t.model_id"),
    "neighbour": ("similarity.neighbour", "obs_publisher_did", "t.model_id"),
    "neighbour-as-neighbour": ("similarity.neighbour", "neighbour_did", "t.model_id"),
}

_TIMINGS = re.compile(rb'(name="(?:[a-zA-Z_]*[Tt]ime[a-zA-Z_]*|date|DATE)"[^>]*value=")[^"]*"')


def attack(table: str, error: str, target: str) -> str:
    name, column, number = TABLES[table]
    expression = ERRORS[error].format(row=f"t.{column}", n=number)
    return (
        f"SELECT COUNT(*) AS n FROM {name} AS t "
        f"WHERE CASE WHEN t.{column} = '{target}' THEN {expression} ELSE 0 END = 0"
    )


# vosim_similarity: how the probed image is named, and a positive whole number made of its score
SIMILARITY = {
    "constant": (
        "vosim_similarity('{target}', t.obs_publisher_did) IS NOT NULL",
        "CAST(2 + vosim_similarity('{target}', t.obs_publisher_did) AS INTEGER)",
    ),
    "row": (
        "t.obs_publisher_did = '{target}' AND vosim_similarity(t.obs_publisher_did, "
        f"'{PUBLIC_IMAGE}') IS NOT NULL",
        f"CAST(2 + vosim_similarity(t.obs_publisher_did, '{PUBLIC_IMAGE}') AS INTEGER)",
    ),
    "vector": (
        "t.obs_publisher_did = '{target}' AND vosim_similarity_vector(t.obs_publisher_did, "
        "'1 0 0 0 0 0 0 0') IS NOT NULL",
        "CAST(2 + vosim_similarity_vector(t.obs_publisher_did, '1 0 0 0 0 0 0 0') AS INTEGER)",
    ),
}


def similarity_attack(form: str, error: str, target: str) -> str:
    """The error predicates with the image's similarity score as their number, over ObsCore."""
    named, number = (part.format(target=target) for part in SIMILARITY[form])
    expression = ERRORS[error].format(row="t.obs_publisher_did", n=number)
    return (
        f"SELECT COUNT(*) AS n FROM ivoa.obscore AS t "
        f"WHERE CASE WHEN {named} THEN {expression} ELSE 0 END = 0"
    )


def value_attack(target: str, threshold: float = 11.5) -> str:
    """The issue's bisection of ``peak_snr``: overflow when the hidden value exceeds 11.5."""
    return (
        "SELECT COUNT(*) FROM similarity.image WHERE CASE WHEN obs_publisher_did = "
        f"'{target}' AND peak_snr > {threshold} THEN ABS(CAST(peak_snr AS BIGINT) * 0 "
        "- 9223372036854775807 - 1) ELSE 0 END = 0"
    )


def _normalised(body: bytes, target: str) -> bytes:
    return _TIMINGS.sub(rb"\1*", body.replace(target.encode(), b"<DID>"))


def _sync(server: RunningServer, query: str) -> tuple[int, str, bytes]:
    response = http.get(f"{server.tap_url}/sync", params={"LANG": "ADQL", "QUERY": query})
    return response.status_code, response.headers.get("content-type", ""), response.content


def _async(server: RunningServer, query: str) -> tuple[str, int, bytes]:
    (answer,) = _async_all(server, [query])
    return answer


def _async_all(server: RunningServer, queries: list[str]) -> list[tuple[str, int, bytes]]:
    """Run each query as an async job, all created at once; each job's phase and document."""
    jobs = []
    for query in queries:
        created = http.post(
            f"{server.tap_url}/async",
            data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"},
            follow_redirects=False,
        )
        jobs.append(created.headers["location"])
    return [_outcome(job) for job in jobs]


def _outcome(job: str) -> tuple[str, int, bytes]:
    deadline = time.monotonic() + 60
    phase = ""
    while time.monotonic() < deadline:
        phase = http.get(f"{job}/phase").text.strip()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        http.get(job, params={"WAIT": "5", "PHASE": phase})
    result = http.get(f"{job}/results/result" if phase == "COMPLETED" else f"{job}/error")
    return phase, result.status_code, result.content


def _same(first: tuple, second: tuple, targets: tuple[str, str]) -> bool:
    *head_a, body_a = first
    *head_b, body_b = second
    return head_a == head_b and _normalised(body_a, targets[0]) == _normalised(body_b, targets[1])


@pytest.mark.parametrize("error", sorted(ERRORS))
@pytest.mark.parametrize("table", sorted(TABLES))
def test_sync_attack_on_proprietary_image_answers_as_for_unknown_image(
    tap_server: RunningServer, table: str, error: str
) -> None:
    unknown = _sync(tap_server, attack(table, error, UNKNOWN))
    for hidden in small.PROPRIETARY:
        answer = _sync(tap_server, attack(table, error, hidden))
        assert _same(answer, unknown, (hidden, UNKNOWN)), (answer, unknown)
    assert unknown[0] == 200, unknown


@pytest.mark.parametrize("error", sorted(ERRORS))
@pytest.mark.parametrize("form", sorted(SIMILARITY))
def test_similarity_function_attacks_answer_as_for_unknown_image(
    tap_server: RunningServer, form: str, error: str
) -> None:
    unknown = _sync(tap_server, similarity_attack(form, error, UNKNOWN))
    for hidden in small.PROPRIETARY:
        answer = _sync(tap_server, similarity_attack(form, error, hidden))
        assert _same(answer, unknown, (hidden, UNKNOWN)), (answer, unknown)
    assert unknown[0] == 200, unknown


def _assert_async_answers_alike(server: RunningServer, attacks: dict[str, list[str]]) -> None:
    """``attacks``: per error, its query naming the unknown image, then each proprietary one."""
    queries = [query for group in attacks.values() for query in group]
    answers = iter(_async_all(server, queries))
    for error, group in attacks.items():
        unknown, *hidden = [next(answers) for _ in group]
        assert unknown[0] == "COMPLETED", (error, unknown)
        for target, answer in zip(small.PROPRIETARY, hidden, strict=True):
            assert _same(answer, unknown, (target, UNKNOWN)), (error, answer, unknown)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_async_attacks_answer_as_for_unknown_image(tap_server: RunningServer, table: str) -> None:
    _assert_async_answers_alike(
        tap_server,
        {
            error: [attack(table, error, target) for target in (UNKNOWN, *small.PROPRIETARY)]
            for error in sorted(ERRORS)
        },
    )


@pytest.mark.parametrize("form", sorted(SIMILARITY))
def test_async_similarity_function_attacks_answer_as_for_unknown_image(
    tap_server: RunningServer, form: str
) -> None:
    _assert_async_answers_alike(
        tap_server,
        {
            error: [
                similarity_attack(form, error, target) for target in (UNKNOWN, *small.PROPRIETARY)
            ]
            for error in sorted(ERRORS)
        },
    )


def test_async_attacks_are_live_on_a_public_image(tap_server: RunningServer) -> None:
    """Through async too, the predicates do raise on a public row: the jobs end in ERROR."""
    phases = _async_all(
        tap_server,
        [
            attack("image", "integer-overflow", PUBLIC_IMAGE),
            similarity_attack("constant", "integer-overflow", PUBLIC_IMAGE),
        ],
    )
    assert [phase for phase, *_ in phases] == ["ERROR", "ERROR"], phases


def test_the_bisection_of_a_hidden_value_learns_nothing(tap_server: RunningServer) -> None:
    hidden = small.PROPRIETARY[0]  # peak_snr 17.0 > 11.5: the old service answered 400
    assert _same(
        _sync(tap_server, value_attack(hidden)),
        _sync(tap_server, value_attack(UNKNOWN)),
        (hidden, UNKNOWN),
    )
    assert _async(tap_server, value_attack(hidden))[0] == "COMPLETED"


def test_the_attacks_are_live_on_a_public_image(tap_server: RunningServer) -> None:
    """The same predicates on a public row do raise, where the backend raises at all."""
    fired = {
        error
        for error in ERRORS
        if _sync(tap_server, attack("image", error, PUBLIC_IMAGE))[0] != 200
    }
    assert "integer-overflow" in fired
    for form, target in (
        ("constant", PUBLIC_IMAGE),
        ("row", small.did(3)),
        ("vector", small.did(3)),
    ):
        attacks = [similarity_attack(form, error, target) for error in ERRORS]
        assert any(_sync(tap_server, query)[0] != 200 for query in attacks), form
    assert _sync(tap_server, value_attack(PUBLIC_IMAGE, threshold=0.0))[0] == 400
    if tap_server.backend == "postgresql":
        assert {"division-by-zero", "cast-of-text", "log-of-zero", "subquery-rows"} <= fired


def test_an_image_enters_tap_at_its_release_date(tap_server: RunningServer) -> None:
    """The public rows are those of each query's instant and snapshot: a release is seen at once."""
    hidden = small.PROPRIETARY[0]
    obscore = tap_server.catalogue.table("ivoa.obscore")
    query = f"SELECT COUNT(*) AS n FROM similarity.image WHERE obs_publisher_did = '{hidden}'"

    def count() -> bytes:
        response = http.get(
            f"{tap_server.tap_url}/sync",
            params={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"},
        )
        return response.content.split()[-1]

    assert count() == b"0"
    with tap_server.catalogue.begin() as conn:
        conn.execute(
            obscore.update()
            .where(obscore.c.obs_publisher_did == hidden)
            .values(obs_release_date=small.PAST)
        )
    try:
        assert count() == b"1"
    finally:
        with tap_server.catalogue.begin() as conn:
            conn.execute(
                obscore.update()
                .where(obscore.c.obs_publisher_did == hidden)
                .values(obs_release_date=small.FUTURE)
            )
    assert count() == b"0"
