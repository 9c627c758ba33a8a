"""Migrations run up and down on a fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from petition.migrations.runner import downgrade, upgrade
from petition.schema import all_tables
from tests.conftest import _admin, _backend, _with_database, postgres_server
from tests.support import db_rows

TABLES = {t.name for t in all_tables().sorted_tables}


def tables_in(url: str) -> set[str]:
    if url.startswith("sqlite:///"):
        rows = db_rows(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r["name"] for r in rows if not r["name"].startswith("sqlite_")}
    rows = db_rows(
        url,
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    return {r["name"] for r in rows}


def up_down_up(url: str) -> None:
    upgrade(url)
    assert TABLES <= tables_in(url)
    assert {"endorsements", "outbox", "appeals", "appeal_texts"} <= tables_in(url)
    [version] = db_rows(url, "SELECT version_num FROM alembic_version")
    assert version["version_num"]

    downgrade(url, "base")
    assert tables_in(url) & TABLES == set()
    assert db_rows(url, "SELECT version_num FROM alembic_version") == []

    upgrade(url)
    assert TABLES <= tables_in(url)
    upgrade(url)  # a second upgrade is a no-op
    assert TABLES <= tables_in(url)


def test_migrations_up_and_down_on_a_fresh_sqlite_file(tmp_path: Path):
    up_down_up(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_migrations_up_and_down_on_a_fresh_postgresql_database():
    server = postgres_server()
    name = f"petition_migrate_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        up_down_up(_with_database(server, name))
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_schema_matches_the_tables_after_migrating(tmp_path: Path):
    """No drift between tables.py and the migrations (what autogenerate would find)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    path = tmp_path / "drift.db"
    upgrade(f"sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), all_tables())
    finally:
        engine.dispose()
    assert diff == []


def test_downgrading_past_0007_refuses_while_emails_wait_to_be_rendered(tmp_path: Path):
    from tests.support import run_sql

    url = f"sqlite:///{tmp_path / 'queued.db'}"
    upgrade(url)
    run_sql(
        url,
        "INSERT INTO outbox (kind, to_addr, context, subject, body_text, body_html, language, message_id,"
        " state, attempts, next_attempt_at, created_at) VALUES ('confirm', 'a@b.example', '{}', '', '', '',"
        " 'en', '<m1@x>', 'queued', 0, '2026-12-01 00:00:00', '2026-12-01 00:00:00')",
    )
    with pytest.raises(RuntimeError, match="queued emails"):
        downgrade(url, "0004")
    # Nothing was lost: the email is still there for this release's worker to send.
    assert [r["kind"] for r in db_rows(url, "SELECT kind FROM outbox")] == ["confirm"]
    run_sql(url, "UPDATE outbox SET state = 'sent', context = NULL")
    downgrade(url, "0004")


def _fresh_database(tmp_path: Path, name: str):
    """A fresh database of this run's backend: a SQLite file, or a new PostgreSQL database."""
    import contextlib

    @contextlib.contextmanager
    def made():
        if not _backend().startswith("postgresql://"):
            yield f"sqlite:///{tmp_path / (name + '.db')}"
            return
        server = postgres_server()
        db_name = f"petition_{name}_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(server, f'CREATE DATABASE "{db_name}"'))
        try:
            yield _with_database(server, db_name)
        finally:
            asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))

    return made()


def _insert(url: str, row_id: int, email: str, canonical: str, state: str) -> None:
    from tests.support import run_sql

    run_sql(
        url,
        "INSERT INTO endorsements (id, appeal_id, organisation_name, name_normalised, country, city, "
        "organisation_type, website, contact_name, contact_role, contact_email, email_canonical, authorised, "
        "consent_version, visibility, comment, language, text_language, text_hash, state, token_nonce, "
        "created_at, updated_at) VALUES (:id, 1, 'Org', 'org', 'DE', '', 'peace', '', 'C', '', :email, "
        ":canonical, true, '2026-11', 'anonymous', '', 'en', 'en', 'h', :state, :nonce, "
        "'2026-12-01 00:00:00', '2026-12-01 00:00:00')",
        id=row_id,
        email=email,
        canonical=canonical,
        state=state,
        nonce=f"{row_id:032x}",
    )


