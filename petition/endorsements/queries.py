"""Reading endorsements, and sending a confirmation link again; every state change is in
`petition.endorsements.lifecycle`."""

from __future__ import annotations

import sqlalchemy as sa

from petition.appeals.tables import appeals
from petition.db import Database, Row
from petition.endorsements.emails import confirmation_context
from petition.endorsements.lifecycle import link_target
from petition.endorsements.states import listed_states
from petition.endorsements.tables import endorsements
from petition.outbox.messages import Mailer
from petition.tokens import Tokens


async def get_endorsement(db: Database, *, endorsement_id: int) -> Row | None:
    return await db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))


async def resend_confirmation(db: Database, *, mailer: Mailer, tokens: Tokens, endorsement_id: int, nonce: str) -> bool:
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
        text = await current_text(
            db, appeal={"id": appeal["id"], "default_language": shown["text_language"]}, language=shown["language"]
        )
        await mailer.queue(
            db,
            name="confirm",
            to=shown["contact_email"],
            language=shown["language"],
            endorsement_id=row["id"],
            context=confirmation_context(
                mailer=mailer,
                title=text["title"] if text else appeal["slug"],
                nonce=nonce,
                facts=shown,
                language=shown["language"],
            ),
        )
    mailer.notify()
    return True


def listed_condition(moderation: str) -> sa.ColumnElement[bool]:
    return endorsements.c.state.in_(listed_states(moderation))
