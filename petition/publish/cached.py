"""The public reads that every appeal page makes, through the short in-process cache.

Keys begin with the appeal's id so that `PublicCache.invalidate(appeal_id)` drops them
all; the appeal itself is cached by slug and dropped by a full invalidation.
"""

from __future__ import annotations

from collections.abc import Sequence

from petition.appeals.deliveries import CountryDelivery, public_deliveries
from petition.appeals.queries import current_text, get_appeal, get_appeal_by_id
from petition.db import Database, Row
from petition.publish.cache import PublicCache
from petition.publish.queries import Counts, ListVersion, count_public, list_named, named_version

NEWEST = 10


async def appeal_by_slug(cache: PublicCache, db: Database, *, slug: str) -> Row | None:
    async def load() -> Row | None:
        row = await get_appeal(db, slug=slug)
        return dict(row) if row is not None else None

    return await cache.get(("slug", slug), load)


async def appeal_by_id(cache: PublicCache, db: Database, *, appeal_id: int) -> Row | None:
    """As `appeal_by_slug`, by id (what a signed link's endorsement names); dropped with it."""

    async def load() -> Row | None:
        row = await get_appeal_by_id(db, appeal_id=appeal_id)
        return dict(row) if row is not None else None

    return await cache.get(("id", appeal_id), load)


def appeal_if_cached(cache: PublicCache, *, slug: str) -> Row | None:
    """The appeal as `appeal_by_slug` has it now, if it has it: no query."""
    row: Row | None = cache.peek(("slug", slug))
    return row


async def appeal_text(cache: PublicCache, db: Database, *, appeal: Row, language: str) -> Row | None:
    async def load() -> Row | None:
        row = await current_text(db, appeal=appeal, language=language)
        return dict(row) if row is not None else None

    return await cache.get((appeal["id"], "text", language), load)


async def listed_counts(cache: PublicCache, db: Database, *, appeal: Row) -> Counts:
    """The public counts (`public_counts`, with the cache's ANONYMOUS_COUNT_THRESHOLD)."""
    return await cache.get(
        (appeal["id"], "counts"), lambda: count_public(db, appeal=appeal, threshold=cache.anonymous_count_threshold)
    )


async def newest_named(cache: PublicCache, db: Database, *, appeal: Row) -> Sequence[Row]:
    async def load() -> Sequence[Row]:
        return [dict(r) for r in await list_named(db, appeal=appeal, limit=NEWEST)]

    return await cache.get((appeal["id"], "newest"), load)


async def list_version(
    cache: PublicCache, db: Database, *, appeal: Row, country: str | None, organisation_type: str | None
) -> ListVersion:
    """The version of a named list (what its ETags are made of), as fresh as the counts."""
    return await cache.get(
        (appeal["id"], "version", country, organisation_type),
        lambda: named_version(db, appeal=appeal, country=country, organisation_type=organisation_type),
    )


async def appeal_deliveries(cache: PublicCache, db: Database, *, appeal: Row) -> list[CountryDelivery]:
    """Per country, when its dossier was delivered and the answers (dropped with the appeal's entries)."""
    return await cache.get((appeal["id"], "deliveries"), lambda: public_deliveries(db, appeal_id=appeal["id"]))
