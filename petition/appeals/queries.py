from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from petition.appeals.about import (
    AboutError,
    Initiator,
    about,
    aware,
    deadline_instant,
    initiators_json,
    parse_date,
    parse_initiators,
    start_instant,
)
from petition.appeals.states import AppealStatus, Moderation
from petition.appeals.tables import appeal_texts, appeals
from petition.appeals.textfile import AppealTextFile, content_hash, read_text_file
from petition.db import Database, Row
from petition.i18n import DEFAULT_LANGUAGE
from petition.resources import package_path
from petition.schema import utcnow

DEMO_DIR = package_path("appeals", "demo")
DEMO_SLUG = "protect-deserters"


def past_deadline(now: dt.datetime) -> sa.ColumnElement[bool]:
    """An open or paused appeal whose deadline has passed: closed to new endorsements."""
    return sa.and_(
        appeals.c.status.in_((AppealStatus.OPEN.value, AppealStatus.PAUSED.value)),
        appeals.c.closes_at.is_not(None),
        appeals.c.closes_at <= now,
    )


def as_read(row: Row | None, *, now: dt.datetime | None = None) -> Row | None:
    """An appeal as everyone reads it: past its deadline its status is `closed` at once, before
    the housekeeping stores it (close_past_deadline)."""
    if row is None or row["status"] not in (AppealStatus.OPEN, AppealStatus.PAUSED):
        return row
    closes_at = aware(row["closes_at"])
    if closes_at is None or closes_at > (now or utcnow()):
        return row
    return {**dict(row), "status": AppealStatus.CLOSED.value}


async def get_appeal(db: Database, *, slug: str) -> Row | None:
    return as_read(await db.fetch_one(appeals.select().where(appeals.c.slug == slug)))


async def get_appeal_by_id(db: Database, *, appeal_id: int) -> Row | None:
    return as_read(await db.fetch_one(appeals.select().where(appeals.c.id == appeal_id)))


async def list_appeals(db: Database, *, public_only: bool = True) -> Sequence[Row]:
    query = appeals.select().order_by(appeals.c.created_at, appeals.c.id)
    if public_only:
        query = query.where(appeals.c.status != AppealStatus.DRAFT)
    now = utcnow()
    return [row for row in (as_read(r, now=now) for r in await db.fetch_all(query)) if row is not None]


async def current_text(db: Database, *, appeal: Row, language: str) -> Row | None:
    """The current text in `language`, else the appeal's default language, else English."""
    rows = await db.fetch_all(
        appeal_texts.select().where(appeal_texts.c.appeal_id == appeal["id"], appeal_texts.c.is_current == sa.true())
    )
    by_language = {row["language"]: row for row in rows}
    for code in (language, appeal["default_language"], DEFAULT_LANGUAGE):
        if code in by_language:
            return by_language[code]
    return rows[0] if rows else None


async def current_titles(db: Database, *, language: str) -> dict[int, str]:
    rows = await db.fetch_all(
        sa.select(appeal_texts.c.appeal_id, appeal_texts.c.language, appeal_texts.c.title).where(
            appeal_texts.c.is_current == sa.true()
        )
    )
    titles: dict[int, str] = {}
    for row in rows:
        if row["language"] == language or row["appeal_id"] not in titles:
            titles[row["appeal_id"]] = row["title"]
    return titles


async def appeal_titles(db: Database, *, appeal_id: int) -> dict[str, str]:
    """The appeal's current title in each language it has a text in."""
    rows = await db.fetch_all(
        sa.select(appeal_texts.c.language, appeal_texts.c.title).where(
            appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.is_current == sa.true()
        )
    )
    return {row["language"]: row["title"] for row in rows}


async def text_languages(db: Database, *, appeal_id: int) -> list[str]:
    rows = await db.fetch_all(
        sa.select(appeal_texts.c.language).where(
            appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.is_current == sa.true()
        )
    )
    return sorted(row["language"] for row in rows)


async def create_appeal(
    db: Database,
    *,
    slug: str,
    moderation: Moderation = Moderation.POST,
    status: AppealStatus = AppealStatus.OPEN,
    addressees: str = "",
    default_language: str = DEFAULT_LANGUAGE,
    initiators: Sequence[Initiator] = (),
    start: dt.date | None = None,
    deadline: dt.date | None = None,
) -> int:
    async with db.write():
        return int(
            await db.execute(
                appeals.insert().values(
                    slug=slug,
                    status=status.value,
                    moderation=moderation.value,
                    addressees=addressees,
                    default_language=default_language,
                    initiators=initiators_json(initiators),
                    opens_at=start_instant(start),
                    closes_at=deadline_instant(deadline),
                    created_at=utcnow(),
                )
            )
        )


