"""What moderators work with: finding endorsements, hints, typo fixes.

Their decisions (approve, reject, release) are transitions of the endorsement life cycle
(`petition.endorsements.lifecycle`): set-based, one UPDATE for a whole selection, and only
where its table allows.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import idna
import sqlalchemy as sa
from publicsuffixlist import PublicSuffixList

from petition.appeals.states import Moderation
from petition.appeals.tables import appeals
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Database, Row
from petition.endorsements.forms import parse_endorsement_form
from petition.endorsements.lifecycle import Event
from petition.endorsements.public_record import note_public_changes
from petition.endorsements.states import HELD, EndorsementState
from petition.endorsements.tables import countersignatures, endorsements
from petition.endorsements.vocabulary import canonical_email, normalise_name
from petition.i18n import gettext as _
from petition.identity.proofs import SHOWN
from petition.identity.tables import domain_proofs
from petition.schema import utcnow

S = EndorsementState
e = endorsements

#: The fields a moderator may correct: the public ones.
EDITABLE_FIELDS = ("organisation_name", "country", "city", "organisation_type", "website", "comment")
#: The decisions as the moderation forms name them.
DECISIONS: dict[str, Event] = {"approve": Event.APPROVE, "reject": Event.REJECT, "release": Event.RELEASE}


@dataclass(frozen=True)
class Filters:
    appeal_id: int | None = None
    state: str | None = None
    country: str | None = None
    search: str | None = None
    queue: bool = False  # held endorsements, and confirmed ones of pre-moderated appeals
    domain: str | None = None  # the domain proof: one of DOMAIN_FILTERS
    officers: str | None = None  # the countersignature: one of OFFICER_FILTERS


#: The organisers' filter on domain proofs: proved now, proved once and lapsed, or neither.
DOMAIN_FILTERS = ("verified", "lapsed", "none")
#: The organisers' filter on countersignatures (petition.identity.countersign): countersigned by a
#: second officer, declined by the person invited ("not our organisation's doing"), or invited
#: and not answered yet.
OFFICER_FILTERS = ("two", "declined", "invited")


def _where(query: sa.Select[Any], filters: Filters) -> sa.Select[Any]:
    if filters.queue:
        query = query.where(
            sa.or_(
                sa.and_(e.c.state == S.CONFIRMED.value, appeals.c.moderation == Moderation.PRE.value),
                e.c.state == HELD.value,
            )
        )
    if filters.appeal_id is not None:
        query = query.where(e.c.appeal_id == filters.appeal_id)
    if filters.state:
        query = query.where(e.c.state == filters.state)
    if filters.country:
        query = query.where(e.c.country == filters.country)
    if filters.domain == "none":
        query = query.where(domain_proofs.c.id.is_(None))
    elif filters.domain is not None:
        query = query.where(domain_proofs.c.state == filters.domain)
    if filters.officers == "two":
        query = query.where(countersignatures.c.countersigned_at.is_not(None))
    elif filters.officers == "declined":
        query = query.where(countersignatures.c.declined_at.is_not(None))
    elif filters.officers == "invited":
        query = query.where(
            countersignatures.c.id.is_not(None),
            countersignatures.c.countersigned_at.is_(None),
            countersignatures.c.declined_at.is_(None),
        )
    if filters.search:
        text = filters.search.strip()
        number = text.removeprefix("#")
        if number.isdigit() and len(number) < 12:
            # A number is an endorsement's id (as the audit log refers to them).
            return query.where(e.c.id == int(number))
        conditions: list[sa.ColumnElement[bool]] = []
        needle = normalise_name(text)
        if needle:
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(e.c.name_normalised.like(f"%{escaped}%", escape="\\"))
        if "@" in text:
            conditions.append(e.c.email_canonical == canonical_email(text))
        query = query.where(sa.or_(*conditions) if conditions else sa.false())
    return query


def _from() -> Any:
    """Endorsements with their appeal, their shown domain proof (verified or lapsed; one at most)
    and their countersignature, if any (one at most)."""
    shown = sa.and_(domain_proofs.c.endorsement_id == e.c.id, domain_proofs.c.state.in_(SHOWN))
    return (
        e.join(appeals, appeals.c.id == e.c.appeal_id)
        .outerjoin(domain_proofs, shown)
        .outerjoin(countersignatures, countersignatures.c.endorsement_id == e.c.id)
    )


def _base() -> sa.Select[Any]:
    return sa.select(
        e,
        appeals.c.slug.label("appeal_slug"),
        appeals.c.moderation.label("appeal_moderation"),
        domain_proofs.c.state.label("proof_state"),
        domain_proofs.c.domain.label("proof_domain"),
        domain_proofs.c.verified_at.label("proof_verified_at"),
        countersignatures.c.invited_at.label("cs_invited_at"),
        countersignatures.c.email_domain.label("cs_email_domain"),
        countersignatures.c.officer_name.label("cs_officer_name"),
        countersignatures.c.officer_role.label("cs_officer_role"),
        countersignatures.c.countersigned_at.label("cs_countersigned_at"),
        countersignatures.c.declined_at.label("cs_declined_at"),
        countersignatures.c.record_hash.label("countersigned_hash"),
    ).select_from(_from())


async def find_endorsements(
    db: Database, *, filters: Filters, offset: int = 0, limit: int = 100, newest_first: bool = True
) -> Sequence[Row]:
    """A page of endorsements, the newest submitted first (new spam is on the first page), or the oldest."""
    order = (e.c.created_at.desc(), e.c.id.desc()) if newest_first else (e.c.created_at, e.c.id)
    query = _where(_base(), filters).order_by(*order).offset(offset).limit(limit)
    return await db.fetch_all(query)


async def count_endorsements(db: Database, *, filters: Filters) -> int:
    query = _where(sa.select(sa.func.count()).select_from(_from()), filters)
    return int(await db.fetch_val(query) or 0)


async def get_for_moderation(db: Database, *, endorsement_id: int) -> Row | None:
    return await db.fetch_one(_base().where(e.c.id == endorsement_id))


# --- hints ----------------------------------------------------------------------------------


@dataclass
class Hints:
    same_email: list[int] = field(default_factory=list)
    same_name: list[int] = field(default_factory=list)
    domain_match: bool = False


@functools.cache
def _suffixes() -> PublicSuffixList:
    # The private suffixes too: two sites under github.io (or two mailboxes under one) are two owners.
    # An unknown top-level domain is one label, as the list's own default rule ("*") has it.
    return PublicSuffixList(accept_unknown=True)


def registrable_domain(host: str) -> str | None:
    """The domain one owner registered under a public suffix (Public Suffix List), as ASCII:
    `mail.example.org` → `example.org`, `a.b.example.co.uk` → `example.co.uk`; None for a
    suffix itself or what is not a host name."""
    name = host.strip().rstrip(".").lower()
    if not name:
        return None
    try:
        name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    return _suffixes().privatesuffix(name)


def domain_match(contact_email: str, website: str) -> bool:
    """The contact's email and the website are under one registrable domain: a weaker signal than
    a domain proof (anyone may type a website; the email only proves the mailbox), shown to
    organisers only (the email is never public)."""
    if "@" not in contact_email or not website:
        return False
    try:
        website_host = urlsplit(website if "://" in website else "https://" + website).hostname or ""
    except ValueError:
        return False
    email_domain = registrable_domain(contact_email.rsplit("@", 1)[1])
    return email_domain is not None and email_domain == registrable_domain(website_host)


async def hints_for(db: Database, *, rows: Sequence[Row]) -> dict[int, Hints]:
    """Duplicate hints for a page of endorsements, in two queries whatever the page size.

    Same canonical email (any appeal), or the same normalised name in the same
    country within the same appeal.
    """
    hints = {row["id"]: Hints(domain_match=domain_match(row["contact_email"], row["website"])) for row in rows}
    if not rows:
        return hints
    ids = list(hints)
    other = e.alias("other")
    by_email = await db.fetch_all(
        sa.select(e.c.id.label("id"), other.c.id.label("other_id"))
        .select_from(e.join(other, sa.and_(other.c.email_canonical == e.c.email_canonical, other.c.id != e.c.id)))
        .where(e.c.id.in_(ids))
        .order_by(other.c.id)
    )
    by_name = await db.fetch_all(
        sa.select(e.c.id.label("id"), other.c.id.label("other_id"))
        .select_from(
            e.join(
                other,
                sa.and_(
                    other.c.appeal_id == e.c.appeal_id,
                    other.c.name_normalised == e.c.name_normalised,
                    other.c.country == e.c.country,
                    other.c.id != e.c.id,
                ),
            )
        )
        .where(e.c.id.in_(ids))
        .order_by(other.c.id)
    )
    for row in by_email:
        hints[row["id"]].same_email.append(row["other_id"])
    for row in by_name:
        hints[row["id"]].same_name.append(row["other_id"])
    return hints


# --- corrections ---------------------------------------------------------------------------------


@dataclass
class Correction:
    values: dict[str, str]
    errors: dict[str, str]
    changed: list[str]


def _as_form(row: Row, submitted: Mapping[str, Any]) -> dict[str, str]:
    """The stored endorsement as the public form would submit it, with the corrected fields."""
    form = {
        "organisation_name": row["organisation_name"],
        "country": row["country"],
        "city": row["city"],
        "organisation_type": row["organisation_type"],
        "website": row["website"],
        "contact_name": row["contact_name"],
        "contact_role": row["contact_role"],
        "contact_email": row["contact_email"],
        "authorised": "yes",
        "consent": "yes",
        "visibility": row["visibility"],
        "comment": row["comment"],
    }
    for name in EDITABLE_FIELDS:
        value = submitted.get(name)
        if isinstance(value, str):
            form[name] = value
    return form


async def correct_endorsement(
    db: Database, *, row: Row, submitted: Mapping[str, Any], organiser_id: int, seen_at: dt.datetime | None = None
) -> Correction:
    """Fix typos in public fields, validated exactly as the public form validates them.

    Refused when the record changed after `seen_at` (the organiser's form would put back what
    its owner has since changed); only the fields the organiser changed are written.
    """
    parsed = parse_endorsement_form(_as_form(row, submitted))
    errors = {name: message for name, message in parsed.errors.items() if name in EDITABLE_FIELDS}
    values = {name: parsed.values.get(name, "") for name in EDITABLE_FIELDS}
    if seen_at is not None and _as_utc(row["updated_at"]) > seen_at:
        errors["organisation_name"] = _("This endorsement changed since you opened it. Please check it again.")
        return Correction({name: row[name] for name in EDITABLE_FIELDS}, errors, [])
    if errors:
        return Correction(values, errors, [])
    new = {name: parsed.data[name] for name in EDITABLE_FIELDS}
    changed = [name for name in EDITABLE_FIELDS if new[name] != row[name]]
    if not changed:
        return Correction(values, {}, [])
    written = {name: new[name] for name in changed}
    if "organisation_name" in changed:
        written["name_normalised"] = parsed.data["name_normalised"]
    async with db.write():
        await db.execute(e.update().where(e.c.id == row["id"]).values(**written, updated_at=utcnow()))
        await note_public_changes(db, [row["id"]])
        # Field names only: the values may name an organisation that asked not to be named.
        await record(
            db,
            organiser_id=organiser_id,
            action=AuditAction.EDIT,
            target_type="endorsement",
            target_id=row["id"],
            detail="fields: " + ", ".join(changed),
        )
    return Correction(values, {}, changed)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


# --- dashboard -----------------------------------------------------------------------------------


async def counts_by_appeal_and_state(db: Database) -> dict[int, dict[str, int]]:
    rows = await db.fetch_all(
        sa.select(e.c.appeal_id, e.c.state, sa.func.count().label("n")).group_by(e.c.appeal_id, e.c.state)
    )
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["appeal_id"], {})[row["state"]] = int(row["n"])
    return counts


async def count_waiting(db: Database) -> int:
    return await count_endorsements(db, filters=Filters(queue=True))


# --- private export --------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "id",
    "appeal",
    "state",
    "organisation_name",
    "country",
    "city",
    "organisation_type",
    "website",
    "contact_name",
    "contact_role",
    "contact_email",
    "visibility",
    "comment",
    "language",
    "text_language",
    "text_hash",
    "consent_version",
    "created_at",
    "confirmed_at",
    "listed_at",
    # News for endorsers (petition.news): asked for (the consent's version and time), unsubscribed.
    "news_consent_version",
    "news_consented_at",
    "news_unsubscribed_at",
)


async def export_rows(db: Database, *, appeal_id: int, states: Sequence[str]) -> Sequence[Row]:
    query = _base().where(e.c.appeal_id == appeal_id).order_by(e.c.country, e.c.name_normalised, e.c.id)
    if states:
        query = query.where(e.c.state.in_(list(states)))
    return await db.fetch_all(query)
