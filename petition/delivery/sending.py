"""Sending one country's signed dossier to its addressees, and keeping track of it.

A delivery is one email per recipient through the outbox (kind `delivery`): the covering letter
(a template per language, editable per delivery), then a fixed part the organiser cannot edit
away — the link to the signed dossier on the site, its SHA-256, where to verify it, and how many
organisations it holds, named and not named. Anonymous organisations are never named to
recipients: the dossier holds only their count. The emails are spaced DELIVERY_INTERVAL seconds
apart (`next_attempt_at`), so a relay sees a trickle, not a burst, and the spacing survives a
restart. Each recipient's status (queued, sent, failed) is read back from its outbox row and
kept with the recipient (`sync_statuses`) before the retention purge forgets the email.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa

from petition import countries, i18n
from petition.appeals.queries import appeal_titles
from petition.appeals.tables import deliveries, delivery_answers
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Database, Row
from petition.delivery.addressees import BODIES, Recipient, recipients_for
from petition.delivery.emails import delivery_context
from petition.delivery.tables import delivery_recipients
from petition.dossiers.content import country_language
from petition.dossiers.states import DossierState
from petition.dossiers.tables import dossiers
from petition.outbox.messages import Mailer, outbox_values
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.schema import utcnow

DELIVERY_KIND = "delivery"
MAX_SUBJECT = 200
MAX_LETTER = 20_000


class NothingToSend(ValueError):
    """No signed dossier for the country, or no recipient who is not suppressed."""


async def latest_dossier(db: Database, *, appeal_id: int, country: str) -> Row | None:
    """The country's latest signed dossier (built and signed: `done`)."""
    return await db.fetch_one(
        dossiers.select()
        .where(
            dossiers.c.appeal_id == appeal_id,
            dossiers.c.country == country,
            dossiers.c.state == DossierState.DONE.value,
            dossiers.c.pdf_sha256.is_not(None),
        )
        .order_by(dossiers.c.finished_at.desc(), dossiers.c.id.desc())
        .limit(1)
    )


async def appeal_title(db: Database, *, appeal: Row, language: str) -> str:
    """The appeal's current title in `language`, else in its default language, else its slug."""
    rows = await appeal_titles(db, appeal_id=appeal["id"])
    return str(rows.get(language) or rows.get(appeal["default_language"]) or appeal["slug"])


def default_letter(*, language: str, title: str, country: str, named: int, anonymous: int) -> tuple[str, str]:
    """The covering letter's subject and text in `language`, for the organiser to edit."""
    with i18n.language(language):
        _ = i18n.gettext
        place = countries.name(country, language)
        subject = _("The appeal “%(title)s”: the organisations of %(country)s", title=title, country=place)
        count = i18n.ngettext(
            "%(num)s organisation from %(country)s has endorsed it by name",
            "%(num)s organisations from %(country)s have endorsed it by name",
            named,
            country=place,
        )
        more = (
            " "
            + i18n.ngettext(
                "and %(num)s more asked not to be named.",
                "and %(num)s more asked not to be named.",
                anonymous,
            )
            if anonymous
            else "."
        )
        letter = "\n\n".join(
            (
                _("Dear Member of Parliament,"),
                _(
                    "We are writing to you about the appeal “%(title)s”, which civil society organisations "
                    "from more than twenty countries have endorsed.",
                    title=title,
                )
                + " "
                + count
                + more,
                _(
                    "The signed dossier below lists them. We ask you to read the appeal and to support its "
                    "demands in your work. We would be glad to hear your answer."
                ),
                _("Yours sincerely,"),
            )
        )
    return subject, letter


@dataclass(frozen=True)
class Plan:
    """What a delivery would do: checked before anything is sent."""

    dossier: Row | None
    recipients: list[Recipient]
    language: str

    @property
    def sendable(self) -> list[Recipient]:
        return [r for r in self.recipients if not r.suppressed]


async def plan(
    db: Database,
    *,
    appeal: Row,
    country: str,
    bodies: Sequence[str] = BODIES,
    committee: str | None = None,
    group: str | None = None,
) -> Plan:
    return Plan(
        dossier=await latest_dossier(db, appeal_id=appeal["id"], country=country),
        recipients=await recipients_for(db, country=country, bodies=bodies, committee=committee, group=group),
        language=country_language(country),
    )


def dossier_url(mailer: Mailer, *, slug: str, sha256: str) -> str:
    return mailer.settings.url_for_path(f"/appeals/{slug}/dossiers/{sha256}.pdf")


