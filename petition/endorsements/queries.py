from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from petition.appeals.states import AppealStatus
from petition.appeals.tables import appeals
from petition.db import INTEGRITY_ERRORS, Database, Row
from petition.endorsements.states import (
    HELD,
    MAILBOX_CONFIRMED,
    RESUBMITTABLE,
    EndorsementState,
    HoldReason,
    Visibility,
    listed_states,
)
from petition.endorsements.tables import endorsement_versions, endorsements
from petition.outbox.messages import Mailer, signed_link
from petition.schema import UTCDateTime, utcnow
from petition.tokens import Purpose, Tokens

S = EndorsementState


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


#: What a submission sets on a record; a version holds these until its link is confirmed.
SUBMITTED_FIELDS = (
    "organisation_name", "name_normalised", "country", "city", "organisation_type", "website",
    "contact_name", "contact_role", "contact_email", "email_canonical", "authorised", "consent_version",
    "visibility", "comment", "language", "text_language", "text_hash",
)


def new_nonce() -> str:
    return secrets.token_hex(16)


async def get_endorsement(db: Database, *, endorsement_id: int) -> Row | None:
    return await db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))


@dataclass(frozen=True)
class LinkTarget:
    """What a confirmation link names: the record, and what pressing Confirm would make of it."""

    endorsement: Row
    shown: dict[str, Any]  # the facts the link's email showed (the record's, or its version's)
    version_id: int | None  # None: the link confirms the record as it is
    hold_reason: str | None  # the anti-abuse limit that held this submission back, if any

    @property
    def confirmable(self) -> bool:
        if self.version_id is not None:
            return self.endorsement["state"] in RESUBMITTABLE
        return self.endorsement["state"] == S.PENDING


async def link_target(db: Database, *, endorsement_id: int, nonce: str) -> LinkTarget | None:
    """The record a signed link names, with the submission it stands for; None for a link that
    belongs to nothing any more (an earlier incarnation, or a submission another one replaced)."""
    row = await get_endorsement(db, endorsement_id=endorsement_id)
    if row is None:
        return None
    if row["token_nonce"] == nonce:
        return LinkTarget(endorsement=row, shown={name: row[name] for name in SUBMITTED_FIELDS}, version_id=None,
                          hold_reason=row["hold_reason"])
    version = await db.fetch_one(endorsement_versions.select().where(
        endorsement_versions.c.endorsement_id == endorsement_id, endorsement_versions.c.token_nonce == nonce))
    if version is None:
        return None
    return LinkTarget(endorsement=row, shown=json.loads(version["data"]), version_id=int(version["id"]),
                      hold_reason=version["hold_reason"])


