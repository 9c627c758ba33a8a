from __future__ import annotations

import enum
import secrets
from typing import Any

import sqlalchemy as sa

from petition.appeals.tables import appeals
from petition.db import INTEGRITY_ERRORS, Database, Row
from petition.endorsements.states import EndorsementState, listed_states
from petition.endorsements.tables import endorsements
from petition.outbox.messages import Mailer, signed_link
from petition.schema import UTCDateTime, utcnow
from petition.tokens import Purpose, Tokens

S = EndorsementState


class SubmitOutcome(enum.StrEnum):
    NEW = "new"  # a pending endorsement and its confirmation email
    RESENT = "resent"  # still pending: details updated, confirmation sent again
    ALREADY = "already"  # confirmed before: an "already endorsed" email, nothing new
    HELD = "held"  # quarantined: nothing sent
    CLOSED = "closed"  # the appeal was paused or closed meanwhile: nothing stored


class ConfirmOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # confirmed (or further) before: a second POST changes nothing
    GONE = "gone"  # withdrawn, rejected, or the link belongs to an earlier incarnation


def new_nonce() -> str:
    return secrets.token_hex(16)


async def get_endorsement(db: Database, *, endorsement_id: int) -> Row | None:
    return await db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))


async def submit_endorsement(
    db: Database,
    *,
    mailer: Mailer,
    tokens: Tokens,
    appeal: Row,
    text: Row,
    data: dict[str, Any],
    language: str,
    hold: bool = False,
) -> SubmitOutcome:
    """Record an endorsement and queue its email in one transaction.

    Whatever is already known about the email address, the caller shows the same
    page: only the email differs. With `hold` (an anti-abuse limit was exceeded) a new
    endorsement is stored quarantined with no email, and a known one is left alone.
    """
    for attempt in range(2):
        try:
            outcome = await _submit(db, mailer=mailer, tokens=tokens, appeal=appeal, text=text,
                                    data=data, language=language, hold=hold)
        except INTEGRITY_ERRORS:
            # Two submissions with one address raced on PostgreSQL: the second sees the first.
            if attempt:
                raise
            continue
        mailer.notify()
        return outcome
    raise AssertionError("unreachable")


async def _submit(db: Database, *, mailer: Mailer, tokens: Tokens, appeal: Row, text: Row,
                  data: dict[str, Any], language: str, hold: bool = False) -> SubmitOutcome:
    now = utcnow()
    fields = {
        **data,
        "appeal_id": appeal["id"],
        "language": language,
        "text_language": text["language"],
        "text_hash": text["content_hash"],
        "updated_at": now,
    }
    async with db.write():
        existing = await db.fetch_one(
            endorsements.select().where(
                endorsements.c.appeal_id == appeal["id"],
                endorsements.c.email_canonical == data["email_canonical"],
            )
        )
        if hold:
            # Held silently: nothing is sent and a known record is not touched.
            if existing is None:
                await db.execute(endorsements.insert().values(
                    **fields, state=S.QUARANTINED.value, token_nonce=new_nonce(), created_at=now))
            return SubmitOutcome.HELD
        if existing is None:
            nonce = new_nonce()
            endorsement_id = int(await db.execute(endorsements.insert().values(
                **fields, state=S.PENDING.value, token_nonce=nonce, created_at=now)))
            outcome = SubmitOutcome.NEW
        elif existing["state"] == S.QUARANTINED:
            return SubmitOutcome.HELD
        elif existing["state"] in (S.PENDING, S.WITHDRAWN):
            endorsement_id = existing["id"]
            # A withdrawn endorsement starts over: links of its earlier life stop working.
            nonce = existing["token_nonce"] if existing["state"] == S.PENDING else new_nonce()
            await db.execute(endorsements.update().where(endorsements.c.id == endorsement_id).values(
                **fields, state=S.PENDING.value, token_nonce=nonce, confirmed_at=None,
                withdrawn_at=None, listed_at=None, moderated_at=None))
            outcome = SubmitOutcome.RESENT if existing["state"] == S.PENDING else SubmitOutcome.NEW
        else:
            await mailer.queue(
                db, name="already_endorsed", to=data["contact_email"], language=language,
                endorsement_id=existing["id"],
                context={"appeal_url": mailer.settings.url_for_path(f"/appeals/{appeal['slug']}?lang={language}"),
                         "title": text["title"]},
            )
            return SubmitOutcome.ALREADY
        await queue_confirmation(db, mailer=mailer, tokens=tokens, appeal=appeal, title=text["title"],
                                 endorsement_id=endorsement_id, nonce=nonce, to=data["contact_email"],
                                 organisation_name=data["organisation_name"], language=language)
    return outcome


