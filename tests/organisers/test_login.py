"""Login, sessions, logout, expiry and throttling."""

from __future__ import annotations

import re
import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.responses import Response

from petition.organisers import queries as organiser_queries
from petition.organisers import throttle
from petition.organisers.sessions import ABSOLUTE_SECONDS, COOKIE_NAME, IDLE_SECONDS, Sessions
from tests.conftest import TEST_SECRET, make_settings
from tests.organisers.support import PASSWORD, add_organiser, audit_rows, csrf, login, run


def use_cookie(client, value: str) -> None:
    """Present exactly this session cookie (as a second browser, or a thief, would)."""
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, value, path="/admin")


def _error(page) -> str:
    match = re.search(r'<div class="error-summary" role="alert"><p>(.*?)</p>', page.text)
    assert match, page.text[:300]
    return match.group(1)


def test_login_page_has_the_contract_fields(client):
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert 'name="email"' in page.text and 'name="password"' in page.text
    assert 'type="password"' in page.text


def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(client):
    add_organiser(client, "anna@organisers.example", "admin")
    response = login(client, "Anna@Organisers.example ")  # address case and spaces do not matter
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/admin" in cookie
    assert "Secure" not in cookie  # BASE_URL is http:// in tests
    stolen = client.cookies.get(COOKIE_NAME)
    assert client.get("/admin/").status_code == 200
    assert [r["action"] for r in audit_rows(client)] == ["login"]

    out = client.post("/admin/logout", data={"csrf_token": csrf(client, "/admin/")}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    # A copy of the old cookie is worthless after logout.
    use_cookie(client, stolen)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    assert [r["action"] for r in audit_rows(client)] == ["login", "logout"]


def test_secure_cookie_when_base_url_is_https(tmp_path, database_url):
    settings = make_settings(database_url, tmp_path, None, base_url="https://petition.example")
    response = Response()
    Sessions(settings).set(response, organiser_id=1, version=0)
    assert "Secure" in response.headers["set-cookie"]


def test_unknown_account_and_wrong_password_get_the_same_answer(client):
    add_organiser(client, "ben@organisers.example", "moderator")
    wrong = login(client, "ben@organisers.example", "not the password at all", expect=400)
    unknown = login(client, "nobody@organisers.example", "not the password at all", expect=400)
    assert _error(wrong) == _error(unknown)
    assert "ben@organisers.example" in wrong.text and "nobody@organisers.example" in unknown.text  # kept
    failures = audit_rows(client, "login.failed")
    assert len(failures) == 2
    assert not any("@" in r["detail"] for r in failures)


def test_after_too_many_failures_the_account_is_throttled_even_with_the_right_password(client):
    add_organiser(client, "cleo@organisers.example", "admin")
    for _ in range(throttle.ACCOUNT_LIMIT):
        login(client, "cleo@organisers.example", "wrong password guess", expect=400)
    blocked = login(client, "cleo@organisers.example", PASSWORD, expect=429)
    assert blocked.headers["Retry-After"]
    assert COOKIE_NAME not in blocked.headers.get("set-cookie", "")
    # An unknown account is throttled the same way: nothing tells them apart.
    for _ in range(throttle.ACCOUNT_LIMIT):
        login(client, "ghost@organisers.example", "wrong password guess", expect=400)
    assert _error(login(client, "ghost@organisers.example", PASSWORD, expect=429)) == _error(blocked)
    # Another account from the same address still works.
    add_organiser(client, "dora@organisers.example", "admin")
    login(client, "dora@organisers.example")


def test_many_failures_from_one_address_throttle_every_account(client):
    add_organiser(client, "emil@organisers.example", "admin")
    for n in range(throttle.IP_LIMIT):
        login(client, f"guess{n}@organisers.example", "wrong password guess", expect=400)
    login(client, "emil@organisers.example", PASSWORD, expect=429)


def test_trusted_addresses_are_exempt_from_the_address_limit_not_the_account_limit(client):
    async def check(db):
        ip = "10.1.2.3"
        for n in range(throttle.IP_LIMIT):
            assert (await throttle.reserve_attempt(db, throttle.Attempt(account_key=f"k{n}", ip=ip))).row_id
        exempt = throttle.Attempt(account_key="fresh", ip=ip, ip_exempt=True)
        assert (await throttle.reserve_attempt(db, exempt)).refused is None
        refused = await throttle.reserve_attempt(db, throttle.Attempt(account_key="fresh2", ip=ip))
        assert refused.refused == throttle.Refusal.ADDRESS
        for _ in range(throttle.ACCOUNT_LIMIT - 1):
            await throttle.reserve_attempt(db, throttle.Attempt(account_key="k0", ip="10.9.9.9"))
        blocked = await throttle.reserve_attempt(db, throttle.Attempt(account_key="k0", ip="10.7.7.7", ip_exempt=True))
        assert blocked.refused == throttle.Refusal.ACCOUNT


def test_the_login_redirects_only_inside_the_organiser_area(client):
    add_organiser(client, "fay@organisers.example", "moderator")
    page = client.get("/admin/login?next=https://evil.example/")
    assert 'value="/admin/"' in page.text
    response = client.post(
        "/admin/login",
        data={
            "email": "fay@organisers.example",
            "password": PASSWORD,
            "next": "//evil.example/admin/",
            "csrf_token": csrf(client),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/admin/"
    client.cookies.clear()
    response = client.get("/admin/endorsements?state=confirmed", follow_redirects=False)
    target = response.headers["location"]
    page = client.get(target)
    response = client.post(
        "/admin/login",
        data={
            "email": "fay@organisers.example",
            "password": PASSWORD,
            "next": "/admin/endorsements?state=confirmed",
            "csrf_token": csrf(client),
        },
        follow_redirects=False,
    )
    assert page.status_code == 200
    assert response.headers["location"] == "/admin/endorsements?state=confirmed"


def _cookie(organiser_id: int, version: int, issued_at: int, signed_at: int) -> str:
    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return signed_at

    serializer = URLSafeTimedSerializer(TEST_SECRET, salt="petition.organiser-session", signer=Past)
    return serializer.dumps([organiser_id, version, issued_at])


def test_sessions_expire_when_idle_and_after_a_day(client):
    organiser_id = add_organiser(client, "gus@organisers.example", "moderator")
    now = int(time.time())
    fresh = _cookie(organiser_id, 0, now - 60, now - 60)
    use_cookie(client, fresh)
    assert client.get("/admin/").status_code == 200
    idle = _cookie(organiser_id, 0, now - IDLE_SECONDS - 120, now - IDLE_SECONDS - 60)
    use_cookie(client, idle)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    # Active all along (signed a minute ago) but issued more than a day ago.
    old = _cookie(organiser_id, 0, now - ABSOLUTE_SECONDS - 60, now - 60)
    use_cookie(client, old)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    forged = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    use_cookie(client, forged)
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_an_active_session_is_refreshed_but_keeps_its_issue_time(client):
    organiser_id = add_organiser(client, "hal@organisers.example", "moderator")
    now = int(time.time())
    use_cookie(client, _cookie(organiser_id, 0, now - 3600, now - 3600))
    response = client.get("/admin/")
    assert response.status_code == 200
    refreshed = response.headers["set-cookie"]
    assert refreshed.startswith(COOKIE_NAME + "=")
    value = refreshed.split(";")[0].split("=", 1)[1]
    payload = URLSafeTimedSerializer(TEST_SECRET, salt="petition.organiser-session").loads(value)
    assert payload == [organiser_id, 0, now - 3600]


def test_deactivation_and_a_password_change_end_sessions(client):
    admin_id = add_organiser(client, "ida@organisers.example", "admin")
    mod_id = add_organiser(client, "jo@organisers.example", "moderator")
    login(client, "jo@organisers.example")
    mod_cookie = client.cookies.get(COOKIE_NAME)
    client.cookies.clear()
    login(client, "ida@organisers.example")
    admin_cookie = client.cookies.get(COOKIE_NAME)
    response = client.post(
        f"/admin/organisers/{mod_id}/active", data={"active": "0", "csrf_token": csrf(client, "/admin/organisers")}
    )
    assert response.status_code == 200
    use_cookie(client, mod_cookie)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    login(client, "jo@organisers.example", expect=400)  # deactivated: cannot log in either

    # The admin changes her password: this session carries on, older copies of it do not.
    use_cookie(client, admin_cookie)
    new_password = "a much better passphrase 2026"
    changed = client.post(
        "/admin/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": new_password,
            "new_password_confirm": new_password,
            "csrf_token": csrf(client, "/admin/account/password"),
        },
    )
    assert changed.status_code == 200 and "Your password was changed" in changed.text
    assert client.get("/admin/").status_code == 200
    use_cookie(client, admin_cookie)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    login(client, "ida@organisers.example", PASSWORD, expect=400)
    login(client, "ida@organisers.example", new_password)
    actions = [r["action"] for r in audit_rows(client) if r["organiser_id"] == admin_id]
    assert "organiser.deactivate" in actions and "organiser.password" in actions


def test_a_wrong_current_password_changes_nothing(client):
    add_organiser(client, "kai@organisers.example", "moderator")
    login(client, "kai@organisers.example")
    response = client.post(
        "/admin/account/password",
        data={
            "current_password": "not it at all",
            "new_password": "short",
            "new_password_confirm": "short",
            "csrf_token": csrf(client, "/admin/account/password"),
        },
    )
    assert response.status_code == 400
    assert "This is not your current password." in response.text
    assert "at least 12 characters" in response.text
    assert run(client, organiser_queries.find_organiser, email="kai@organisers.example")["session_version"] == 0