async def submit_endorsement(
    db: Database,
    *,
    mailer: Mailer,
    tokens: Tokens,
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
    """
    for attempt in range(2):
        try:
            outcome = await _submit(db, mailer=mailer, appeal=appeal, text=text, data=data, language=language,
                                    mailbox_ok=mailbox_ok, hold_reason=hold_reason)
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
    return {name: fields[name] for name in SUBMITTED_FIELDS}


async def _submit(db: Database, *, mailer: Mailer, appeal: Row, text: Row, data: dict[str, Any], language: str,
                  mailbox_ok: bool, hold_reason: str | None) -> SubmitOutcome:
    now = utcnow()
    submitted = _submitted(data, text=text, language=language)
    async with db.write():
        if not mailbox_ok:
            return SubmitOutcome.CAPPED
        existing = await db.fetch_one(
            endorsements.select().where(
                endorsements.c.appeal_id == appeal["id"],
                endorsements.c.email_canonical == data["email_canonical"],
            )
        )
        nonce = new_nonce()
        if existing is None:
            endorsement_id = int(await db.execute(endorsements.insert().values(
                **submitted, appeal_id=appeal["id"], state=S.PENDING.value, token_nonce=nonce,
                hold_reason=hold_reason, created_at=now, updated_at=now)))
            outcome = SubmitOutcome.NEW
        elif existing["state"] in RESUBMITTABLE:
            # The record stays as it is, and so does what its links confirm.
            endorsement_id = existing["id"]
            await db.execute(endorsement_versions.insert().values(
                endorsement_id=endorsement_id, token_nonce=nonce, hold_reason=hold_reason, created_at=now,
                data=json.dumps(submitted, ensure_ascii=False, separators=(",", ":"))))
            outcome = SubmitOutcome.VERSION
        else:
            await mailer.queue(
                db, name="already_endorsed", to=data["contact_email"], language=language,
                endorsement_id=existing["id"],
                context={"appeal_url": mailer.settings.url_for_path(f"/appeals/{appeal['slug']}?lang={language}"),
                         "title": text["title"]},
            )
            return SubmitOutcome.ALREADY
        await mailer.queue(db, name="confirm", to=data["contact_email"], language=language,
                           endorsement_id=endorsement_id,
                           context=confirmation_context(mailer=mailer, title=text["title"], nonce=nonce,
                                                        facts=submitted, language=language))
    return outcome


def confirmation_context(*, mailer: Mailer, title: str, nonce: str, facts: dict[str, Any],
                         language: str) -> dict[str, object]:
    """What the confirmation email says: the facts its one link confirms, and that link, bound to
    the record and the nonce of exactly this submission."""
    return {
        "confirm_url": signed_link(Purpose.CONFIRM, f"/confirm/{{token}}?lang={language}", nonce=nonce),
        "title": title,
        "organisation_name": facts["organisation_name"],
        "country": facts["country"],
        "anonymous": facts["visibility"] == Visibility.ANONYMOUS,
        "valid_days": max(1, mailer.settings.confirm_max_age // 86400),
    }


async def resend_confirmation(db: Database, *, mailer: Mailer, tokens: Tokens, endorsement_id: int,
                              nonce: str) -> bool:
    """A fresh confirmation email, with the same facts, for a submission whose link expired."""
    from petition.appeals.queries import current_text

    async with db.write():
        target = await link_target(db, endorsement_id=endorsement_id, nonce=nonce)
        if target is None or not target.confirmable:
            return False
        row = target.endorsement
        appeal = await db.fetch_one(appeals.select().where(appeals.c.id == row["appeal_id"]))
        assert appeal is not None
        shown = target.shown
        text = await current_text(db, appeal={"id": appeal["id"], "default_language": shown["text_language"]},
                                  language=shown["language"])
        await mailer.queue(db, name="confirm", to=shown["contact_email"], language=shown["language"],
                           endorsement_id=row["id"],
                           context=confirmation_context(mailer=mailer, title=text["title"] if text else appeal["slug"],
                                                        nonce=nonce, facts=shown, language=shown["language"]))
    mailer.notify()
    return True


async def confirm_endorsement(db: Database, *, mailer: Mailer, endorsement_id: int,
                              nonce: str) -> tuple[ConfirmOutcome, Row | None]:
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
        appeal = await db.fetch_one(appeals.select().where(appeals.c.id == row["appeal_id"]))
        assert appeal is not None
        if appeal["status"] == AppealStatus.CLOSED:
            # A closed appeal's list is final: what it hands to parliaments must not grow after.
            return ConfirmOutcome.CLOSED, row
        hold = target.hold_reason
        if target.version_id is not None and row["state"] == HELD:
            hold = row["hold_reason"] or HoldReason.LEGACY.value
        elif target.version_id is not None and (
                row["state"] == S.REJECTED or row["hold_reason"] == HoldReason.REJECTED_BEFORE):
            # Organisers turned this mailbox's endorsement down (even if it withdrew since): they
            # look at the new one before it is listed.
            hold = HoldReason.REJECTED_BEFORE.value
        target_state = HELD if hold else S.CONFIRMED
        listed_now = target_state == S.CONFIRMED and appeal["moderation"] == "post"
        shown = target.shown
        updated = await db.fetch_one(
            endorsements.update()
            .where(endorsements.c.id == endorsement_id, endorsements.c.state == row["state"],
                   endorsements.c.token_nonce == row["token_nonce"])
            .values(**shown, state=target_state.value, hold_reason=hold, token_nonce=nonce, confirmed_at=now,
                    updated_at=now, moderated_at=None, withdrawn_at=None, listed_at=now if listed_now else None)
            .returning(*endorsements.c)
        )
        if updated is None:
            return ConfirmOutcome.ALREADY, row
        await db.execute(endorsement_versions.delete().where(endorsement_versions.c.endorsement_id == endorsement_id))
        await mailer.queue(
            db, name="thank_you", to=shown["contact_email"], language=shown["language"],
            endorsement_id=row["id"],
            context={
                "organisation_name": shown["organisation_name"],
                "listed_now": listed_now,
                "held": bool(hold),
                "anonymous": shown["visibility"] == Visibility.ANONYMOUS,
                "list_url": mailer.settings.url_for_path(
                    f"/appeals/{appeal['slug']}/signatories?lang={shown['language']}"),
                "withdraw_url": signed_link(Purpose.WITHDRAW, f"/withdraw/{{token}}?lang={shown['language']}",
                                            nonce=nonce),
            },
        )
    mailer.notify()
    return (ConfirmOutcome.HELD if hold else ConfirmOutcome.CONFIRMED), updated


async def approve_all_confirmed(db: Database, *, appeal_id: int) -> int:
    """Approve every confirmed endorsement of an appeal (CLI `moderate approve --all-confirmed`)."""
    now = utcnow()
    async with db.write():
        rows = await db.fetch_all(
            endorsements.update()
            .where(endorsements.c.appeal_id == appeal_id, endorsements.c.state == S.CONFIRMED.value)
            .values(state=S.APPROVED.value, moderated_at=now, updated_at=now,
                    # Typed, or asyncpg is handed a naive/aware mix it cannot compare.
                    listed_at=sa.func.coalesce(endorsements.c.listed_at, sa.literal(now, type_=UTCDateTime())))
            .returning(endorsements.c.id)
        )
    return len(rows)


def listed_condition(moderation: str) -> sa.ColumnElement[bool]:
    return endorsements.c.state.in_(listed_states(moderation))
