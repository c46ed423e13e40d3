"""Send to TOPCAT / Aladin: the page's SAMP Web Profile client, against astropy's SAMP hub.

astropy's SAMP package lives on as ``pyvo.samp`` (astropy 8 deprecates its
own copy); the older one is used where pyvo has none. The hub
(``SAMPHubServer(web_profile=True)``) is started here on the Web
Profile's well-known port 21012, with a consent dialogue that says yes and
records what it was asked; a registered astropy client stands in for TOPCAT
and Aladin and records the messages it receives. Headless Chromium clicks
the page's buttons. If another SAMP hub (a TOPCAT or Aladin of the user)
already holds port 21012, the tests are skipped: they must not talk to it.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse

try:
    from pyvo.samp import SAMPHubServer, SAMPIntegratedClient, WebProfileDialog, conf
except ImportError:  # pyvo before 1.7
    from astropy.samp import SAMPHubServer, SAMPIntegratedClient, conf
    from astropy.samp.hub import WebProfileDialog

from .conftest import BrowserSession, Site
from .helpers import open_page, page_url, pick_tile, ranking, screenshot

WEB_PROFILE_PORT = 21012


def port_in_use(port: int) -> bool:
    """Whether something listens on the port, or holds it bound, on IPv4 or IPv6 loopback.

    Connections the hub of an earlier test closed linger in TIME-WAIT; they
    do not count (the hub's server binds with SO_REUSEADDR, as the probe does).
    """
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if family == socket.AF_INET6 and error.errno in (97, 99):  # no IPv6 here
                    continue
                return True
    return False


class ConsentingDialog(WebProfileDialog):
    """The hub's consent dialogue: says yes, and remembers who asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, str]] = []
        self.running = True
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def show_dialog(self, samp_name, details, client, origin) -> None:
        self.asked.append((samp_name, origin))
        self.consent()

    def poll(self) -> None:
        while self.running:
            self.handle_queue()
            time.sleep(0.02)


@dataclass
class Receiver:
    """A desktop tool on the hub, subscribed to tables and images."""

    client: SAMPIntegratedClient
    received: list[tuple[str, dict]] = field(default_factory=list)

    def receive(self, private_key, sender_id, mtype, params, extra) -> None:
        self.received.append((mtype, dict(params)))

    def wait_for(self, mtype: str, seconds: float = 20.0) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for kind, params in self.received:
                if kind == mtype:
                    return params
            time.sleep(0.05)
        raise AssertionError(f"no {mtype} message arrived; got {self.received}")


@dataclass
class Hub:
    server: SAMPHubServer
    dialog: ConsentingDialog
    receiver: Receiver


def no_hub_answers() -> None:
    if port_in_use(WEB_PROFILE_PORT):
        pytest.skip(
            f"port {WEB_PROFILE_PORT}, the SAMP Web Profile's, is in use (another SAMP hub, "
            "e.g. TOPCAT or Aladin, runs here): the SAMP tests must not talk to it"
        )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    no_hub_answers()
    with conf.set_temp("use_internet", False):
        dialog = ConsentingDialog()
        dialog.thread.start()
        server = SAMPHubServer(
            web_profile=True,
            web_profile_dialog=dialog,
            web_port=WEB_PROFILE_PORT,
            lockfile=str(tmp_path_factory.mktemp("samp") / "samp-hub"),
            pool_size=2,
        )
        server.start(wait=False)
        try:
            if not server._web_profile:  # astropy drops the Web Profile if the port went
                pytest.skip(f"port {WEB_PROFILE_PORT} was taken while the hub started")
            client = SAMPIntegratedClient(name="Stand-in for TOPCAT", callable=True)
            client.connect(hub=server, pool_size=2)
            receiver = Receiver(client)
            for mtype in ("table.load.votable", "image.load.fits"):
                client.bind_receive_notification(mtype, receiver.receive)
            try:
                yield Hub(server, dialog, receiver)
            finally:
                client.disconnect()
        finally:
            dialog.running = False
            server.stop()


def client_names(hub: Hub) -> list[str]:
    client = hub.receiver.client
    return [
        client.get_metadata(id_).get("samp.name", "") for id_ in client.get_registered_clients()
    ]


def test_without_a_hub_the_page_says_what_to_do(
    session: BrowserSession, site: Site, artifacts: Path
) -> None:
    no_hub_answers()
    page = session.page
    open_page(page, page_url(site.url, [site.archive.of_kind("continuum")[0]]))
    page.click("#samp-table")
    page.wait_for_selector("#samp-status.samp-error")
    assert "no SAMP hub answered at localhost:21012" in page.inner_text("#samp-status")
    assert "start TOPCAT or Aladin" in page.inner_text("#samp-status")
    screenshot(page, artifacts, "samp-01-no-hub")


def test_the_page_registers_only_when_asked_and_sends_the_ranking(
    session: BrowserSession, site: Site, hub: Hub, artifacts: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))
    chosen = pick_tile(page, 2)
    assert hub.dialog.asked == [], "the page asked the hub before the user did"
    assert "vosim" not in client_names(hub)

    page.click("#samp-table")
    params = hub.receiver.wait_for("table.load.votable")
    page.wait_for_selector("#samp-status:has-text('Sent the ranking')")
    assert hub.dialog.asked == [("vosim", site.url)], "asked once, by this page's origin"
    assert "Stand-in for TOPCAT" in page.inner_text("#samp-status")
    assert "vosim" in client_names(hub)
    screenshot(page, artifacts, "samp-02-table-sent")

    assert params["url"].startswith(site.url + "/similarity/sync?")
    assert params["name"] and params["table-id"]
    table = parse(io.BytesIO(httpx.get(params["url"]).content)).get_first_table().to_table()
    expected = ranking(site.url, [start, chosen])
    assert list(table["obs_publisher_did"]) == [r["obs_publisher_did"] for r in expected["results"]]


def test_a_selected_images_fits_goes_to_the_image_viewer(
    session: BrowserSession, site: Site, hub: Hub, artifacts: Path
) -> None:
    page = session.page
    start = site.archive.of_kind("continuum")[0]
    open_page(page, page_url(site.url, [start]))  # the page before unregistered as it left
    chosen = pick_tile(page, 1)
    page.select_option("#samp-image-choice", chosen)
    hub.receiver.received.clear()
    asked = len(hub.dialog.asked)
    page.click("#samp-image")
    params = hub.receiver.wait_for("image.load.fits")
    page.wait_for_selector("#samp-status:has-text('Sent the FITS file')")
    assert params["image-id"] == chosen
    card = next(
        r for r in ranking(site.url, [start])["results"] if r["obs_publisher_did"] == chosen
    )
    assert params["url"] == card["file_url"]
    assert httpx.get(params["url"]).content[:6] == b"SIMPLE"
    assert len(hub.dialog.asked) == asked + 1
    page.click("#samp-table")
    hub.receiver.wait_for("table.load.votable")
    assert len(hub.dialog.asked) == asked + 1, "a page registers once"
    assert client_names(hub).count("vosim") == 1
    screenshot(page, artifacts, "samp-03-image-sent")


def test_leaving_the_page_unregisters(session: BrowserSession, site: Site, hub: Hub) -> None:
    page = session.page
    assert "vosim" in client_names(hub)
    page.goto(site.url + "/")
    deadline = time.monotonic() + 10
    while "vosim" in client_names(hub) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "vosim" not in client_names(hub)
