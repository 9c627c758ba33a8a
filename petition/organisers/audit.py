"""The audit log: who did what to which record, when.

Rows name organisers and endorsements by id only: never an email address, a
token or an anonymous organisation's name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from petition.db import Database, Row
from petition.organisers.tables import audit_log, organisers
from petition.schema import utcnow

PAGE_SIZE = 50


class AuditAction(enum.StrEnum):
    """Every action value the audit log stores (the audit page filters by these)."""

    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGIN_RECOVERY_CODE = "login.recovery_code"
    LOGOUT = "logout"
    APPROVE = "endorsement.approve"
    REJECT = "endorsement.reject"
    RELEASE = "endorsement.release"
    EDIT = "endorsement.edit"
    EXPORT = "export"
    DOSSIER_BUILD = "dossier.build"
    DOSSIER_DOWNLOAD = "dossier.download"
    APPEAL_CREATE = "appeal.create"
    APPEAL_EDIT = "appeal.edit"
    APPEAL_TEXT = "appeal.text"
    APPEAL_STATUS = "appeal.status"
    ORGANISER_CREATE = "organiser.create"
    ORGANISER_DEACTIVATE = "organiser.deactivate"
    ORGANISER_ACTIVATE = "organiser.activate"
    ORGANISER_ROLE = "organiser.role"
    ORGANISER_PASSWORD = "organiser.password"  # noqa: S105 - an action name, not a secret
    TOTP_ENROL = "organiser.totp.enrol"
    TOTP_RESET = "organiser.totp.reset"
    # Written by the contact's own withdrawal (petition.privacy.queries), with no organiser.
    WITHDRAW = "withdraw"


async def record(db: Database, *, organiser_id: int | None, action: AuditAction | str,
                 target_type: str | None = None, target_id: int | None = None, detail: str = "") -> None:
    async with db.write():
        await db.execute(audit_log.insert().values(
            organiser_id=organiser_id, action=str(action), target_type=target_type, target_id=target_id,
            detail=detail[:1000], created_at=utcnow()))


async def record_many(db: Database, *, organiser_id: int | None, action: AuditAction | str,
                      target_type: str, target_ids: Iterable[int], detail: str = "") -> None:
    """One row per target, in one INSERT statement (bulk moderation)."""
    now = utcnow()
    rows = [{"organiser_id": organiser_id, "action": str(action), "target_type": target_type,
             "target_id": target_id, "detail": detail[:1000], "created_at": now} for target_id in target_ids]
    if not rows:
        return
    async with db.write():
        # A few hundred rows per statement stays well under every backend's parameter limit.
        for start in range(0, len(rows), 500):
            await db.execute(audit_log.insert().values(rows[start:start + 500]))


def _filtered(action: str | None) -> sa.Select[tuple[object, ...]]:
    query = (sa.select(audit_log, organisers.c.email.label("organiser_email"))
             .select_from(audit_log.outerjoin(organisers, organisers.c.id == audit_log.c.organiser_id)))
    if action:
        query = query.where(audit_log.c.action == action)
    return query


async def list_audit(db: Database, *, action: str | None = None, page: int = 1,
                     page_size: int = PAGE_SIZE) -> Sequence[Row]:
    query = (_filtered(action).order_by(audit_log.c.created_at.desc(), audit_log.c.id.desc())
             .offset((page - 1) * page_size).limit(page_size))
    return await db.fetch_all(query)


async def count_audit(db: Database, *, action: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(audit_log)
    if action:
        query = query.where(audit_log.c.action == action)
    return int(await db.fetch_val(query) or 0)
