"""An organiser who chose German (`?lang=`, with an English browser) keeps it through every form
and redirect, and reads words, not stored codes, on every page."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from petition.appeals.states import AppealStatus, Moderation
from petition.audit.actions import AuditAction
from petition.audit.labels import ACTION_LABELS
from petition.audit.queries import record
from petition.endorsements.lifecycle import CLI_APPROVAL
from petition.endorsements.states import EndorsementState, HoldReason, Visibility
from petition.organisers import labels
from petition.organisers.roles import Role
from petition.outbox.kinds import BUILDERS
from tests.factories import add_endorsements
from tests.organisers.support import PASSWORD, add_organiser, audit_rows, login, make_appeal, run
from tests.organisers.test_two_step_login import code_at, enrol
from tests.support import csrf_from

ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}


def _lang_of(html: str) -> str:
    match = re.search(r'<html lang="([a-z]+)"', html)
    assert match, html[:200]
    return match.group(1)


def _action(html: str, prefix: str) -> str:
    """The action of the page's POST form whose action starts with `prefix` (as a browser would post)."""
    for action in re.findall(r'<form method="post" action="([^"]+)"', html):
        action = unescape(action)
        if action.startswith(prefix):
            return action
    raise AssertionError(f"no form posting to {prefix} on the page")


def _german(client, response, *, status: int = 200):
    """Follow the redirects of `response` one by one: each keeps ?lang=de, the page is German."""
    while response.status_code in (302, 303):
        location = response.headers["location"]
        assert parse_qs(urlsplit(location).query).get("lang") == ["de"], location
        response = client.get(location, headers=ENGLISH, follow_redirects=False)
    assert response.status_code == status, response.text[:300]
    assert _lang_of(response.text) == "de"
    assert response.headers["content-language"] == "de"
    return response


def test_an_organiser_in_german_stays_in_german_through_login_decisions_builds_and_closing(client):
    appeal = make_appeal(client, "schutz", moderation=Moderation.PRE)
    [waiting] = add_endorsements(client, appeal=appeal["id"], organisation_name="Friedensnetz Kassel")
    add_organiser(client, "ada@orga.example", "admin")

    # The organiser area, asked for in German, sends to the German login form.
    page = _german(client, client.get("/admin/moderation?lang=de", headers=ENGLISH, follow_redirects=False))
    assert "Anmeldung" in page.text or "Anmelden" in page.text

    # A wrong password: the answer is German, and so is the form it offers again.
    wrong = client.post(
        _action(page.text, "/admin/login"),
        data={
            "email": "ada@orga.example",
            "password": "not the password",
            "csrf_token": csrf_from(page.text),
            "next": re.search(r'name="next" value="([^"]*)"', page.text).group(1),
        },
        headers=ENGLISH,
        follow_redirects=False,
    )
    wrong = _german(client, wrong, status=400)
    assert "E-Mail-Adresse oder Passwort stimmen nicht." in wrong.text

    # The right one, from that form: on to the page first asked for, still German.
    queue = client.post(
        _action(wrong.text, "/admin/login"),
        data={
            "email": "ada@orga.example",
            "password": PASSWORD,
            "csrf_token": csrf_from(wrong.text),
            "next": re.search(r'name="next" value="([^"]*)"', wrong.text).group(1),
        },
        headers=ENGLISH,
        follow_redirects=False,
    )
    queue = _german(client, queue)
    assert "Friedensnetz Kassel" in queue.text

    # A moderation decision from the queue's form.
    decided = client.post(
        _action(queue.text, "/admin/endorsements/decisions"),
        data={
            "csrf_token": csrf_from(queue.text),
            "decision": "approve",
            "ids": [str(waiting)],
            "next": unescape(re.search(r'name="next" value="([^"]*)"', queue.text).group(1)),
            "seen_at": re.search(r'name="seen_at" value="([^"]*)"', queue.text).group(1),
        },
        headers=ENGLISH,
        follow_redirects=False,
    )
    decided = _german(client, decided)
    assert "1 Unterstützung freigegeben." in decided.text

    # One decision on the endorsement's own page (a rejection), back on that page.
    detail = _german(client, client.get(f"/admin/endorsements/{waiting}?lang=de", headers=ENGLISH))
    rejected = client.post(
        _action(detail.text, f"/admin/endorsements/{waiting}/decision"),
        data={
            "csrf_token": csrf_from(detail.text),
            "decision": "reject",
            "seen_at": re.search(r'name="seen_at" value="([^"]*)"', detail.text).group(1),
        },
        headers=ENGLISH,
        follow_redirects=False,
    )
    _german(client, rejected)

    # A dossier build request (the rejected one is approved again first, so there is a list).
    add_endorsements(client, appeal=appeal["id"], state="approved", organisation_name="Pax Berlin")
    dossiers = _german(client, client.get(f"/admin/dossiers?appeal={appeal['id']}&lang=de", headers=ENGLISH))
    built = client.post(
        _action(dossiers.text, "/admin/dossiers"),
        data={"csrf_token": csrf_from(dossiers.text), "appeal": str(appeal["id"]), "country": "DE"},
        headers=ENGLISH,
        follow_redirects=False,
    )
    _german(client, built)

    # Pausing, then closing (which asks first) the appeal.
    appeal_page = _german(client, client.get(f"/admin/appeals/{appeal['id']}?lang=de", headers=ENGLISH))
    status_url = _action(appeal_page.text, f"/admin/appeals/{appeal['id']}/status")
    paused = client.post(
        status_url,
        data={"csrf_token": csrf_from(appeal_page.text), "status": "paused"},
        headers=ENGLISH,
        follow_redirects=False,
    )
    paused = _german(client, paused)
    asked = client.post(
        status_url,
        data={"csrf_token": csrf_from(paused.text), "status": "closed"},
        headers=ENGLISH,
        follow_redirects=False,
    )
    asked = _german(client, asked, status=400)
    closed = client.post(
        _action(asked.text, f"/admin/appeals/{appeal['id']}/status"),
        data={"csrf_token": csrf_from(asked.text), "status": "closed", "confirm_close": "yes"},
        headers=ENGLISH,
        follow_redirects=False,
    )
    _german(client, closed)

    # Logging out leads to the German login form.
    dashboard = _german(client, client.get("/admin/?lang=de", headers=ENGLISH))
    out = client.post(
        _action(dashboard.text, "/admin/logout"),
        data={"csrf_token": csrf_from(dashboard.text)},
        headers=ENGLISH,
        follow_redirects=False,
    )
    _german(client, out)


