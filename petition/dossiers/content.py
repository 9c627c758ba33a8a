"""What a country's dossier holds, gathered from the database in one place.

Only listed endorsements count (`listed_states` of the appeal's moderation mode);
only `public` ones are named. Anonymous ones leave this module as a number, never
as a row, and only as the number the public may see for the country
(`petition.publish.queries.attributable_anonymous`): fewer than
ANONYMOUS_COUNT_THRESHOLD are not attributed to the country, so the dossier, its
canonical list (which the digest covers, see docs/dossiers.md) and its stored
counts say nothing about them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import sqlalchemy as sa

from petition import countries
from petition.appeals.tables import appeal_texts
from petition.db import Database, Row
from petition.endorsements.queries import listed_condition
from petition.endorsements.states import Visibility
from petition.endorsements.tables import countersignatures, endorsements
from petition.i18n import DEFAULT_LANGUAGE, LANGUAGES
from petition.identity.countersign import COUNTERSIGNED_HASH, countersigned_join, is_countersigned
from petition.identity.proofs import ProofState
from petition.identity.tables import domain_proofs
from petition.publish.queries import DEFAULT_ANONYMOUS_COUNT_THRESHOLD, attributable_anonymous, aware_utc
from petition.schema import utcnow
from petition.transparency import store as log_store

e = endorsements

CANONICAL_HEADER = "petition-dossier-list/1"

#: The language a country's members of parliament read, where the platform has it.
COUNTRY_LANGUAGES: dict[str, str] = {
    **dict.fromkeys(("DE", "AT", "CH", "LI"), "de"),
    **dict.fromkeys(("FR", "BE", "LU", "MC"), "fr"),
    **dict.fromkeys(("RU", "BY", "KZ", "KG"), "ru"),
    "UA": "uk",
    "PL": "pl",
    **dict.fromkeys(("ES", "AD"), "es"),
    **dict.fromkeys(("IT", "SM", "VA"), "it"),
}


def country_language(country: str) -> str:
    language = COUNTRY_LANGUAGES.get(country.upper(), DEFAULT_LANGUAGE)
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)  # slots: a dossier may hold 100,000 of them
class Signatory:
    name: str
    city: str
    organisation_type: str  # the code; labels are the template's business
    website: str
    endorsed_on: dt.date | None
    #: The domain a valid proof showed this organisation controls when the dossier was built
    #: (petition.identity), or "": printed beside its website, not part of the canonical list.
    domain: str = ""
    #: A second officer countersigned its public record as it is (petition.identity.countersign):
    #: printed beside its name, not part of the canonical list.
    countersigned: bool = False


@dataclass(frozen=True)
class LogCheckpoint:
    """The public log's latest checkpoint when the dossier was built (docs/transparency.md)."""

    size: int
    root: str  # base64, as the checkpoint note writes it

    @property
    def root_bytes(self) -> bytes:
        return base64.b64decode(self.root)


def parse_checkpoint_line(canonical: bytes) -> LogCheckpoint | None:
    """The `checkpoint` header line of a canonical list, if it has one (and it is well formed)."""
    for line in canonical.split(b"\n")[1:7]:
        if line.startswith(b"checkpoint\t"):
            parts = line.decode("ascii", "replace").split("\t")
            if len(parts) == 3 and parts[1].isdigit():
                try:
                    if len(base64.b64decode(parts[2], validate=True)) == 32:
                        return LogCheckpoint(int(parts[1]), parts[2])
                except ValueError:
                    return None
    return None


@dataclass(frozen=True)
class AppealText:
    language: str
    title: str
    addressees: str
    body: str  # Markdown


