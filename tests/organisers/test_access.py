"""Every /admin/ route, checked from one table: no session, the wrong role, the right role, CSRF."""

from __future__ import annotations

import re

import pytest

from petition.organisers import views
from tests.factories import add_endorsements
from tests.organisers.support import audit_rows, csrf, login_as, make_appeal

ANYONE = "public"
M = "moderator"
A = "admin"

#: (method, path, role needed). {e}, {a}, {o} are filled with a real endorsement, appeal, organiser.
TABLE = [
    ("GET", "/admin/login", ANYONE),
    ("POST", "/admin/login", ANYONE),
    ("POST", "/admin/login/code", ANYONE),
    ("POST", "/admin/logout", M),
    ("GET", "/admin/", M),
    ("GET", "/admin/account/password", M),
    ("POST", "/admin/account/password", M),
    ("GET", "/admin/outbox", M),
    ("POST", "/admin/outbox/requeue", M),
    ("GET", "/admin/account/two-step", M),
    ("POST", "/admin/account/two-step", M),
    ("GET", "/admin/moderation", M),
    ("GET", "/admin/endorsements", M),
    ("POST", "/admin/endorsements/decisions", M),
    ("GET", "/admin/endorsements/{e}", M),
    ("POST", "/admin/endorsements/{e}", M),
    ("POST", "/admin/endorsements/{e}/decision", M),
    ("GET", "/admin/dossiers", M),
    ("POST", "/admin/dossiers", M),
    ("GET", "/admin/dossiers/appeal/{a}.zip", M),
    ("GET", "/admin/dossiers/{d}", M),
    ("GET", "/admin/dossiers/{d}/download", M),
    ("GET", "/admin/audit", A),
    ("GET", "/admin/organisers", A),
    ("POST", "/admin/organisers", A),
    ("POST", "/admin/organisers/{o}/role", A),
    ("POST", "/admin/organisers/{o}/active", A),
    ("GET", "/admin/organisers/two-step", A),
    ("POST", "/admin/organisers/{o}/two-step/reset", A),
    ("GET", "/admin/appeals", A),
    ("POST", "/admin/appeals", A),
    ("GET", "/admin/appeals/{a}", A),
    ("POST", "/admin/appeals/{a}", A),
    ("POST", "/admin/appeals/{a}/status", A),
    ("GET", "/admin/appeals/{a}/about", A),
    ("POST", "/admin/appeals/{a}/about", A),
    ("GET", "/admin/appeals/{a}/news", A),
    ("POST", "/admin/appeals/{a}/news", A),
    ("GET", "/admin/appeals/{a}/delivery", A),
    ("POST", "/admin/appeals/{a}/delivery/routes", A),
    ("POST", "/admin/appeals/{a}/delivery/suppressions", A),
    ("POST", "/admin/appeals/{a}/delivery/suppressions/remove", A),
    ("GET", "/admin/appeals/{a}/delivery/open", A),
    ("GET", "/admin/appeals/{a}/delivery/{c}", A),
    ("POST", "/admin/appeals/{a}/delivery/{c}", A),
    ("POST", "/admin/appeals/{a}/delivery/{c}/answers", A),
    ("GET", "/admin/appeals/{a}/texts/{lang}", A),
    ("POST", "/admin/appeals/{a}/texts/{lang}", A),
    ("GET", "/admin/export", A),
    ("POST", "/admin/export", A),
]

PLACEHOLDERS = {
    "dossier_id:int": "d",
    "endorsement_id:int": "e",
    "appeal_id:int": "a",
    "organiser_id:int": "o",
    "language": "lang",
    "country:str": "c",
}


def _template(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: "{" + PLACEHOLDERS[m.group(1)] + "}", path)


def test_the_table_lists_every_admin_route_with_its_role(client):
    declared = set()
    for route in views.routes:
        role = getattr(route.endpoint, "required_role", None)
        for method in route.methods - {"HEAD"}:
            declared.add((method, _template(route.path), role.value if role else ANYONE))
    assert declared == set(TABLE)
    # And no other part of the app serves anything under /admin.
    admin_paths = {r.path for r in client.app.routes if getattr(r, "path", "").startswith("/admin")}
    assert admin_paths == {r.path for r in views.routes}


