"""Async jobs as an attacker sees them: ids that cannot be guessed, a list that can be off,
and stored results that carry no host of the attacker's choosing.

Jobs have no owner (no authentication, as in most TAP services), so a job is
private only by its URL: 128 random bits. The operator can turn the list
off (``VOSIM_TAP_JOB_LIST=0``). A result is written once and read by
anyone; it is written under the service's own base URL, never the
creating request's ``Host``, and each reader gets its URLs under the
reader's base, so ``Host: evil.example`` at creation leaves no trace.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from tests.tap import catalogue as small
from tests.tap.helpers import http
from tests.tap.server import RunningServer
from tests.tap.test_uws import QUICK, create, wait_for
from vo_service.tap.limits import TapLimits

EVIL = "evil.example"
URLS_QUERY = (
    "SELECT o.obs_publisher_did, o.access_url, i.preview_url FROM ivoa.obscore AS o "
    "JOIN similarity.image AS i ON i.obs_publisher_did = o.obs_publisher_did"
)


def _job_id(job_url: str) -> str:
    return job_url.rstrip("/").rsplit("/", 1)[-1]


def test_job_ids_are_128_random_bits(tap_server: RunningServer) -> None:
    ids = [_job_id(create(tap_server)) for _ in range(8)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", job_id) for job_id in ids), ids
    assert len(set(ids)) == len(ids)


def test_guessed_job_ids_are_answered_as_unknown(tap_server: RunningServer) -> None:
    real = _job_id(create(tap_server))
    guesses = [real[:16], real[:-1], real.upper(), secrets.token_hex(16), "0" * 32, "../" + real]
    answers = set()
    for guess in guesses:
        for path in ("", "/phase", "/results/result", "/parameters"):
            response = http.get(f"{tap_server.tap_url}/async/{guess}{path}")
            assert response.status_code == 404, (guess, path)
            answers.add(response.text.replace(guess, "<ID>"))
    assert http.get(f"{tap_server.tap_url}/async/{real}").status_code == 200
    assert len(answers) <= 2  # the one UWS message, and the router's for a path with '/'


def test_the_job_list_can_be_turned_off(new_server) -> None:
    assert TapLimits.from_env({"VOSIM_TAP_JOB_LIST": "0"}).job_list is False
    with new_server(job_list=False) as server:
        job_url = create(server, PHASE="RUN")
        assert wait_for(job_url, {"COMPLETED"}) == "COMPLETED"
        for params in ({}, {"PHASE": "COMPLETED"}, {"LAST": "10"}):
            listed = http.get(f"{server.tap_url}/async", params=params)
            assert listed.status_code == 403
            assert _job_id(job_url) not in listed.text
            assert "does not list its jobs" in listed.text
        assert http.get(f"{job_url}/results/result").status_code == 200


def _run_as(server: RunningServer, headers: dict[str, str], **params: str) -> str:
    """Create and run a job of ``URLS_QUERY`` sent with ``headers``; return its local URL."""
    with httpx.Client(timeout=60) as client:
        created = client.post(
            f"{server.tap_url}/async",
            data={"LANG": "ADQL", "QUERY": URLS_QUERY, "PHASE": "RUN", **params},
            headers=headers,
            follow_redirects=False,
        )
    assert created.status_code == 303
    job_url = f"{server.tap_url}/async/{_job_id(created.headers['location'])}"
    assert wait_for(job_url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    return job_url


@pytest.mark.parametrize("format_", ["votable", "votable/b2", "csv", "json", "fits"])
def test_a_result_created_under_a_foreign_host_carries_none_of_it(new_server, format_) -> None:
    with new_server() as server:  # no allowed-hosts setting: every Host reaches the app
        job_url = _run_as(
            server,
            {"host": EVIL, "x-forwarded-host": EVIL, "forwarded": f"host={EVIL}"},
            RESPONSEFORMAT=format_,
        )
        stored = next((server.settings.job_dir / _job_id(job_url)).glob("result.*")).read_bytes()
        assert EVIL.encode() not in stored
        result = http.get(f"{job_url}/results/result")
        assert result.status_code == 200
        assert EVIL.encode() not in result.content
        if format_ != "fits":  # sent as written, under the service's own base
            assert f"{server.url}/".encode() in result.content, result.content[:500]
        if format_ in ("votable", "csv", "json"):  # the rows as text: the URLs themselves
            assert f"{server.url}/preview/{small.image(1).key}".encode() in result.content


def test_each_reader_gets_the_urls_under_its_own_base(new_server) -> None:
    with new_server() as server:
        job_url = _run_as(server, {"host": EVIL}, RESPONSEFORMAT="csv")
        mine = http.get(f"{job_url}/results/result").text
        port = server.url.rsplit(":", 1)[1]
        other = http.get(f"{job_url}/results/result", headers={"host": f"localhost:{port}"}).text
        assert f"{server.url}/preview/" in mine and f"http://localhost:{port}" not in mine
        assert f"http://localhost:{port}/preview/" in other and server.url not in other
        assert mine.replace(server.url, "<BASE>") == other.replace(
            f"http://localhost:{port}", "<BASE>"
        )


def test_quick_job_still_runs(tap_server: RunningServer) -> None:
    job_url = create(tap_server, QUICK, PHASE="RUN")
    assert wait_for(job_url, {"COMPLETED"}) == "COMPLETED"
