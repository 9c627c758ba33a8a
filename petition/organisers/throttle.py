"""Login throttling that cannot be raced, nor turned against the organiser it protects.

Every check of a secret (a password, a second-factor code) first *reserves* an attempt: under a
lock, the attempts of the window are counted and, when there is room, one more row is written,
all in one transaction. Only then is the secret checked; a right one deletes its row again, a
wrong one leaves it as a failure. So N guesses sent at once evaluate at most the limit: the
lock makes them count one after the other, each seeing the rows of those before it. On SQLite
`Database.write()` already serialises writers (and BEGIN IMMEDIATE other processes); on
PostgreSQL a transaction-level advisory lock per account key (and per address key) does.

Buckets, after OWASP's "Slow Down Online Guessing Attacks with Device Cookies":

- A browser that logged in to this account before presents a device cookie
  (`petition.organisers.devices`) and has a budget of its own (`DEVICE_LIMIT`): an attacker
  who exhausts the account's budget does not lock the organiser's own browser out, and the
  per-address limit does not apply to it either (behind one proxy address every visitor
  shares an address).
- Every other client shares the account's budget (`ACCOUNT_LIMIT`) and its address's
  (`IP_LIMIT`, unless the address is in TRUSTED_IPS).

Keys are keyed hashes (SECRET_KEY): the table names no account, address or device.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from petition.db import Database, Row
from petition.organisers.queries import canonical_login
from petition.organisers.tables import login_failures, organisers
from petition.outbox.kinds import email_kind
from petition.outbox.messages import Mailer
from petition.schema import utcnow

#: Failed attempts allowed within the window: per account for clients without its device
#: cookie, per device cookie, and per address for clients without a device cookie.
ACCOUNT_LIMIT = 5
DEVICE_LIMIT = 5
IP_LIMIT = 20
WINDOW = dt.timedelta(minutes=15)

#: The name of the email to an organiser whose account is being guessed (templates/email/).
ALERT_EMAIL = "login_guessed"

_PRUNE_LOCK = 0x5045_5449_5449_4F4E  # "PETITION": one pruner at a time (PostgreSQL)


@email_kind(ALERT_EMAIL)
def login_alert_context(*, failures: int, at: dt.datetime) -> dict[str, object]:
    """How many failures and when: never from where, nor what was typed."""
    return {"failures": failures, "at": at.strftime("%Y-%m-%d %H:%M UTC"), "minutes": int(WINDOW.total_seconds() // 60)}


def account_key(secret: str, email: str) -> str:
    """A keyed hash of the submitted address: throttles per account without storing it."""
    return hmac.new(secret.encode(), b"login:" + canonical_login(email).encode(), hashlib.sha256).hexdigest()


def address_key(secret: str, ip: str) -> str:
    """A keyed hash of the client's network address: throttles per address without storing it."""
    return hmac.new(secret.encode(), b"login-ip:" + ip.encode(), hashlib.sha256).hexdigest()


def device_key(secret: str, nonce: str) -> str:
    """A keyed hash of a device cookie's nonce."""
    return hmac.new(secret.encode(), b"login-device:" + nonce.encode(), hashlib.sha256).hexdigest()


class Refusal(enum.StrEnum):
    ACCOUNT = "account"  # too many failures for this account from clients without its device cookie
    DEVICE = "device"  # too many failures from this device cookie
    ADDRESS = "address"  # too many failures from this address


@dataclass(frozen=True)
class Attempt:
    """Who is trying, as stored: keyed hashes (`account_key()`, `address_key()`, `device_key()`)."""

    account_key: str
    ip: str
    device: str | None = None  # a device cookie valid for this very account, else None
    ip_exempt: bool = False  # the address is in TRUSTED_IPS


@dataclass(frozen=True)
class Reservation:
    row_id: int | None
    refused: Refusal | None = None


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(b"petition.login:" + name.encode()).digest()[:8], "big", signed=True)


async def _lock(db: Database, names: Iterable[str]) -> None:
    """Inside `db.write()`: take the locks the counts of these keys need (PostgreSQL; SQLite is serial)."""
    if db.is_sqlite:
        return
    # Transaction-level: released at COMMIT, so no pooled connection keeps one (petition.db._keep_session).
    # Always in the same order, so two attempts that need the same two locks cannot deadlock.
    for lock in sorted({_lock_id(name) for name in names}):
        await db.fetch_val(sa.select(sa.func.pg_advisory_xact_lock(lock)))


