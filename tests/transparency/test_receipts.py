"""Receipts: the link in the thank-you email shows an organisation its public log entry, the
checkpoint and the inclusion proof (page and JSON); an anonymous one's receipt is its secret and
opens its commitment; a named one gets a badge."""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from petition.app import create_app
from petition.appeals.states import Moderation
from petition.endorsements.lifecycle import Lifecycle
from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import endorsements, public_record_heads
from petition.outbox.messages import render_email
from petition.settings import Settings
from petition.templating import make_environment
from petition.tokens import Purpose
from petition.transparency import merkle, store
from petition.transparency.keys import log_signer
from petition.transparency.note import Checkpoint, Verifier, open_note
from tests.conftest import BASE_URL, make_settings
from tests.factories import add_endorsements
from tests.organisers.support import db_of, make_appeal
from tests.support import SMTPServer, drain_outbox, html_body, links, mail_to, translated

S = EndorsementState
EMAIL_LINE = (
    "Your receipt from the public log, which proves that your endorsement is recorded there (if your "
    "organisation is not named, keep this link to yourself):"
)


@pytest.fixture
def quiet_settings(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Settings:
    """No worker in the app: the test says when the log appends and when emails go out."""
    return make_settings(database_url, tmp_path / "data", smtp, run_worker=False)


@pytest.fixture
def app(quiet_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(quiet_settings), base_url=BASE_URL) as test_client:
        yield test_client


class Receipts:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.db = db_of(client)
        self.services = client.app.state.services  # type: ignore[attr-defined]
        self.lifecycle = Lifecycle(self.db, self.services.mailer)

    def confirmed(self, appeal: dict[str, Any], **fields: Any) -> int:
        [endorsement_id] = add_endorsements(self.client, appeal=appeal["id"], state=S.PENDING.value, **fields)
        nonce = self.value(sa.select(endorsements.c.token_nonce).where(endorsements.c.id == endorsement_id))
        outcome, _ = self.client.portal.call(lambda: self.lifecycle.confirm(endorsement_id=endorsement_id, nonce=nonce))
        assert outcome.value in ("confirmed", "held"), outcome
        return endorsement_id

    def value(self, query: Any) -> Any:
        return self.client.portal.call(lambda: self.db.fetch_val(query))

    def entry_id(self, endorsement_id: int) -> str:
        heads = public_record_heads
        return str(self.value(sa.select(heads.c.entry_id).where(heads.c.endorsement_id == endorsement_id)))

    def token(self, endorsement_id: int) -> str:
        entry = self.entry_id(endorsement_id)
        return str(self.services.tokens.make(Purpose.RECEIPT, endorsement_id=endorsement_id, nonce=entry))

    def append(self) -> int:
        async def append() -> int:
            return await store.append(self.db, await log_signer(self.db, self.services.settings))

        return int(self.client.portal.call(append))

    def run(self, fn: Any) -> Any:
        return self.client.portal.call(fn)


@pytest.fixture
def receipts(app: TestClient) -> Receipts:
    return Receipts(app)


def verify(client: TestClient, body: dict[str, Any]) -> Checkpoint:
    """What anyone holding the JSON checks: the checkpoint's signature, and the inclusion proof
    from the leaf to its root."""
    assert set(body) == {"leaf", "index", "checkpoint", "inclusion"}
    verifier = Verifier.parse(client.get("/log/key").text.strip())
    checkpoint = Checkpoint.parse(open_note(body["checkpoint"], verifier))
    proof = [base64.b64decode(value) for value in body["inclusion"]]
    leaf = merkle.leaf_hash(body["leaf"].encode())
    merkle.verify_inclusion(body["index"], checkpoint.size, leaf, proof, checkpoint.root)
    return checkpoint


def test_the_thank_you_email_links_a_receipt_that_is_pending_then_verifies(receipts: Receipts, smtp: SMTPServer):
    client = receipts.client
    appeal = make_appeal(client, "receipted", moderation=Moderation.POST, title="Protect them")
    receipts.append()  # the empty tree's checkpoint
    add_endorsements(client, appeal=appeal["id"], state=S.CONFIRMED.value, listed_at=None, count=2)
    endorsement_id = receipts.confirmed(
        appeal, organisation_name="Friedenskooperative Nord", visibility="public", contact_email="nord@receipt.example"
    )
    drain_outbox(client)
    [thank_you] = mail_to(smtp, "nord@receipt.example")
    [receipt_url] = [u for u in links(thank_you, BASE_URL) if "/receipts/" in u]
    assert receipt_url.replace("&", "&amp;") in html_body(thank_you)
    path = receipt_url.replace(BASE_URL, "")
    token = path.split("/receipts/")[1].split("?")[0]
    # Before the worker appended it: the page says so, the JSON is a 404 with an error.
    page = client.get(path)
    assert page.status_code == 200 and "being added to the public log" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    pending = client.get(f"/receipts/{token}.json")
    assert pending.status_code == 404 and pending.json()["error"] == "being added to the public log"
    assert pending.headers["retry-after"] and pending.headers["cache-control"] == "no-store"
    assert receipts.append() == 1
    page = client.get(path)
    assert page.status_code == 200 and "Verified" in page.text and "Friedenskooperative Nord" in page.text
    body = client.get(f"/receipts/{token}.json").json()
    checkpoint = verify(client, body)
    leaf = json.loads(body["leaf"])
    assert leaf["event"] == "listed" and leaf["entry"] == receipts.entry_id(endorsement_id)
    assert body["checkpoint"] == client.get("/log/checkpoint").text and checkpoint.size == body["index"] + 1
    # A later entry: the receipt is against the latest checkpoint, and still verifies.
    receipts.confirmed(appeal, organisation_name="Later", visibility="public")
    receipts.append()
    later = client.get(f"/receipts/{token}.json").json()
    assert later["index"] == body["index"] and Checkpoint.parse(later["checkpoint"].split("\n\n")[0] + "\n").size > (
        checkpoint.size
    )
    verify(client, later)


def test_a_receipt_cannot_be_guessed_or_forged(receipts: Receipts):
    client = receipts.client
    appeal = make_appeal(client, "secret", moderation=Moderation.POST)
    endorsement_id = receipts.confirmed(appeal, organisation_name="Hidden", visibility="anonymous")
    receipts.append()
    entry = receipts.entry_id(endorsement_id)
    assert client.get(f"/receipts/{receipts.token(endorsement_id)}.json").status_code == 200
    # The entry id is public (it is in the log): it alone opens nothing.
    for path in (f"/receipts/{entry}", f"/receipts/{entry}.json", f"/log/badges/{entry}.svg", "/receipts/x.y.z"):
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert "Hidden" not in response.text
    assert client.get(f"/receipts/{entry}.json").json() == {"error": "this receipt link is not valid"}
    # Signed for another purpose (the withdrawal link's), or naming another entry: refused.
    tokens = receipts.services.tokens
    withdraw = tokens.make(Purpose.WITHDRAW, endorsement_id=endorsement_id, nonce=entry)
    assert client.get(f"/receipts/{withdraw}.json").status_code == 400
    other = tokens.make(Purpose.RECEIPT, endorsement_id=endorsement_id, nonce="0" * 32)
    assert client.get(f"/receipts/{other}.json").status_code == 404
    assert client.get(f"/receipts/{other}").status_code == 404


def test_an_anonymous_receipt_opens_its_commitment_for_the_holder_only(receipts: Receipts):
    client = receipts.client
    appeal = make_appeal(client, "anon-receipt", moderation=Moderation.POST)
    endorsement_id = receipts.confirmed(
        appeal, organisation_name="Quiet Union", city="Lviv", country="UA", visibility="anonymous"
    )
    receipts.append()
    token = receipts.token(endorsement_id)
    body = client.get(f"/receipts/{token}.json").json()
    verify(client, body)
    leaf = json.loads(body["leaf"])
    assert "Quiet Union" not in body["leaf"] and "commitment" in leaf
    page = client.get(f"/receipts/{token}")
    assert page.headers["cache-control"] == "no-store"
    assert "Keep this link private" in page.text and "badge.svg" not in page.text
    # The page shows the text whose SHA-256 is the commitment: record and salt.
    salt = receipts.value(
        sa.select(public_record_heads.c.salt).where(public_record_heads.c.endorsement_id == endorsement_id)
    )
    assert salt in page.text
    start = page.text.index("{&#34;city&#34;") if "{&#34;city&#34;" in page.text else page.text.index('{"city"')
    shown = page.text[start : page.text.index("</pre>", start)].replace("&#34;", '"')
    assert hashlib.sha256(shown.encode()).hexdigest() == leaf["commitment"]
    assert json.loads(shown)["organisation_name"] == "Quiet Union" and json.loads(shown)["salt"] == salt
    # No badge: it would name the organisation on its own website next to an anonymous entry.
    assert client.get(f"/log/badges/{leaf['entry']}.svg").status_code == 404


@pytest.mark.parametrize("lang", ["en", "de", "ru", "uk", "fr"])
def test_a_named_organisation_gets_a_badge(receipts: Receipts, lang: str):
    client = receipts.client
    appeal = make_appeal(client, f"badge-{lang}", moderation=Moderation.POST, title="Protect <them> & us")
    endorsement_id = receipts.confirmed(appeal, organisation_name="Open Org", visibility="public")
    receipts.append()
    token = receipts.token(endorsement_id)
    body = client.get(f"/receipts/{token}.json").json()
    index, entry = body["index"], json.loads(body["leaf"])["entry"]
    # By the entry's public id: the receipt's token (which opens the receipt) is never embedded.
    response = client.get(f"/log/badges/{entry}.svg?lang={lang}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    root = ET.fromstring(response.content)  # well-formed XML
    svg = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{svg}svg" and root.get("role") == "img"
    title = root.find(f"{svg}title")
    assert title is not None and title.text and "Protect <them> & us" in title.text and str(index) in title.text
    assert root.get("aria-labelledby") == title.get("id")
    statement = "We endorsed “%(title)s”"
    expected = statement if lang == "en" else translated(statement, lang)
    assert expected.split("%(title)s")[0] in title.text
    # Nothing outside: no link, image, style sheet or script.
    assert b"href" not in response.content and b"<script" not in response.content and b"url(" not in response.content
    page = client.get(f"/receipts/{token}?lang={lang}")
    assert f"/log/badges/{entry}.svg" in page.text and f"{token}/badge" not in page.text


def test_a_withdrawn_receipt_says_so_and_loses_its_badge(receipts: Receipts):
    client = receipts.client
    appeal = make_appeal(client, "withdrawn-receipt", moderation=Moderation.POST)
    endorsement_id = receipts.confirmed(appeal, organisation_name="Leaving Org", visibility="public")
    receipts.append()
    token = receipts.token(endorsement_id)
    listed = client.get(f"/receipts/{token}.json").json()
    nonce = receipts.value(sa.select(endorsements.c.token_nonce).where(endorsements.c.id == endorsement_id))
    receipts.run(lambda: receipts.lifecycle.withdraw(endorsement_id=endorsement_id, nonce=nonce))
    receipts.append()
    body = client.get(f"/receipts/{token}.json").json()
    assert json.loads(body["leaf"])["event"] == "withdrawn" and body["index"] > listed["index"]
    verify(client, body)
    page = client.get(f"/receipts/{token}")
    assert page.status_code == 200 and "This endorsement was withdrawn" in page.text
    assert client.get(f"/log/badges/{json.loads(listed['leaf'])['entry']}.svg").status_code == 404


def test_a_held_endorsement_gets_a_receipt_that_waits_for_its_listing(receipts: Receipts, smtp: SMTPServer):
    client = receipts.client
    appeal = make_appeal(client, "premoderated", moderation=Moderation.PRE)
    endorsement_id = receipts.confirmed(
        appeal, organisation_name="Waiting Org", visibility="public", contact_email="wait@receipt.example"
    )
    receipts.append()
    drain_outbox(client)
    [thank_you] = mail_to(smtp, "wait@receipt.example")
    [receipt_url] = [u for u in links(thank_you, BASE_URL) if "/receipts/" in u]
    path = receipt_url.replace(BASE_URL, "")
    page = client.get(path)
    assert page.status_code == 200 and "not in the public list yet" in page.text
    token = path.split("/receipts/")[1].split("?")[0]
    assert client.get(f"/receipts/{token}.json").json() == {"error": "not in the public list yet"}
    # The organisers approve it: its entry takes the id the receipt named.
    assert client.portal.call(lambda: receipts.lifecycle.approve_all_confirmed(appeal_id=appeal["id"])) == 1
    receipts.append()
    body = client.get(f"/receipts/{token}.json").json()
    assert json.loads(body["leaf"])["entry"] == receipts.entry_id(endorsement_id)
    verify(client, body)


@pytest.mark.parametrize("lang", ["de", "ru", "uk", "fr"])
def test_the_receipt_page_and_email_line_are_translated(receipts: Receipts, lang: str):
    client = receipts.client
    appeal = make_appeal(client, f"receipt-{lang}", moderation=Moderation.POST)
    endorsement_id = receipts.confirmed(appeal, organisation_name="Translated", visibility="anonymous")
    token = receipts.token(endorsement_id)
    pending = client.get(f"/receipts/{token}?lang={lang}")
    assert f'lang="{lang}"' in pending.text
    assert translated("Your receipt from the public log", lang) in pending.text
    receipts.append()
    page = client.get(f"/receipts/{token}?lang={lang}")
    for msgid in (
        "Keep this link private: anyone who has it can prove that your organisation endorsed the appeal.",
        "Verified: the inclusion proof below leads from this entry to the root hash of the signed checkpoint.",
    ):
        assert translated(msgid, lang).replace("“", "").split("&")[0][:30] in page.text.replace("“", "")
    # The thank-you email's line about the receipt, in the organisation's language.
    context = {
        "organisation_name": "Translated",
        "listed_now": True,
        "held": False,
        "anonymous": True,
        "list_url": "https://petition.example/list",
        "withdraw_url": "https://petition.example/withdraw/w",
        "receipt_url": "https://petition.example/receipts/r",
    }
    _subject, text, html = render_email(make_environment(), "thank_you", lang, context)
    line = translated(EMAIL_LINE, lang)
    assert line in text and "https://petition.example/receipts/r" in text
    assert line[:20] in html and html.count('href="https://petition.example/receipts/r"') == 1
    assert "receipts" not in html.split("</title>")[0]  # in the body, not the subject


@pytest.mark.parametrize(
    "path",
    [
        "/receipts/%FF",
        "/receipts/..json",
        "/receipts/.json",
        "/receipts/a.b.c/badge.svg",
        "/receipts/" + "a" * 5000,
        "/receipts/WzEsImEiXQ.x.y.json",
        "/receipts/%E2%80%AE.json",
        "/receipts/x%00y",
    ],
)
def test_a_bad_receipt_link_is_a_clear_4xx(receipts: Receipts, path: str):
    response = receipts.client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)