def add_finished_dossier(client, appeal_id: int, tmp_path) -> int:
    """A finished-dossier row for the access checks; real builds are tested in tests/dossiers."""
    from petition.dossiers.tables import dossiers
    from petition.schema import utcnow

    path = tmp_path / "access-check.pdf"
    path.write_bytes(b"%PDF-1.7\n% access-check placeholder, never shown to anyone\n")

    async def insert(db):
        async with db.write():
            return await db.execute(
                dossiers.insert().values(
                    appeal_id=appeal_id,
                    country="DE",
                    state="done",
                    progress=100,
                    signatory_count=1,
                    anonymous_count=0,
                    pdf_sha256="0" * 64,
                    list_sha256="1" * 64,
                    file_path=str(path),
                    created_at=utcnow(),
                    finished_at=utcnow(),
                )
            )

    return int(client.portal.call(insert, client.app.state.services.db))


@pytest.fixture
def ids(client, tmp_path):
    appeal = make_appeal(client, "access-check")
    [endorsement_id] = add_endorsements(client, appeal=appeal["id"])
    victim = login_as(client, M)  # an organiser whose role and state the POSTs could change
    client.cookies.clear()
    dossier_id = add_finished_dossier(client, appeal["id"], tmp_path)
    return {"e": endorsement_id, "a": appeal["id"], "o": victim, "lang": "de", "d": dossier_id, "c": "DE"}


def _url(path: str, ids: dict) -> str:
    return path.format(**ids)


def _protected(role: str | None = None):
    return [(m, p, r) for m, p, r in TABLE if r != ANYONE and (role is None or r == role)]


def test_without_a_session_get_goes_to_login_and_post_is_refused(client, ids):
    token = csrf(client)
    before = audit_rows(client)
    for method, path, _role in _protected():
        url = _url(path, ids)
        if method == "GET":
            response = client.get(url, follow_redirects=False)
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/admin/login?next="), url
        else:
            response = client.post(
                url, data={"csrf_token": token, "decision": "approve", "ids": str(ids["e"])}, follow_redirects=False
            )
            assert response.status_code == 403, url
    assert audit_rows(client) == before


def test_a_moderator_is_refused_every_admin_route(client, ids):
    login_as(client, M)
    token = csrf(client, "/admin/")
    count = len(audit_rows(client))
    for method, path, _role in _protected(A):
        url = _url(path, ids)
        if method == "GET":
            response = client.get(url, follow_redirects=False)
        else:
            response = client.post(
                url,
                data={
                    "csrf_token": token,
                    "role": "admin",
                    "active": "0",
                    "status": "closed",
                    "appeal": str(ids["a"]),
                    "slug": "sneaky",
                    "moderation": "post",
                    "default_language": "en",
                    "title": "x",
                    "body": "y",
                },
                follow_redirects=False,
            )
        assert response.status_code == 403, url
        assert "Your role does not allow this" in response.text
    assert len(audit_rows(client)) == count  # nothing happened, nothing was exported
    # The moderator's own pages open.
    for method, path, _role in _protected(M):
        if method == "GET":
            assert client.get(_url(path, ids)).status_code == 200, path


def test_an_admin_opens_every_page_and_every_form_carries_csrf(client, ids):
    login_as(client, A)
    for method, path, _role in _protected():
        if method != "GET":
            continue
        page = client.get(_url(path, ids))
        assert page.status_code == 200, path
        assert page.headers["Cache-Control"] == "no-store"
        if not page.headers["content-type"].startswith("text/html"):
            continue  # a download (PDF, ZIP): no forms in it
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", page.text, flags=re.S)
        assert forms, path  # every admin page has at least the logout form
        for form in forms:
            assert 'name="csrf_token"' in form, path


def test_every_admin_post_without_csrf_is_refused(client, ids):
    login_as(client, A)
    before = audit_rows(client)
    for method, path, _role in TABLE:
        if method != "POST":
            continue
        response = client.post(
            _url(path, ids),
            data={"decision": "approve", "ids": str(ids["e"]), "email": "x@y.example", "password": "whatever"},
            follow_redirects=False,
        )
        assert response.status_code == 403, path
    assert audit_rows(client) == before
    assert client.get("/admin/").status_code == 200  # still logged in: logout needed CSRF too