async def send(
    db: Database,
    *,
    mailer: Mailer,
    appeal: Row,
    country: str,
    subject: str,
    letter: str,
    bodies: Sequence[str] = BODIES,
    committee: str | None = None,
    group: str | None = None,
    organiser_id: int | None,
    interval: float,
) -> int:
    """Queue one email per recipient, record the delivery, its recipients and an audit row; its id.

    NothingToSend when the country has no signed dossier or no recipient who is not suppressed.
    """
    now = utcnow()
    async with db.write():
        the_plan = await plan(db, appeal=appeal, country=country, bodies=bodies, committee=committee, group=group)
        dossier = the_plan.dossier
        if dossier is None:
            raise NothingToSend("no signed dossier for this country yet")
        recipients = the_plan.sendable
        if not recipients:
            raise NothingToSend("no recipient for this country (or all are suppressed)")
        language = the_plan.language
        title = await appeal_title(db, appeal=appeal, language=language)
        used = sorted({r.body for r in recipients})
        delivery_id = int(
            await db.execute(
                deliveries.insert().values(
                    appeal_id=appeal["id"],
                    country=country,
                    dossier_id=dossier["id"],
                    pdf_sha256=dossier["pdf_sha256"],
                    language=language,
                    subject=subject,
                    letter=letter,
                    bodies="both" if len(used) > 1 else used[0],
                    offices=len(recipients),
                    named_count=int(dossier["signatory_count"]),
                    anonymous_count=int(dossier["anonymous_count"]),
                    organiser_id=organiser_id,
                    created_at=now,
                )
            )
        )
        link = dossier_url(mailer, slug=appeal["slug"], sha256=dossier["pdf_sha256"])
        for index, recipient in enumerate(recipients):
            values = outbox_values(
                mailer.settings,
                name=DELIVERY_KIND,
                to=recipient.email,
                language=language,
                context=delivery_context(
                    mailer=mailer,
                    subject=subject,
                    letter=letter,
                    title=title,
                    country=country,
                    dossier_url=link,
                    sha256=dossier["pdf_sha256"],
                    named=int(dossier["signatory_count"]),
                    anonymous=int(dossier["anonymous_count"]),
                    language=language,
                ),
            )
            # Spaced out: the relay sees one email every `interval` seconds, restart or not.
            values["next_attempt_at"] = now + dt.timedelta(seconds=interval * index)
            outbox_id = int(await db.execute(outbox.insert().values(**values)))
            await db.execute(
                delivery_recipients.insert().values(
                    delivery_id=delivery_id,
                    body=recipient.body,
                    name=recipient.name,
                    email=recipient.email,
                    political_group=recipient.group,
                    committees=recipient.committees,
                    status=OutboxState.QUEUED.value,
                    outbox_id=outbox_id,
                )
            )
        await record(
            db,
            organiser_id=organiser_id,
            action=AuditAction.DELIVERY_SEND,
            target_type="appeal",
            target_id=appeal["id"],
            detail=(
                f"delivery {delivery_id}: country={country} dossier={dossier['id']} "
                f"sha256={dossier['pdf_sha256'][:16]} recipients={len(recipients)} bodies={','.join(used)} "
                f"named={dossier['signatory_count']} anonymous={dossier['anonymous_count']}"
            ),
        )
    mailer.notify()
    return delivery_id


async def sync_statuses(db: Database, *, delivery_ids: Sequence[int]) -> None:
    """Copy each recipient's email state from the outbox (which the retention purge empties)."""
    if not delivery_ids:
        return
    r = delivery_recipients.c
    rows = await db.fetch_all(
        sa.select(r.id, r.status, outbox.c.state, outbox.c.sent_at)
        .select_from(delivery_recipients.join(outbox, outbox.c.id == r.outbox_id))
        .where(r.delivery_id.in_(list(delivery_ids)))
    )
    changed = [row for row in rows if row["status"] != _status(row["state"])]
    if not changed:
        return
    async with db.write():
        for row in changed:
            await db.execute(
                delivery_recipients.update()
                .where(r.id == row["id"])
                .values(status=_status(row["state"]), sent_at=_aware(row["sent_at"]))
            )


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    """A stored time as an aware UTC datetime (`databases` hands PostgreSQL's back naive)."""
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _status(outbox_state: str) -> str:
    if outbox_state == OutboxState.SENT.value:
        return "sent"
    if outbox_state == OutboxState.FAILED.value:
        return "failed"
    return "queued"


async def deliveries_of(db: Database, *, appeal_id: int, country: str | None = None) -> Sequence[Row]:
    query = deliveries.select().where(deliveries.c.appeal_id == appeal_id)
    if country:
        query = query.where(deliveries.c.country == country)
    return await db.fetch_all(query.order_by(deliveries.c.id.desc()))


async def recipients_of(db: Database, *, delivery_id: int) -> Sequence[Row]:
    r = delivery_recipients.c
    return await db.fetch_all(delivery_recipients.select().where(r.delivery_id == delivery_id).order_by(r.name, r.id))


async def status_counts(db: Database, *, delivery_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    r = delivery_recipients.c
    counts: dict[int, dict[str, int]] = {}
    if delivery_ids:
        for row in await db.fetch_all(
            sa.select(r.delivery_id, r.status, sa.func.count().label("n"))
            .where(r.delivery_id.in_(list(delivery_ids)))
            .group_by(r.delivery_id, r.status)
        ):
            counts.setdefault(int(row["delivery_id"]), {})[row["status"]] = int(row["n"])
    return counts


# --- answers -----------------------------------------------------------------------------------


def valid_document_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and len(value) <= 500


async def record_answer(
    db: Database,
    *,
    delivery: Row,
    author: str,
    answered_on: dt.date,
    summary: str,
    document_url: str,
    organiser_id: int | None,
) -> int:
    async with db.write():
        answer_id = int(
            await db.execute(
                delivery_answers.insert().values(
                    delivery_id=delivery["id"],
                    author=author,
                    answered_on=answered_on,
                    summary=summary,
                    document_url=document_url,
                    organiser_id=organiser_id,
                    created_at=utcnow(),
                )
            )
        )
        await record(
            db,
            organiser_id=organiser_id,
            action=AuditAction.DELIVERY_ANSWER,
            target_type="appeal",
            target_id=delivery["appeal_id"],
            detail=f"delivery {delivery['id']}: answer {answer_id} country={delivery['country']}",
        )
    return answer_id


async def answers_of(db: Database, *, delivery_ids: Sequence[int]) -> Sequence[Row]:
    if not delivery_ids:
        return []
    a = delivery_answers.c
    return await db.fetch_all(
        delivery_answers.select().where(a.delivery_id.in_(list(delivery_ids))).order_by(a.answered_on, a.id)
    )
