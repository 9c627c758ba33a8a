"""The audit page's listing: the trail (petition.audit) with each organiser's email beside their id.

The email is read here, for admins only, and never stored in a row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from petition.audit.tables import audit_log
from petition.db import Database, Row
from petition.organisers.tables import organisers

PAGE_SIZE = 50


def _filtered(action: str | None) -> sa.Select[tuple[object, ...]]:
    query = sa.select(audit_log, organisers.c.email.label("organiser_email")).select_from(
        audit_log.outerjoin(organisers, organisers.c.id == audit_log.c.organiser_id)
    )
    if action:
        query = query.where(audit_log.c.action == action)
    return query


async def list_audit(
    db: Database, *, action: str | None = None, page: int = 1, page_size: int = PAGE_SIZE
) -> Sequence[Row]:
    query = (
        _filtered(action)
        .order_by(audit_log.c.created_at.desc(), audit_log.c.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return await db.fetch_all(query)


async def count_audit(db: Database, *, action: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(audit_log)
    if action:
        query = query.where(audit_log.c.action == action)
    return int(await db.fetch_val(query) or 0)
