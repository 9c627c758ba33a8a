"""Indexes on tables that already hold rows, built without stopping writes.

A plain CREATE INDEX takes a SHARE lock on its table for the whole build: on PostgreSQL no
endorsement is stored (and no email queued) until it ends, seconds at 100,000 rows. Built
CONCURRENTLY it lets writes go on, but it cannot run inside a transaction, so it runs in
an autocommit block of its own (the migrations before it are committed first). A build that
was interrupted leaves an INVALID index behind: it is dropped and built again when the
migration runs again; a valid one from an earlier run is kept. SQLite builds as before, in
the migration's transaction (it has one writer at a time anyway).

An index on a table created in the same migration needs none of this: nobody else sees the
table before that migration commits.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


def _postgresql() -> bool:
    return bool(op.get_context().dialect.name == "postgresql")


def create_index(name: str, table: str, columns: Sequence[str], *, unique: bool = False) -> None:
    if not _postgresql():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, list(columns), unique=unique)
        return
    with op.get_context().autocommit_block():
        if not op.get_context().as_sql:
            valid = (
                op.get_bind()
                .execute(
                    sa.text(
                        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                        "WHERE c.relname = :name AND pg_table_is_visible(c.oid)"
                    ),
                    {"name": name},
                )
                .scalar()
            )
            if valid is False:
                op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(name, table, list(columns), unique=unique, postgresql_concurrently=True, if_not_exists=True)


def drop_index(name: str, table: str) -> None:
    if not _postgresql():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
