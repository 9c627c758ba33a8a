"""What the public sees: counts and named organisations of listed endorsements only."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from petition.db import Database, Row
from petition.endorsements.queries import listed_condition
from petition.endorsements.states import Visibility
from petition.endorsements.tables import countersignatures, endorsements
from petition.endorsements.vocabulary import normalise_name
from petition.identity.countersign import COUNTERSIGNED_HASH, countersigned_join
from petition.identity.proofs import SHOWN
from petition.identity.tables import domain_proofs
from petition.settings import Settings

e = endorsements

#: ANONYMOUS_COUNT_THRESHOLD's default, for code that is not handed the configured value.
DEFAULT_ANONYMOUS_COUNT_THRESHOLD: int = Settings.anonymous_count_threshold

#: The public columns; nothing else of an endorsement leaves the organisers' area.
PUBLIC_COLUMNS = (
    e.c.id,
    e.c.organisation_name,
    e.c.country,
    e.c.city,
    e.c.organisation_type,
    e.c.website,
    e.c.comment,
    e.c.listed_at,
    e.c.transparency_register,
    # A proved (or lapsed) domain: named organisations only, as everything here.
    domain_proofs.c.domain.label("proof_domain"),
    domain_proofs.c.state.label("proof_state"),
    domain_proofs.c.verified_at.label("proof_verified_at"),
    # A second officer's countersignature (petition.identity.countersign), if any.
    COUNTERSIGNED_HASH,
)
#: What PUBLIC_COLUMNS are read from: the endorsements with their shown domain proof, if any
#: (one per endorsement at most).
PUBLIC_FROM = e.outerjoin(
    domain_proofs, sa.and_(domain_proofs.c.endorsement_id == e.c.id, domain_proofs.c.state.in_(SHOWN))
).outerjoin(countersignatures, countersigned_join(e.c.id))


@dataclass(frozen=True)
class Counts:
    """Listed endorsements per country; `unattributed` ones count in the total but in no country.

    `count_listed` gives the raw counts (for organisers); `public_counts` turns them into what
    the public may see, the only kind the public side reads.
    """

    total: int
    by_country: dict[str, int]  # named and anonymous
    anonymous_by_country: dict[str, int]
    unattributed: int = 0  # anonymous, from countries with fewer than the threshold

    @property
    def anonymous_total(self) -> int:
        return sum(self.anonymous_by_country.values()) + self.unattributed


def attributable_anonymous(count: int, *, threshold: int) -> int:
    """How many anonymous endorsements may be attributed to their country in public: all or none.

    One anonymous organisation from Belarus is easy to guess; "a few from other countries" is
    not. Below the threshold (ANONYMOUS_COUNT_THRESHOLD) a country's anonymous ones are not
    attributed to it anywhere public: not in counts, the chart, open data, dossiers or /verify.
    """
    return count if count >= threshold else 0


def public_counts(raw: Counts, *, threshold: int) -> Counts:
    """The counts the public sees: every listed endorsement in the total, but a country's
    anonymous ones in `by_country` only when there are at least `threshold` of them."""
    by_country: dict[str, int] = {}
    anonymous: dict[str, int] = {}
    unattributed = raw.unattributed
    for country, n in raw.by_country.items():
        hidden = raw.anonymous_by_country.get(country, 0)
        shown = attributable_anonymous(hidden, threshold=threshold)
        unattributed += hidden - shown
        if shown:
            anonymous[country] = shown
        if n - hidden + shown:
            by_country[country] = n - hidden + shown
    return Counts(
        total=sum(by_country.values()) + unattributed,
        by_country=_ranked(by_country),
        anonymous_by_country=dict(sorted(anonymous.items())),
        unattributed=unattributed,
    )


def _ranked(by_country: dict[str, int]) -> dict[str, int]:
    return dict(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0])))


async def count_listed(db: Database, *, appeal: Row) -> Counts:
    """The raw counts, every anonymous one in its country: for the organisers' area only."""
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
    return Counts(
        total=sum(by_country.values()),
        by_country=_ranked(by_country),
        anonymous_by_country=dict(sorted(anonymous.items())),
    )


async def count_public(db: Database, *, appeal: Row, threshold: int) -> Counts:
    return public_counts(await count_listed(db, appeal=appeal), threshold=threshold)


def _named_conditions(
    appeal: Row, *, country: str | None, organisation_type: str | None, search: str | None
) -> list[sa.ColumnElement[bool]]:
    conditions = [
        e.c.appeal_id == appeal["id"],
        listed_condition(appeal["moderation"]),
        e.c.visibility == Visibility.PUBLIC.value,
    ]
    if country:
        conditions.append(e.c.country == country)
    if organisation_type:
        conditions.append(e.c.organisation_type == organisation_type)
    if search:
        # Every word must occur, ignoring case, accents, punctuation and spaces:
        # "pro asyl" and "asyl" find "PRO ASYL", "ev" finds "Connection e.V.".
        squeezed = sa.func.replace(e.c.name_normalised, " ", "")
        for word in normalise_name(search).split()[:10]:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(squeezed.like(f"%{escaped}%", escape="\\"))
    return conditions