def confirmation_context(*, mailer: Mailer, title: str, nonce: str, organisation_name: str,
                         language: str) -> dict[str, object]:
    """What the confirmation email says; its one link is bound to the record and its nonce."""
    return {
        "confirm_url": signed_link(Purpose.CONFIRM, f"/confirm/{{token}}?lang={language}", nonce=nonce),
        "title": title,
        "organisation_name": organisation_name,
        "valid_days": max(1, mailer.settings.confirm_max_age // 86400),
    }


async def queue_confirmation(db: Database, *, mailer: Mailer, tokens: Tokens, appeal: Row, title: str,
                             endorsement_id: int, nonce: str, to: str, organisation_name: str,
                             language: str) -> None:
    context = confirmation_context(mailer=mailer, title=title, nonce=nonce, organisation_name=organisation_name,
                                   language=language)
    await mailer.queue(db, name="confirm", to=to, language=language, endorsement_id=endorsement_id,
                       context=context)


async def resend_confirmation(db: Database, *, mailer: Mailer, tokens: Tokens, endorsement_id: int,
                              nonce: str) -> bool:
    """A fresh confirmation email for a still-pending endorsement whose link expired."""
    async with db.write():
        row = await db.fetch_one(
            sa.select(endorsements, appeals.c.slug, appeals.c.moderation)
            .join(appeals, appeals.c.id == endorsements.c.appeal_id)
            .where(endorsements.c.id == endorsement_id, endorsements.c.token_nonce == nonce)
        )
        if row is None or row["state"] != S.PENDING:
            return False
        from petition.appeals.queries import current_text

        appeal = {"id": row["appeal_id"], "slug": row["slug"]}
        text = await current_text(db, appeal={**appeal, "default_language": row["text_language"]},
                                  language=row["language"])
        await queue_confirmation(db, mailer=mailer, tokens=tokens, appeal=appeal,
                                 title=text["title"] if text else row["slug"],
                                 endorsement_id=row["id"], nonce=row["token_nonce"],
                                 to=row["contact_email"], organisation_name=row["organisation_name"],
                                 language=row["language"])
    mailer.notify()
    return True


async def confirm_endorsement(db: Database, *, mailer: Mailer, endorsement_id: int,
                              nonce: str) -> tuple[ConfirmOutcome, Row | None]:
    """Pending → confirmed, once; the state, not the token, makes it single use."""
    now = utcnow()
    async with db.write():
        row = await db.fetch_one(
            sa.select(endorsements, appeals.c.slug, appeals.c.moderation)
            .join(appeals, appeals.c.id == endorsements.c.appeal_id)
            .where(endorsements.c.id == endorsement_id, endorsements.c.token_nonce == nonce)
        )
        if row is None:
            return ConfirmOutcome.GONE, None
        if row["state"] in (S.CONFIRMED, S.APPROVED):
            return ConfirmOutcome.ALREADY, row
        if row["state"] != S.PENDING:
            return ConfirmOutcome.GONE, row
        listed_now = row["moderation"] == "post"
        updated = await db.fetch_one(
            endorsements.update()
            .where(endorsements.c.id == endorsement_id, endorsements.c.state == S.PENDING.value)
            .values(state=S.CONFIRMED.value, confirmed_at=now, updated_at=now,
                    listed_at=now if listed_now else None)
            .returning(endorsements.c.id)
        )
        if updated is None:
            return ConfirmOutcome.ALREADY, row
        await mailer.queue(
            db, name="thank_you", to=row["contact_email"], language=row["language"],
            endorsement_id=row["id"],
            context={
                "organisation_name": row["organisation_name"],
                "listed_now": listed_now,
                "anonymous": row["visibility"] == "anonymous",
                "list_url": mailer.settings.url_for_path(
                    f"/appeals/{row['slug']}/signatories?lang={row['language']}"),
                "withdraw_url": signed_link(Purpose.WITHDRAW, f"/withdraw/{{token}}?lang={row['language']}",
                                            nonce=row["token_nonce"]),
            },
        )
    mailer.notify()
    return ConfirmOutcome.CONFIRMED, row


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
