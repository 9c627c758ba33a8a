"""Migrations run up and down on a fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from petition.migrations.runner import downgrade, upgrade
from petition.schema import all_tables
from tests.conftest import _admin, _backend, _with_database
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


def postgres_server() -> str:
    backend = _backend()
    if backend.startswith("postgresql://"):
        return backend
    server = os.environ.get("PETITION_TEST_POSTGRES", "")
    if not server:
        pytest.skip("no PostgreSQL server here: this runs in the PostgreSQL pass of scripts/test")
    return server


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
    run_sql(url, "INSERT INTO outbox (kind, to_addr, context, subject, body_text, body_html, language, message_id,"
                 " state, attempts, next_attempt_at, created_at) VALUES ('confirm', 'a@b.example', '{}', '', '', '',"
                 " 'en', '<m1@x>', 'queued', 0, '2026-12-01 00:00:00', '2026-12-01 00:00:00')")
    with pytest.raises(RuntimeError, match="queued emails"):
        downgrade(url, "0004")
    # Nothing was lost: the email is still there for this release's worker to send.
    assert [r["kind"] for r in db_rows(url, "SELECT kind FROM outbox")] == ["confirm"]
    run_sql(url, "UPDATE outbox SET state = 'sent', context = NULL")
    downgrade(url, "0004")