class _Text(HTMLParser):
    """The text a person reads on a page: no tags, attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


#: Stored codes that must never reach an organiser as they are.
CODES = sorted(
    {
        *(s.value for s in AppealStatus),
        *(m.value for m in Moderation),
        "public",
        "anonymous",
        "admin",
        "moderator",
        *(s.value for s in EndorsementState),
        *(h.value for h in HoldReason),
        *(a.value for a in AuditAction),
        "wrong password",
        "unknown account",
        "by the contact",
        "CLI",
        "organiser #",
        "organiser",
    }
)


def _raw_codes(text: str) -> list[str]:
    return [code for code in CODES if re.search(rf"(?<![\w.#-]){re.escape(code)}(?![\w-])", text)]


def test_in_german_no_page_of_the_organiser_area_shows_a_stored_code(client):
    appeals = {status: make_appeal(client, f"appell-{n}", status=status) for n, status in enumerate(AppealStatus)}
    post = make_appeal(client, "nachher", moderation=Moderation.POST)
    first = appeals[AppealStatus.OPEN]["id"]
    rows = [
        {"state": state.value, "visibility": visibility}
        for state in EndorsementState
        for visibility in ("public", "anonymous")
    ]
    rows += [{"state": "quarantined", "hold_reason": reason.value} for reason in HoldReason]
    ids = add_endorsements(client, rows=rows, appeal=first)
    add_endorsements(client, appeal=post["id"])
    ada = add_organiser(client, "ada@orga.example", "admin")
    add_organiser(client, "mo@orga.example", "moderator")

    details = {
        AuditAction.LOGIN_FAILED: "wrong password",
        AuditAction.LOGIN_RECOVERY_CODE: "7 left",
        AuditAction.APPROVE: CLI_APPROVAL,
        AuditAction.EDIT: "fields: organisation_name, city",
        AuditAction.CONFIRM: "by the contact; held: form.ip",
        AuditAction.HOLD: "by the contact; held: rejected_before",
        AuditAction.WITHDRAW: "by the contact",
        AuditAction.PURGE: "pending, unchanged since before 2026-01-01",
        AuditAction.EXPORT: "contacts csv, 12 rows, states=approved,confirmed",
        AuditAction.DOSSIER_BUILD: f"appeal={first} country=DE",
        AuditAction.DOSSIER_DOWNLOAD: "zip countries=DE,AT",
        AuditAction.APPEAL_CREATE: "slug=nachher moderation=post",
        AuditAction.APPEAL_EDIT: "moderation: pre -> post; default_language: en -> de; addressees",
        AuditAction.APPEAL_TEXT: "language=de version=2",
        AuditAction.APPEAL_STATUS: "open -> closed",
        AuditAction.ORGANISER_CREATE: "role=moderator",
        AuditAction.ORGANISER_ROLE: "admin -> moderator",
        AuditAction.OUTBOX_REQUEUE: "all failed",
        AuditAction.DELIVERY_SEND: "delivery 1: country=DE dossier=1 sha256=0123456789abcdef recipients=3",
        AuditAction.DELIVERY_ANSWER: "delivery 1: answer 1 country=DE",
    }
    targets = {
        "login": ("organiser", ada),
        "endorsement": ("endorsement", ids[0]),
        "withdraw": ("endorsement", ids[0]),
        "export": ("appeal", first),
        "dossier": ("dossier", 1),
        "appeal": ("appeal", first),
        "organiser": ("organiser", ada),
        "outbox": ("email", 1),
        "news": ("appeal", first),
        "delivery": ("appeal", first),
        "logout": ("organiser", ada),
    }

    async def write_log(db):
        for action in AuditAction:
            target_type, target_id = targets[action.value.split(".")[0]]
            by_contact = action in (AuditAction.CONFIRM, AuditAction.HOLD, AuditAction.WITHDRAW, AuditAction.PURGE)
            await record(
                db,
                organiser_id=None if by_contact or action == AuditAction.APPROVE else ada,
                action=action,
                target_type=target_type,
                target_id=target_id,
                detail=details.get(action, ""),
            )
        # A failed login with an address no organiser has.
        await record(db, organiser_id=None, action=AuditAction.LOGIN_FAILED, detail="unknown account")

    run(client, write_log)
    assert len(audit_rows(client)) == len(AuditAction) + 1

    client.get("/admin/login?lang=de")
    login_page = client.get("/admin/login?lang=de", headers=ENGLISH)
    client.post(
        "/admin/login?lang=de",
        data={"email": "ada@orga.example", "password": PASSWORD, "csrf_token": csrf_from(login_page.text)},
        headers=ENGLISH,
    )
    pages = [
        "/admin/",
        "/admin/appeals",
        *(f"/admin/appeals/{a['id']}" for a in appeals.values()),
        "/admin/moderation",
        "/admin/endorsements",
        "/admin/endorsements?per_page=50&page=1",
        *(f"/admin/endorsements/{i}" for i in ids),
        "/admin/audit",
        "/admin/organisers",
        "/admin/organisers/two-step",
        "/admin/dossiers",
        "/admin/export",
        "/admin/outbox",
        "/admin/account/password",
        "/admin/account/two-step",
        *(f"/admin/appeals/{a['id']}/delivery" for a in appeals.values()),
        f"/admin/appeals/{first}/delivery/DE",
        f"/admin/appeals/{first}/delivery/RU",
    ]
    for path in pages:
        response = client.get(path + ("&" if "?" in path else "?") + "lang=de", headers=ENGLISH)
        assert response.status_code == 200, path
        assert _lang_of(response.text) == "de", path
        found = _raw_codes(visible_text(response.text))
        assert found == [], f"{path}: {found}"


def test_a_rejected_login_code_answers_in_german_and_the_right_one_keeps_german(client):
    add_organiser(client, "lea@orga.example", "moderator")
    login(client, "lea@orga.example")
    secret, _codes = enrol(client)
    client.cookies.clear()

    page = _german(client, client.get("/admin/?lang=de", headers=ENGLISH, follow_redirects=False))
    code_form = client.post(
        _action(page.text, "/admin/login"),
        data={
            "email": "lea@orga.example",
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
            "next": re.search(r'name="next" value="([^"]*)"', page.text).group(1),
        },
        headers=ENGLISH,
        follow_redirects=False,
    )
    code_form = _german(client, code_form)
    pending = re.search(r'name="pending" value="([^"]+)"', code_form.text).group(1)
    wrong = client.post(
        _action(code_form.text, "/admin/login/code"),
        data={
            "pending": pending,
            "code": "000000" if code_at(secret) != "000000" else "111111",
            "csrf_token": csrf_from(code_form.text),
        },
        headers=ENGLISH,
        follow_redirects=False,
    )
    wrong = _german(client, wrong, status=400)
    right = client.post(
        _action(wrong.text, "/admin/login/code"),
        data={"pending": pending, "code": code_at(secret, 1), "csrf_token": csrf_from(wrong.text)},
        headers=ENGLISH,
        follow_redirects=False,
    )
    dashboard = _german(client, right)
    assert "Übersicht" in dashboard.text


def test_every_code_has_words_and_a_language_prefix_is_kept_too(client):

    assert set(ACTION_LABELS) == {a.value for a in AuditAction}
    assert set(labels.APPEAL_STATUS_LABELS) == {s.value for s in AppealStatus}
    assert set(labels.MODERATION_LABELS) == set(labels.MODERATION_SHORT_LABELS) == {m.value for m in Moderation}
    assert set(labels.VISIBILITY_LABELS) == {v.value for v in Visibility}
    assert set(labels.ROLE_LABELS) == {r.value for r in Role}
    assert set(BUILDERS) <= set(labels.MAIL_KIND_LABELS)  # the kinds the failed-email page names

    # /de/admin/… is German too, and its redirect names the language it got from the prefix.
    response = client.get("/de/admin/moderation", headers=ENGLISH, follow_redirects=False)
    assert response.status_code == 303
    page = _german(client, response)
    assert _action(page.text, "/admin/login").endswith("lang=de")
