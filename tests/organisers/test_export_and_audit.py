"""The private contact export and the audit log page."""

from __future__ import annotations

import csv
import io

from petition.organisers.export import safe_cell
from tests.factories import add_endorsements
from tests.organisers.support import (
    add_organiser,
    audit_rows,
    csrf,
    login,
    login_as,
    make_appeal,
)


def test_admins_download_contacts_with_the_formula_guard(client):
    appeal = make_appeal(client, "export-appeal")
    [eid] = add_endorsements(
        client,
        appeal=appeal["id"],
        organisation_name='=HYPERLINK("http://x")',
        contact_name="+Mallory",
        comment="@SUM(A1)",
        visibility="anonymous",
    )
    add_endorsements(client, appeal=appeal["id"], state="pending")
    login_as(client, "admin")
    response = client.post(
        "/admin/export",
        data={
            "csrf_token": csrf(client, "/admin/export"),
            "appeal": str(appeal["id"]),
            "state": ["confirmed", "approved"],
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    [row] = rows
    assert row["id"] == str(eid) and row["contact_email"].startswith("office@peace")
    assert row["organisation_name"] == '\'=HYPERLINK("http://x")'
    assert row["contact_name"] == "'+Mallory" and row["comment"] == "'@SUM(A1)"
    assert row["visibility"] == "anonymous"
    [audit] = audit_rows(client, "export")
    assert audit["target_id"] == appeal["id"] and "1 rows" in audit["detail"] and "@" not in audit["detail"]
    everything = client.post(
        "/admin/export", data={"csrf_token": csrf(client, "/admin/export"), "appeal": str(appeal["id"])}
    )
    assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 2
    assert (
        client.post("/admin/export", data={"csrf_token": csrf(client, "/admin/export"), "appeal": "abc"}).status_code
        == 400
    )


def test_safe_cell():
    for dangerous in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("Peace") == "Peace" and safe_cell(None) == ""


def test_the_audit_log_is_browsable_filterable_and_free_of_addresses(client):
    appeal = make_appeal(client, "audited")
    ids = add_endorsements(client, 60, appeal=appeal["id"])
    add_organiser(client, "lea@organisers.example", "admin")
    login(client, "nobody-here@organisers.example", "wrong password guess", expect=400)
    login(client, "lea@organisers.example")
    client.post(
        "/admin/endorsements/decisions",
        data={"csrf_token": csrf(client, "/admin/"), "decision": "reject", "ids": [str(i) for i in ids]},
    )
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "62 entries" in page.text and "Page 1 of 2" in page.text
    second = client.get("/admin/audit?page=2")
    assert "Failed login" in second.text and "no organiser has this email address" in second.text
    only = client.get("/admin/audit?action=login")
    assert "1 entry" in only.text
    assert client.get("/admin/audit?action=nonsense").status_code == 400
    assert client.get("/admin/audit?page=zero").status_code == 400
    for row in audit_rows(client):
        assert "@" not in row["detail"] and "nobody-here" not in row["detail"]


def test_organisers_are_managed_by_admins(client):
    me = login_as(client, "admin")
    token = csrf(client, "/admin/organisers")
    bad = client.post(
        "/admin/organisers",
        data={
            "csrf_token": token,
            "email": "not-an-email",
            "role": "admin",
            "password": "short",
            "password_confirm": "short",
        },
    )
    assert bad.status_code == 400
    assert "valid email address" in bad.text and "at least 12 characters" in bad.text
    ok = client.post(
        "/admin/organisers",
        data={
            "csrf_token": token,
            "email": "new@organisers.example",
            "role": "moderator",
            "password": "a long enough password",
            "password_confirm": "a long enough password",
        },
        follow_redirects=True,
    )
    assert "The organiser was added." in ok.text and "new@organisers.example" in ok.text
    again = client.post(
        "/admin/organisers",
        data={
            "csrf_token": token,
            "email": "NEW@organisers.example",
            "role": "moderator",
            "password": "a long enough password",
            "password_confirm": "a long enough password",
        },
    )
    assert again.status_code == 400 and "exists already" in again.text
    [created] = audit_rows(client, "organiser.create")
    new_id = created["target_id"]
    client.post(f"/admin/organisers/{new_id}/role", data={"csrf_token": token, "role": "admin"})
    assert audit_rows(client, "organiser.role")[0]["detail"] == "moderator -> admin"
    # No lock-out: not yourself, not the last admin.
    refused = client.post(f"/admin/organisers/{me}/active", data={"csrf_token": token, "active": "0"})
    assert refused.status_code == 400 and "your own account" in refused.text
    client.post(f"/admin/organisers/{new_id}/active", data={"csrf_token": token, "active": "0"})
    last = client.post(f"/admin/organisers/{me}/role", data={"csrf_token": token, "role": "moderator"})
    assert last.status_code == 400 and "last administrator" in last.text
    assert client.post("/admin/organisers/99999/role", data={"csrf_token": token, "role": "admin"}).status_code == 404
    login(client, "new@organisers.example", "a long enough password", expect=400)  # deactivated
