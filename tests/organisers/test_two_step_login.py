"""Two-step login: enrolment, codes, replay, recovery codes, the admins' duty on https, reset."""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import pyotp
import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from petition.organisers.sessions import COOKIE_NAME
from tests.conftest import make_settings
from tests.organisers.support import PASSWORD, add_organiser, audit_rows, csrf, login
from tests.support import csrf_from, db_rows

HTTPS = "https://testserver"
ACCOUNT_LIMIT = 5  # failed tries per account in 15 minutes (docs/organiser-login.md)
DEVICE_COOKIE = "petition_device"


def _error(page) -> str:
    match = re.search(r'<div class="error-summary" role="alert"><p>(.*?)</p>', page.text)
    assert match, page.text[:300]
    return html.unescape(match.group(1))


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now, or `steps_ahead` steps of 30 s later."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol(client) -> tuple[str, list[str]]:
    """Turn on two-step login for the logged-in organiser: (secret, recovery codes)."""
    page = client.get("/admin/account/two-step")
    assert page.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)[1].replace(" ", "")
    done = client.post("/admin/account/two-step", data={"code": code_at(secret), "csrf_token": csrf_from(page.text)})
    assert done.status_code == 200, done.text[:500]
    codes = re.findall(r"<li><code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def password_step(client, email: str) -> str:
    """Log in with the password; the pending token of the code form it answers with."""
    page = login(client, email, expect=200)
    assert "/admin/login/code" in page.text
    assert PASSWORD not in page.text and 'type="password"' not in page.text
    assert COOKIE_NAME not in page.headers.get("set-cookie", "")
    return re.search(r'name="pending" value="([^"]+)"', page.text)[1]


def code_step(client, pending: str, code: str, *, expect: int = 303):
    response = client.post(
        "/admin/login/code", data={"pending": pending, "code": code, "csrf_token": csrf(client)}, follow_redirects=False
    )
    assert response.status_code == expect, response.text[:500]
    return response


def test_an_organiser_enrols_and_logs_in_with_a_code(client):
    organiser_id = add_organiser(client, "anna@organisers.example", "moderator")
    login(client, "anna@organisers.example")
    old_session = client.cookies.get(COOKIE_NAME)
    page = client.get("/admin/account/two-step")
    # The QR code is an SVG made here, in a data: image (the CSP allows img-src data:); the key is written out too.
    qr = re.search(r'<img src="(data:image/svg\+xml;base64,([^"]+))"[^>]* alt="[^"]+"', page.text)
    assert qr and ElementTree.fromstring(base64.b64decode(qr[2])).tag == "{http://www.w3.org/2000/svg}svg"
    assert "style=" not in page.text and "<script" not in page.text
    uri = html.unescape(re.search(r'href="(otpauth://totp/[^"]+)"', page.text)[1])
    from petition.organisers.totp import qr_data_uri

    assert qr[1] == qr_data_uri(uri)  # the QR code says what the link says
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)[1].replace(" ", "")
    totp = pyotp.parse_uri(uri)
    assert totp.secret == secret and totp.issuer == "testserver" and totp.name == "anna@organisers.example"
    assert (
        re.search(r'id="totp-secret">([A-Z2-7 ]+)<', client.get("/admin/account/two-step").text)[1].replace(" ", "")
        == secret
    )

    wrong = client.post(
        "/admin/account/two-step",
        data={"code": "000000" if code_at(secret) != "000000" else "111111", "csrf_token": csrf_from(page.text)},
    )
    assert wrong.status_code == 400 and "not the code your app shows now" in _error(wrong)
    nul = client.post("/admin/account/two-step", data={"code": "12\x003456", "csrf_token": csrf_from(page.text)})
    assert nul.status_code == 400 and "not the code your app shows now" in _error(nul)
    done = client.post("/admin/account/two-step", data={"code": code_at(secret), "csrf_token": csrf_from(page.text)})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert len(re.findall(r"<li><code>[a-z2-7-]{19}</code></li>", done.text)) == 10
    # Enrolling ended the other sessions; this one carries on.
    assert client.get("/admin/").status_code == 200
    new_session = client.cookies.get(COOKIE_NAME)
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, old_session, path="/admin")
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, new_session, path="/admin")
    assert client.get("/admin/").status_code == 200
    [audited] = audit_rows(client, "organiser.totp.enrol")
    assert audited["organiser_id"] == organiser_id and audited["target_id"] == organiser_id
    assert "@" not in audited["detail"]
    # The recovery codes are stored as hashes only.
    rows = db_rows(client.app.state.services.settings.database_url, "SELECT * FROM organiser_recovery_codes")
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", done.text)
    assert len(rows) == 10 and not any(c.replace("-", "") in str(rows) for c in codes)

    client.cookies.clear()
    pending = password_step(client, "anna@organisers.example")
    assert client.get("/admin/", follow_redirects=False).status_code == 303  # not logged in yet
    bad = code_step(client, pending, "12345", expect=400)
    assert "6-digit code" in _error(bad)
    response = code_step(client, pending, code_at(secret, 1))
    assert response.headers["location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert [r["action"] for r in audit_rows(client) if r["action"].startswith("login")][-1] == "login"


def test_a_code_cannot_be_replayed(client):
    add_organiser(client, "ben@organisers.example", "moderator")
    login(client, "ben@organisers.example")
    secret, _codes = enrol(client)
    client.cookies.clear()
    code = code_at(secret, 1)
    code_step(client, password_step(client, "ben@organisers.example"), code)
    # Seen over a shoulder, or kept by a proxy: the same code a second time is refused.
    client.cookies.clear()
    replay = code_step(client, password_step(client, "ben@organisers.example"), code, expect=400)
    assert "used already" in _error(replay)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    # The code enrolment used is spent too (an older step than the last one used).
    assert (
        code_step(client, password_step(client, "ben@organisers.example"), code_at(secret), expect=400).status_code
        == 400
    )
    assert audit_rows(client, "login.failed")[-1]["detail"] == "wrong totp code"


def test_a_recovery_code_works_once(client):
    organiser_id = add_organiser(client, "cleo@organisers.example", "moderator")
    login(client, "cleo@organisers.example")
    _secret, codes = enrol(client)
    client.cookies.clear()
    code_step(client, password_step(client, "cleo@organisers.example"), codes[3].upper().replace("-", " "))
    assert client.get("/admin/").status_code == 200
    [used] = audit_rows(client, "login.recovery_code")
    assert used["target_id"] == organiser_id and used["detail"] == "9 left"
    assert "You have 9 unused recovery codes." in client.get("/admin/account/two-step").text
    client.cookies.clear()
    again = code_step(client, password_step(client, "cleo@organisers.example"), codes[3], expect=400)
    assert "used already" in _error(again)
    # Another organiser's code is no code of hers.
    add_organiser(client, "dora@organisers.example", "moderator")
    client.cookies.clear()
    login(client, "dora@organisers.example")
    _other_secret, other_codes = enrol(client)
    client.cookies.clear()
    code_step(client, password_step(client, "cleo@organisers.example"), other_codes[0], expect=400)
    code_step(client, password_step(client, "cleo@organisers.example"), codes[4])


def test_wrong_codes_count_against_the_login_throttle(client):
    add_organiser(client, "emil@organisers.example", "moderator")
    login(client, "emil@organisers.example")
    secret, _codes = enrol(client)
    attacker = client
    attacker.cookies.clear()  # a browser without her device cookie, who knows her password
    pending = password_step(attacker, "emil@organisers.example")
    wrong = "000000" if code_at(secret, 1) != "000000" else "111111"
    for _ in range(ACCOUNT_LIMIT):
        code_step(attacker, pending, wrong, expect=400)
    blocked = code_step(attacker, pending, code_at(secret, 1), expect=429)
    assert blocked.headers["Retry-After"]


def test_a_forged_expired_or_stale_pending_login_is_refused(client):
    add_organiser(client, "fay@organisers.example", "moderator")
    login(client, "fay@organisers.example")
    secret, codes = enrol(client)
    client.cookies.clear()
    pending = password_step(client, "fay@organisers.example")
    for token in ("", "x", pending[:-2] + "xx", "\x00"):
        refused = code_step(client, token, code_at(secret, 1), expect=400)
        assert "Please log in again" in _error(refused)
    for code in ("\x00", "12\x0034", "x" * 100):
        assert code_step(client, pending, code, expect=400).status_code == 400
    # A password change in between voids the pending login.
    client.cookies.clear()
    code_step(client, password_step(client, "fay@organisers.example"), codes[0])
    new = "another long passphrase 2026"
    client.post(
        "/admin/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": new,
            "new_password_confirm": new,
            "csrf_token": csrf(client, "/admin/account/password"),
        },
    )
    stale = code_step(client, pending, codes[1], expect=400)
    assert "Please log in again" in _error(stale)