def test_0008_gives_eszett_mailboxes_their_own_identity_and_unconfirmed_holds_back(tmp_path: Path):
    from tests.support import run_sql

    with _fresh_database(tmp_path, "m0008") as url:
        upgrade(url, "0007")
        run_sql(
            url,
            "INSERT INTO appeals (id, slug, status, moderation, default_language, addressees, created_at) "
            "VALUES (1, 'a', 'open', 'post', 'en', '', '2026-12-01 00:00:00')",
        )
        # As the release before stored them: IDNA 2003 merged straße.de into strasse.de.
        _insert(url, 1, "info@straße.de", "info@strasse.de", "confirmed")
        _insert(url, 2, "held@bot.example", "held@bot.example", "quarantined")
        run_sql(
            url,
            "INSERT INTO login_failures (account_key, ip, created_at) "
            "VALUES ('k', '198.51.100.7', '2026-12-01 00:00:00')",
        )
        upgrade(url, "0008")
        rows = {r["id"]: r for r in db_rows(url, "SELECT id, email_canonical, state, hold_reason FROM endorsements")}
        assert rows[1]["email_canonical"] == "info@xn--strae-oqa.de"
        assert (rows[2]["state"], rows[2]["hold_reason"]) == ("pending", "legacy")
        assert db_rows(url, "SELECT count(*) AS n FROM login_failures") == [{"n": 0}]
        # Down again: the release before finds its records under the forms it computes.
        downgrade(url, "0007")
        rows = {r["id"]: r for r in db_rows(url, "SELECT id, email_canonical, state FROM endorsements")}
        assert rows[1]["email_canonical"] == "info@strasse.de" and rows[2]["state"] == "quarantined"


def test_downgrading_past_0008_refuses_when_two_mailboxes_would_become_one(tmp_path: Path):
    with _fresh_database(tmp_path, "m0008twins") as url:
        upgrade(url)
        from tests.support import run_sql

        run_sql(
            url,
            "INSERT INTO appeals (id, slug, status, moderation, default_language, addressees, created_at) "
            "VALUES (1, 'a', 'open', 'post', 'en', '', '2026-12-01 00:00:00')",
        )
        _insert(url, 1, "info@straße.de", "info@xn--strae-oqa.de", "confirmed")
        _insert(url, 2, "info@strasse.de", "info@strasse.de", "confirmed")
        with pytest.raises(RuntimeError, match="would become one mailbox"):
            downgrade(url, "0007")
        # Nothing was changed: both mailboxes keep their own identity.
        assert sorted(r["email_canonical"] for r in db_rows(url, "SELECT email_canonical FROM endorsements")) == [
            "info@strasse.de",
            "info@xn--strae-oqa.de",
        ]


def test_0014_adds_the_trusted_time_columns_to_existing_rows_and_takes_them_away(tmp_path: Path):
    from tests.support import run_sql

    def columns(url: str, table: str) -> set[str]:
        if url.startswith("sqlite:///"):
            return {r["name"] for r in db_rows(url, f"PRAGMA table_info({table})")}
        rows = db_rows(url, "SELECT column_name AS name FROM information_schema.columns WHERE table_name = $1", table)
        return {r["name"] for r in rows}

    with _fresh_database(tmp_path, "m0014") as url:
        upgrade(url, "0013")
        run_sql(
            url,
            "INSERT INTO appeals (id, slug, status, moderation, default_language, addressees, created_at) "
            "VALUES (1, 'a', 'open', 'post', 'en', '', '2026-12-01 00:00:00')",
        )
        run_sql(
            url,
            "INSERT INTO dossiers (id, appeal_id, country, state, created_at) "
            "VALUES (1, 1, 'DE', 'done', '2026-12-01 00:00:00')",
        )
        run_sql(
            url,
            "INSERT INTO log_checkpoints (size, root, note, key, created_at) "
            "VALUES (0, :root, 'note', 'key', '2026-12-01 00:00:00')",
            root=bytes(32),
        )
        upgrade(url, "0014")
        # Dossiers issued before were signed as the settings then said: none waits for a timestamp.
        assert db_rows(url, "SELECT timestamp_pending FROM dossiers") == [{"timestamp_pending": False}]
        assert db_rows(url, "SELECT timestamp_token FROM log_checkpoints") == [{"timestamp_token": None}]
        downgrade(url, "0013")
        assert "timestamp_pending" not in columns(url, "dossiers")
        assert "timestamp_token" not in columns(url, "log_checkpoints")
        assert db_rows(url, "SELECT count(*) AS n FROM dossiers") == [{"n": 1}]
        assert db_rows(url, "SELECT count(*) AS n FROM log_checkpoints") == [{"n": 1}]


def test_a_start_on_a_sqlite_file_at_head_skips_alembic_and_one_behind_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` (and every test's app) migrates at start: a file at head is left alone without
    loading Alembic's environment; a file one revision behind, or a new one, is still migrated."""
    from petition.migrations import runner

    url = f"sqlite:///{tmp_path}/petition.db"
    assert runner.sqlite_revisions(url) is None  # no file yet: Alembic decides
    asyncio.run(runner.upgrade_async(url))
    assert runner.sqlite_revisions(url) == runner.head_revisions()

    calls: list[str] = []
    real_upgrade = runner.upgrade
    monkeypatch.setattr(runner, "upgrade", lambda u, r="head": calls.append(r) or real_upgrade(u, r))
    asyncio.run(runner.upgrade_async(url))
    assert calls == []

    downgrade(url, "-1")
    assert runner.sqlite_revisions(url) != runner.head_revisions()
    asyncio.run(runner.upgrade_async(url))
    assert calls == ["head"] and runner.sqlite_revisions(url) == runner.head_revisions()
