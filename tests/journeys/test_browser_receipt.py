"""An organisation follows the receipt link from its thank-you email: its entry in the public
log, the inclusion proof (checked by the page, and again here against the signed checkpoint),
and the badge for its website — with and without JavaScript."""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

from petition.transparency import merkle
from petition.transparency.note import Checkpoint, Verifier, open_note
from tests.journeys.test_browser_endorse import fill_endorsement
from tests.support import links, wait_for_mail


def endorse_and_confirm(live_server: Any, smtp: Any, page: Any, *, name: str, email: str, visibility: str) -> str:
    """The receipt link of the thank-you email, once the endorsement is confirmed in the browser."""
    page.goto(f"{live_server.url}/appeals/protect-deserters")
    fill_endorsement(page, name=name, country="AT", city="Graz", email=email, visibility=visibility)
    page.click("main button[type=submit]")
    page.wait_for_url("**/check-email**")
    [confirmation] = wait_for_mail(smtp, email)
    [link] = links(confirmation, live_server.url)
    page.goto(link)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    thank_you = wait_for_mail(smtp, email, count=2)[1]
    [receipt] = [url for url in links(thank_you, live_server.url) if "/receipts/" in url]
    return receipt


def open_until_logged(page: Any, url: str, timeout: float = 30) -> None:
    """The receipt page, reloaded until the log's worker has appended the entry (seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        response = page.goto(url)
        assert response.status == 200
        assert response.headers["cache-control"] == "no-store"
        if page.locator(".verdict").count():
            return
        assert "being added to the public log" in page.content(), page.content()
        assert time.monotonic() < deadline, "the entry was not in the log within 30 s"
        time.sleep(0.5)


def test_a_named_organisation_checks_its_receipt_and_loads_its_badge(live_server, smtp, page, shots, javascript):
    receipt = endorse_and_confirm(
        live_server, smtp, page, name="Receipt Peace Circle", email="circle@receipt.example", visibility="public"
    )
    open_until_logged(page, receipt)
    shots("receipt")
    assert page.locator("h1").inner_text().strip() == "Your receipt from the public log"
    assert "Verified" in page.locator(".verdict").inner_text()
    assert "Receipt Peace Circle" in page.locator("main pre").first.inner_text()

    # The JSON the page links to, verified here from the log's key alone.
    token = receipt.split("/receipts/")[1].split("?")[0]
    body = page.request.get(f"{live_server.url}/receipts/{token}.json").json()
    assert set(body) == {"leaf", "index", "checkpoint", "inclusion"}
    key = page.request.get(f"{live_server.url}/log/key").text().strip()
    checkpoint = Checkpoint.parse(open_note(body["checkpoint"], Verifier.parse(key)))
    leaf = json.loads(body["leaf"])
    assert leaf["organisation_name"] == "Receipt Peace Circle" and leaf["event"] == "listed"
    merkle.verify_inclusion(
        body["index"],
        checkpoint.size,
        merkle.leaf_hash(body["leaf"].encode()),
        [base64.b64decode(value) for value in body["inclusion"]],
        checkpoint.root,
    )
    assert str(body["index"]) in page.locator("dl.summary").inner_text()

    # The badge: the page shows it, and it is a well-formed, accessible SVG.
    badge = page.locator("main img[src*='/log/badges/']")
    assert badge.count() == 1
    badge.scroll_into_view_if_needed()
    # Rendered by the browser as an image (the page's own CSP and the badge's allow it).
    if javascript:
        page.wait_for_function("() => document.querySelector(\"main img[src*='/log/badges/']\").naturalWidth > 0")
    # By the entry's public id, never by the receipt's token.
    src = badge.get_attribute("src") or ""
    assert token not in src
    response = page.request.get(src if src.startswith("http") else f"{live_server.url}{src}")
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    svg = ET.fromstring(response.body())
    assert svg.get("role") == "img"
    assert "We endorsed" in (svg.findtext("{http://www.w3.org/2000/svg}title") or "")
    shots("receipt-with-badge")


def test_an_anonymous_organisation_sees_how_to_prove_its_entry(live_server, smtp, page, shots):
    receipt = endorse_and_confirm(
        live_server, smtp, page, name="Quiet Receipt Group", email="quiet@receipt.example", visibility="anonymous"
    )
    open_until_logged(page, receipt)
    shots("anonymous-receipt")
    assert "Keep this link private" in page.content()
    assert page.locator("main img").count() == 0  # no badge for an anonymous organisation
    token = receipt.split("/receipts/")[1].split("?")[0]
    body = page.request.get(f"{live_server.url}/receipts/{token}.json").json()
    entry = json.loads(body["leaf"])["entry"]
    assert page.request.get(f"{live_server.url}/log/badges/{entry}.svg").status == 404
    assert "Quiet Receipt Group" not in body["leaf"]
