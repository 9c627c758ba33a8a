"""Appeal management queries for organisers (the public side is petition.appeals.queries)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa

from petition.appeals.states import Moderation
from petition.appeals.tables import appeal_texts, appeals
from petition.db import Database, Row
from petition.endorsements.public_record import note_appeal
from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import endorsements
from petition.schema import UTCDateTime, utcnow

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")


def valid_slug(slug: str) -> bool:
    return bool(SLUG_RE.match(slug))


async def update_settings(
    db: Database, *, appeal_id: int, moderation: Moderation, default_language: str, addressees: str
) -> None:
    async with db.write():
        await db.execute(
            appeals.update()
            .where(appeals.c.id == appeal_id)
            .values(moderation=moderation.value, default_language=default_language, addressees=addressees)
        )
        # What confirmation alone lists depends on it. A confirmed endorsement enters the list or
        # leaves it now: its public "endorsed" date says so (every listed endorsement has one, and
        # the newest-first lists read only those), and the log follows the list.
        e = endorsements
        confirmed = sa.and_(e.c.appeal_id == appeal_id, e.c.state == EndorsementState.CONFIRMED.value)
        if moderation == Moderation.POST:
            stamp = sa.literal(utcnow(), type_=UTCDateTime())
            await db.execute(e.update().where(confirmed, e.c.listed_at.is_(None)).values(listed_at=stamp))
        else:
            await db.execute(e.update().where(confirmed, e.c.listed_at.is_not(None)).values(listed_at=None))
        await note_appeal(db, appeal_id)


async def current_texts(db: Database, *, appeal_id: int) -> dict[str, Row]:
    rows = await db.fetch_all(
        appeal_texts.select().where(appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.is_current == sa.true())
    )
    return {row["language"]: row for row in rows}


async def text_versions(db: Database, *, appeal_id: int, language: str) -> Sequence[Row]:
    """Every version of a text, newest first, with how many endorsements were shown each."""
    shown = (
        sa.select(sa.func.count())
        .select_from(endorsements)
        .where(
            endorsements.c.appeal_id == appeal_texts.c.appeal_id,
            endorsements.c.text_language == appeal_texts.c.language,
            endorsements.c.text_hash == appeal_texts.c.content_hash,
        )
        .scalar_subquery()
    )
    return await db.fetch_all(
        sa.select(appeal_texts, shown.label("endorsements_shown"))
        .where(appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.language == language)
        .order_by(appeal_texts.c.version.desc())
    )