async def _prune(db: Database, before: dt.datetime) -> None:
    if not db.is_sqlite and not await db.fetch_val(sa.select(sa.func.pg_try_advisory_xact_lock(_PRUNE_LOCK))):
        return  # another attempt is pruning right now
    await db.execute(login_failures.delete().where(login_failures.c.created_at < before))


def _count(*conditions: sa.ColumnElement[bool]) -> sa.Select[int]:
    return sa.select(sa.func.count()).select_from(login_failures).where(*conditions)


async def reserve_attempt(db: Database, attempt: Attempt) -> Reservation:
    """Count the window's attempts of the attempt's buckets and, if there is room, add this one.

    Call before checking the secret; then `attempt_succeeded()` when it was right. A refused
    attempt is not written: a flood does not prolong the lockout it causes.
    """
    now = utcnow()
    since = now - WINDOW
    recent = login_failures.c.created_at > since
    c = login_failures.c
    async with db.write():
        if attempt.device is not None:
            await _lock(db, ["account:" + attempt.account_key])
            used = await db.fetch_val(_count(recent, c.account_key == attempt.account_key, c.device == attempt.device))
            if int(used or 0) >= DEVICE_LIMIT:
                return Reservation(None, Refusal.DEVICE)
        else:
            names = ["account:" + attempt.account_key]
            if not attempt.ip_exempt:
                names.append("ip:" + attempt.ip)
            await _lock(db, names)
            used = await db.fetch_val(_count(recent, c.account_key == attempt.account_key, c.device.is_(None)))
            if int(used or 0) >= ACCOUNT_LIMIT:
                return Reservation(None, Refusal.ACCOUNT)
            if not attempt.ip_exempt:
                used = await db.fetch_val(_count(recent, c.ip == attempt.ip, c.device.is_(None)))
                if int(used or 0) >= IP_LIMIT:
                    return Reservation(None, Refusal.ADDRESS)
        await _prune(db, since)
        row_id = await db.fetch_val(
            login_failures.insert()
            .values(account_key=attempt.account_key, ip=attempt.ip[:64], device=attempt.device, created_at=now)
            .returning(c.id)
        )
    return Reservation(int(row_id))


async def attempt_succeeded(db: Database, reservation: Reservation, attempt: Attempt) -> None:
    """The secret was right: the reserved attempt is no failure, and a device's budget is whole again.

    The failures of clients without a device cookie stay: an organiser who logs in must not
    hand the attacker a fresh budget.
    """
    c = login_failures.c
    async with db.write():
        if reservation.row_id is not None:
            await db.execute(login_failures.delete().where(c.id == reservation.row_id))
        if attempt.device is not None:
            await db.execute(
                login_failures.delete().where(
                    c.account_key == attempt.account_key, c.device == attempt.device, c.created_at > utcnow() - WINDOW
                )
            )


async def alert_if_guessed(db: Database, *, mailer: Mailer, organiser: Row, attempt: Attempt) -> bool:
    """After a failure: email the organiser once per window when clients without a device cookie
    have used up the account's budget. True when an email was queued.

    The email says how many failures and when, in the organiser's language; never from where
    nor what was typed. The conditional UPDATE of `login_alert_at` makes it once even when
    several web processes see the limit reached at the same moment.
    """
    if attempt.device is not None:
        return False  # a browser that holds its own budget: its failures lock out only itself
    now = utcnow()
    since = now - WINDOW
    c = login_failures.c
    async with db.write():
        failures = int(
            await db.fetch_val(_count(c.created_at > since, c.account_key == attempt.account_key, c.device.is_(None)))
            or 0
        )
        if failures < ACCOUNT_LIMIT:
            return False
        claimed = await db.fetch_one(
            organisers.update()
            .where(
                organisers.c.id == organiser["id"],
                organisers.c.active == sa.true(),
                sa.or_(organisers.c.login_alert_at.is_(None), organisers.c.login_alert_at <= since),
            )
            .values(login_alert_at=now)
            .returning(organisers.c.id)
        )
        if claimed is None:
            return False
        await mailer.queue(
            db,
            name=ALERT_EMAIL,
            to=organiser["email"],
            language=organiser["language"] or "en",
            context=login_alert_context(failures=failures, at=now),
        )
    mailer.notify()
    return True
