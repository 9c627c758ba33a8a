"""Every email speaks as the operator: its name as the sender, Reply-To its address, a signature
in both parts, names isolated for right-to-left scripts, short readable links; and SpamAssassin's
local rules score each kind, rendered for real, below 1.0."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import mailbox
import re
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from petition.appeals.queries import DEMO_DIR
from petition.appeals.textfile import read_text_file
from petition.i18n import LANGUAGES
from petition.outbox.messages import build_message
from petition.templating import make_environment
from petition.tokens import Tokens
from tests.conftest import BASE_URL, TEST_SECRET, make_settings
from tests.outbox.test_kinds import SAMPLES, built, mailer  # noqa: F401 - the fixture
from tests.support import links, sqlite_pass_only

OPERATOR = {
    "site_name": "Appeals for the protection of objectors",
    "operator_name": "Friedensnetz e.V.",
    "operator_email": "kontakt@friedensnetz.example",
    "operator_address": r"Hauptstraße 1\n10115 Berlin, Germany",
    "privacy_contact": "datenschutz@friedensnetz.example",
}
ARABIC = "جمعية السلام"
KINDS = sorted(SAMPLES)


def demo_title(language: str) -> str:
    return read_text_file(DEMO_DIR / f"{language}.md").title


def message_of(kind: str, settings: Any, *, language: str = "en", organisation: str | None = None) -> EmailMessage:
    """The email of `kind` as the worker renders it: the demo appeal's title in the email's language."""
    values = built(kind, _Mailer(settings))
    if "title" in values:
        values["title"] = demo_title(language)
    if organisation is not None and "organisation_name" in values:
        values["organisation_name"] = organisation
    row = {
        "context": json.dumps(values, default=str),
        "endorsement_id": 7,
        "kind": kind,
        "language": language,
        "to_addr": "office@connection-ev.example",
        "message_id": "<0123456789abcdef@petition.example>",
        "created_at": dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC),
        "subject": None,
        "body_text": None,
        "body_html": None,
    }
    message = build_message(row, settings, make_environment(settings.operator), Tokens(TEST_SECRET))
    # As the relay receives it.
    parsed = email.message_from_bytes(message.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


class _Mailer:
    def __init__(self, settings: Any) -> None:
        self.settings = settings


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


@pytest.fixture
def operated(tmp_path):
    return make_settings(f"sqlite:///{tmp_path}/unused.db", tmp_path, None, **OPERATOR)


@pytest.fixture
def unnamed(tmp_path):
    return make_settings(f"sqlite:///{tmp_path}/unused.db", tmp_path, None)


@pytest.mark.parametrize("kind", KINDS)
def test_every_email_comes_from_the_operator_and_is_signed(kind, operated):
    message = message_of(kind, operated)
    [sender] = message["From"].addresses
    assert sender.display_name == "Friedensnetz e.V."
    assert sender.addr_spec == "appeal@petition.example"  # MAIL_FROM kept: the relay sends as it
    assert message["Reply-To"] == "kontakt@friedensnetz.example"
    text, html = parts(message)
    signature = text.split("\n-- \n", 1)[1]
    assert "Friedensnetz e.V." in signature
    assert "Hauptstraße 1\n10115 Berlin, Germany" in signature
    assert "kontakt@friedensnetz.example" in signature
    assert "<bdi>Friedensnetz e.V.</bdi>" in html
    assert "<bdi>Hauptstraße 1</bdi><br><bdi>10115 Berlin, Germany</bdi>" in html
    assert 'href="mailto:kontakt@friedensnetz.example"' in html


@pytest.mark.parametrize("kind", KINDS)
def test_without_an_operator_the_email_names_none_and_sets_no_reply_to(kind, unnamed):
    message = message_of(kind, unnamed)
    assert message["From"] == "appeal@petition.example"
    assert message["Reply-To"] is None
    text, _html = parts(message)
    assert text.split("\n-- \n", 1)[1].strip() == "Appeal platform"


def test_the_site_name_is_the_sender_when_no_operator_is_named(tmp_path):
    settings = make_settings(f"sqlite:///{tmp_path}/unused.db", tmp_path, None, site_name="Appeals (demo)")
    [sender] = message_of("confirm", settings)["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Appeals (demo)", "appeal@petition.example")


def test_the_confirmation_email_has_a_short_button_and_the_full_link_once_in_its_text(operated):
    message = message_of("confirm", operated)
    text, html = parts(message)
    [link] = links(message, BASE_URL)
    assert link.startswith(f"{BASE_URL}/confirm/")
    assert text.count(link) == 1
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert [h for h in hrefs if h.startswith(BASE_URL)] == [link.replace("&", "&amp;")] or [
        h for h in hrefs if h.startswith(BASE_URL)
    ] == [link]
    anchor = re.search(r'<a href="' + re.escape(link) + r'"[^>]*>([^<]+)</a>', html)
    assert anchor is not None and anchor.group(1) == "Confirm the endorsement"
    assert link not in re.sub(r'href="[^"]+"', "", html)  # the raw URL is not shown in the HTML


@pytest.mark.parametrize("kind", ["confirm", "thank_you"])
def test_right_to_left_organisation_names_are_isolated_in_the_html(kind, operated):
    _text, html = parts(message_of(kind, operated, organisation=ARABIC))
    assert f"<bdi>{ARABIC}</bdi>" in html


# --- SpamAssassin -------------------------------------------------------------------------------

SPAMASSASSIN = shutil.which("spamassassin")
needs_spamassassin = pytest.mark.skipif(
    SPAMASSASSIN is None,
    reason="the spamassassin binary is not installed (Debian: apt-get install spamassassin; "
    "scripts/bootstrap test installs it)",
)


def spam_scores(messages: list[EmailMessage], folder: Path) -> list[tuple[float, str]]:
    """SpamAssassin's score of each message with its local rules only (-L: no DNS or network
    tests), in order: one run over them all as an mbox (`--mbox`), not one a message, so Perl
    and the rules load once (0.8 s a run: 72 runs were the slowest minute of the suite). Its
    output comes in an order of its own: each message is known by its Message-ID, made unique
    here in the form the outbox gives it (16 hex digits)."""
    assert SPAMASSASSIN is not None
    inbox = mailbox.mbox(folder / "in.mbox")
    ids = []
    for n, message in enumerate(messages):
        ids.append(f"<{n:016x}@petition.example>")
        message.replace_header("Message-ID", ids[-1])
        inbox.add(mailbox.mboxMessage(message.as_bytes(policy=email.policy.SMTP).replace(b"\r\n", b"\n")))
    inbox.close()
    with (folder / "in.mbox").open("rb") as source, (folder / "out.mbox").open("wb") as scored:
        result = subprocess.run(  # noqa: S603 - a fixed binary with fixed arguments
            [SPAMASSASSIN, "-L", "-t", "--mbox"], stdin=source, stdout=scored, stderr=subprocess.PIPE, timeout=600
        )
    found: dict[str, tuple[float, str]] = {}
    outbox = mailbox.mbox(folder / "out.mbox")
    for scored_message in outbox:
        raw = scored_message.as_bytes().decode("utf-8", "replace")
        match = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)[^\n]*(?:\n\s+[^\n]*)*", raw, re.MULTILINE)
        assert match, raw[-2000:] + result.stderr.decode("utf-8", "replace")[-2000:]
        found[str(scored_message["Message-ID"]).strip()] = (float(match.group(1)), " ".join(match.group(0).split()))
    outbox.close()
    assert sorted(found) == sorted(ids), result.stderr.decode("utf-8", "replace")[-2000:]
    return [found[i] for i in ids]


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[float, str]]:
    """Every kind in every language, as the operator of OPERATOR sends it, scored in one run."""
    if SPAMASSASSIN is None:
        return {}
    folder = tmp_path_factory.mktemp("spamassassin")
    settings = make_settings(f"sqlite:///{folder}/unused.db", folder, None, **OPERATOR)
    keys = [(kind, language) for kind in KINDS for language in LANGUAGES]
    messages = [message_of(kind, settings, language=language) for kind, language in keys]
    return dict(zip(keys, spam_scores(messages, folder), strict=True))


#: SpamAssassin's MIXED_ES ("too many es are not es", 1.0) counts the Cyrillic е as a Latin e in
#: disguise: a Russian, Ukrainian or Belarusian email fires it as soon as its body holds more than 20 Latin
#: e's (the operator's name and address in the signature of both parts, the link in the text part)
#: and fewer than a tenth as many as Cyrillic ones. Nothing the templates can change: it is left
#: out of the bound for those three languages only, and every other rule still counts.
SCRIPT_RULES = {"ru": {"MIXED_ES": 1.0}, "uk": {"MIXED_ES": 1.0}, "be": {"MIXED_ES": 1.0}}


@needs_spamassassin
@sqlite_pass_only
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_each_email_scores_below_one_with_spamassassins_local_rules(kind, language, scores):
    score, status = scores[kind, language]
    print(f"spamassassin {kind} [{language}]: {status}")
    rules = set(re.findall(r"[A-Z][A-Z0-9_]{3,}", status.split("tests=", 1)[1].split(" autolearn")[0]))
    allowance = sum(points for rule, points in SCRIPT_RULES.get(language, {}).items() if rule in rules)
    assert score - allowance < 1.0, status
