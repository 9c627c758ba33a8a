"""One identity per deliverable mailbox: what `canonical_email` folds, and what it must not.

The attack: "info@strasse.de" is not "info@straße.de" (nor "σίσυφοσ.gr" "σίσυφος.gr"),
but the standard library's IDNA 2003 codec makes them one. The twin then answered for the
other mailbox's endorsement. The relay in these tests offers SMTPUTF8, as most do, so
that mail reaches both mailboxes whatever the code does with their domains: what is
tested is the identity, not the delivery (tests/outbox/test_international_addresses.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import idna
import pytest
from email_validator import validate_email
from hypothesis import given

from petition.endorsements.forms import WebsiteError, normalise_website
from petition.endorsements.vocabulary import canonical_email
from tests.conftest import BASE_URL
from tests.endorsements.host_names import HOST_NAMES, with_edges
from tests.support import SMTPServer, csrf_from, db_rows, links, mail_to

ESZETT = "info@straße.de"
SS_TWIN = "info@strasse.de"
FINAL_SIGMA = "office@σίσυφος.gr"
SIGMA_TWIN = "office@σίσυφοσ.gr"


# --- the canonical forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Office@Example.ORG", "office@example.org"),  # case
        ("  office@example.org \n", "office@example.org"),
        ("office+petition@example.org", "office@example.org"),  # sub-address
        ("+office@example.org", "+office@example.org"),  # a leading "+" is no tag
        ("J.O.H.N+x@GoogleMail.com", "john@gmail.com"),  # dots where the provider ignores them
        ("j.o.h.n@gmail.com", "john@gmail.com"),
        ("j.o.h.n@example.org", "j.o.h.n@example.org"),  # ... and nowhere else
        ("info@straße.de", "info@xn--strae-oqa.de"),  # IDNA 2008: ß stays ß, as an A-label
        ("info@Straße.DE", "info@xn--strae-oqa.de"),
        ("info@xn--strae-oqa.de", "info@xn--strae-oqa.de"),  # already punycode: the same domain
        ("info@XN--STRAE-OQA.DE", "info@xn--strae-oqa.de"),
        ("info@strasse.de", "info@strasse.de"),  # another domain
        ("info@straße.de.", "info@xn--strae-oqa.de"),  # trailing dot
        ("info@example.org.", "info@example.org"),
        ("office@σίσυφος.gr", "office@xn--kxa6ajbbmh.gr"),  # final sigma kept
        ("office@σίσυφοσ.gr", "office@xn--kxa6akbbkh.gr"),
        ("office@ΣΊΣΥΦΟΣ.GR", "office@xn--kxa6akbbkh.gr"),  # UTS 46 lowers a capital Σ to σ
        ("x@ｅｘａｍｐｌｅ.org", "x@example.org"),  # full-width letters: the same name in DNS
        ("ПЁТР@Example.org", "пётр@example.org"),
        ("Straße@example.org", "straße@example.org"),  # lower, not casefold: no "strasse@"
        ("a@exa_mple.com", "a@exa_mple.com"),  # no A-label form: kept, ASCII lowered
        ("a@Bad_Ü.DE", "a@bad_Ü.de"),
    ],
)
def test_canonical_forms(typed, canonical):
    assert canonical_email(typed) == canonical
    assert canonical_email(canonical) == canonical  # a migration recomputes stored forms with it


def _idna_domain(domain: str) -> str:
    """What canonical_email made of a domain before it had a fast path for plain host names."""
    domain = re.sub(r"[\s.]+$", "", domain)
    try:
        domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii").rstrip(".")
    except UnicodeError:
        domain = "".join(ch.lower() if ch.isascii() else ch for ch in domain)
    return "gmail.com" if domain == "googlemail.com" else domain


@given(HOST_NAMES)
@with_edges
def test_plain_domains_come_out_as_the_idna_package_makes_them(domain):
    assert canonical_email(f"office@{domain}") == f"office@{_idna_domain(domain)}"


def test_the_unicode_and_punycode_spellings_of_a_domain_are_one_mailbox():
    assert canonical_email("info@xn--strae-oqa.de") == canonical_email("info@straße.de")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (ESZETT, SS_TWIN),  # ß is not ss: two registrable domains, two owners
        (FINAL_SIGMA, SIGMA_TWIN),  # ς is not σ
        ("straße@example.org", "strasse@example.org"),
        ("j.o.h.n@example.org", "john@example.org"),  # dots count at other providers
        ("info@exаmple.org", "info@example.org"),  # a Cyrillic "а": a lookalike, not the same
    ],
)
def test_different_mailboxes_stay_apart(one, other):
    assert canonical_email(one) != canonical_email(other)


@pytest.mark.parametrize(
    "typed",
    [
        "Info@Straße.DE",
        "info@xn--strae-oqa.de",
        "Office+x@ΣΊΣΥΦΟΣ.GR",
        "ПЁТР@Почта.РФ",
        "J.O.H.N+x@GoogleMail.com",
        "x@ｅｘａｍｐｌｅ.org",
    ],
)
def test_the_stored_address_and_what_was_typed_have_one_canonical_form(typed):
    # The form stores email_validator's normalised address and canonicalises that.
    normalized = validate_email(typed, check_deliverability=False).normalized
    assert canonical_email(normalized) == canonical_email(typed)


def test_an_unencodable_domain_never_equals_a_real_one_and_stays_put():
    for typed in ("a@exa_mple.com", "a@-bad-.org", "a@xn--zz.de", "a@", "no-at-sign", "a@ .", "@straße.de"):
        once = canonical_email(typed)
        assert canonical_email(once) == once


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("https://Straße.de/", "https://straße.de"),  # not strasse.de
        ("https://ΟΔΟΣ.gr/x", "https://οδοσ.gr/x"),  # as browsers (UTS 46) read it, not str.lower's "οδος"
        ("https://xn--strae-oqa.de", "https://xn--strae-oqa.de"),
        ("ｅｘａｍｐｌｅ.org", "https://example.org"),
    ],
)
def test_websites_use_idna_2008(typed, normalised):
    assert normalise_website(typed) == normalised


def test_a_website_host_that_only_idna_2003_allows_is_refused():
    with pytest.raises(WebsiteError):
        normalise_website("https://☃.example")


# --- over HTTP: the twin of a mailbox cannot answer for it ------------------------------------


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    # Offers SMTPUTF8, as most relays do: mail reaches the ß mailbox however its domain is sent.
    server = SMTPServer(smtputf8=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def confirm_link(message: EmailMessage) -> str:
    found = [u for u in links(message, BASE_URL) if "/confirm/" in u]
    assert found, f"not a confirmation email: {message['Subject']!r}"
    return found[0]


def records(database_url: str) -> dict[str, dict[str, object]]:
    rows = db_rows(
        database_url, "SELECT organisation_name, contact_email, email_canonical, state FROM endorsements ORDER BY id"
    )
    return {str(r["contact_email"]): r for r in rows}


def endorse_and_confirm(site, smtp, address: str, name: str, **fields: str) -> EmailMessage:
    assert site.endorse(contact_email=address, organisation_name=name, **fields).status_code == 303
    [confirmation] = mail_to(smtp, address)
    assert site.confirm(confirm_link(confirmation)).status_code == 303
    return mail_to(smtp, address, 2)[1]  # the thank-you email


def twin_gets_its_own_confirmation(site, smtp, database_url, owner: str, twin: str) -> None:
    endorse_and_confirm(site, smtp, owner, "Owner Network", visibility="anonymous")

    assert site.endorse(contact_email=twin, organisation_name="Twin Collective").status_code == 303
    [message] = mail_to(smtp, twin)
    # A mailbox of its own: asked to confirm its own endorsement, not told it endorsed already.
    assert "already" not in message["Subject"].lower(), message["Subject"]
    assert site.confirm(confirm_link(message)).status_code == 303
    stored = records(database_url)
    assert stored[owner]["organisation_name"] == "Owner Network"
    assert stored[twin]["organisation_name"] == "Twin Collective"
    assert stored[owner]["email_canonical"] != stored[twin]["email_canonical"]


def test_ss_twin_does_not_get_already_endorsed_for_the_eszett_mailbox(site, smtp, database_url):
    twin_gets_its_own_confirmation(site, smtp, database_url, ESZETT, SS_TWIN)


def test_sigma_twin_does_not_get_already_endorsed_for_the_final_sigma_mailbox(site, smtp, database_url):
    twin_gets_its_own_confirmation(site, smtp, database_url, FINAL_SIGMA, SIGMA_TWIN)


def test_ss_twin_cannot_overwrite_the_eszett_mailbox_pending_endorsement(site, smtp, database_url):
    site.endorse(contact_email=ESZETT, organisation_name="Straße Refuge Network", visibility="anonymous")
    [owners_mail] = mail_to(smtp, ESZETT)

    site.endorse(contact_email=SS_TWIN, organisation_name="Strasse Collective", visibility="public")
    [twins_mail] = mail_to(smtp, SS_TWIN)
    assert site.confirm(confirm_link(twins_mail)).status_code == 303

    stored = records(database_url)
    assert set(stored) == {ESZETT, SS_TWIN}, stored  # two records, one per mailbox
    assert stored[ESZETT]["organisation_name"] == "Straße Refuge Network"
    assert stored[ESZETT]["state"] == "pending"  # only its own mailbox can confirm it
    # ... which it still can, as what it submitted.
    assert site.confirm(confirm_link(owners_mail)).status_code == 303
    stored = records(database_url)
    assert stored[ESZETT]["organisation_name"] == "Straße Refuge Network"
    assert stored[ESZETT]["state"] != "pending"
    assert stored[SS_TWIN]["organisation_name"] == "Strasse Collective"


def test_ss_twin_cannot_restart_the_eszett_mailbox_withdrawn_endorsement(site, smtp, client, database_url):
    thank_you = endorse_and_confirm(site, smtp, ESZETT, "Straße Refuge Network")
    path = next(u for u in links(thank_you, BASE_URL) if "/withdraw/" in u).replace(BASE_URL, "")
    page = client.get(path)
    assert client.post(path, data={"csrf_token": csrf_from(page.text)}, follow_redirects=False).status_code == 303
    assert records(database_url)[ESZETT]["state"] == "withdrawn"

    site.endorse(contact_email=SS_TWIN, organisation_name="Strasse Collective")
    [twins_mail] = mail_to(smtp, SS_TWIN)
    assert site.confirm(confirm_link(twins_mail)).status_code == 303

    stored = records(database_url)
    assert set(stored) == {ESZETT, SS_TWIN}, stored
    assert stored[ESZETT]["state"] == "withdrawn"