@dataclass(frozen=True)
class DossierContent:
    appeal_id: int
    appeal_slug: str
    country: str
    language: str
    texts: tuple[AppealText, ...]  # the country's language first, then English
    signatories: tuple[Signatory, ...]  # in the reader's collation order
    anonymous_count: int  # attributable to the country (0 below the threshold)
    generated_at: dt.datetime
    canonical_list: bytes = field(repr=False)
    list_sha256: str
    checkpoint: LogCheckpoint | None = None  # the public log's, at build time (in the list's header)
    original_language: str = DEFAULT_LANGUAGE  # the appeal's own language: its other texts are translations

    @property
    def named_count(self) -> int:
        return len(self.signatories)

    @property
    def total_count(self) -> int:
        return self.named_count + self.anonymous_count

    @property
    def title(self) -> str:
        return self.texts[0].title if self.texts else self.appeal_slug


def _escape_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def canonical_line(s: Signatory) -> str:
    return "\t".join(
        _escape_field(v)
        for v in (
            s.name,
            s.city,
            s.organisation_type,
            s.website,
            s.endorsed_on.isoformat() if s.endorsed_on else "",
        )
    )


def canonical_list(
    *,
    appeal_slug: str,
    country: str,
    signatories: Sequence[Signatory],
    anonymous_count: int,
    checkpoint: LogCheckpoint | None = None,
) -> bytes:
    """The exact bytes the list digest covers (format in docs/dossiers.md).

    Lines are sorted by code point, not by the reader's collation, so anyone can
    rebuild the list from the open data with `LC_ALL=C sort` (UTF-8 bytes sort in code
    point order, so the lines are sorted as the bytes they are written as). `anonymous_count`
    is the attributable one (`attributable_anonymous`), as the open data gives it: a smaller
    count would otherwise be one of few guesses away from a published digest.
    `checkpoint`: the public log's latest checkpoint at build time, as a `checkpoint` header
    line after `anonymous` (none when the log has none yet, so older lists keep their bytes).
    """
    lines = sorted(canonical_line(s).encode("utf-8") for s in signatories)
    head = [
        CANONICAL_HEADER,
        f"appeal\t{appeal_slug}",
        f"country\t{country}",
        f"named\t{len(lines)}",
        f"anonymous\t{anonymous_count}",
    ]
    if checkpoint is not None:
        head.append(f"checkpoint\t{checkpoint.size}\t{checkpoint.root}")
    return b"\n".join([*(line.encode("utf-8") for line in head), *lines, b""])


@cache
def _collator() -> object:
    import pyuca  # the Unicode Collation Algorithm with the CLDR root order (DUCET)

    return pyuca.Collator()


def collation_key(name: str) -> tuple[bytes, str]:
    """Unicode Collation Algorithm order; the exact string breaks ties so the order is total.

    pyuca's sort key is a tuple of weights; every DUCET weight, and every implicit weight
    pyuca computes, fits in 16 bits. Written as big-endian 16-bit numbers, the keys compare
    as bytes exactly as the tuples do (a shorter prefix first), in a sixth of the memory:
    a tuple of int objects took ~2 KB a name, ~200 MB while sorting 100,000 names.
    (`struct` refuses a weight that does not fit rather than ordering it wrongly.)
    """
    weights = _collator().sort_key(name)  # type: ignore[attr-defined]
    return struct.pack(f">{len(weights)}H", *weights), name


def sort_signatories(rows: Sequence[Signatory]) -> list[Signatory]:
    return sorted(rows, key=lambda s: (collation_key(s.name), s.city, s.website))


async def _texts(db: Database, *, appeal_id: int, language: str) -> tuple[AppealText, ...]:
    rows = await db.fetch_all(
        appeal_texts.select().where(appeal_texts.c.appeal_id == appeal_id, appeal_texts.c.is_current == sa.true())
    )
    by_language = {row["language"]: row for row in rows}
    wanted = [language] if language != DEFAULT_LANGUAGE else []
    wanted.append(DEFAULT_LANGUAGE)
    chosen = [by_language[code] for code in wanted if code in by_language]
    if not chosen and rows:
        chosen = [rows[0]]
    return tuple(
        AppealText(language=r["language"], title=r["title"], addressees=r["addressees"], body=r["body"]) for r in chosen
    )


