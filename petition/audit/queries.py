"""Writing the audit trail: inside the caller's transaction, so a change and its row commit together."""

from __future__ import annotations

from collections.abc import Iterable

from petition.audit.actions import AuditAction
from petition.audit.tables import audit_log
from petition.db import Database
from petition.schema import utcnow

#: Longer details are cut: a row says what happened, it holds no data.
MAX_DETAIL = 1000


async def record(
    db: Database,
    *,
    organiser_id: int | None,
    action: AuditAction,
    target_type: str | None = None,
    target_id: int | None = None,
    detail: str = "",
) -> None:
    """One row. Called inside the `db.write()` that makes the change, it joins that transaction
    (alone, it is one of its own): a change is never committed without its row, nor a row without it."""
    async with db.write():
        await db.execute(
            audit_log.insert().values(
                organiser_id=organiser_id,
                action=action.value,
                target_type=target_type,
                target_id=target_id,
                detail=detail[:MAX_DETAIL],
                created_at=utcnow(),
            )
        )


async def record_many(
    db: Database,
    *,
    organiser_id: int | None,
    action: AuditAction,
    target_type: str,
    target_ids: Iterable[int],
    detail: str = "",
) -> None:
    """One row per target, in as few INSERT statements as the backends allow (bulk changes)."""
    now = utcnow()
    rows = [
        {
            "organiser_id": organiser_id,
            "action": action.value,
            "target_type": target_type,
            "target_id": target_id,
            "detail": detail[:MAX_DETAIL],
            "created_at": now,
        }
        for target_id in target_ids
    ]
    if not rows:
        return
    async with db.write():
        # A few hundred rows per statement stays well under every backend's parameter limit.
        for start in range(0, len(rows), 500):
            await db.execute(audit_log.insert().values(rows[start : start + 500]))
