"""The endorsement life cycle: every change of an endorsement's state, and the one table that allows it.

`TRANSITIONS` says, for each event, from which states it may move a record, to which state,
and who may make it: the contact (the mailbox owner, with a link from its email), an
organiser, or the system (the command line, the housekeeping worker). Each transition here
runs in one transaction that checks the table again in its UPDATE (`... WHERE state IN
(sources)`: whatever another process changed since the record was read is left alone) and
writes the transition's audit row (petition.audit) — never a change without its row.

Only the owner of a mailbox speaks for its organisation: every state in which an
endorsement counts or may come to count (`MAILBOX_CONFIRMED`) is entered only by the mailbox
owner pressing Confirm, or from another such state. Organisers approve, reject and release,
but never list what its mailbox did not confirm (`may`).

Web handlers go through `Lifecycle` (at the end), the application's one instance, which tells
the public side after each change (its one hook: the public cache's invalidation in a web
process, nothing in the command line). The module's functions are the transactions themselves,
for callers with no public side to tell: the intake (a submission lists nothing yet), the
housekeeping (a purge deletes only what was never listed), benchmarks and tests.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from petition.appeals.queries import get_appeal_by_id
from petition.appeals.states import AppealStatus, Moderation
from petition.appeals.tables import appeals
from petition.audit.actions import AuditAction
from petition.audit.queries import record, record_many
from petition.db import INTEGRITY_ERRORS, Database, Row
from petition.endorsements.emails import already_endorsed_context, confirmation_context, thank_you_context
from petition.endorsements.public_record import note_public_changes, reserve_entry
from petition.endorsements.states import HELD, EndorsementState, HoldReason
from petition.endorsements.tables import (
    countersignatures,
    domain_proofs,
    endorsement_versions,
    endorsements,
    public_record_heads,
)
from petition.outbox.messages import Mailer
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.randomness import random_hex
from petition.schema import UTCDateTime, utcnow

S = EndorsementState
e = endorsements


class Event(enum.StrEnum):
    SUBMIT = "submit"  # the form: a new record, pending (a known address's submission waits beside it)
    CONFIRM = "confirm"  # the mailbox owner presses Confirm in the email
    HOLD = "hold"  # ... and an anti-abuse limit, or an earlier rejection, holds it for the organisers
    APPROVE = "approve"  # an organiser (or `petition moderate approve`) checked it is a real organisation
    REJECT = "reject"  # an organiser decided it is not
    RELEASE = "release"  # an organiser lets a held one through
    WITHDRAW = "withdraw"  # the contact takes it back, with the link from the thank-you email
    PURGE = "purge"  # never confirmed, or withdrawn, and past the retention period: deleted


class Actor(enum.StrEnum):
    CONTACT = "contact"  # the mailbox owner, with a link from an email sent to it
    ORGANISER = "organiser"  # logged in to the organiser area
    SYSTEM = "system"  # the command line, the housekeeping worker


@dataclass(frozen=True)
class Transition:
    sources: frozenset[EndorsementState]  # empty: there is no record yet
    target: EndorsementState | None  # None: the record is deleted
    by: frozenset[Actor]
    audit: AuditAction | None  # None: the record itself is the trail (its `created_at`)


def _move(
    sources: Iterable[EndorsementState], target: EndorsementState | None, *by: Actor, audit: AuditAction | None
) -> Transition:
    return Transition(frozenset(sources), target, frozenset(by), audit)


CONTACT, ORGANISER, SYSTEM = Actor.CONTACT, Actor.ORGANISER, Actor.SYSTEM

TRANSITIONS: dict[Event, Transition] = {
    Event.SUBMIT: _move((), S.PENDING, CONTACT, audit=None),
    # From withdrawn only with the link of a new submission (a withdrawn record's own link is spent).
    Event.CONFIRM: _move((S.PENDING, S.WITHDRAWN), S.CONFIRMED, CONTACT, audit=AuditAction.CONFIRM),
    # A held record confirmed anew stays held, with the new submission's facts.
    Event.HOLD: _move((S.PENDING, S.WITHDRAWN, S.REJECTED, HELD), HELD, CONTACT, audit=AuditAction.HOLD),
    Event.APPROVE: _move((S.CONFIRMED, S.REJECTED, HELD), S.APPROVED, ORGANISER, SYSTEM, audit=AuditAction.APPROVE),
    Event.REJECT: _move((S.CONFIRMED, S.APPROVED, HELD), S.REJECTED, ORGANISER, audit=AuditAction.REJECT),
    Event.RELEASE: _move((HELD,), S.CONFIRMED, ORGANISER, audit=AuditAction.RELEASE),
    Event.WITHDRAW: _move((S.PENDING, S.CONFIRMED, S.APPROVED, HELD), S.WITHDRAWN, CONTACT, audit=AuditAction.WITHDRAW),
    # Only past the retention period, and not while a later submission waits beside it (`purge_stale`).
    Event.PURGE: _move((S.PENDING, S.WITHDRAWN), None, SYSTEM, audit=AuditAction.PURGE),
}

#: States that need the mailbox owner's confirmation: entering one from a state without it takes
#: the owner's Confirm (which records `confirmed_at`), never anyone else's decision.
MAILBOX_CONFIRMED = frozenset({S.CONFIRMED, S.APPROVED, HELD})

#: States in which a new submission for the same mailbox waits beside the record, with its own
#: link, instead of answering "already endorsed": those its owner's Confirm may leave.
RESUBMITTABLE = TRANSITIONS[Event.CONFIRM].sources | TRANSITIONS[Event.HOLD].sources

#: The events an organiser decides in the organiser area.
ORGANISER_EVENTS = tuple(event for event, move in TRANSITIONS.items() if ORGANISER in move.by)

#: At most this many endorsements in one decision (one IN list, within every backend's limits).
MAX_BULK = 5000


def may(event: Event, state: EndorsementState | str, *, mailbox_confirmed: bool = True) -> bool:
    """Whether `event` may move a record in `state`: allowed by the table and, for anyone but the
    mailbox owner, never into a state that needs its confirmation for a record it never confirmed."""
    move = TRANSITIONS[event]
    if EndorsementState(state) not in move.sources:
        return False
    return CONTACT in move.by or mailbox_confirmed or move.target not in MAILBOX_CONFIRMED


def sources(event: Event) -> list[str]:
    """The states `event` may move a record from, in the order of `EndorsementState`."""
    return [state.value for state in S if state in TRANSITIONS[event].sources]


def _movable(event: Event) -> sa.ColumnElement[bool]:
    """`may` as SQL: the rows `event` may move, for the conditional UPDATE that moves them."""
    move = TRANSITIONS[event]
    condition: sa.ColumnElement[bool] = e.c.state.in_(sources(event))
    if CONTACT not in move.by and move.target in MAILBOX_CONFIRMED:
        condition = sa.and_(condition, e.c.confirmed_at.is_not(None))
    return condition


def target_of(event: Event) -> EndorsementState:
    """The state `event` leaves a record in (a new record's: `target_of(Event.SUBMIT)`)."""
    target = TRANSITIONS[event].target
    assert target is not None, f"{event} deletes the record"
    return target


def _audit_action(event: Event) -> AuditAction:
    action = TRANSITIONS[event].audit
    assert action is not None, f"{event} writes no audit row"
    return action


# --- outcomes ------------------------------------------------------------------------------------


class SubmitOutcome(enum.StrEnum):
    NEW = "new"  # a pending endorsement and its confirmation email
    VERSION = "version"  # a known mailbox: the submission waits beside its record, with its own email
    ALREADY = "already"  # confirmed before: an "already endorsed" email, nothing new
    CAPPED = "capped"  # this mailbox was sent its share of emails lately: nothing stored or sent
    CLOSED = "closed"  # the appeal was paused or closed meanwhile: nothing stored


class ConfirmOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    HELD = "held"  # confirmed, and waiting for an organiser (an anti-abuse limit held it back)
    ALREADY = "already"  # confirmed (or further) before: a second POST changes nothing
    GONE = "gone"  # withdrawn, rejected, or the link belongs to an earlier incarnation
    CLOSED = "closed"  # the appeal closed before the link was used: nothing changes


class WithdrawOutcome(enum.StrEnum):
    WITHDRAWN = "withdrawn"
    ALREADY = "already"  # withdrawn before: a second POST changes nothing
    GONE = "gone"  # no such record, or it cannot be withdrawn (rejected)


# --- what a link names ---------------------------------------------------------------------------

#: What a submission sets on a record; a version holds these until its link is confirmed.
SUBMITTED_FIELDS = (
    "organisation_name",
    "name_normalised",
    "country",
    "city",
    "organisation_type",
    "website",
    "contact_name",
    "contact_role",
    "contact_email",
    "email_canonical",
    "authorised",
    "consent_version",
    "visibility",
    "comment",
    "language",
    "text_language",
    "text_hash",
    "news_consent_version",
    "transparency_register",
)


def news_values(version: str | None, *, at: dt.datetime) -> dict[str, Any]:
    """What a submission sets of the news consent (petition.news): ticked `at` or not asked for;
    either way a fresh consent, so an earlier unsubscription no longer stands for it."""
    return {"news_consent_version": version, "news_consented_at": at if version else None, "news_unsubscribed_at": None}


def new_nonce() -> str:
    """A new link nonce: 16 random bytes in hex, from the pooled CSPRNG (every submission makes one)."""
    return random_hex(16)


@dataclass(frozen=True)
class LinkTarget:
    """What a confirmation link names: the record, and what pressing Confirm would make of it."""

    endorsement: Row
    shown: dict[str, Any]  # the facts the link's email showed (the record's, or its version's)
    version_id: int | None  # None: the link confirms the record as it is
    hold_reason: str | None  # the anti-abuse limit that held this submission back, if any
    submitted_at: dt.datetime  # when the submission it stands for was made

    @property
    def confirmable(self) -> bool:
        if self.version_id is not None:
            return self.endorsement["state"] in RESUBMITTABLE
        return self.endorsement["state"] == S.PENDING


async def link_target(db: Database, *, endorsement_id: int, nonce: str) -> LinkTarget | None:
    """The record a signed link names, with the submission it stands for; None for a link that
    belongs to nothing any more (an earlier incarnation, or a submission another one replaced)."""
    row = await db.fetch_one(e.select().where(e.c.id == endorsement_id))
    if row is None:
        return None
    if row["token_nonce"] == nonce:
        return LinkTarget(
            endorsement=row,
            shown={name: row[name] for name in SUBMITTED_FIELDS},
            version_id=None,
            hold_reason=row["hold_reason"],
            submitted_at=row["created_at"],
        )
    version = await db.fetch_one(
        endorsement_versions.select().where(
            endorsement_versions.c.endorsement_id == endorsement_id, endorsement_versions.c.token_nonce == nonce
        )
    )
    if version is None:
        return None
    return LinkTarget(
        endorsement=row,
        shown=json.loads(version["data"]),
        version_id=int(version["id"]),
        hold_reason=version["hold_reason"],
        submitted_at=version["created_at"],
    )


# --- submit ----------------------------------------------------------------------------------------


async def submit_endorsement(
    db: Database,
    *,
    mailer: Mailer,
    appeal: Row,
    text: Row,
    data: dict[str, Any],
    language: str,
    mailbox_ok: bool = True,
    hold_reason: str | None = None,
) -> SubmitOutcome:
    """Record an endorsement and queue its email in one transaction.

    Whatever is already known about the email address, the caller shows the same
    page: only the email differs. A submission never changes a record that exists:
    it waits beside it (`endorsement_versions`) until its own email's link is confirmed.
    Over a sender's limit (`hold_reason`) the email still goes out, and confirming it
    leads to the organisers' queue; over the mailbox's own cap (`mailbox_ok` false)
    nothing is stored or sent, which is what protects a mailbox from a flood.
    The grouped intake (petition.endorsements.intake) makes the same new records in bulk.
    """
    for attempt in range(2):
        try:
            outcome = await _submit(
                db,
                mailer=mailer,
                appeal=appeal,
                text=text,
                data=data,
                language=language,
                mailbox_ok=mailbox_ok,
                hold_reason=hold_reason,
            )
        except INTEGRITY_ERRORS:
            # Two submissions with one address raced on PostgreSQL: the second sees the first.
            if attempt:
                raise
            continue
        mailer.notify()
        return outcome
    raise AssertionError("unreachable")


def _submitted(data: dict[str, Any], *, text: Row, language: str) -> dict[str, Any]:
    fields = {**data, "language": language, "text_language": text["language"], "text_hash": text["content_hash"]}
    fields.setdefault("news_consent_version", None)
    fields.setdefault("transparency_register", None)
    return {name: fields[name] for name in SUBMITTED_FIELDS}


async def _submit(
    db: Database,
    *,
    mailer: Mailer,
    appeal: Row,
    text: Row,
    data: dict[str, Any],
    language: str,
    mailbox_ok: bool,
    hold_reason: str | None,
) -> SubmitOutcome:
    now = utcnow()
    submitted = _submitted(data, text=text, language=language)
    async with db.write():
        if not mailbox_ok:
            return SubmitOutcome.CAPPED
        existing = await db.fetch_one(
            e.select().where(e.c.appeal_id == appeal["id"], e.c.email_canonical == data["email_canonical"])
        )
        nonce = new_nonce()
        if existing is None:
            endorsement_id = int(
                await db.execute(
                    e.insert().values(
                        **{**submitted, **news_values(submitted["news_consent_version"], at=now)},
                        appeal_id=appeal["id"],
                        state=target_of(Event.SUBMIT).value,
                        token_nonce=nonce,
                        hold_reason=hold_reason,
                        created_at=now,
                        updated_at=now,
                    )
                )
            )
            outcome = SubmitOutcome.NEW
        elif existing["state"] in RESUBMITTABLE:
            # The record stays as it is, and so does what its links confirm.
            endorsement_id = existing["id"]
            await db.execute(
                endorsement_versions.insert().values(
                    endorsement_id=endorsement_id,
                    token_nonce=nonce,
                    hold_reason=hold_reason,
                    created_at=now,
                    data=json.dumps(submitted, ensure_ascii=False, separators=(",", ":")),
                )
            )
            outcome = SubmitOutcome.VERSION
        else:
            await mailer.queue(
                db,
                name="already_endorsed",
                to=data["contact_email"],
                language=language,
                endorsement_id=existing["id"],
                context=already_endorsed_context(
                    mailer=mailer, slug=appeal["slug"], title=text["title"], language=language
                ),
            )
            return SubmitOutcome.ALREADY
        await mailer.queue(
            db,
            name="confirm",
            to=data["contact_email"],
            language=language,
            endorsement_id=endorsement_id,
            context=confirmation_context(
                mailer=mailer, title=text["title"], nonce=nonce, facts=submitted, language=language
            ),
        )
    return outcome


# --- confirm (or hold) -----------------------------------------------------------------------------


async def confirm_endorsement(
    db: Database, *, mailer: Mailer, endorsement_id: int, nonce: str
) -> tuple[ConfirmOutcome, Row | None]:
    """Pending → confirmed (or held), once; the state, not the token, makes it single use.

    A link confirms exactly the submission its email showed: the record as first submitted,
    or a later submission that waited beside it, which then replaces the record's details.
    Every other waiting submission of the record is dropped, and with it its link.
    """
    now = utcnow()
    async with db.write():
        target = await link_target(db, endorsement_id=endorsement_id, nonce=nonce)
        if target is None:
            return ConfirmOutcome.GONE, None
        row = target.endorsement
        if target.version_id is None and row["state"] in MAILBOX_CONFIRMED:
            return ConfirmOutcome.ALREADY, row
        if not target.confirmable:
            return ConfirmOutcome.GONE, row
        # Closed past its deadline too, before the housekeeping stores it.
        appeal = await get_appeal_by_id(db, appeal_id=row["appeal_id"])
        assert appeal is not None
        if appeal["status"] == AppealStatus.CLOSED:
            # A closed appeal's list is final: what it hands to parliaments must not grow after.
            return ConfirmOutcome.CLOSED, row
        hold = target.hold_reason
        if target.version_id is not None and row["state"] == HELD:
            hold = row["hold_reason"] or HoldReason.LEGACY.value
        elif target.version_id is not None and (
            row["state"] == S.REJECTED or row["hold_reason"] == HoldReason.REJECTED_BEFORE
        ):
            # Organisers turned this mailbox's endorsement down (even if it withdrew since): they
            # look at the new one before it is listed.
            hold = HoldReason.REJECTED_BEFORE.value
        event = Event.HOLD if hold else Event.CONFIRM
        if not may(event, row["state"]):
            return ConfirmOutcome.GONE, row
        target_state = target_of(event)
        listed_now = target_state == S.CONFIRMED and appeal["moderation"] == Moderation.POST
        shown = target.shown
        # A later submission brings its own answer to the news box (one stored before it existed: none).
        news = (
            news_values(shown.get("news_consent_version"), at=target.submitted_at)
            if target.version_id is not None
            else {}
        )
        updated = await db.fetch_one(
            e.update()
            .where(e.c.id == endorsement_id, e.c.state == row["state"], e.c.token_nonce == row["token_nonce"])
            .values(
                **{**shown, **news},
                state=target_state.value,
                hold_reason=hold,
                token_nonce=nonce,
                confirmed_at=now,
                updated_at=now,
                moderated_at=None,
                withdrawn_at=None,
                listed_at=now if listed_now else None,
            )
            .returning(*e.c)
        )
        if updated is None:
            return ConfirmOutcome.ALREADY, row
        await db.execute(endorsement_versions.delete().where(endorsement_versions.c.endorsement_id == endorsement_id))
        await note_public_changes(db, [endorsement_id], now=now)
        entry = await reserve_entry(db, endorsement_id)
        await record(
            db,
            organiser_id=None,
            action=_audit_action(event),
            target_type="endorsement",
            target_id=endorsement_id,
            detail=f"by the contact; held: {hold}" if hold else "by the contact",
        )
        await mailer.queue(
            db,
            name="thank_you",
            to=shown["contact_email"],
            language=shown["language"],
            endorsement_id=endorsement_id,
            context=thank_you_context(
                mailer=mailer,
                slug=appeal["slug"],
                facts=shown,
                nonce=nonce,
                listed_now=listed_now,
                held=bool(hold),
                entry=entry,
            ),
        )
    mailer.notify()
    return (ConfirmOutcome.HELD if hold else ConfirmOutcome.CONFIRMED), updated


# --- approve, reject, release ----------------------------------------------------------------------


async def _decide(
    db: Database,
    *,
    event: Event,
    where: sa.ColumnElement[bool],
    organiser_id: int | None,
    detail: str = "",
    seen_at: dt.datetime | None = None,
) -> list[Row]:
    """Move every row `where` selects that `event` may move, set-based; the changed rows' ids and
    appeals, by id. Approval sets the public "endorsed" date once; release lists a held endorsement
    where confirmation alone lists; rejection takes it off every public list."""
    now = utcnow()
    values: dict[str, Any] = {
        "state": target_of(event).value,
        "moderated_at": now,
        "updated_at": now,
        # A rejection is remembered (a later endorsement from the mailbox comes back to organisers);
        # approving or releasing is the organisers' answer to any hold.
        "hold_reason": HoldReason.REJECTED_BEFORE.value if event is Event.REJECT else None,
    }
    # Typed, so the aware datetime is stored as naive UTC like every other (asyncpg insists).
    stamp = sa.literal(now, type_=UTCDateTime())
    # One UPDATE per value of listed_at: (extra condition, listed_at).
    updates: list[tuple[sa.ColumnElement[bool], Any]]
    if event is Event.APPROVE:
        updates = [(sa.true(), sa.func.coalesce(e.c.listed_at, stamp))]
    elif event is Event.RELEASE:
        # Listed at once where confirmation alone lists, else it joins the approval queue.
        post = e.c.appeal_id.in_(sa.select(appeals.c.id).where(appeals.c.moderation == Moderation.POST.value))
        updates = [(post, stamp), (sa.not_(post), None)]
    else:
        updates = [(sa.true(), None)]
    async with db.write():
        changed: list[Row] = []
        for condition, listed_at in updates:
            if seen_at is not None:
                condition = sa.and_(condition, e.c.updated_at <= sa.literal(seen_at, type_=UTCDateTime()))
            changed += await db.fetch_all(
                e.update()
                .where(where, _movable(event), condition)
                .values(**values, listed_at=listed_at)
                .returning(e.c.id, e.c.appeal_id)
            )
        changed.sort(key=lambda row: int(row["id"]))
        await note_public_changes(db, [int(row["id"]) for row in changed], now=now)
        await record_many(
            db,
            organiser_id=organiser_id,
            action=_audit_action(event),
            target_type="endorsement",
            target_ids=[int(row["id"]) for row in changed],
            detail=detail,
        )
    return changed


async def _decide_ids(
    db: Database, *, ids: Sequence[int], event: Event, organiser_id: int, seen_at: dt.datetime | None
) -> list[Row]:
    if event not in ORGANISER_EVENTS:
        raise ValueError(f"not a moderation decision: {event}")
    unique = sorted(set(ids))[:MAX_BULK]
    if not unique:
        return []
    return await _decide(db, event=event, where=e.c.id.in_(unique), organiser_id=organiser_id, seen_at=seen_at)


async def decide(
    db: Database, *, ids: Sequence[int], event: Event, organiser_id: int, seen_at: dt.datetime | None = None
) -> list[int]:
    """An organiser approves, rejects or releases many endorsements at once; the ids that changed.

    Rows the table does not let the decision move are left alone, and so is every row its
    mailbox never confirmed, and every row changed after `seen_at` (when the organiser's page
    was made: its owner may have confirmed other facts since, which nobody has looked at).
    """
    rows = await _decide_ids(db, ids=ids, event=event, organiser_id=organiser_id, seen_at=seen_at)
    return [int(row["id"]) for row in rows]


#: The audit detail of approvals from the command line, which no organiser makes.
CLI_APPROVAL = "by the command line: petition moderate approve --all-confirmed"


async def approve_all_confirmed(db: Database, *, appeal_id: int) -> int:
    """Approve every confirmed endorsement of an appeal (CLI `moderate approve --all-confirmed`)."""
    rows = await _decide(
        db,
        event=Event.APPROVE,
        organiser_id=None,
        detail=CLI_APPROVAL,
        where=sa.and_(e.c.appeal_id == appeal_id, e.c.state == S.CONFIRMED.value),
    )
    return len(rows)


# --- withdraw ----------------------------------------------------------------------------------------

#: Deleted at once on withdrawal. The organisation's name, country and type, its visibility, the
#: contact address and the dates stay until the purge: the withdrawal can be checked, the
#: address keeps the record unique per appeal, and endorsing again finds the record (confirming
#: a new submission writes every one of these fields anew). The privacy page says the same.
BLANKED_ON_WITHDRAWAL: dict[str, str] = {
    "contact_name": "",
    "contact_role": "",
    "city": "",
    "website": "",
    "comment": "",
}


async def _withdraw(db: Database, *, endorsement_id: int, nonce: str) -> tuple[WithdrawOutcome, int | None]:
    now = utcnow()
    async with db.write():
        for _attempt in range(3):
            row = await db.fetch_one(e.select().where(e.c.id == endorsement_id, e.c.token_nonce == nonce))
            if row is None:
                return WithdrawOutcome.GONE, None
            if row["state"] == S.WITHDRAWN:
                return WithdrawOutcome.ALREADY, None
            if not may(Event.WITHDRAW, row["state"]):
                return WithdrawOutcome.GONE, None
            withdrawn = await db.fetch_one(
                e.update()
                .where(e.c.id == endorsement_id, e.c.state == row["state"], e.c.token_nonce == nonce)
                .values(
                    state=S.WITHDRAWN.value, withdrawn_at=now, listed_at=None, updated_at=now, **BLANKED_ON_WITHDRAWAL
                )
                .returning(e.c.id)
            )
            if withdrawn is not None:
                break
            # An organiser's decision moved it between the read and the write (PostgreSQL): again.
        else:
            raise RuntimeError("the endorsement kept changing while it was being withdrawn")
        await note_public_changes(db, [endorsement_id], now=now)
        # Submissions waiting beside it go too: they hold contact details, and an old link of one
        # must not list the organisation again after it withdrew.
        await db.execute(endorsement_versions.delete().where(endorsement_versions.c.endorsement_id == endorsement_id))
        # Unsent emails about it (a confirmation still queued, or failed: kept to be queued again)
        # are no longer wanted.
        await db.execute(
            outbox.delete().where(
                outbox.c.endorsement_id == endorsement_id,
                outbox.c.state.in_((OutboxState.QUEUED.value, OutboxState.FAILED.value)),
            )
        )
        await record(
            db,
            organiser_id=None,
            action=_audit_action(Event.WITHDRAW),
            target_type="endorsement",
            target_id=endorsement_id,
            detail="by the contact",
        )
    return WithdrawOutcome.WITHDRAWN, int(row["appeal_id"])


async def withdraw_endorsement(db: Database, *, endorsement_id: int, nonce: str) -> WithdrawOutcome:
    """Takes the endorsement out of lists, counts, open data and future dossiers, at once.

    Those all read only listed states; this makes the record `withdrawn`, clears its public
    date and deletes what the privacy page says a withdrawal deletes (`BLANKED_ON_WITHDRAWAL`)
    in the same statement. The rest goes with the purge, `retention_days` later.
    """
    outcome, _appeal_id = await _withdraw(db, endorsement_id=endorsement_id, nonce=nonce)
    return outcome


# --- purge ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    unconfirmed: int
    withdrawn: int
    emails: int


async def purge_stale(db: Database, *, cutoff: dt.datetime) -> Purged:
    """Delete the records the purge may take whose last change is older than `cutoff`, with their
    emails and waiting submissions; one audit row each, naming only the record's number.

    Kept: a record a submission newer than `cutoff` still waits beside (it may yet be confirmed
    onto it), and a withdrawn record that organisers had rejected (its details blanked): purged,
    its mailbox could start afresh and be listed without the organisers seeing it again. Kept
    too: a pending record whose email never left (queued, being sent, or failed: organisers may
    queue it again) or left after `cutoff`: its mailbox has not had the time to confirm.
    """
    v = endorsement_versions
    waiting = sa.exists().where(v.c.endorsement_id == e.c.id, v.c.created_at >= cutoff)
    rejected_before = sa.and_(
        e.c.state == S.WITHDRAWN.value, sa.func.coalesce(e.c.hold_reason, "") == HoldReason.REJECTED_BEFORE.value
    )
    # Withdrawal sets `updated_at`: whatever touches the record later can only postpone this.
    unsent = sa.and_(
        e.c.state == S.PENDING.value,
        sa.exists().where(
            outbox.c.endorsement_id == e.c.id,
            sa.or_(outbox.c.state != OutboxState.SENT.value, outbox.c.sent_at >= cutoff),
        ),
    )
    stale = sa.and_(_movable(Event.PURGE), e.c.updated_at < cutoff, ~waiting, ~rejected_before, ~unsent)
    deleted: list[Row] = []
    emails = 0
    async with db.write():
        # Locked (on PostgreSQL): a submission for one of them waits, fails on the gone record and
        # is retried as a new one (`submit_endorsement`).
        ids = [row["id"] for row in await db.fetch_all(sa.select(e.c.id).where(stale).with_for_update())]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            emails += int(
                await db.fetch_val(
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.endorsement_id.in_(chunk))
                )
                or 0
            )
            await db.execute(outbox.delete().where(outbox.c.endorsement_id.in_(chunk)))
            # SQLite enforces no foreign keys here: no cascade to count on.
            await db.execute(v.delete().where(v.c.endorsement_id.in_(chunk)))
            await db.execute(domain_proofs.delete().where(domain_proofs.c.endorsement_id.in_(chunk)))
            await db.execute(countersignatures.delete().where(countersignatures.c.endorsement_id.in_(chunk)))
            gone = await db.fetch_all(e.delete().where(e.c.id.in_(chunk), stale).returning(e.c.id, e.c.state))
            # The log keeps their entries (never listed now: withdrawn, or never confirmed); what
            # tied those entries to the record goes with it. SQLite may give the id to the next
            # record, which must not inherit an entry, nor open its receipt.
            await db.execute(
                public_record_heads.delete().where(
                    public_record_heads.c.endorsement_id.in_([row["id"] for row in gone])
                )
            )
            deleted += gone
        for state in sources(Event.PURGE):
            await record_many(
                db,
                organiser_id=None,
                action=_audit_action(Event.PURGE),
                target_type="endorsement",
                target_ids=sorted(int(row["id"]) for row in deleted if row["state"] == state),
                detail=f"{state}, unchanged since before {cutoff.date().isoformat()}",
            )
    withdrawn = sum(1 for row in deleted if row["state"] == S.WITHDRAWN)
    return Purged(unconfirmed=len(deleted) - withdrawn, withdrawn=withdrawn, emails=emails)


