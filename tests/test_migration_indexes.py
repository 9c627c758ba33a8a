"""On PostgreSQL, migrations build indexes on tables that hold rows CONCURRENTLY: writers go on."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from petition.migrations.runner import alembic_config, downgrade, upgrade
from tests.conftest import _admin, _with_database, postgres_server


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    server = postgres_server()
    name = f"petition_indexes_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _chain() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_migration_files_are_named_in_the_order_they_run():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    by_name = sorted(script.walk_revisions(), key=lambda rev: rev.path)
    assert [rev.revision for rev in by_name] == _chain()
    for position, rev in enumerate(by_name, start=1):
        assert re.match(rf"{position:02d}_{rev.revision}_", rev.path.rsplit("/", 1)[-1]), rev.path


def test_every_index_on_an_existing_table_is_built_concurrently(fresh_postgres: str):
    """Each revision's statements, as PostgreSQL receives them: a CREATE INDEX without CONCURRENTLY
    is only allowed on a table that the same revision created (nobody writes to it yet)."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        plain: list[str] = []
        concurrent = 0
        for revision in _chain():
            statements.clear()
            upgrade(fresh_postgres, revision)
            created = {m.group(1) for s in statements if (m := re.match(r"CREATE TABLE (\w+)", s))}
            for statement in statements:
                match = re.match(r"CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?(?:IF NOT EXISTS )?\w+ ON (\w+)", statement)
                if match is None:
                    continue
                if match.group(1):
                    concurrent += 1
                elif match.group(2) not in created:
                    plain.append(f"{revision}: {statement}")
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert plain == []
    assert concurrent >= 4  # audit_log, endorsements (two), dossiers


def test_an_index_build_waits_for_writers_without_stopping_new_ones(fresh_postgres: str):
    """While a transaction that wrote to endorsements is open, 0006's index builds wait for it
    — but as CONCURRENTLY does, not with a SHARE lock on the table, which would queue every new
    endorsement behind it until the build ends."""
    import asyncpg

    upgrade(fresh_postgres, "0003")
    failures: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(fresh_postgres, "0006")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            failures.append(exc)

    async def scenario() -> list[dict[str, Any]]:
        holder = await asyncpg.connect(fresh_postgres)
        watcher = await asyncpg.connect(fresh_postgres)
        writer = await asyncpg.connect(fresh_postgres, command_timeout=20)
        try:
            await holder.execute(
                "INSERT INTO appeals (slug, status, moderation, created_at) VALUES ('a', 'open', 'post', now())"
            )
            holder_tx = holder.transaction()
            await holder_tx.start()
            await holder.execute(_ENDORSEMENT, 1)
            thread = threading.Thread(target=migrate)
            thread.start()
            waits: list[dict[str, Any]] = []
            for _ in range(600):  # the migration reaches its first index build and waits for `holder`
                waits = [
                    dict(r)
                    for r in await watcher.fetch(
                        "SELECT l.locktype, l.mode, c.relname FROM pg_locks l "
                        "LEFT JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted AND l.pid <> $1",
                        holder.get_server_pid(),
                    )
                ]
                if waits or failures or not thread.is_alive():
                    break
                await asyncio.sleep(0.05)
            assert waits, f"the migration never waited for the open writer ({failures})"
            # A new endorsement while the build waits: stored at once, not queued behind it.
            await writer.execute(_ENDORSEMENT, 2)
            await holder_tx.commit()
            await asyncio.to_thread(thread.join, 120)
            return waits
        finally:
            for conn in (holder, watcher, writer):
                await conn.close()

    waits = asyncio.run(scenario())
    assert failures == []
    assert not any(w["locktype"] == "relation" and w["relname"] == "endorsements" for w in waits), waits
    rows = asyncio.run(_fetch(fresh_postgres, "SELECT indexrelid::regclass::text AS name, indisvalid FROM pg_index"))
    assert {"ix_endorsements_newest": True, "ix_endorsements_by_country_name": True}.items() <= {
        r["name"]: r["indisvalid"] for r in rows
    }.items()


def test_an_interrupted_concurrent_build_is_redone_on_the_next_upgrade(fresh_postgres: str):
    """A CONCURRENTLY build that fails leaves an INVALID index behind; the next upgrade drops and rebuilds it."""
    upgrade(fresh_postgres, "0003")

    async def break_one() -> None:
        import asyncpg

        conn = await asyncpg.connect(fresh_postgres)
        try:
            await conn.execute(
                "INSERT INTO appeals (slug, status, moderation, created_at) VALUES ('a', 'open', 'post', now())"
            )
            await conn.execute(_ENDORSEMENT, 1)
            # What a build interrupted half-way leaves: the index exists, marked invalid.
            await conn.execute("CREATE INDEX ix_endorsements_newest ON endorsements (appeal_id)")
            await conn.execute(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_endorsements_newest'::regclass"
            )
        finally:
            await conn.close()

    asyncio.run(break_one())
    upgrade(fresh_postgres)
    rows = asyncio.run(
        _fetch(
            fresh_postgres,
            "SELECT indisvalid, pg_get_indexdef(indexrelid) AS definition FROM pg_index "
            "WHERE indexrelid = 'ix_endorsements_newest'::regclass",
        )
    )
    assert rows[0]["indisvalid"] is True
    assert "listed_at" in rows[0]["definition"]  # built anew, with the migration's columns
    downgrade(fresh_postgres, "0003")
    upgrade(fresh_postgres)


_ENDORSEMENT = (
    "INSERT INTO endorsements (id, appeal_id, organisation_name, name_normalised, country, city, organisation_type, "
    "website, contact_name, contact_role, contact_email, email_canonical, authorised, consent_version, visibility, "
    "comment, language, text_language, text_hash, state, token_nonce, created_at, updated_at) "
    "VALUES ($1::int, 1, 'Org', 'org', 'DE', '', 'peace', '', 'C', '', 'a' || $1::text || '@b.example', "
    "'a' || $1::text || '@b.example', true, '2026-11', 'anonymous', '', 'en', 'en', 'h', 'pending', md5($1::text), "
    "now(), now())"
)


async def _fetch(url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()
