"""Delivering each country's signed dossier to its parliamentarians, and their answers.

Real parts: the member lists are imported from CSV files (synthetic, under docs/), the dossier is
built and signed, the emails go through the outbox to a real SMTP server on loopback, and the
public page and JSON are read over HTTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.delivery import addressees as lists
from petition.dossiers import jobs
from petition.endorsements.vocabulary import canonical_email
from tests.conftest import BASE_URL
from tests.factories import add_endorsements
from tests.organisers.support import csrf, db_of, login_as, run
from tests.support import PROJECT_ROOT, SMTPServer, db_rows, links, mail_to, text_body, wait_for

EP = PROJECT_ROOT / "docs" / "addressees-ep.example.csv"
PACE = PROJECT_ROOT / "docs" / "addressees-pace.example.csv"
DE_MEMBERS = ["anna.beispiel@ep.example", "bernd.muster@ep.example", "clara.probe@ep.example"]
DE_PACE = ["gerda.versuch@pace.example"]


def _import(client: Any, path: Path, body: str, *, source_date: dt.date | None = None) -> int:
    members = lists.parse_members(path.read_bytes())
    return run(
        client,
        lists.import_members,
        body=body,
        members=members,
        source=path.name,
        source_date=source_date or dt.date.today(),
    )


def _build(client: Any, country: str) -> Any:
    settings = client.app.state.services.settings

    async def go(db: Any) -> Any:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        dossier_id = await jobs.start_build(db, appeal_id=appeal["id"], country=country, worker_id="test")
        row = await jobs.get_dossier(db, dossier_id=dossier_id)
        return await jobs.build(db, settings, dossier=row, worker_id="test")

    return client.portal.call(go, db_of(client))


def _appeal_id(client: Any) -> int:
    return int(run(client, get_appeal, slug=DEMO_SLUG)["id"])


def _send(client: Any, country: str, **fields: str) -> Any:
    path = f"/admin/appeals/{_appeal_id(client)}/delivery/{country}"
    page = client.get(path)
    assert page.status_code == 200, page.text
    subject = re.search(r'name="subject" type="text" value="([^"]*)"', page.text)
    letter = re.search(r'name="letter" rows="\d+"[^>]*>([^<]*)</textarea>', page.text)
    assert subject and letter, "the letter form is on the page, filled in"
    form = {
        "csrf_token": csrf(client, path),
        "subject": fields.pop("subject", _unescape(subject.group(1))),
        "letter": fields.pop("letter", _unescape(letter.group(1))),
        "confirm_send": "yes",
        **fields,
    }
    return client.post(path, data=form, follow_redirects=False)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _recipients(smtp: SMTPServer) -> list[str]:
    with smtp.sink.lock:
        return sorted(canonical_email(str(m["To"])) for m in smtp.sink.messages if "/dossiers/" in text_body(m))


@pytest.fixture
def named(client: Any) -> list[int]:
    return add_endorsements(
        client,
        rows=[
            dict(organisation_name="Friedenskreis Kassel", country="DE", city="Kassel"),
            dict(organisation_name="Connection e.V.", country="DE", city="Offenbach"),
            # Three anonymous ones: enough to be attributed to their country (ANONYMOUS_COUNT_THRESHOLD).
            *[dict(organisation_name=f"Verborgene Gruppe {n}", country="DE", visibility="anonymous") for n in range(3)],
            dict(organisation_name="Russian Objectors Aid", country="RU"),
        ],
    )


# --- import -------------------------------------------------------------------------------------


def test_the_community_file_and_the_plain_file_are_read():
    ep = lists.parse_members(EP.read_bytes())
    anna = next(m for m in ep if m.email == "anna.beispiel@ep.example")
    assert (anna.country, anna.name, anna.group, anna.committees) == (
        "DE",
        "Anna Beispiel",
        "Greens/EFA",
        ["DROI", "LIBE"],
    )
    office = next(m for m in ep if m.email == "droi-secretariat@ep.example")
    assert office.country == "" and office.committees == ["DROI"]
    pace = lists.parse_members(PACE.read_bytes())
    assert next(m for m in pace if m.country == "DE").committees == ["JUR", "MIG"]
    # A semicolon-separated file with a byte-order mark, as spreadsheets save it.
    semicolons = "\ufeffcountry;name;email\nAT;Otto Probe;otto@ep.example\n".encode()
    assert [(m.country, m.name) for m in lists.parse_members(semicolons)] == [("AT", "Otto Probe")]


def test_malformed_rows_are_reported_by_line_and_nothing_is_stored(client: Any, tmp_path: Path):
    _import(client, EP, "ep")
    bad = (
        b"country,name,email,committees\n"
        b"DE,Good Member,good@ep.example,DROI\n"
        b"DE,No Address,not-an-address,\n"
        b"XX,Wrong Country,wrong@ep.example,\n"
        b"DE,,nameless@ep.example,\n"
        b"DE,Bad Committee,bad@ep.example,drop table\n"
    )
    with pytest.raises(lists.ImportError_) as caught:
        lists.parse_members(bad)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6"]
    assert "'not-an-address' is not an email address" in problems[0]
    # The command line says the same, exits 1, and the list stored before stays.
    path = tmp_path / "bad.csv"
    path.write_bytes(bad)
    result = _cli(client, "addressees", "import", str(path), "--body", "ep")
    assert result.returncode == 1
    assert "line 3:" in result.stderr and "line 6:" in result.stderr
    rows = db_rows(_url(client), "SELECT email FROM addressees WHERE body = 'ep' ORDER BY email")
    assert [r["email"] for r in rows][:2] == ["anna.beispiel@ep.example", "bernd.muster@ep.example"]
    assert not [r for r in rows if r["email"] == "good@ep.example"]


def test_a_stale_import_is_warned_about(client: Any, named: list[int]):
    result = _cli(client, "addressees", "import", str(EP), "--body", "ep", "--date", "2025-01-15")
    assert result.returncode == 0, result.stderr
    assert "older than 180 days" in result.stderr
    login_as(client, "admin")
    page = client.get(f"/admin/appeals/{_appeal_id(client)}/delivery/DE").text
    assert "older than 180 days" in page
    fresh = _cli(client, "addressees", "import", str(EP), "--body", "ep")
    assert fresh.returncode == 0 and "older than 180 days" not in fresh.stderr
    assert "older than 180 days" not in client.get(f"/admin/appeals/{_appeal_id(client)}/delivery/DE").text


# --- sending ------------------------------------------------------------------------------------


def test_a_delivery_sends_exactly_one_email_each_and_records_statuses(client: Any, smtp: SMTPServer, named: list[int]):
    _import(client, EP, "ep")
    _import(client, PACE, "pace")
    built = _build(client, "DE")
    login_as(client, "admin")
    # One member asked not to be written to.
    path = f"/admin/appeals/{_appeal_id(client)}/delivery"
    added = client.post(
        f"{path}/suppressions",
        data={"csrf_token": csrf(client, path), "email": "Clara.Probe@EP.example", "reason": "asked us"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    review = client.get(f"{path}/DE").text
    assert "suppressed: receives nothing" in review and "clara.probe@ep.example" in review
    assert _send(client, "DE").status_code == 303
    wanted = sorted(["anna.beispiel@ep.example", "bernd.muster@ep.example", *DE_PACE])
    wait_for(lambda: _recipients(smtp) == wanted or None, timeout=30)
    assert _recipients(smtp) == wanted  # exactly one each; the suppressed one nothing
    [email] = mail_to(smtp, "anna.beispiel@ep.example")
    body = text_body(email)
    sha = hashlib.sha256(built.path.read_bytes()).hexdigest()
    # In the dossier's language, German for Germany: the letter, then the part no letter can leave out.
    assert str(email["Content-Language"]) == "de" and body.startswith("Sehr geehrte")
    assert f"SHA-256 der Datei: {sha}" in body
    assert "Es führt 2 Organisationen namentlich auf." in body
    assert "3 weitere haben unterstützt, ohne genannt zu werden" in body
    assert "Verborgene Gruppe" not in body  # anonymous organisations are never named
    [dossier_link] = [u for u in links(email, BASE_URL) if "/dossiers/" in u]
    download = client.get(dossier_link.replace(BASE_URL, ""))
    assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(download.content).hexdigest() == sha
    # Statuses: each recipient sent, recorded with the delivery; the whole delivery audited.
    page = wait_for(lambda: (p := client.get(f"{path}/DE").text) and ("3 sent, 0 queued" in p) and p, timeout=30)
    assert "3 recipients: 3 sent, 0 queued, 0 failed." in page
    rows = db_rows(_url(client), "SELECT status FROM delivery_recipients")
    assert sorted(r["status"] for r in rows) == ["sent", "sent", "sent"]
    audit = db_rows(_url(client), "SELECT action, detail FROM audit_log WHERE action = 'delivery.send'")
    assert len(audit) == 1 and "recipients=3" in audit[0]["detail"] and "anonymous=3" in audit[0]["detail"]
    assert "@" not in audit[0]["detail"]  # no address in the audit log


def test_emails_are_spaced_out_for_the_relay(client: Any, smtp: SMTPServer, named: list[int]):
    _import(client, EP, "ep")
    _build(client, "DE")
    login_as(client, "admin")
    assert _send(client, "DE").status_code == 303
    rows = db_rows(_url(client), "SELECT next_attempt_at, created_at FROM outbox WHERE kind = 'delivery' ORDER BY id")
    interval = client.app.state.services.settings.delivery_interval
    gaps = [
        _seconds(b["next_attempt_at"]) - _seconds(a["next_attempt_at"]) for a, b in zip(rows, rows[1:], strict=False)
    ]
    assert gaps and all(abs(g - interval) < 0.01 for g in gaps)


def test_a_country_without_members_goes_to_the_routed_committees(client: Any, smtp: SMTPServer, named: list[int]):
    _import(client, EP, "ep")
    _import(client, PACE, "pace")
    _build(client, "RU")
    login_as(client, "admin")
    path = f"/admin/appeals/{_appeal_id(client)}/delivery"
    assert "No recipient" in client.get(f"{path}/RU").text
    saved = client.post(
        f"{path}/routes",
        data={
            "csrf_token": csrf(client, path),
            "country": "RU",
            "committees_ep": "droi; PETI",
            "committees_pace": "MIG",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert _send(client, "RU").status_code == 303
    wanted = sorted(
        [
            "anna.beispiel@ep.example",  # DROI
            "clara.probe@ep.example",  # PETI
            "denise.exemple@ep.example",  # DROI
            "franca.esempio@ep.example",  # DROI substitute, PETI
            "droi-secretariat@ep.example",
            "peti-secretariat@ep.example",
            "gerda.versuch@pace.example",  # MIG
            "hanna.pryklad@pace.example",  # MIG
            "mig-secretariat@pace.example",
        ]
    )
    wait_for(lambda: _recipients(smtp) == wanted or None, timeout=30)
    assert _recipients(smtp) == wanted
    # A malformed committee code is refused, the routes unchanged.
    refused = client.post(
        f"{path}/routes",
        data={"csrf_token": csrf(client, path), "country": "RU", "committees_ep": "DROI'--", "committees_pace": ""},
        follow_redirects=False,
    )
    assert refused.status_code == 400
    assert "letters and digits" in refused.text and 'value="DROI&#39;--"' in refused.text  # the value kept
    assert "<title>Error:" in refused.text
    # The routes stay as they were: the country is still routed.
    assert "mig-secretariat@pace.example" in client.get(f"{path}/RU").text
    bad = client.post(
        f"{path}/suppressions",
        data={"csrf_token": csrf(client, path), "email": "not an address", "reason": "bounces"},
        follow_redirects=False,
    )
    assert bad.status_code == 400 and 'value="bounces"' in bad.text


def test_nothing_is_sent_without_a_dossier_or_a_confirmation(client: Any, smtp: SMTPServer, named: list[int]):
    _import(client, EP, "ep")
    login_as(client, "admin")
    path = f"/admin/appeals/{_appeal_id(client)}/delivery/DE"
    assert "no signed dossier yet" in client.get(path).text
    forced = client.post(
        path,
        data={"csrf_token": csrf(client, path), "subject": "S", "letter": "L", "confirm_send": "yes"},
        follow_redirects=False,
    )
    assert forced.status_code == 409 and "nothing to send" in forced.text.lower()
    _build(client, "DE")
    unconfirmed = client.post(
        path, data={"csrf_token": csrf(client, path), "subject": "S", "letter": "L"}, follow_redirects=False
    )
    assert unconfirmed.status_code == 400 and 'value="S"' in unconfirmed.text  # the letter is kept
    assert not db_rows(_url(client), "SELECT id FROM outbox WHERE kind = 'delivery'")


def test_answers_are_published_on_the_appeal_page_and_in_the_api(client: Any, smtp: SMTPServer, named: list[int]):
    _import(client, EP, "ep")
    _import(client, PACE, "pace")
    _build(client, "DE")
    login_as(client, "admin")
    assert _send(client, "DE").status_code == 303
    path = f"/admin/appeals/{_appeal_id(client)}/delivery/DE"
    [delivery_id] = re.findall(r'<option value="(\d+)">\d{4}-\d\d-\d\d', client.get(path).text)
    bad = client.post(
        f"{path}/answers",
        data={
            "csrf_token": csrf(client, path),
            "delivery": delivery_id,
            "author": "Anna Beispiel MEP",
            "answered_on": "tomorrow",
            "summary": "Will raise it in DROI.",
            "document_url": "javascript:alert(1)",
        },
        follow_redirects=False,
    )
    assert bad.status_code == 400 and 'value="Anna Beispiel MEP"' in bad.text
    assert "https://" in bad.text and "YYYY-MM-DD" in bad.text
    good = client.post(
        f"{path}/answers",
        data={
            "csrf_token": csrf(client, path),
            "delivery": delivery_id,
            "author": "Anna Beispiel MEP (Greens/EFA)",
            "answered_on": dt.date.today().isoformat(),
            "summary": "Will raise it in DROI.",
            "document_url": "https://ep.example/answer.pdf",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    client.cookies.clear()
    page = client.get(f"/appeals/{DEMO_SLUG}").text
    assert "delivered to 4 offices on" in page and "1 answered" in page
    assert "Anna Beispiel MEP (Greens/EFA)" in page and "Will raise it in DROI." in page
    assert "anna.beispiel@ep.example" not in page  # recipients' addresses are never public
    api = client.get(f"/api/appeals/{DEMO_SLUG}/deliveries")
    assert api.status_code == 200
    [germany] = api.json()
    assert germany["country"] == "DE" and germany["offices"] == 4  # 3 MEPs and 1 PACE member
    assert germany["delivered_at"].endswith("Z")
    assert germany["answers"] == [
        {
            "author": "Anna Beispiel MEP (Greens/EFA)",
            "answered_on": dt.date.today().isoformat(),
            "summary": "Will raise it in DROI.",
            "document_url": "https://ep.example/answer.pdf",
        }
    ]
    assert "@" not in json.dumps(api.json())
    assert client.get("/api/appeals/no-such-appeal/deliveries").status_code == 404


def test_only_delivered_dossiers_can_be_downloaded(client: Any, named: list[int]):
    built = _build(client, "DE")
    sha = hashlib.sha256(built.path.read_bytes()).hexdigest()
    assert client.get(f"/appeals/{DEMO_SLUG}/dossiers/{sha}.pdf").status_code == 404
    assert client.get(f"/appeals/{DEMO_SLUG}/dossiers/../../etc/passwd.pdf").status_code == 404
    assert client.get(f"/appeals/{DEMO_SLUG}/dossiers/{'0' * 64}.pdf").status_code == 404


def test_the_command_line_sends_a_country(client: Any, smtp: SMTPServer, named: list[int]):
    _import(client, EP, "ep")
    _build(client, "DE")
    result = _cli(client, "delivery", "send", "--appeal", DEMO_SLUG, "--country", "de", "--yes")
    assert result.returncode == 0, result.stderr
    assert "3 recipients" in result.stdout
    client.app.state.services.mailer.notify()
    wait_for(lambda: len(_recipients(smtp)) == 3 or None, timeout=30)
    assert _recipients(smtp) == sorted(DE_MEMBERS)
    nothing = _cli(client, "delivery", "send", "--appeal", DEMO_SLUG, "--country", "FR", "--yes")
    assert nothing.returncode == 1 and "no signed dossier" in nothing.stderr


# --- helpers ------------------------------------------------------------------------------------


def _url(client: Any) -> str:
    return str(client.app.state.services.settings.database_url)


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp())


def _cli(client: Any, *args: str) -> subprocess.CompletedProcess[str]:
    settings = client.app.state.services.settings
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": str(settings.database_url),
        "SECRET_KEY": str(settings.secret_key),
        "DATA_DIR": str(settings.data_dir),
        "BASE_URL": settings.base_url,
        "MAIL_FROM": settings.mail_from,
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
        "CREATE_DEMO": "false",
        "SIGNING_P12": "self-signed",
    }
    return subprocess.run(
        [sys.executable, "-m", "petition.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
