"""/readyz: 503 with reasons when this process cannot serve; "degraded" when the workers or the
outbox need an operator; and what it reports about both (the failure seen: every worker dead,
emails piling up, and /healthz answering 200)."""

from __future__ import annotations

from petition.endorsements.intake import IntakeHealth
from tests.support import db_rows, run_sql, wait_for


def test_a_running_site_is_ready_and_reports_its_workers(make_site):
    site = make_site()
    ready = wait_for(lambda: (r := site.client.get("/readyz")).json()["checks"]["workers"] and r, timeout=20)
    assert ready.status_code == 200
    assert ready.headers["cache-control"] == "no-store"
    body = ready.json()
    assert body["status"] == "ready" and body["reasons"] == []
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"]["database"] == body["checks"]["migrations"]["code"]
    assert body["checks"]["outbox"] == {"queued": 0, "sending": 0, "failed": 0, "due": 0, "oldest_queued_seconds": 0}
    workers = {w["worker"] for w in body["checks"]["workers"]}
    # Each worker a process runs reports: one that hangs in a pass falls silent here.
    assert workers == {"outbox worker", "dossier worker", "log worker", "domain proof worker"}
    assert all(0 <= w["last_beat_seconds"] < 60 for w in body["checks"]["workers"])


def test_with_every_worker_dead_and_emails_due_the_site_says_so(make_site, database_url):
    # A worker that beat once and died an hour ago; the site itself runs none.
    run_sql(
        database_url,
        "INSERT INTO worker_heartbeats (worker_id, worker, started_at, beat_at) "
        "VALUES ('gone:1:abc', 'outbox worker', :at, :at)",
        at=_hours_ago(1),
    )
    site = make_site(run_worker=False)
    assert site.endorse(contact_email="office@waiting.example").status_code == 303
    assert site.client.get("/healthz").status_code == 200  # liveness: the process answers
    ready = site.client.get("/readyz")
    body = ready.json()
    # Degraded, not "not ready": no web process can mend it, and every one taken out of
    # rotation would stop the endorsements that are still stored safely.
    assert ready.status_code == 200
    assert body["status"] == "degraded"
    assert any("no outbox worker" in reason for reason in body["reasons"])
    assert body["checks"]["outbox"]["queued"] == 1 and body["checks"]["outbox"]["due"] == 1
    [gone] = body["checks"]["workers"]
    assert gone["id"] == "gone:1:abc" and gone["last_beat_seconds"] >= 3600


def test_an_email_queued_too_long_degrades(make_site):
    site = make_site(run_worker=False, ready_outbox_max_age=0.0)
    assert site.endorse(contact_email="office@slow.example").status_code == 303
    body = wait_for(
        lambda: (b := site.client.get("/readyz").json())["checks"]["outbox"]["oldest_queued_seconds"] > 0 and b
    )
    assert body["status"] == "degraded"
    assert any("oldest queued email" in reason for reason in body["reasons"])


def test_migrations_behind_the_code_are_not_ready(make_site, database_url):
    site = make_site()
    (row,) = db_rows(database_url, "SELECT version_num FROM alembic_version")
    run_sql(database_url, "UPDATE alembic_version SET version_num = '0009'")
    try:
        ready = site.client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not ready"
        assert body["checks"]["migrations"]["database"] == ["0009"]
        assert any("petition db upgrade" in reason for reason in body["reasons"])
    finally:
        run_sql(database_url, "UPDATE alembic_version SET version_num = :v", v=row["version_num"])


def test_a_database_that_does_not_answer_is_not_ready(make_site, monkeypatch):
    site = make_site()
    db = site.client.app.state.services.db

    async def silent() -> bool:
        return False

    monkeypatch.setattr(db, "ping", silent)
    ready = site.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "checks": {"database": "not answering"},
        "reasons": ["the database does not answer"],
    }


def test_a_process_whose_submissions_fail_is_not_ready(make_site):
    site = make_site()
    health = site.client.app.state.services.intake.health
    for _ in range(IntakeHealth.FAILURES):
        health.failed()
    ready = site.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["intake"]["failing"] is True
    health.succeeded()
    assert site.client.get("/readyz").json()["checks"]["intake"]["failing"] is False


def test_failures_count_for_a_minute_and_a_success_clears_them(monkeypatch):
    import petition.endorsements.intake as intake

    now = [1000.0]
    monkeypatch.setattr(intake.time, "monotonic", lambda: now[0])
    health = IntakeHealth()
    for _ in range(IntakeHealth.FAILURES - 1):
        health.failed()
    assert not health.failing()
    health.failed()
    assert health.failing()
    now[0] += IntakeHealth.WINDOW + 1
    assert not health.failing()  # out of rotation, nothing arrives: ready again after a minute
    for _ in range(IntakeHealth.FAILURES):
        health.failed()
    now[0] += 1
    health.succeeded()
    assert not health.failing()


def _hours_ago(hours: float):
    import datetime as dt

    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).replace(tzinfo=None)
