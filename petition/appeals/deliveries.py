"""What the public sees of an appeal's deliveries: per country, when its dossier was delivered,
to how many offices, and the answers organisers recorded (petition.delivery sends; the appeal page
and `/api/appeals/{slug}/deliveries` read this). No recipient's address is here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from petition.appeals.tables import deliveries, delivery_answers
from petition.db import Database


@dataclass(frozen=True)
class Answer:
    author: str
    answered_on: dt.date
    summary: str
    document_url: str


@dataclass
class CountryDelivery:
    country: str
    delivered_at: dt.datetime
    offices: int
    pdf_sha256: str
    answers: list[Answer] = field(default_factory=list)


async def public_deliveries(db: Database, *, appeal_id: int) -> list[CountryDelivery]:
    """Per country (by code), its latest delivery's date, offices and dossier, and every answer
    recorded for any of its deliveries, oldest first."""
    rows = await db.fetch_all(deliveries.select().where(deliveries.c.appeal_id == appeal_id).order_by(deliveries.c.id))
    latest: dict[str, CountryDelivery] = {}
    country_of: dict[int, str] = {}
    for row in rows:
        country_of[int(row["id"])] = row["country"]
        latest[row["country"]] = CountryDelivery(
            country=row["country"],
            delivered_at=row["created_at"],
            offices=int(row["offices"]),
            pdf_sha256=row["pdf_sha256"],
        )
    if country_of:
        for answer in await db.fetch_all(
            delivery_answers.select()
            .where(delivery_answers.c.delivery_id.in_(list(country_of)))
            .order_by(delivery_answers.c.answered_on, delivery_answers.c.id)
        ):
            latest[country_of[int(answer["delivery_id"])]].answers.append(
                Answer(answer["author"], answer["answered_on"], answer["summary"], answer["document_url"])
            )
    return [latest[code] for code in sorted(latest)]


async def delivered_sha256(db: Database, *, appeal_id: int, sha256: str) -> bool:
    """Whether a dossier with this digest was delivered for the appeal (so it may be downloaded)."""
    found = await db.fetch_val(
        sa.select(deliveries.c.id)
        .where(deliveries.c.appeal_id == appeal_id, deliveries.c.pdf_sha256 == sha256)
        .limit(1)
    )
    return found is not None
