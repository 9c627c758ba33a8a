"""Alembic environment: async engines on both backends, batch mode for SQLite."""

import asyncio
import contextlib
import logging
import time
import uuid
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from petition.db import sqlalchemy_url, url_parameter
from petition.schema import all_tables

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = all_tables()
log = logging.getLogger("petition.migrations")

#: pg_advisory_lock key of "a migration is running" (any fixed bigint; this spells "petition").
MIGRATION_LOCK = 0x7065746974696F6E


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from petition.settings import load_settings

        url = load_settings().database_url
    return url


def _url() -> str:
    return sqlalchemy_url(_database_url())


def _engine_options() -> dict[str, Any]:
    """Behind PgBouncer's transaction pooling (statement_cache_size=0 in DATABASE_URL) no prepared
    statement may outlive its transaction or share a name with another client's."""
    if url_parameter(_database_url(), "statement_cache_size") != "0":
        return {}
    return {
        "connect_args": {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__petition_{uuid.uuid4().hex}__",
        }
    }


def _nothing_to_do(connection: Connection) -> bool:
    """The database is at the revision asked for already: what every start of `serve` meets."""
    from alembic.migration import MigrationContext

    destination = context.get_revision_argument()  # "head" comes resolved: the revision ids
    wanted = set(destination) if isinstance(destination, tuple) else {destination} - {None}
    current = set(MigrationContext.configure(connection).get_current_heads())
    connection.commit()
    return current == wanted


def do_run_migrations(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    locked = False
    if postgres and not _nothing_to_do(connection):
        # Processes starting together (several `serve`, a `db upgrade`) migrate one at a time;
        # the others wait here, then find the schema at head. A session lock, so it holds
        # across the transactions of each migration and of CREATE INDEX CONCURRENTLY. Tried,
        # not waited for in pg_advisory_lock: CREATE INDEX CONCURRENTLY waits for every
        # statement running, and one blocked on the lock would never end (a deadlock).
        waiting = False
        while not connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK}).scalar():
            connection.commit()
            if not waiting:
                log.info("another process is migrating the database: waiting for it")
                waiting = True
            time.sleep(0.25)
        connection.commit()
        locked = True
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            # On PostgreSQL each migration commits on its own: one interrupted (or an index
            # built CONCURRENTLY, outside any transaction) leaves the ones before it applied.
            transaction_per_migration=postgres,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if locked:
            # A connection that broke has lost the lock with its session: nothing to release.
            with contextlib.suppress(Exception):
                if connection.in_transaction():
                    connection.rollback()
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                connection.commit()


async def run_async_migrations() -> None:
    engine = create_async_engine(_url(), **_engine_options())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        # Also when a migration refuses: no connection is left behind.
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
