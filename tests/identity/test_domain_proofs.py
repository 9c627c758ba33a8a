"""Domain proofs end to end, with a DNS server and an HTTPS server on 127.0.0.1 (no network).

The checks run as the worker runs them (one `run_once` at a time, driven by the test): a page
never checks inside its request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest

from petition.endorsements.lifecycle import purge_stale
from petition.identity.checks import Checker, Found
from petition.identity.worker import DomainProofWorker
from petition.tokens import Purpose, Tokens
from tests.conftest import TEST_SECRET
from tests.factories import add_endorsements, forget_cached
from tests.identity.servers import LoopbackDNS, LoopbackHTTPS
from tests.support import csrf_from, db_rows, free_port, run_sql

DOMAIN = "proof.example"
NAMES = (DOMAIN, f"www.{DOMAIN}", "evil.example")
SLUG = "protect-deserters"
RECORD = re.compile(r'_petition-challenge\.proof\.example\. TXT "([0-9a-f]{32})"')


@pytest.fixture
def dns() -> Iterator[LoopbackDNS]:
    with LoopbackDNS() as server:
        yield server


@pytest.fixture
def web() -> Iterator[LoopbackHTTPS]:
    with LoopbackHTTPS(NAMES) as server:
        yield server


class Proving:
    """An organisation proving its domain, and the worker checking it."""

    def __init__(self, site: Any, dns: LoopbackDNS, web: LoopbackHTTPS, database_url: str, **fields: Any) -> None:
        self.client = site.client
        self.dns, self.web, self.database_url = dns, web, database_url
        fields.setdefault("website", f"https://www.{DOMAIN}/about")
        fields.setdefault("organisation_name", "Proof Group")
        (self.endorsement_id,) = add_endorsements(self.client, **fields)
        nonce = db_rows(database_url, "SELECT token_nonce FROM endorsements WHERE id = $1", self.endorsement_id)[0]
        self.path = "/domain-proof/" + Tokens(TEST_SECRET).make(
            Purpose.DOMAIN_PROOF, endorsement_id=self.endorsement_id, nonce=nonce["token_nonce"]
        )
        services = self.client.app.state.services
        self.settings = services.settings
        self.checker = Checker(self.settings, https_port=web.port, test_ca=web.ca, timeout=3)
        self.worker = DomainProofWorker(services.db, self.settings, checker=self.checker)

    def page(self) -> str:
        response = self.client.get(self.path)
        assert response.status_code == 200, response.text
        return html.unescape(response.text)

    def challenge(self) -> str:
        match = RECORD.search(self.page())
        assert match, "no TXT record in zone-file form on the page"
        return match.group(1)

    def check_now(self) -> None:
        response = self.client.get(self.path)
        answer = self.client.post(self.path, data={"csrf_token": csrf_from(response.text)}, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(self.path)

    def run_worker(self) -> bool:
        handled = self.client.portal.call(self.worker.run_once)
        forget_cached(self.client)
        return bool(handled)

    def proof(self) -> dict[str, Any]:
        return db_rows(self.database_url, "SELECT * FROM domain_proofs WHERE endorsement_id = $1", self.endorsement_id)[
            0
        ]

    def item(self) -> dict[str, Any]:
        items = self.client.get(f"/api/appeals/{SLUG}/endorsements").json()["items"]
        return next(i for i in items if i["organisation_name"] == "Proof Group")

    def publish_txt(self, value: str) -> None:
        self.dns.zone.set(f"_petition-challenge.{DOMAIN}", "TXT", value)

    def publish_file(self, value: str, *, host: str = DOMAIN, status: int = 200, **headers: str) -> str:
        path = f"/.well-known/petition-endorsement/{value}"
        self.web.serve(host, path, value if status == 200 else "", status=status, **headers)
        return path

    def make_due(self) -> None:
        past = dt.datetime(2000, 1, 1)
        run_sql(self.database_url, "UPDATE domain_proofs SET next_check_at = :at", at=past)


@pytest.fixture
def proving(make_site: Any, dns: LoopbackDNS, web: LoopbackHTTPS, database_url: str) -> Proving:
    site = make_site(run_worker=False, dns_nameservers=dns.nameservers, domain_proof_allow_loopback=True)
    dns.zone.set(DOMAIN, "A", "127.0.0.1")
    dns.zone.set(f"www.{DOMAIN}", "A", "127.0.0.1")
    dns.zone.set("evil.example", "A", "127.0.0.1")
    return Proving(site, dns, web, database_url)


def test_a_txt_record_proves_the_domain_and_the_public_side_shows_it(proving: Proving):
    page = proving.page()
    value = proving.challenge()
    assert f"https://{DOMAIN}/.well-known/petition-endorsement/{value}" in page
    assert proving.proof()["state"] == "pending"
    # Nothing is checked until asked, and never inside the request.
    assert proving.run_worker() is False
    proving.publish_txt(value)
    proving.check_now()
    assert proving.proof()["state"] == "pending"
    assert "A check is queued" in proving.page()
    assert proving.run_worker() is True
    proof = proving.proof()
    assert proof["state"] == "verified" and proof["method"] == "dns"
    assert "is verified" in proving.page()

    item = proving.item()
    assert item["domain_verified"] == DOMAIN and item["domain_proof"] == "verified"
    assert item["domain_verified_at"].endswith("Z")
    listing = html.unescape(proving.client.get(f"/appeals/{SLUG}/signatories").text)
    assert f"domain verified: {DOMAIN}," in listing
    csv_text = proving.client.get(f"/appeals/{SLUG}/endorsements.csv").text
    header, *rows = csv_text.splitlines()
    assert header.endswith(
        ",endorsed_at,domain_verified,domain_verified_at,domain_proof,transparency_register,confirmed_by_two_officers"
    )
    assert any(
        row.startswith("Proof Group,") and f",{DOMAIN}," in row and row.endswith(",verified,,false") for row in rows
    )


def test_a_file_proves_the_domain(proving: Proving):
    value = proving.challenge()
    path = proving.publish_file(value)
    proving.check_now()
    assert proving.run_worker()
    assert proving.proof()["state"] == "verified" and proving.proof()["method"] == "https"
    assert (DOMAIN, path) in proving.web.requests


def test_a_missing_file_falls_back_to_dns(proving: Proving):
    value = proving.challenge()
    proving.publish_file(value, status=404)
    proving.publish_txt(value)
    proving.check_now()
    proving.run_worker()
    proof = proving.proof()
    assert proof["state"] == "verified" and proof["method"] == "dns"
    assert "file: HTTP 404" in proof["last_result"]


def test_a_redirect_within_the_domain_is_followed(proving: Proving):
    value = proving.challenge()
    path = proving.publish_file(value, host=f"www.{DOMAIN}")
    proving.publish_file(value, status=301, Location=f"https://www.{DOMAIN}:{proving.web.port}{path}")
    proving.check_now()
    proving.run_worker()
    assert proving.proof()["state"] == "verified" and proving.proof()["method"] == "https"


def test_a_redirect_off_the_domain_is_refused(proving: Proving):
    value = proving.challenge()
    path = proving.publish_file(value, host="evil.example")
    proving.publish_file(value, status=302, Location=f"https://evil.example:{proving.web.port}{path}")
    proving.check_now()
    proving.run_worker()
    proof = proving.proof()
    assert proof["state"] == "pending"
    assert "redirect off the domain" in proof["last_result"]
    assert "evil.example" not in proving.web.hosts_asked()
    assert proving.item()["domain_verified"] is None


def test_an_unproved_challenge_expires(proving: Proving):
    proving.challenge()
    run_sql(proving.database_url, "UPDATE domain_proofs SET expires_at = :at", at=dt.datetime(2000, 1, 1))
    proving.run_worker()
    assert proving.proof()["state"] == "expired"
    assert proving.item()["domain_proof"] is None
    # The page (its link still valid) gives a fresh challenge to prove.
    proving.challenge()
    assert proving.proof()["state"] == "pending"


def test_a_proof_that_no_longer_holds_lapses_and_is_shown_as_lapsed(proving: Proving):
    value = proving.challenge()
    proving.publish_txt(value)
    proving.check_now()
    proving.run_worker()
    assert proving.proof()["state"] == "verified"
    assert proving.proof()["next_check_at"] is not None  # the daily re-check
    proving.dns.zone.remove(f"_petition-challenge.{DOMAIN}", "TXT")
    proving.make_due()
    proving.run_worker()
    assert proving.proof()["state"] == "lapsed"
    item = proving.item()
    assert item["domain_verified"] is None and item["domain_proof"] == "lapsed"
    listing = html.unescape(proving.client.get(f"/appeals/{SLUG}/signatories").text)
    assert f"domain proof lapsed: {DOMAIN}" in listing
    assert "has lapsed" in proving.page()
    # Published again: verified again at the next check.
    proving.publish_txt(value)
    proving.make_due()
    proving.run_worker()
    assert proving.proof()["state"] == "verified"


def test_no_answer_from_dns_does_not_lapse_a_proof(proving: Proving):
    value = proving.challenge()
    proving.publish_txt(value)
    proving.check_now()
    proving.run_worker()
    assert proving.proof()["state"] == "verified"
    # A resolver that does not answer: the proof stays, and is tried again within the hour.
    silent = dataclasses.replace(proving.settings, dns_nameservers=(("127.0.0.1", free_port()),))
    proving.worker.checker = Checker(silent, https_port=proving.web.port, test_ca=proving.web.ca, timeout=0.5)
    proving.make_due()
    proving.run_worker()
    proof = proving.proof()
    assert proof["state"] == "verified"
    assert "no answer" in proof["last_result"]
    # But not for ever: a week without an answer, and it lapses.
    run_sql(proving.database_url, "UPDATE domain_proofs SET held_at = :at", at=dt.datetime(2000, 1, 1))
    proving.make_due()
    proving.run_worker()
    assert proving.proof()["state"] == "lapsed"


def test_a_name_pointing_at_loopback_is_refused_without_the_test_setting(
    make_site: Any, dns: LoopbackDNS, web: LoopbackHTTPS, database_url: str
):
    site = make_site(run_worker=False, dns_nameservers=dns.nameservers)
    dns.zone.set(DOMAIN, "A", "127.0.0.1")
    # A test certificate is trusted in the loopback test mode only.
    with pytest.raises(ValueError):
        Checker(site.client.app.state.services.settings, test_ca=web.ca)
    # As production runs it: no test certificate, loopback not allowed.
    checker = Checker(site.client.app.state.services.settings, https_port=web.port, timeout=3)
    value = "0" * 32
    web.serve(DOMAIN, f"/.well-known/petition-endorsement/{value}", value)
    result = site.client.portal.call(checker.check_file, DOMAIN, value)
    assert result.found is Found.ABSENT and "non-public address" in result.detail
    assert web.requests == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "240.0.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2001:db8::1",
    ],
)
def test_no_private_link_local_or_reserved_address_is_allowed(settings: Any, address: str):
    assert Checker(settings).allowed(address) is False


def test_public_addresses_are_allowed(settings: Any):
    checker = Checker(settings)
    assert checker.allowed("93.184.215.14") and checker.allowed("2606:4700::6810:84e5")


def test_an_anonymous_organisation_is_offered_no_proof_and_shows_nothing(proving: Proving):
    (anonymous_id,) = add_endorsements(proving.client, visibility="anonymous", website=f"https://{DOMAIN}")
    nonce = db_rows(proving.database_url, "SELECT token_nonce FROM endorsements WHERE id = $1", anonymous_id)[0]
    path = "/domain-proof/" + Tokens(TEST_SECRET).make(
        Purpose.DOMAIN_PROOF, endorsement_id=anonymous_id, nonce=nonce["token_nonce"]
    )
    response = proving.client.get(path)
    assert response.status_code == 404 and "_petition-challenge" not in response.text
    # Even with a verified proof behind it (written directly), nothing public names it.
    now = dt.datetime(2026, 1, 1)
    run_sql(
        proving.database_url,
        "INSERT INTO domain_proofs (endorsement_id, domain, challenge, state, created_at, expires_at, verified_at,"
        " last_result) VALUES (:id, :domain, :challenge, 'verified', :now, :now, :now, '')",
        id=anonymous_id,
        domain="anonymous.example",
        challenge="1" * 32,
        now=now,
    )
    forget_cached(proving.client)
    for path in (
        f"/api/appeals/{SLUG}/endorsements",
        f"/appeals/{SLUG}/endorsements.csv",
        f"/appeals/{SLUG}/signatories",
    ):
        assert "anonymous.example" not in proving.client.get(path).text


def test_an_endorsement_without_a_website_has_nothing_to_prove(proving: Proving):
    (bare,) = add_endorsements(proving.client, website="")
    nonce = db_rows(proving.database_url, "SELECT token_nonce FROM endorsements WHERE id = $1", bare)[0]
    token = Tokens(TEST_SECRET).make(Purpose.DOMAIN_PROOF, endorsement_id=bare, nonce=nonce["token_nonce"])
    response = proving.client.get(f"/domain-proof/{token}")
    assert response.status_code == 404 and "no website" in response.text


def test_a_forged_or_withdrawn_link_opens_nothing(proving: Proving):
    assert proving.client.get("/domain-proof/not-a-token").status_code == 400
    run_sql(
        proving.database_url, "UPDATE endorsements SET state = 'withdrawn' WHERE id = :id", id=proving.endorsement_id
    )
    assert proving.client.get(proving.path).status_code == 404
    # A POST without its CSRF token is refused before anything is queued.
    assert proving.client.post(proving.path, data={}).status_code == 403


def test_the_purge_deletes_a_withdrawn_endorsements_proof(proving: Proving):
    proving.challenge()
    old = dt.datetime(2000, 1, 1)
    run_sql(
        proving.database_url,
        "UPDATE endorsements SET state = 'withdrawn', updated_at = :old, withdrawn_at = :old WHERE id = :id",
        old=old,
        id=proving.endorsement_id,
    )
    db = proving.client.app.state.services.db
    purged = proving.client.portal.call(
        functools.partial(purge_stale, db, cutoff=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    )
    assert purged.withdrawn == 1
    assert db_rows(proving.database_url, "SELECT id FROM domain_proofs") == []


def test_a_certificate_that_does_not_name_the_host_proves_nothing(proving: Proving):
    value = proving.challenge()
    proving.dns.zone.set(f"files.{DOMAIN}", "A", "127.0.0.1")  # not in the test certificate's names
    path = proving.publish_file(value, host=f"files.{DOMAIN}")
    proving.publish_file(value, status=307, Location=f"https://files.{DOMAIN}:{proving.web.port}{path}")
    proving.check_now()
    proving.run_worker()
    proof = proving.proof()
    assert proof["state"] == "pending"
    assert "certificate is not valid" in proof["last_result"]
    assert f"files.{DOMAIN}" not in proving.web.hosts_asked()