async def set_about(
    db: Database, *, appeal_id: int, initiators: Sequence[Initiator], start: dt.date | None, deadline: dt.date | None
) -> None:
    """Who launched the appeal, when, and its deadline (None: none)."""
    async with db.write():
        await db.execute(
            appeals.update()
            .where(appeals.c.id == appeal_id)
            .values(
                initiators=initiators_json(initiators),
                opens_at=start_instant(start),
                closes_at=deadline_instant(deadline),
            )
        )


async def close_past_deadline(db: Database, *, now: dt.datetime | None = None) -> list[int]:
    """Store `closed` for every appeal past its deadline (the housekeeping's run); their ids."""
    now = now or utcnow()
    async with db.write():
        rows = await db.fetch_all(sa.select(appeals.c.id, appeals.c.status).where(past_deadline(now)))
        if rows:
            await db.execute(
                appeals.update()
                .where(appeals.c.id.in_([row["id"] for row in rows]), past_deadline(now))
                .values(status=AppealStatus.CLOSED.value)
            )
    return [int(row["id"]) for row in rows]


async def save_text(
    db: Database, *, appeal_id: int, language: str, title: str, addressees: str, body: str
) -> int | None:
    """Store a new current version of a text; an unchanged text adds nothing.

    Old versions stay, with their hashes: endorsements point at what they were shown.
    Returns the new version number, or None when nothing changed.
    """
    digest = content_hash(title, addressees, body)
    async with db.write():
        current = await db.fetch_one(
            appeal_texts.select().where(
                appeal_texts.c.appeal_id == appeal_id,
                appeal_texts.c.language == language,
                appeal_texts.c.is_current == sa.true(),
            )
        )
        if current is not None and current["content_hash"] == digest:
            return None
        latest = await db.fetch_val(
            sa.select(sa.func.max(appeal_texts.c.version)).where(
                appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.language == language
            )
        )
        version = int(latest or 0) + 1
        await db.execute(
            appeal_texts.update()
            .where(appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.language == language)
            .values(is_current=False)
        )
        await db.execute(
            appeal_texts.insert().values(
                appeal_id=appeal_id,
                language=language,
                version=version,
                title=title.strip(),
                addressees=addressees.strip(),
                body=body.strip() + "\n",
                content_hash=digest,
                is_current=True,
                created_at=utcnow(),
            )
        )
        return version


def text_about(text: AppealTextFile) -> tuple[tuple[Initiator, ...], dt.date | None, dt.date | None]:
    """A text file's initiators, start and deadline; AboutError says what is malformed."""
    initiators = parse_initiators(text.initiators)
    start = parse_date(text.starts, "starts")
    deadline = parse_date(text.deadline, "deadline")
    if start and deadline and deadline < start:
        raise AboutError("the deadline is before the start")
    return initiators, start, deadline


async def import_text(
    db: Database, *, text: AppealTextFile, moderation: Moderation = Moderation.POST
) -> tuple[int, int | None]:
    """Create the appeal if needed and store the file's text as its current version; the file's
    initiators, start and deadline, when it gives them, replace the appeal's (AboutError if malformed)."""
    initiators, start, deadline = text_about(text)
    appeal = await get_appeal(db, slug=text.slug)
    if appeal is None:
        appeal_id = await create_appeal(
            db,
            slug=text.slug,
            moderation=moderation,
            addressees=text.addressees,
            default_language=text.language,
            initiators=initiators,
            start=start,
            deadline=deadline,
        )
    else:
        appeal_id = appeal["id"]
        if initiators or start or deadline:
            current = about(appeal)
            await set_about(
                db,
                appeal_id=appeal_id,
                initiators=initiators or current.initiators,
                start=start or current.start,
                deadline=deadline or current.deadline,
            )
    version = await save_text(
        db, appeal_id=appeal_id, language=text.language, title=text.title, addressees=text.addressees, body=text.body
    )
    return appeal_id, version


async def ensure_demo_appeal(db: Database) -> None:
    """The demo appeal (post-moderated, open) with its texts from `demo/*.md`."""
    if await get_appeal(db, slug=DEMO_SLUG) is not None:
        return
    async with db.write():
        if db.dialect == "postgresql":
            # Web processes starting together: one creates it, the others wait here, then find it.
            await db.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('petition.demo_appeal'))"))
            if await get_appeal(db, slug=DEMO_SLUG) is not None:
                return
        files = sorted(DEMO_DIR.glob("*.md"), key=lambda p: (p.stem != "en", p.stem))
        for path in files:
            await import_text(db, text=read_text_file(path))


async def set_status(db: Database, *, appeal_id: int, status: AppealStatus) -> None:
    async with db.write():
        await db.execute(appeals.update().where(appeals.c.id == appeal_id).values(status=status.value))