def _named(
    appeal: Row, *, country: str | None, organisation_type: str | None, search: str | None
) -> sa.Select[tuple[object, ...]]:
    return (
        sa.select(*PUBLIC_COLUMNS)
        .select_from(PUBLIC_FROM)
        .where(*_named_conditions(appeal, country=country, organisation_type=organisation_type, search=search))
    )


def _newest_first(query: sa.Select[tuple[object, ...]]) -> sa.Select[tuple[object, ...]]:
    # Every listed endorsement has its listed_at (set when it became listed); saying so lets
    # the backward scan of ix_endorsements_newest skip the unlisted rows, whose NULLs come first.
    return query.where(e.c.listed_at.is_not(None)).order_by(e.c.listed_at.desc(), e.c.id.desc())


async def list_named(
    db: Database,
    *,
    appeal: Row,
    country: str | None = None,
    organisation_type: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
    newest_first: bool = True,
) -> Sequence[Row]:
    query = _named(appeal, country=country, organisation_type=organisation_type, search=search)
    if newest_first:
        query = _newest_first(query)
    else:
        query = query.order_by(e.c.country, e.c.name_normalised, e.c.id)
    return await db.fetch_all(query.offset(offset).limit(limit))


#: Rows per query when a whole list is streamed (the CSV): what one download holds in memory at
#: a time. Fewer rows per query cost more queries; more, a longer turn of the event loop for
#: `databases` to wrap them (the CSV itself is encoded in smaller slices: views.ENCODE_SLICE).
STREAM_CHUNK = 250


async def stream_named(
    db: Database,
    *,
    appeal: Row,
    country: str | None = None,
    organisation_type: str | None = None,
    chunk: int = STREAM_CHUNK,
) -> AsyncIterator[Sequence[Row]]:
    """Every named organisation, newest first (as `list_named`), `chunk` rows per query.

    Keyset pagination down ix_endorsements_newest: each query starts below the last row
    of the one before, so none reads more than its chunk whatever the list's length, no
    connection is held between chunks (a slow client holds none of the pool), and a row
    listed or withdrawn meanwhile is neither repeated nor makes another one skipped.
    `listed_at <= t` is the bound both backends' planners use to start the backward scan
    there; the `id` condition only sorts out the rows that share that instant.
    """
    query = _newest_first(_named(appeal, country=country, organisation_type=organisation_type, search=None))
    names = [column.name for column in PUBLIC_COLUMNS]
    last: Row | None = None
    while True:
        page = query
        if last is not None:
            at, below = aware_utc(last["listed_at"]), last["id"]
            page = query.where(e.c.listed_at <= at, sa.or_(e.c.listed_at < at, e.c.id < below))
        rows = [dict(zip(names, values, strict=True)) for values in await db.fetch_values(page.limit(chunk))]
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        last = rows[-1]


def aware_utc(when: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime: `databases` hands PostgreSQL's back naive
    (it skips the column type's result processing there), SQLite's aware."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


@dataclass(frozen=True)
class ListVersion:
    """What changes whenever the named list of a filter changes: known without reading the list.

    Every change to an endorsement sets its `updated_at`; one that leaves the list changes
    the count and the sum of ids, one that joins it (or is edited) the latest `updated_at`.
    """

    count: int
    id_sum: int
    last_change: str


async def named_version(
    db: Database, *, appeal: Row, country: str | None = None, organisation_type: str | None = None
) -> ListVersion:
    row = await db.fetch_one(
        sa.select(
            sa.func.count().label("n"), sa.func.sum(e.c.id).label("ids"), sa.func.max(e.c.updated_at).label("changed")
        ).where(*_named_conditions(appeal, country=country, organisation_type=organisation_type, search=None))
    )
    assert row is not None
    return ListVersion(count=int(row["n"] or 0), id_sum=int(row["ids"] or 0), last_change=str(row["changed"]))


async def count_named(
    db: Database,
    *,
    appeal: Row,
    country: str | None = None,
    organisation_type: str | None = None,
    search: str | None = None,
) -> int:
    query = _named(appeal, country=country, organisation_type=organisation_type, search=search)
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


def named_total(counts: Counts, *, country: str | None = None) -> int:
    """Named organisations, from the counts (listed minus anonymous): no second count query.

    Public counts give the same answer: below-threshold anonymous ones leave a country's count
    and its anonymous count alike, and `anonymous_total` includes the unattributed ones.
    """
    if country is not None:
        return counts.by_country.get(country, 0) - counts.anonymous_by_country.get(country, 0)
    return counts.total - counts.anonymous_total
