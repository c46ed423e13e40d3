"""A link crawler: every URL in every document vosim serves, followed and checked.

Starting from a few documents, it reads every URL out of each answer
(absolute URLs anywhere in XML, JSON and HTML text; ``href``, ``src`` and
``action`` attributes of HTML, resolved against the page; the URLs the
similarity page's script builds from its configuration), and

- requires each one to be under the public base URL, unless it is the
  namespace or schema of a standard (``www.ivoa.net``, ``www.w3.org``);
- GETs it (through the test server that stands for the public URL) and
  requires 200, or the status a bare service endpoint answers a request
  without parameters (400), and keeps crawling what it returns.
"""

from __future__ import annotations

import html
import json
import re
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from .conftest import Mounted

__all__ = ["Crawl", "crawl"]

STANDARD_HOSTS = frozenset({"www.ivoa.net", "ivoa.net", "www.w3.org"})
"""Hosts of namespaces and schema locations in the standards' documents: not links."""
BARE_ENDPOINTS = {"/tap/sync": 400, "/datalink": 400, "/similarity/sync": 400}
"""Service endpoints named without parameters (accessURLs, descriptors): their answer then.
(``/similar`` without parameters is the page of a search by an uploaded file: 200.)"""
NOT_FETCHED = frozenset({"/tap"})
"""The TAP base URL (capabilities' ``accessURL use="base"``) names no resource of its own:
TAP 1.1 defines only its children. It is checked to be under the base, not fetched."""
_ABSOLUTE = re.compile(r"""https?://[^\s"'<>\\]+""")
_MAX_FETCHES = 1500


@dataclass
class Crawl:
    """What a crawl found."""

    base_path: str
    """Path of the public base URL (``/alma/vosim``)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Every URL under the public base that was fetched, with its status."""
    outside: set[str] = field(default_factory=set)
    """URLs found that are neither under the public base nor a standard's namespace."""
    found_in: dict[str, str] = field(default_factory=dict)
    """The document each URL was first found in."""

    def expected_status(self, url: str) -> int:
        """200, or what a bare service endpoint answers a request without parameters."""
        parts = urlsplit(url)
        if parts.query:
            return 200
        return BARE_ENDPOINTS.get(parts.path.removeprefix(self.base_path), 200)

    def problems(self) -> dict[str, str]:
        """Every URL outside the base or answered with an unexpected status, and where it was."""
        problems = {url: f"outside the base, in {self.found_in[url]}" for url in self.outside}
        for url, status in self.statuses.items():
            if status != self.expected_status(url):
                problems[url] = f"status {status}, in {self.found_in.get(url, 'the seeds')}"
        return problems


def crawl(server: Mounted, seeds: list[str], client: httpx.Client) -> Crawl:
    """Crawl from ``seeds`` (URLs under the public base) and return what was found."""
    base = server.public_base
    result = Crawl(urlsplit(base).path)
    queue = deque(seeds)
    seen = set(seeds)
    while queue:
        url = queue.popleft()
        assert len(result.statuses) < _MAX_FETCHES, "the crawl does not end"
        if urlsplit(url).path.removeprefix(result.base_path) in NOT_FETCHED:
            continue
        response = client.get(server.local(url), headers=server.headers)
        result.statuses[url] = response.status_code
        if response.status_code != 200:
            continue
        for link in _links(url, response):
            if link in seen:
                continue
            seen.add(link)
            result.found_in[link] = url
            if link.startswith(base + "/"):
                queue.append(link)
            elif urlsplit(link).hostname not in STANDARD_HOSTS:
                result.outside.add(link)
    return result


def _links(url: str, response: httpx.Response) -> list[str]:
    """Every URL a document holds, absolute."""
    content_type = response.headers.get("content-type", "")
    if not any(kind in content_type for kind in ("xml", "json", "html", "text/plain")):
        return []  # FITS, PNG
    text = response.text
    links = [html.unescape(match) for match in _ABSOLUTE.findall(text)]
    if "html" in content_type:
        parser = _Links()
        parser.feed(text)
        links += [urljoin(url, link) for link in parser.links]
        if parser.page_config is not None:
            links += _script_urls(url, json.loads(parser.page_config))
    return links


def _script_urls(page: str, config: dict) -> list[str]:
    """The URLs the similarity page's script asks: the ranking, and the page of a selection.

    The page of an upload (no selection yet) asks nothing until a file is chosen.
    """
    dids = [card["obs_publisher_did"] for card in config["selection"]]
    if not dids:
        return []
    ranking = urlencode([("ID", did) for did in dids] + [("RESPONSEFORMAT", "application/json")])
    selection = urlencode([("ID", did) for did in dids])
    return [
        urljoin(page, config["service"]) + "?" + ranking,
        urljoin(page, config["page_path"]) + "?" + selection,
    ]


class _Links(HTMLParser):
    """Collects ``href``, ``src``, ``action`` and the page script's JSON configuration."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.page_config: str | None = None
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src", "action"):
            if values.get(name):
                self.links.append(values[name])
        self._in_config = tag == "script" and values.get("id") == "page-config"

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.page_config = data

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False
