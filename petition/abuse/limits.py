"""Rate limits counted in the database, so that every web process sees the same counts.

Keys (an IP address, an email address, a domain, an endorsement) are stored as an
HMAC with SECRET_KEY: the table can tell repeats apart but names nobody. Over a
limit nothing fails loudly, and the caller answers exactly as it would otherwise,
so a bot learns nothing. For endorsements the limits hold back the sender, never
the owner of the address: over a sender's limit (per client address, per email
domain) the submission is still emailed to its address, and once confirmed it waits
for an organiser instead of being listed; only the per-address cap, which protects
a mailbox from a flood of emails, stores and sends nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

import sqlalchemy as sa

from petition.abuse.tables import rate_events
from petition.db import Database
from petition.schema import utcnow
from petition.settings import Settings

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
#: Events older than this count towards no limit and are pruned.
LONGEST_WINDOW = DAY


@dataclass(frozen=True)
class Rule:
    bucket: str  # what is counted, e.g. "form.ip"
    key: str  # whose, before hashing
    limit: int  # how many events the window allows, this one included
    window: float  # seconds


def key_hash(secret: str, bucket: str, key: str) -> str:
    return hmac.digest(secret.encode(), f"{bucket}\x00{key}".encode(), hashlib.sha256).hex()[:32]


def is_trusted(settings: Settings, ip: str | None) -> bool:
    if not ip or not settings.trusted_ips:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_ips)


def hashed_rules(secret: str, rules: list[Rule]) -> list[tuple[Rule, str]]:
    """Each rule with its key's HMAC (once for rules that share a bucket and key: the IP's two)."""
    digests: dict[tuple[str, str], str] = {}
    hashed = []
    for rule in rules:
        digest = digests.get((rule.bucket, rule.key))
        if digest is None:
            digest = digests[rule.bucket, rule.key] = key_hash(secret, rule.bucket, rule.key)
        hashed.append((rule, digest))
    return hashed


def events_of(hashed: list[tuple[Rule, str]]) -> list[tuple[str, str]]:
    """The (bucket, key hash) events that one hit records: one per key, whatever its rules."""
    return sorted({(rule.bucket, digest) for rule, digest in hashed})


async def hit(db: Database, *, secret: str, rules: list[Rule]) -> bool:
    """Record one event under each rule's bucket and key; False when any limit is now exceeded."""
    return not await exceeded(db, secret=secret, rules=rules)


async def exceeded(db: Database, *, secret: str, rules: list[Rule]) -> set[str]:
    """Record one event under each rule's bucket and key; the buckets whose limit is now exceeded.

    One INSERT records the events, one SELECT counts every rule's window (this event included). Events over
    the limit are recorded too, so a bot that keeps going stays held.
    """
    if not rules:
        return set()
    now = utcnow()
    hashed = hashed_rules(secret, rules)
    r = rate_events.c
    # Each count stops at the limit: the cost stays bounded however long a flood goes on.
    counts = [
        sa.select(sa.func.count())
        .select_from(
            sa.select(r.id)
            .where(
                r.bucket == rule.bucket, r.key_hash == digest, r.created_at >= now - dt.timedelta(seconds=rule.window)
            )
            .limit(rule.limit + 1)
            .subquery()
        )
        .scalar_subquery()
        .label(f"n{i}")
        for i, (rule, digest) in enumerate(hashed)
    ]
    query = sa.select(*counts)
    async with db.write():
        # Insert first: on SQLite the transaction then holds the write lock from its start, and
        # another process's write cannot make it fail ("database is locked") at the upgrade.
        await db.execute(
            rate_events.insert().values(
                [{"bucket": bucket, "key_hash": digest, "created_at": now} for bucket, digest in events_of(hashed)]
            )
        )
        row = await db.fetch_one(query)
    assert row is not None
    return {rule.bucket for i, (rule, _d) in enumerate(hashed) if int(row[f"n{i}"]) > rule.limit}


def _ip_rules(settings: Settings, bucket: str, ip: str) -> list[Rule]:
    return [
        Rule(bucket, ip, settings.rate_limit_ip_burst, MINUTE),
        Rule(bucket, ip, settings.rate_limit_ip_sustained, HOUR),
    ]


#: How many senders' shares of RATE_LIMIT_EMAIL one mailbox may receive in all, per hour.
MAILBOX_SENDERS = 4


def endorsement_rules(settings: Settings, *, ip: str | None, email_canonical: str) -> list[Rule]:
    """Per IP (burst and sustained), per email domain, and per email address — each client's
    share of an address (RATE_LIMIT_EMAIL), and all clients' together (MAILBOX_SENDERS shares):
    one client using up its share for someone's address leaves that address's owner its own.
    None for a trusted IP."""
    if is_trusted(settings, ip):
        return []
    domain = email_canonical.rpartition("@")[2]
    return [
        *_ip_rules(settings, "form.ip", ip or "-"),
        Rule("form.email", f"{email_canonical}\x00{ip or '-'}", settings.rate_limit_email, HOUR),
        Rule("form.mailbox", email_canonical, settings.rate_limit_email * MAILBOX_SENDERS, HOUR),
        Rule("form.domain", domain, settings.rate_limit_domain, HOUR),
    ]


#: The endorsement limits that protect the owner of an address rather than hold back a sender.
MAILBOX_BUCKETS = ("form.email", "form.mailbox")


