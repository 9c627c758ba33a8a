"""Organiser accounts (login throttling is petition.organisers.throttle)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from petition.db import INTEGRITY_ERRORS, Database, Row
from petition.organisers.roles import Role
from petition.organisers.tables import organisers
from petition.schema import utcnow


class OrganiserExists(Exception):
    pass


def canonical_login(email: str) -> str:
    return email.strip().lower()


async def get_organiser(db: Database, *, organiser_id: int) -> Row | None:
    return await db.fetch_one(organisers.select().where(organisers.c.id == organiser_id))


async def find_organiser(db: Database, *, email: str) -> Row | None:
    return await db.fetch_one(organisers.select().where(organisers.c.email == canonical_login(email)))


async def list_organisers(db: Database) -> Sequence[Row]:
    return await db.fetch_all(organisers.select().order_by(organisers.c.email))


async def create_organiser(db: Database, *, email: str, password_hash: str, role: Role) -> int:
    try:
        async with db.write():
            return int(
                await db.execute(
                    organisers.insert().values(
                        email=canonical_login(email),
                        password_hash=password_hash,
                        role=role.value,
                        active=True,
                        created_at=utcnow(),
                        session_version=0,
                    )
                )
            )
    except INTEGRITY_ERRORS as exc:
        raise OrganiserExists from exc


async def set_password(db: Database, *, organiser_id: int, password_hash: str) -> None:
    """A new password ends every session of the organiser."""
    async with db.write():
        await db.execute(
            organisers.update()
            .where(organisers.c.id == organiser_id)
            .values(password_hash=password_hash, session_version=organisers.c.session_version + 1)
        )


async def rehash_password(db: Database, *, organiser_id: int, old_hash: str, new_hash: str) -> None:
    """Same password, stronger parameters: sessions stay."""
    async with db.write():
        await db.execute(
            organisers.update()
            .where(organisers.c.id == organiser_id, organisers.c.password_hash == old_hash)
            .values(password_hash=new_hash)
        )


async def set_active(db: Database, *, organiser_id: int, active: bool) -> None:
    async with db.write():
        values: dict[str, object] = {"active": active}
        if not active:
            values["session_version"] = organisers.c.session_version + 1
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(**values))


async def set_role(db: Database, *, organiser_id: int, role: Role) -> None:
    async with db.write():
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(role=role.value))


async def count_active_admins(db: Database) -> int:
    return int(
        await db.fetch_val(
            sa.select(sa.func.count())
            .select_from(organisers)
            .where(organisers.c.role == Role.ADMIN.value, organisers.c.active == sa.true())
        )
        or 0
    )


async def end_sessions(db: Database, *, organiser_id: int) -> None:
    async with db.write():
        await db.execute(
            organisers.update()
            .where(organisers.c.id == organiser_id)
            .values(session_version=organisers.c.session_version + 1)
        )


async def mark_login(db: Database, *, organiser_id: int, language: str) -> None:
    """A login succeeded: when, and in which language the organiser uses the area (their emails' language)."""
    async with db.write():
        await db.execute(
            organisers.update().where(organisers.c.id == organiser_id).values(last_login_at=utcnow(), language=language)
        )
