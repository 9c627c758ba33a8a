"""Cleaning and normalising what people type, without HTTP."""

from __future__ import annotations

import re
import unicodedata
from unittest import mock

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from petition.endorsements import forms
from petition.endorsements.forms import (
    WebsiteError,
    clean_line,
    normalise_website,
    normalised_email,
    parse_endorsement_form,
)
from petition.endorsements.vocabulary import canonical_email, normalise_name
from tests.endorsements.host_names import HOST_NAMES, with_edges
from tests.support import valid_form


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("example.org", "https://example.org"),
        ("http://x.org/a", "https://x.org/a"),
        ("https://example.org/", "https://example.org"),
        ("//example.org/x", "https://example.org/x"),
        ("HTTPS://WWW.Example.ORG/About?lang=de#team", "https://www.example.org/About?lang=de"),
        ("https://example.org:443/", "https://example.org"),
        ("https://example.org:8443/x", "https://example.org:8443/x"),
        ("https://пример.рф", "https://пример.рф"),
        ("", ""),
    ],
)
def test_websites_are_normalised_to_https(typed, normalised):
    assert normalise_website(typed) == normalised


@pytest.mark.parametrize(
    "typed",
    [
        "javascript:alert(1)",
        "JavaScript://example.org/%0Aalert(1)",
        "ftp://files.example.org",
        "https://user:pw@example.org",
        "https://user@example.org",
        "mailto:office@example.org",
        "https://localhost",
        "https://10.0.0.12",
        "https://[::1]/",
        "https://exa mple.org",
        "https://-bad-.org",
        "https://example.org:99999",
        "https://",
    ],
)
def test_websites_that_are_not_web_addresses_are_refused(typed):
    with pytest.raises(WebsiteError):
        normalise_website(typed)


def _website(typed: str) -> object:
    try:
        return normalise_website(typed)
    except WebsiteError:
        return WebsiteError


@given(HOST_NAMES)
@with_edges
def test_plain_host_names_come_out_as_the_idna_package_makes_them(host):
    # The fast path for letters, digits and hyphens gives what IDNA 2008 / UTS 46 give.
    url = f"https://{host}/about"
    fast = _website(url)
    with mock.patch.object(forms, "LDH_NAME", re.compile(r"(?!)")):  # never taken
        assert _website(url) == fast


_LOCAL_PIECES = st.sampled_from(
    ["a", "Z", "0", ".", "+", "_", "-", "!", "~", '"', " ", "é", "@", "info", "Info", "POSTMASTER", "a" * 60]
)
_DOMAINS = st.one_of(
    HOST_NAMES,
    st.sampled_from(["example.org", "Example.ORG", "x.test", "a.invalid", "b.local", "localhost", "c.onion"]),
    st.sampled_from(["in-addr.arpa", "a.b1", "a.123", "org", "a.b-c", "[127.0.0.1]", "a.co."]),
)


def _email(typed: str) -> object:
    try:
        return normalised_email(typed)
    except EmailNotValidError as exc:
        return str(exc)


def _validated(typed: str) -> object:
    try:
        return validate_email(typed, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return str(exc)


@given(st.lists(_LOCAL_PIECES, max_size=6).map("".join), _DOMAINS)
@example("a" * 64, "example.org")
@example("a" * 65, "example.org")
@example("a" * 64, "b" * 63 + "." + "b" * 63 + "." + "b" * 58 + ".cd")  # 254 in all
@example("a" * 64, "b" * 63 + "." + "b" * 63 + "." + "b" * 58 + ".cde")  # 255
@example("Info", "example.org")  # RFC 2142 names are lowered
@example("POSTMASTER", "Example.ORG")
@example("a", "x.test")  # special-use names
@example("a", "c.onion")
@example("a", "in-addr.arpa")
@example("a", "org")
@example("a", "a.b1")
def test_plain_addresses_come_out_as_email_validator_makes_them(local, domain):
    typed = f"{local}@{domain}"
    assert _email(typed) == _validated(typed)


def test_emails_are_compared_lower_case_and_trimmed():
    assert canonical_email("  Office@Example.ORG \n") == "office@example.org"
    first = parse_endorsement_form(valid_form(contact_email=" Office@Example.ORG "))
    second = parse_endorsement_form(valid_form(contact_email="office@example.org"))
    assert first.ok and second.ok
    assert first.data["email_canonical"] == second.data["email_canonical"] == "office@example.org"


def test_lines_lose_control_and_bidi_override_characters():
    assert clean_line("  Connection\u202e e.V.\x00\n ") == "Connection e.V."
    assert normalise_name("Amnesty  International e.V.") == "amnesty international e v"


@given(st.text(alphabet=st.characters(codec="ascii")) | st.text(alphabet=" \t\n\x00\x7fab\u00a0\u2028\u202e\u0301e"))
@example("  Connection  e.V.  ")
@example("e\u0301 \u00a0x")
def test_a_plain_line_is_cleaned_as_any_other(value):
    """ASCII without control characters takes a shorter way (most fields): the same result."""
    slow = forms._SPACES.sub(" ", forms._CONTROL.sub("", unicodedata.normalize("NFC", value))).strip()
    assert clean_line(value) == slow


@given(st.text(alphabet=st.characters(codec="ascii")))
@example("  Amnesty--International e.V. ")
def test_a_plain_name_is_normalised_as_any_other(value):
    """An ASCII name takes a shorter way (most names): the same stored form as the general one."""
    folded = unicodedata.normalize("NFKD", value.casefold())
    kept = "".join(ch if ch.isalnum() else " " for ch in folded if not unicodedata.combining(ch))
    assert normalise_name(value) == re.sub(r"\s+", " ", kept).strip()[:200]


def test_values_that_are_not_text_count_as_missing():
    form = valid_form()
    form["organisation_name"] = ["a", "b"]  # type: ignore[assignment]
    parsed = parse_endorsement_form(form)
    assert "organisation_name" in parsed.errors


@pytest.mark.parametrize("sent", [None, "", "  ", "PUBLIC", "everyone"])
def test_visibility_is_never_assumed(sent):
    form = valid_form()
    if sent is None:
        del form["visibility"]
    else:
        form["visibility"] = sent
    parsed = parse_endorsement_form(form)
    assert parsed.errors == {"visibility": "Please choose whether your organisation may be named publicly."}
    assert parsed.data["visibility"] == ""
    assert parsed.values["visibility"] == ""  # the re-rendered form shows no option chosen


@pytest.mark.parametrize("chosen", ["public", "anonymous"])
def test_the_chosen_visibility_is_kept_when_another_field_is_refused(chosen):
    parsed = parse_endorsement_form(valid_form(visibility=chosen, organisation_name=""))
    assert set(parsed.errors) == {"organisation_name"}
    assert parsed.values["visibility"] == chosen
