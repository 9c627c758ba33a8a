"""What the public sees: counts and named organisations of listed endorsements only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from petition.db import Database, Row
from petition.endorsements.queries import listed_condition
from petition.endorsements.states import Visibility
from petition.endorsements.tables import endorsements

e = endorsements

#: The public columns; nothing else of an endorsement leaves the organisers' area.
PUBLIC_COLUMNS = (e.c.id, e.c.organisation_name, e.c.country, e.c.city, e.c.organisation_type,
                  e.c.website, e.c.comment, e.c.listed_at)


@dataclass(frozen=True)
class Counts:
    total: int
    by_country: dict[str, int]
    anonymous_by_country: dict[str, int]

    @property
    def anonymous_total(self) -> int:
        return sum(self.anonymous_by_country.values())


async def count_listed(db: Database, *, appeal: Row) -> Counts:
    rows = await db.fetch_all(
        sa.select(e.c.country, e.c.visibility, sa.func.count().label("n"))
        .where(e.c.appeal_id == appeal["id"], listed_condition(appeal["moderation"]))
        .group_by(e.c.country, e.c.visibility)
    )
    by_country: dict[str, int] = {}
    anonymous: dict[str, int] = {}
    for row in rows:
        n = int(row["n"])
        by_country[row["country"]] = by_country.get(row["country"], 0) + n
        if row["visibility"] == Visibility.ANONYMOUS:
            anonymous[row["country"]] = anonymous.get(row["country"], 0) + n
    ordered = dict(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0])))
    return Counts(total=sum(by_country.values()), by_country=ordered,
                  anonymous_by_country=dict(sorted(anonymous.items())))


def _named(appeal: Row, *, country: str | None, organisation_type: str | None,
           search: str | None) -> sa.Select[tuple[object, ...]]:
    query = sa.select(*PUBLIC_COLUMNS).where(
        e.c.appeal_id == appeal["id"],
        listed_condition(appeal["moderation"]),
        e.c.visibility == Visibility.PUBLIC.value,
    )
    if country:
        query = query.where(e.c.country == country)
    if organisation_type:
        query = query.where(e.c.organisation_type == organisation_type)
    if search:
        from petition.endorsements.forms import normalise_name

        # Every word must occur, ignoring case, accents, punctuation and spaces:
        # "pro asyl" and "asyl" find "PRO ASYL", "ev" finds "Connection e.V.".
        squeezed = sa.func.replace(e.c.name_normalised, " ", "")
        for word in normalise_name(search).split()[:10]:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(squeezed.like(f"%{escaped}%", escape="\\"))
    return query


async def list_named(db: Database, *, appeal: Row, country: str | None = None,
                     organisation_type: str | None = None, search: str | None = None,
                     offset: int = 0, limit: int = 50, newest_first: bool = True) -> Sequence[Row]:
    query = _named(appeal, country=country, organisation_type=organisation_type, search=search)
    if newest_first:
        # Every listed endorsement has its listed_at (set when it became listed); saying so lets
        # the backward scan of ix_endorsements_newest skip the unlisted rows, whose NULLs come first.
        query = query.where(e.c.listed_at.is_not(None)).order_by(e.c.listed_at.desc(), e.c.id.desc())
    else:
        query = query.order_by(e.c.country, e.c.name_normalised, e.c.id)
    return await db.fetch_all(query.offset(offset).limit(limit))


async def count_named(db: Database, *, appeal: Row, country: str | None = None,
                      organisation_type: str | None = None, search: str | None = None) -> int:
    query = _named(appeal, country=country, organisation_type=organisation_type, search=search)
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


def named_total(counts: Counts, *, country: str | None = None) -> int:
    """Named organisations, from the counts (listed minus anonymous): no second count query."""
    if country is not None:
        return counts.by_country.get(country, 0) - counts.anonymous_by_country.get(country, 0)
    return counts.total - counts.anonymous_total
