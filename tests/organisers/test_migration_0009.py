"""Migration 0009 (organiser login): up, down and up again on SQLite and PostgreSQL, keeping what it must."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from petition.migrations.runner import downgrade, upgrade
from tests.conftest import _admin, _backend, _with_database
from tests.support import db_rows, run_sql

NEW_COLUMNS = {"language", "totp_secret", "totp_pending_secret", "totp_enabled_at", "totp_last_step", "login_alert_at"}


def columns(url: str, table: str) -> set[str]:
    if url.startswith("sqlite:///"):
        return {r["name"] for r in db_rows(url, f"SELECT name FROM pragma_table_info('{table}')")}
    return {
        r["name"]
        for r in db_rows(url, "SELECT column_name AS name FROM information_schema.columns WHERE table_name = $1", table)
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    server = _backend()
    if not server.startswith("postgresql://"):
        pytest.skip("the PostgreSQL run (PETITION_TEST_DATABASE=postgresql://…) migrates PostgreSQL")
    name = f"petition_m0009_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_migration_0009_up_down_up_keeps_organisers_and_untrusted_failures(fresh_url):
    url = fresh_url
    upgrade(url, "0008")
    run_sql(
        url,
        "INSERT INTO organisers (email, password_hash, role, active, created_at, session_version) "
        "VALUES ('ada@organisers.example', 'x', 'admin', true, '2026-12-01 00:00:00', 3)",
    )
    run_sql(url, "INSERT INTO login_failures (account_key, ip, created_at) VALUES ('k', 'i', '2026-12-01 00:00:00')")
    upgrade(url)
    assert NEW_COLUMNS <= columns(url, "organisers")
    assert "device" in columns(url, "login_failures")
    assert db_rows(url, "SELECT device FROM login_failures") == [{"device": None}]  # an untrusted failure still
    [ada] = db_rows(url, "SELECT session_version, totp_enabled_at FROM organisers")
    assert ada == {"session_version": 3, "totp_enabled_at": None}
    run_sql(
        url,
        "INSERT INTO organiser_recovery_codes (organiser_id, code_hash, created_at) "
        "SELECT id, 'h', '2026-12-01 00:00:00' FROM organisers",
    )
    run_sql(
        url,
        "INSERT INTO login_failures (account_key, ip, device, created_at) "
        "VALUES ('k', 'i', 'd', '2026-12-01 00:00:00')",
    )

    downgrade(url, "0008")
    assert not NEW_COLUMNS & columns(url, "organisers")
    assert "device" not in columns(url, "login_failures")
    assert columns(url, "organiser_recovery_codes") == set()
    assert len(db_rows(url, "SELECT * FROM login_failures")) == 1  # the device's row went with its meaning
    upgrade(url)
    assert NEW_COLUMNS <= columns(url, "organisers")


def test_downgrading_past_0009_refuses_while_organisers_use_two_step_login(fresh_url):
    url = fresh_url
    upgrade(url)
    run_sql(
        url,
        "INSERT INTO organisers (email, password_hash, role, active, created_at, session_version, "
        "totp_secret, totp_enabled_at) VALUES ('bo@organisers.example', 'x', 'admin', true, "
        "'2026-12-01 00:00:00', 0, 'JBSWY3DPEHPK3PXP', '2026-12-01 00:00:00')",
    )
    with pytest.raises(RuntimeError, match="second factor"):
        downgrade(url, "0008")
    assert "totp_secret" in columns(url, "organisers")
    run_sql(url, "UPDATE organisers SET totp_secret = NULL, totp_enabled_at = NULL")
    downgrade(url, "0008")
    assert "totp_secret" not in columns(url, "organisers")