# --- the application's instance ----------------------------------------------------------------------

#: Told that what an appeal's public pages show may have changed (None: any appeal's).
PublicChange = Callable[[int | None], None]


class Lifecycle:
    """The transitions as an application makes them: each in its own transaction with its audit
    row, and then the public side told, through the one hook the application gave.

    A web process passes its public cache's invalidation, so whoever just confirmed, withdrew
    or decided sees the change at once (other processes catch up within the cache's lifetime);
    the command line passes none.
    """

    def __init__(self, db: Database, mailer: Mailer, *, on_public_change: PublicChange | None = None) -> None:
        self.db = db
        self.mailer = mailer
        self._on_public_change = on_public_change

    def public_changed(self, appeal_id: int | None = None) -> None:
        """The one hook. The transitions call it; so does whoever changes what an appeal's public
        pages show by other means (an organiser's correction, the appeal's status or text)."""
        if self._on_public_change is not None:
            self._on_public_change(appeal_id)

    async def confirm(self, *, endorsement_id: int, nonce: str) -> tuple[ConfirmOutcome, Row | None]:
        outcome, row = await confirm_endorsement(
            self.db, mailer=self.mailer, endorsement_id=endorsement_id, nonce=nonce
        )
        if outcome in (ConfirmOutcome.CONFIRMED, ConfirmOutcome.HELD) and row is not None:
            self.public_changed(int(row["appeal_id"]))
        return outcome, row

    async def decide(
        self, *, ids: Sequence[int], event: Event, organiser_id: int, seen_at: dt.datetime | None = None
    ) -> list[int]:
        rows = await _decide_ids(self.db, ids=ids, event=event, organiser_id=organiser_id, seen_at=seen_at)
        for appeal_id in sorted({int(row["appeal_id"]) for row in rows}):
            self.public_changed(appeal_id)
        return [int(row["id"]) for row in rows]

    async def approve_all_confirmed(self, *, appeal_id: int) -> int:
        approved = await approve_all_confirmed(self.db, appeal_id=appeal_id)
        if approved:
            self.public_changed(appeal_id)
        return approved

    async def withdraw(self, *, endorsement_id: int, nonce: str) -> WithdrawOutcome:
        outcome, appeal_id = await _withdraw(self.db, endorsement_id=endorsement_id, nonce=nonce)
        if appeal_id is not None:
            self.public_changed(appeal_id)
        return outcome