@dataclass(frozen=True)
class Verdict:
    """What the limits make of one submission."""

    mailbox_ok: bool  # False: the address had its share of emails lately; store and send nothing
    hold_reason: str | None  # the sender's limits it exceeded: confirmed, it waits for an organiser

    @classmethod
    def of(cls, exceeded_buckets: set[str] | list[str]) -> Verdict:
        held = sorted(set(exceeded_buckets) - set(MAILBOX_BUCKETS))
        return cls(mailbox_ok=not set(MAILBOX_BUCKETS) & set(exceeded_buckets), hold_reason=held[0] if held else None)


async def endorsement_verdict(db: Database, settings: Settings, *, ip: str | None, email_canonical: str) -> Verdict:
    return Verdict.of(
        await exceeded(
            db,
            secret=str(settings.secret_key),
            rules=endorsement_rules(settings, ip=ip, email_canonical=email_canonical),
        )
    )


async def resend_allowed(db: Database, settings: Settings, *, ip: str | None, endorsement_id: int) -> bool:
    """Re-sending a confirmation: per IP, and a few times a day per endorsement."""
    rules = [Rule("resend.endorsement", str(endorsement_id), settings.rate_limit_resend, DAY)]
    if not is_trusted(settings, ip):
        rules += _ip_rules(settings, "resend.ip", ip or "-")
    return await hit(db, secret=str(settings.secret_key), rules=rules)


async def data_request_allowed(db: Database, settings: Settings, *, ip: str | None, email_canonical: str) -> bool:
    """Asking for one's data by email: per IP, and a few emails a day per address."""
    rules = [Rule("data.email", email_canonical, settings.rate_limit_data_request, DAY)]
    if not is_trusted(settings, ip):
        rules += _ip_rules(settings, "data.ip", ip or "-")
    return await hit(db, secret=str(settings.secret_key), rules=rules)


#: Invitations to countersign: per endorsement and per invited mailbox, a day.
COUNTERSIGN_PER_ENDORSEMENT = 3
COUNTERSIGN_PER_MAILBOX = 3


async def countersign_invite_allowed(
    db: Database, settings: Settings, *, ip: str | None, endorsement_id: int, email_canonical: str
) -> bool:
    """Inviting a second officer sends an email to an address someone typed: a few a day per
    endorsement, a few a day to one mailbox whoever asks (no one's address becomes a target),
    and per IP."""
    rules = [
        Rule("countersign.endorsement", str(endorsement_id), COUNTERSIGN_PER_ENDORSEMENT, DAY),
        Rule("countersign.mailbox", email_canonical, COUNTERSIGN_PER_MAILBOX, DAY),
    ]
    if not is_trusted(settings, ip):
        rules += _ip_rules(settings, "countersign.ip", ip or "-")
    return await hit(db, secret=str(settings.secret_key), rules=rules)


#: The window of the open-data download limit: a client over it may try again after this long.
EXPORT_WINDOW = MINUTE


async def export_allowed(db: Database, settings: Settings, *, ip: str | None) -> bool:
    """A full open-data download (the CSV of a list): RATE_LIMIT_EXPORT per minute per client
    address, none counted for a trusted one. Only downloads count: a revalidation answered
    304 never reaches this."""
    if is_trusted(settings, ip):
        return True
    return await hit(
        db,
        secret=str(settings.secret_key),
        rules=[Rule("export.ip", ip or "-", settings.rate_limit_export, EXPORT_WINDOW)],
    )


async def prune_rate_events(db: Database, *, older_than: float = LONGEST_WINDOW) -> int:
    cutoff = utcnow() - dt.timedelta(seconds=older_than)
    old = rate_events.c.created_at < cutoff
    async with db.write():
        count = int(await db.fetch_val(sa.select(sa.func.count()).select_from(rate_events).where(old)) or 0)
        if count:
            await db.execute(rate_events.delete().where(old))
    return count


#: The window of the verification page's upload limit.
VERIFY_WINDOW = HOUR


async def verify_upload_wait(db: Database, settings: Settings, *, ip: str | None) -> int | None:
    """A file uploaded to /verify to be checked: RATE_LIMIT_VERIFY per hour per client address,
    none counted for a trusted one. None when this upload may go ahead; else the seconds after
    which the next one may (for Retry-After), counting this refused one as events over a limit count."""
    if is_trusted(settings, ip):
        return None
    secret = str(settings.secret_key)
    rule = Rule("verify.ip", ip or "-", settings.rate_limit_verify, VERIFY_WINDOW)
    if not await exceeded(db, secret=secret, rules=[rule]):
        return None
    r = rate_events.c
    # The next upload is allowed once the limit-th newest event has left the window.
    row = await db.fetch_one(
        sa.select(r.created_at)
        .where(r.bucket == rule.bucket, r.key_hash == key_hash(secret, rule.bucket, rule.key))
        .order_by(r.created_at.desc())
        .offset(max(0, rule.limit - 1))
        .limit(1)
    )
    if row is None:
        return int(rule.window)
    at = row["created_at"]
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at  # asyncpg hands it back naive
    remaining = (at + dt.timedelta(seconds=rule.window) - utcnow()).total_seconds()
    return max(1, min(int(rule.window), int(remaining) + 1))