async def gather_content(
    db: Database,
    *,
    appeal: Row,
    country: str,
    now: dt.datetime | None = None,
    anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD,
) -> DossierContent:
    """Everything one country's dossier shows, read in one consistent pass.

    `anonymous_threshold` is ANONYMOUS_COUNT_THRESHOLD: pass the configured one.
    """
    country = country.upper()
    if not countries.is_country(country):
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {country!r}")
    language = country_language(country)
    listed = sa.and_(
        e.c.appeal_id == appeal["id"],
        e.c.country == country,
        listed_condition(appeal["moderation"]),
    )
    proved = sa.and_(domain_proofs.c.endorsement_id == e.c.id, domain_proofs.c.state == ProofState.VERIFIED.value)
    rows = await db.fetch_values(
        sa.select(
            e.c.organisation_name,
            e.c.city,
            e.c.organisation_type,
            e.c.website,
            e.c.listed_at,
            domain_proofs.c.domain,
            COUNTERSIGNED_HASH,
        )
        .select_from(e.outerjoin(domain_proofs, proved).outerjoin(countersignatures, countersigned_join(e.c.id)))
        .where(listed, e.c.visibility == Visibility.PUBLIC.value)
    )
    anonymous = attributable_anonymous(
        int(
            await db.fetch_val(
                sa.select(sa.func.count()).select_from(e).where(listed, e.c.visibility != Visibility.PUBLIC.value)
            )
            or 0
        ),
        threshold=anonymous_threshold,
    )
    raw = [
        Signatory(
            name=name,
            city=city or "",
            organisation_type=sys.intern(organisation_type),
            website=website or "",
            endorsed_on=aware_utc(listed_at).date() if listed_at else None,
            domain=domain or "",
            countersigned=bool(countersigned_hash)
            and is_countersigned(
                {
                    "country": country,
                    "organisation_name": name,
                    "organisation_type": organisation_type,
                    "city": city,
                    "website": website,
                    "countersigned_hash": countersigned_hash,
                }
            ),
        )
        for name, city, organisation_type, website, listed_at, domain, countersigned_hash in rows
    ]
    del rows
    published = await log_store.latest(db)
    checkpoint = LogCheckpoint(published.size, base64.b64encode(published.root).decode("ascii")) if published else None
    # Collation keys for thousands of names are CPU work: off the event loop.
    signatories, data = await asyncio.to_thread(
        _sorted_and_canonical, raw, appeal["slug"], country, anonymous, checkpoint
    )
    return DossierContent(
        appeal_id=appeal["id"],
        appeal_slug=appeal["slug"],
        country=country,
        language=language,
        texts=await _texts(db, appeal_id=appeal["id"], language=language),
        signatories=tuple(signatories),
        anonymous_count=anonymous,
        generated_at=now or utcnow(),
        canonical_list=data,
        list_sha256=hashlib.sha256(data).hexdigest(),
        checkpoint=checkpoint,
        original_language=appeal["default_language"] or DEFAULT_LANGUAGE,
    )


def _sorted_and_canonical(
    raw: list[Signatory], slug: str, country: str, anonymous: int, checkpoint: LogCheckpoint | None
) -> tuple[list[Signatory], bytes]:
    ordered = sort_signatories(raw)
    return ordered, canonical_list(
        appeal_slug=slug, country=country, signatories=ordered, anonymous_count=anonymous, checkpoint=checkpoint
    )


async def countries_with_signatories(db: Database, *, appeal: Row, anonymous_threshold: int) -> list[str]:
    """Countries a dossier can be made for: a named organisation, or enough anonymous ones to be
    attributed (a dossier of nothing but a withheld count would itself say the country signed)."""
    rows = await db.fetch_all(
        sa.select(e.c.country, e.c.visibility, sa.func.count().label("n"))
        .where(e.c.appeal_id == appeal["id"], listed_condition(appeal["moderation"]))
        .group_by(e.c.country, e.c.visibility)
    )
    shown = {
        row["country"]
        for row in rows
        if row["visibility"] != Visibility.ANONYMOUS
        or attributable_anonymous(int(row["n"]), threshold=anonymous_threshold)
    }
    return sorted(shown)
