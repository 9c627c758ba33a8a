"""Email kinds: one builder each, used wherever the kind is sent, and values that the emails
queued by the previous release still have (the outbox renders them after an upgrade)."""

from __future__ import annotations

import datetime as dt
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from jinja2 import meta

import petition
from petition.delivery import emails as delivery_emails  # noqa: F401 - registers its builder
from petition.delivery import sending as delivery_sending
from petition.endorsements import emails as endorsement_emails  # noqa: F401 - registers its builders
from petition.endorsements import intake
from petition.i18n import LANGUAGES
from petition.identity import countersign_views  # noqa: F401 - registers its builder
from petition.news import emails as news_emails  # noqa: F401 - registers its builder
from petition.news import queries as news_queries
from petition.organisers import throttle
from petition.outbox.kinds import BUILDERS, email_kind
from petition.outbox.messages import Mailer, outbox_values, render_email, signed_link
from petition.privacy import emails as privacy_emails  # noqa: F401 - registers its builder
from petition.templating import make_environment
from petition.tokens import Purpose
from tests.conftest import make_settings

FACTS = {"organisation_name": "Connection e.V.", "country": "DE", "visibility": "anonymous", "language": "de"}

#: Arguments for each builder, as its callers pass them (the mailer is added below).
SAMPLES: dict[str, dict[str, Any]] = {
    "confirm": {"title": "Protect them", "nonce": "n" * 32, "facts": FACTS, "language": "de"},
    "already_endorsed": {"slug": "protect-deserters", "title": "Protect them", "language": "de"},
    "thank_you": {
        "slug": "protect-deserters",
        "facts": FACTS,
        "nonce": "n" * 32,
        "listed_now": False,
        "held": True,
        "entry": "e" * 32,
    },
    "data_request": {"nonce": "n" * 32, "language": "de"},
    "login_guessed": {"failures": 5, "at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)},
    "news": {
        "slug": "protect-deserters",
        "title": "Protect them",
        "organisation_name": "Connection e.V.",
        "subject": "Hearing in the petitions committee",
        "body": "The committee hears the appeal on 12 January.\n\nThank you for your support.",
        "nonce": "n" * 32,
        "language": "de",
    },
    "countersign": {
        "organisation_name": "Connection e.V.",
        "contact_name": "Rudi Friedrich",
        "contact_role": "Coordinator",
        "title": "Protect them",
        "nonce": "n" * 32,
        "language": "de",
        "valid_days": 7,
    },
    "delivery": {
        "subject": "The appeal: the organisations of Germany",
        "letter": "Dear Member of Parliament,\n\nWe write to you.",
        "title": "Protect them",
        "country": "DE",
        "dossier_url": "https://petition.example/appeals/protect-deserters/dossiers/" + "a" * 64 + ".pdf",
        "sha256": "a" * 64,
        "named": 2,
        "anonymous": 3,
        "language": "de",
    },
}

#: What the release before the builders (c930a06) stored with each kind: an email it queued is
#: rendered by this release's worker from exactly these values.
PREVIOUS_RELEASE: dict[str, dict[str, object]] = {
    "confirm": {
        "confirm_url": signed_link(Purpose.CONFIRM, "/confirm/{token}?lang=de", nonce="n" * 32),
        "title": "Protect them",
        "organisation_name": "Connection e.V.",
        "country": "DE",
        "anonymous": True,
        "valid_days": 7,
    },
    "already_endorsed": {
        "appeal_url": "https://petition.example/appeals/protect-deserters?lang=de",
        "title": "Protect them",
    },
    "thank_you": {
        "organisation_name": "Connection e.V.",
        "listed_now": False,
        "held": True,
        "anonymous": True,
        "list_url": "https://petition.example/appeals/protect-deserters/signatories?lang=de",
        "withdraw_url": signed_link(Purpose.WITHDRAW, "/withdraw/{token}?lang=de", nonce="n" * 32),
    },
    "data_request": {
        "download_url": signed_link(Purpose.DATA_REQUEST, "/privacy/data/{token}?lang=de", nonce="n" * 32),
        "valid_days": 7,
    },
    "login_guessed": {"failures": 5, "at": "2026-01-02 03:04 UTC", "minutes": 15},
    # New in this release (issue 19): the values it queues, which the next must still render.
    "news": {
        "subject": "Hearing in the petitions committee",
        "body": "The committee hears the appeal on 12 January.",
        "title": "Protect them",
        "organisation_name": "Connection e.V.",
        "appeal_url": "https://petition.example/appeals/protect-deserters?lang=de",
        "unsubscribe_url": signed_link(Purpose.UNSUBSCRIBE, "/unsubscribe/{token}?lang=de", nonce="n" * 32),
        "list_unsubscribe": signed_link(Purpose.UNSUBSCRIBE, "/unsubscribe/{token}", nonce="n" * 32),
    },
    # New in this release (issues 18 and 19).
    "countersign": {
        "organisation_name": "Connection e.V.",
        "contact_name": "Rudi Friedrich",
        "contact_role": "Coordinator",
        "title": "Protect them",
        "countersign_url": signed_link(Purpose.COUNTERSIGN, "/countersignature/{token}?lang=de", nonce="n" * 32),
        "valid_days": 7,
    },
    "delivery": {
        "subject": "The appeal: the organisations of Germany",
        "letter": "Dear Member of Parliament,\n\nWe write to you.",
        "title": "Protect them",
        "country": "DE",
        "dossier_url": "https://petition.example/appeals/protect-deserters/dossiers/" + "a" * 64 + ".pdf",
        "sha256": "a" * 64,
        "named": 2,
        "anonymous": 3,
        "verify_url": "https://petition.example/verify?lang=de",
    },
}


@pytest.fixture
def mailer(tmp_path) -> Mailer:
    return Mailer(make_settings(f"sqlite:///{tmp_path}/unused.db", tmp_path, None))


def built(kind: str, mailer: Mailer) -> dict[str, object]:
    arguments = dict(SAMPLES[kind])
    if "mailer" in inspect.signature(BUILDERS[kind]).parameters:
        arguments["mailer"] = mailer
    return BUILDERS[kind](**arguments)


def template_kinds() -> set[str]:
    return {
        name.split("/")[1]
        for name in make_environment().list_templates()
        if name.startswith("email/") and name.count("/") == 2
    }


def test_every_template_folder_has_one_builder_and_every_builder_a_folder():
    assert set(BUILDERS) == template_kinds()
    assert set(SAMPLES) == set(PREVIOUS_RELEASE) == set(BUILDERS)


def test_a_kind_cannot_get_a_second_builder():
    with pytest.raises(ValueError, match="has a builder already"):
        email_kind("confirm")(lambda: {})


def test_the_outbox_refuses_a_kind_without_a_builder(mailer):
    with pytest.raises(ValueError, match="no builder"):
        outbox_values(mailer.settings, name="newsletter", to="a@b.example", language="en", context={})


@pytest.mark.parametrize("kind", sorted(PREVIOUS_RELEASE))
def test_a_builder_keeps_every_value_the_previous_release_queued(kind, mailer):
    values = built(kind, mailer)
    assert set(PREVIOUS_RELEASE[kind]) <= set(values), set(PREVIOUS_RELEASE[kind]) - set(values)
    # And its templates read nothing it does not give (a new value needs a `default` for old emails).
    env = make_environment()
    read: set[str] = set()
    for part in ("subject.txt", "body.txt", "body.html"):
        source = env.loader.get_source(env, f"email/{kind}/{part}")[0]  # type: ignore[union-attr]
        read |= meta.find_undeclared_variables(env.parse(source))
    assert read - set(env.globals) - {"language"} <= set(values)


@pytest.mark.parametrize("kind", sorted(PREVIOUS_RELEASE))
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_email_queued_by_the_previous_release_still_renders(kind, language):
    context = {
        name: ("https://petition.example/link" if isinstance(value, dict) else value)
        for name, value in PREVIOUS_RELEASE[kind].items()
    }
    subject, text, html = render_email(make_environment(), kind, language, context)
    assert subject and text and html


def test_every_place_that_queues_an_email_uses_its_kinds_builder():
    """In the code: each `name=` of a queued email comes with `context=` from that kind's builder."""
    constants = {
        "ALERT_EMAIL": throttle.ALERT_EMAIL,
        "_MAIL_KIND": intake._MAIL_KIND,
        "NEWS_KIND": news_queries.NEWS_KIND,
        "DELIVERY_KIND": delivery_sending.DELIVERY_KIND,
    }
    call = re.compile(
        r"\b(?:queue|outbox_values)\((?:[^()]|\([^()]*\))*?\bname=(\"[a-z_]+\"|[A-Z_]+)"
        r"(?:[^()]|\([^()]*\))*?\bcontext=(\w+)\(",
        re.S,
    )
    found = []
    for path in Path(petition.__file__).parent.rglob("*.py"):
        for name, builder in call.findall(path.read_text(encoding="utf-8")):
            kind = name.strip('"') if name.startswith('"') else constants[name]
            found.append((path.name, kind, builder))
            assert BUILDERS[kind].__name__ == builder, (path, kind, builder)
    # The confirmation alone is queued from three places: submission, the grouped intake, a resend.
    assert sorted(kind for _path, kind, _builder in found) == sorted(
        [
            "already_endorsed",
            "confirm",
            "confirm",
            "confirm",
            "thank_you",
            "data_request",
            "login_guessed",
            "news",
            "countersign",
            "delivery",
        ]
    ), found
