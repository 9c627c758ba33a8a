"""Who receives news, sending an update through the outbox, and unsubscribing.

An update goes to every endorsement of the appeal (of one country, or all) whose contact ticked
the news box, whose mailbox confirmed it (confirmed or approved: not pending, held, rejected or
withdrawn), and whose unsubscribe link was not used. One outbox row each, queued in the
transaction that records the update and its audit row; the worker sends them.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from petition.appeals.queries import appeal_titles
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Database, Row
from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import endorsements
from petition.news.emails import news_context
from petition.news.tables import news_updates
from petition.outbox.messages import Mailer, outbox_values
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.schema import utcnow

e = endorsements
S = EndorsementState

#: States whose mailbox confirmed the endorsement and that organisers did not turn down or hold.
RECEIVING_STATES = (S.CONFIRMED.value, S.APPROVED.value)
#: The email kind of an update.
NEWS_KIND = "news"


@dataclass(frozen=True)
class UpdateText:
    subject: str
    body: str


def receives_news() -> sa.ColumnElement[bool]:
    """An endorsement whose contact gets news now."""
    return sa.and_(
        e.c.state.in_(RECEIVING_STATES),
        e.c.news_consent_version.is_not(None),
        e.c.news_unsubscribed_at.is_(None),
    )


def _audience(appeal_id: int, country: str | None) -> sa.ColumnElement[bool]:
    where = sa.and_(e.c.appeal_id == appeal_id, receives_news())
    return sa.and_(where, e.c.country == country) if country else where


def text_for(texts: Mapping[str, UpdateText], language: str, default_language: str) -> tuple[str, UpdateText]:
    """The language an organisation reads the update in, and its text: its own, else the default's."""
    if language in texts:
        return language, texts[language]
    return default_language, texts[default_language]


async def audience_by_language(
    db: Database, *, appeal_id: int, country: str | None, texts: Mapping[str, UpdateText], default_language: str
) -> dict[str, int]:
    """How many organisations would receive the update, by the language they would read it in."""
    rows = await db.fetch_all(
        sa.select(e.c.language, sa.func.count().label("n")).where(_audience(appeal_id, country)).group_by(e.c.language)
    )
    counts: dict[str, int] = {}
    for row in rows:
        language, _text = text_for(texts, row["language"], default_language)
        counts[language] = counts.get(language, 0) + int(row["n"])
    return dict(sorted(counts.items()))


async def subscribers_by_country(db: Database, *, appeal_id: int) -> dict[str, int]:
    rows = await db.fetch_all(
        sa.select(e.c.country, sa.func.count().label("n"))
        .where(_audience(appeal_id, None))
        .group_by(e.c.country)
        .order_by(e.c.country)
    )
    return {row["country"]: int(row["n"]) for row in rows}


async def send_update(
    db: Database,
    *,
    mailer: Mailer,
    appeal: Row,
    country: str | None,
    texts: Mapping[str, UpdateText],
    organiser_id: int,
) -> tuple[int, dict[str, int]]:
    """Queue the update for its audience, record it and its audit row; its id and the counts by language."""
    default_language = appeal["default_language"]
    assert default_language in texts, "the default language's text is required"
    now = utcnow()
    async with db.write():
        titles = await appeal_titles(db, appeal_id=appeal["id"])
        rows = await db.fetch_all(
            sa.select(e.c.id, e.c.contact_email, e.c.language, e.c.organisation_name, e.c.token_nonce)
            .where(_audience(appeal["id"], country))
            .order_by(e.c.id)
        )
        counts: dict[str, int] = {}
        emails = []
        for row in rows:
            language, text = text_for(texts, row["language"], default_language)
            counts[language] = counts.get(language, 0) + 1
            emails.append(
                outbox_values(
                    mailer.settings,
                    name=NEWS_KIND,
                    to=row["contact_email"],
                    language=language,
                    endorsement_id=row["id"],
                    context=news_context(
                        mailer=mailer,
                        slug=appeal["slug"],
                        title=titles.get(language) or titles.get(default_language) or appeal["slug"],
                        organisation_name=row["organisation_name"],
                        subject=text.subject,
                        body=text.body,
                        nonce=row["token_nonce"],
                        language=language,
                    ),
                )
            )
        for start in range(0, len(emails), 200):
            await db.execute(outbox.insert().values(emails[start : start + 200]))
        stored = {code: {"subject": t.subject, "body": t.body} for code, t in sorted(texts.items())}
        update_id = int(
            await db.execute(
                news_updates.insert().values(
                    appeal_id=appeal["id"],
                    country=country,
                    texts=json.dumps(stored, ensure_ascii=False, separators=(",", ":")),
                    recipients=len(emails),
                    organiser_id=organiser_id,
                    created_at=now,
                )
            )
        )
        by_language = " ".join(f"{code}={n}" for code, n in sorted(counts.items()))
        await record(
            db,
            organiser_id=organiser_id,
            action=AuditAction.NEWS_SEND,
            target_type="appeal",
            target_id=appeal["id"],
            detail=(
                f"update {update_id}: country={country or 'all'} recipients={len(emails)} ({by_language or '-'}) "
                f"languages={','.join(sorted(texts))}"
            ),
        )
    mailer.notify()
    return update_id, dict(sorted(counts.items()))


async def list_updates(db: Database, *, appeal_id: int) -> Sequence[Row]:
    return await db.fetch_all(
        news_updates.select().where(news_updates.c.appeal_id == appeal_id).order_by(news_updates.c.id.desc())
    )


# --- unsubscribe -----------------------------------------------------------------------------------


class UnsubscribeOutcome(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    ALREADY = "already"  # used before (or never asked for news): nothing changes
    GONE = "gone"  # no such record (purged, or the link belongs to an earlier incarnation)


async def news_record(db: Database, *, endorsement_id: int, nonce: str) -> Row | None:
    """The endorsement an unsubscribe link names."""
    return await db.fetch_one(e.select().where(e.c.id == endorsement_id, e.c.token_nonce == nonce))


async def unsubscribe(db: Database, *, endorsement_id: int, nonce: str) -> UnsubscribeOutcome:
    """No more news for this endorsement, at once: the mark, its unsent updates dropped, an audit row."""
    now = utcnow()
    async with db.write():
        changed = await db.fetch_one(
            e.update()
            .where(e.c.id == endorsement_id, e.c.token_nonce == nonce, e.c.news_unsubscribed_at.is_(None))
            .values(news_unsubscribed_at=now)
            .returning(e.c.id)
        )
        if changed is None:
            row = await news_record(db, endorsement_id=endorsement_id, nonce=nonce)
            return UnsubscribeOutcome.GONE if row is None else UnsubscribeOutcome.ALREADY
        await db.execute(
            outbox.delete().where(
                outbox.c.endorsement_id == endorsement_id,
                outbox.c.kind == NEWS_KIND,
                outbox.c.state.in_((OutboxState.QUEUED.value, OutboxState.FAILED.value)),
            )
        )
        await record(
            db,
            organiser_id=None,
            action=AuditAction.NEWS_UNSUBSCRIBE,
            target_type="endorsement",
            target_id=endorsement_id,
            detail="by the contact",
        )
    return UnsubscribeOutcome.UNSUBSCRIBED