@pytest.fixture
def https_client(database_url, tmp_path, smtp) -> Iterator[TestClient]:
    settings = make_settings(database_url, tmp_path / "data", smtp, base_url=HTTPS)
    with TestClient(create_app(settings), base_url=HTTPS) as client:
        yield client


def test_an_admin_must_enrol_on_an_https_site(https_client):
    client = https_client
    add_organiser(client, "gus@organisers.example", "admin")
    victim = add_organiser(client, "hal@organisers.example", "moderator")
    response = login(client, "gus@organisers.example")
    assert response.headers["location"] == "/admin/account/two-step"
    assert "Secure" in response.headers["set-cookie"]
    # Nothing else opens until enrolment is done.
    for path in (
        "/admin/",
        "/admin/organisers",
        "/admin/audit",
        "/admin/export",
        "/admin/account/password",
        "/admin/organisers/two-step",
        "/admin/moderation",
    ):
        refused = client.get(path, follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"] == "/admin/account/two-step", path
    token = csrf(client, "/admin/account/two-step")
    for path, data in (
        (
            "/admin/organisers",
            {"email": "evil@x.example", "role": "admin", "password": PASSWORD, "password_confirm": PASSWORD},
        ),
        (f"/admin/organisers/{victim}/active", {"active": "0"}),
        (f"/admin/organisers/{victim}/two-step/reset", {}),
    ):
        refused = client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert refused.status_code == 403 and "must use two-step login" in refused.text, path
    assert [r["action"] for r in audit_rows(client)] == ["login"]
    page = client.get("/admin/account/two-step")
    assert "Administrators must use two-step login on this site." in page.text
    assert 'href="/admin/organisers"' not in page.text  # the menu offers only this, and logging out
    secret, _codes = enrol(client)
    assert client.get("/admin/organisers").status_code == 200
    # From now on the password alone is not enough.
    client.cookies.clear()
    code_step(client, password_step(client, "gus@organisers.example"), code_at(secret, 1))
    assert client.get("/admin/").status_code == 200


def test_moderators_may_but_need_not_enrol_on_an_https_site(https_client):
    client = https_client
    add_organiser(client, "ida@organisers.example", "moderator")
    response = login(client, "ida@organisers.example")
    assert response.headers["location"] == "/admin/"
    assert client.get("/admin/moderation").status_code == 200
    assert "Administrators must" not in client.get("/admin/account/two-step").text


def test_an_admin_resets_another_organisers_second_factor_and_it_is_audited(https_client):
    client = https_client
    admin_id = add_organiser(client, "jo@organisers.example", "admin")
    mod_id = add_organiser(client, "kai@organisers.example", "moderator")
    login(client, "kai@organisers.example")
    enrol(client)
    moderator_session = client.cookies.get(COOKIE_NAME)
    client.cookies.clear()
    login(client, "jo@organisers.example")
    admin_secret, _codes = enrol(client)
    overview = client.get("/admin/organisers/two-step")
    assert overview.status_code == 200
    missing = client.post("/admin/organisers/99999/two-step/reset", data={"csrf_token": csrf_from(overview.text)})
    assert missing.status_code == 404
    assert f'action="/admin/organisers/{mod_id}/two-step/reset"' in overview.text
    done = client.post(
        f"/admin/organisers/{mod_id}/two-step/reset",
        data={"csrf_token": csrf_from(overview.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "was reset" in client.get(done.headers["location"]).text
    [reset] = audit_rows(client, "organiser.totp.reset")
    assert reset["organiser_id"] == admin_id and reset["target_id"] == mod_id and "@" not in reset["detail"]
    # The moderator's sessions ended; the password alone lets them in again (and they may enrol anew).
    admin_session = client.cookies.get(COOKIE_NAME)
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, moderator_session, path="/admin")
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    client.cookies.clear()
    assert login(client, "kai@organisers.example").headers["location"] == "/admin/"
    # Resetting an admin's second factor on https sends them back to enrolment at their next login.
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, admin_session, path="/admin")
    token = csrf(client, "/admin/organisers/two-step")
    client.post(f"/admin/organisers/{admin_id}/two-step/reset", data={"csrf_token": token})
    assert client.get("/admin/", follow_redirects=False).headers["location"] == "/admin/account/two-step"
    assert len(audit_rows(client, "organiser.totp.reset")) == 2
    client.cookies.clear()
    assert login(client, "jo@organisers.example").headers["location"] == "/admin/account/two-step"
    assert admin_secret not in client.get("/admin/account/two-step").text.replace(" ", "")  # a new key


def test_the_device_cookie_is_issued_only_after_both_steps(client):
    add_organiser(client, "lea@organisers.example", "moderator")
    login(client, "lea@organisers.example")
    secret, _codes = enrol(client)
    client.cookies.clear()
    pending = password_step(client, "lea@organisers.example")
    assert client.cookies.get(DEVICE_COOKIE) is None
    # The code form answers a POST: its language links lead back to the login form, not to a POST-only route.
    page = client.post(
        "/admin/login?lang=de",
        data={"email": "lea@organisers.example", "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert 'href="/admin/login?lang=fr"' in page.text and 'href="/admin/login/code' not in page.text
    assert "Zweistufige Anmeldung" in page.text
    code_step(client, pending, code_at(secret, 1))
    assert client.cookies.get(DEVICE_COOKIE)


def test_the_two_step_pages_speak_every_language(client):
    from petition.i18n import LANGUAGES

    add_organiser(client, "mia@organisers.example", "admin")
    login(client, "mia@organisers.example")
    for lang in LANGUAGES:
        page = client.get(f"/admin/account/two-step?lang={lang}")
        assert page.status_code == 200 and f'<html lang="{lang}"' in page.text
    _secret, _codes = enrol(client)
    for lang in LANGUAGES:
        for path in ("/admin/account/two-step", "/admin/organisers/two-step"):
            page = client.get(f"{path}?lang={lang}")
            assert page.status_code == 200, (path, lang)
        if lang != "en":
            assert "Two-step login" not in client.get(f"/admin/account/two-step?lang={lang}").text, lang
