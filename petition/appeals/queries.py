from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from petition.appeals.states import AppealStatus, Moderation
from petition.appeals.tables import appeal_texts, appeals
from petition.appeals.textfile import AppealTextFile, content_hash, read_text_file
from petition.db import Database, Row
from petition.i18n import DEFAULT_LANGUAGE
from petition.resources import package_path
from petition.schema import utcnow

DEMO_DIR = package_path("appeals", "demo")
DEMO_SLUG = "protect-deserters"


async def get_appeal(db: Database, *, slug: str) -> Row | None:
    return await db.fetch_one(appeals.select().where(appeals.c.slug == slug))


async def get_appeal_by_id(db: Database, *, appeal_id: int) -> Row | None:
    return await db.fetch_one(appeals.select().where(appeals.c.id == appeal_id))


async def list_appeals(db: Database, *, public_only: bool = True) -> Sequence[Row]:
    query = appeals.select().order_by(appeals.c.created_at, appeals.c.id)
    if public_only:
        query = query.where(appeals.c.status != AppealStatus.DRAFT)
    return await db.fetch_all(query)


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
                    created_at=utcnow(),
                )
            )
        )


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


async def import_text(
    db: Database, *, text: AppealTextFile, moderation: Moderation = Moderation.POST
) -> tuple[int, int | None]:
    """Create the appeal if needed and store the file's text as its current version."""
    appeal = await get_appeal(db, slug=text.slug)
    if appeal is None:
        appeal_id = await create_appeal(
            db, slug=text.slug, moderation=moderation, addressees=text.addressees, default_language=text.language
        )
    else:
        appeal_id = appeal["id"]
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
