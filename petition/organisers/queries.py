"""Organiser accounts and login throttling."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from petition.db import INTEGRITY_ERRORS, Database, Row
from petition.organisers.roles import Role
from petition.organisers.tables import login_failures, organisers
from petition.schema import utcnow

#: Failed logins allowed per account, and per address, within the window.
ACCOUNT_LIMIT = 5
IP_LIMIT = 20
WINDOW = dt.timedelta(minutes=15)


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
            return int(await db.execute(organisers.insert().values(
                email=canonical_login(email), password_hash=password_hash, role=role.value, active=True,
                created_at=utcnow(), session_version=0)))
    except INTEGRITY_ERRORS as exc:
        raise OrganiserExists from exc


async def set_password(db: Database, *, organiser_id: int, password_hash: str) -> None:
    """A new password ends every session of the organiser."""
    async with db.write():
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(
            password_hash=password_hash, session_version=organisers.c.session_version + 1))


async def rehash_password(db: Database, *, organiser_id: int, old_hash: str, new_hash: str) -> None:
    """Same password, stronger parameters: sessions stay."""
    async with db.write():
        await db.execute(organisers.update().where(
            organisers.c.id == organiser_id, organisers.c.password_hash == old_hash).values(
            password_hash=new_hash))


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
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(organisers).where(
        organisers.c.role == Role.ADMIN.value, organisers.c.active == sa.true())) or 0)


async def end_sessions(db: Database, *, organiser_id: int) -> None:
    async with db.write():
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(
            session_version=organisers.c.session_version + 1))


async def mark_login(db: Database, *, organiser_id: int, account_key: str) -> None:
    async with db.write():
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(
            last_login_at=utcnow()))
        await db.execute(login_failures.delete().where(login_failures.c.account_key == account_key))


# --- throttling ---------------------------------------------------------------------------


def account_key(secret: str, email: str) -> str:
    """A keyed hash of the submitted address: throttles per account without storing it."""
    return hmac.new(secret.encode(), b"login:" + canonical_login(email).encode(), hashlib.sha256).hexdigest()


def address_key(secret: str, ip: str) -> str:
    """A keyed hash of the client's network address: throttles per address without storing it."""
    return hmac.new(secret.encode(), b"login-ip:" + ip.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Throttle:
    account_failures: int
    ip_failures: int
    ip_exempt: bool

    @property
    def blocked(self) -> bool:
        return self.account_failures >= ACCOUNT_LIMIT or (
            not self.ip_exempt and self.ip_failures >= IP_LIMIT)


async def login_throttle(db: Database, *, account_key: str, ip: str, ip_exempt: bool = False) -> Throttle:
    """`account_key` and `ip` are keyed hashes (`account_key()`, `address_key()`), as stored."""
    since = utcnow() - WINDOW
    failures = sa.select(sa.func.count()).select_from(login_failures).where(login_failures.c.created_at > since)
    by_account = await db.fetch_val(failures.where(login_failures.c.account_key == account_key))
    by_ip = 0 if ip_exempt else await db.fetch_val(failures.where(login_failures.c.ip == ip))
    return Throttle(int(by_account or 0), int(by_ip or 0), ip_exempt)


async def record_login_failure(db: Database, *, account_key: str, ip: str) -> None:
    """`account_key` and `ip` are keyed hashes (`account_key()`, `address_key()`): no address is stored."""
    now = utcnow()
    async with db.write():
        await db.execute(login_failures.delete().where(login_failures.c.created_at < now - WINDOW))
        await db.execute(login_failures.insert().values(account_key=account_key, ip=ip[:64], created_at=now))
