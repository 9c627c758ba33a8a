"""Member lists: reading a CSV (`petition addressees import FILE.csv --body ep|pace`), and who
receives a country's dossier.

The CSV (docs/delivery.md) has a header row with at least `country`, `name` and `email`, and
optionally `group` and `committees` (codes separated by `;`). It also reads the columns of the
community files of MEPs: `country_code`/`iso`, `full_name` or `first_name` + `last_name`,
`e-mail`/`mail`, `political_group`/`epg`, and one column per committee, headed by the committee's
code (`DROI`, `PETI`, `LIBE`…), whose non-empty cell (`member`, `substitute`, `x`, `1`) names the
member to it. An office that represents no country (a committee's secretariat) leaves `country`
empty.

An import is all or nothing: one malformed row (no name, an address that is no address, a
country that is no ISO code) fails it with every problem listed by line, and the list stored
before stays as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from email_validator import EmailNotValidError

from petition import countries
from petition.db import Database, Row
from petition.delivery.tables import addressee_imports, addressees, delivery_routes, suppressions
from petition.endorsements.forms import normalised_email
from petition.endorsements.vocabulary import canonical_email
from petition.schema import utcnow

BODIES = ("ep", "pace")
BODY_NAMES = {"ep": "European Parliament", "pace": "Parliamentary Assembly of the Council of Europe"}
#: A member list older than this is stale: organisers are warned before they send.
STALE_AFTER = dt.timedelta(days=180)
#: The most rows one import takes (the EP has 720 members; PACE 306 and as many substitutes).
MAX_ROWS = 20_000
#: A committee's code: letters and digits, as the bodies write them (DROI, PETI, AFCO, MIG…).
COMMITTEE = re.compile(r"^[A-Z][A-Z0-9-]{1,19}$")

_ALIASES = {
    "country": ("country", "country_code", "iso", "iso_code", "country_iso"),
    "name": ("name", "full_name", "fullname"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "family_name", "surname"),
    "email": ("email", "e-mail", "mail", "email_address"),
    "group": ("group", "political_group", "epg", "eu_group"),
    "committees": ("committees", "committee"),
}
#: Header cells that are no committee column, though written in capitals.
_NOT_COMMITTEES = {"ID", "URL", "TWITTER", "FACEBOOK", "PHONE", "FAX", "PHOTO"}
_FALSE = {"", "0", "no", "false", "-", "n"}


class ImportError_(ValueError):  # noqa: N801 - not the builtin
    """The file cannot be imported; `problems` lists each by line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems[:5]))
        self.problems = list(problems)


@dataclass
class Member:
    country: str
    name: str
    email: str
    group: str = ""
    committees: list[str] = field(default_factory=list)


def committees_cell(codes: Iterable[str]) -> str:
    """How committees are stored: ";DROI;PETI;" (each code wrapped, so a LIKE finds one)."""
    codes = sorted({c for c in codes if c})
    return ";" + ";".join(codes) + ";" if codes else ""


def committee_list(cell: str) -> list[str]:
    return [c for c in cell.split(";") if c]


def _column(header: list[str], name: str) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for alias in _ALIASES[name]:
        if alias in lowered:
            return lowered.index(alias)
    return None


def parse_members(data: bytes) -> list[Member]:
    """The members a CSV file lists; ImportError_ with every problem by line otherwise."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportError_([f"the file is not UTF-8 text (byte {exc.start})"]) from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    if not rows:
        raise ImportError_(["the file is empty"])
    header = [h.strip() for h in rows[0]]
    at = {name: _column(header, name) for name in _ALIASES}
    problems = []
    if at["country"] is None:
        problems.append("line 1: no country column (country, country_code or iso)")
    if at["email"] is None:
        problems.append("line 1: no email column (email, e-mail or mail)")
    if at["name"] is None and (at["first_name"] is None or at["last_name"] is None):
        problems.append("line 1: no name column (name, full_name, or first_name and last_name)")
    if problems:
        raise ImportError_(problems)
    known = {i for i in at.values() if i is not None}
    committee_columns = {
        i: h.strip().upper()
        for i, h in enumerate(header)
        if i not in known and h.strip().upper() not in _NOT_COMMITTEES and COMMITTEE.match(h.strip().upper())
    }
    if len(rows) - 1 > MAX_ROWS:
        raise ImportError_([f"the file has {len(rows) - 1} rows; at most {MAX_ROWS} are read"])
    members: list[Member] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line

        def cell(index: int | None, row: list[str] = row) -> str:
            return row[index].strip() if index is not None and index < len(row) else ""

        country = cell(at["country"]).upper()
        if at["name"] is not None:
            name = cell(at["name"])
        else:
            name = f"{cell(at['first_name'])} {cell(at['last_name'])}".strip()
        raw_email = cell(at["email"])
        found = []
        if country and not countries.is_country(country):
            found.append(f"line {number}: {country!r} is not an ISO 3166-1 country code")
        if not name:
            found.append(f"line {number}: no name")
        elif len(name) > 200:
            found.append(f"line {number}: the name is longer than 200 characters")
        email = ""
        if not raw_email:
            found.append(f"line {number}: no email address")
        else:
            try:
                email = normalised_email(raw_email)
            except EmailNotValidError:
                found.append(f"line {number}: {raw_email!r} is not an email address")
        codes = [c.strip().upper() for c in cell(at["committees"]).replace(",", ";").split(";") if c.strip()]
        for code in codes:
            if not COMMITTEE.match(code):
                found.append(f"line {number}: {code!r} is not a committee code")
        codes += [code for index, code in committee_columns.items() if cell(index).lower() not in _FALSE]
        if found:
            problems.extend(found)
            continue
        members.append(Member(country, name, email, cell(at["group"])[:100], sorted(set(codes))))
    if problems:
        raise ImportError_(problems)
    if not members:
        raise ImportError_(["the file lists no one"])
    return members


async def import_members(
    db: Database, *, body: str, members: Sequence[Member], source: str, source_date: dt.date
) -> int:
    """Replace `body`'s addressees with `members` in one transaction; the import's id."""
    if body not in BODIES:
        raise ValueError(body)
    async with db.write():
        import_id = int(
            await db.execute(
                addressee_imports.insert().values(
                    body=body, source=source[:300], source_date=source_date, rows=len(members), imported_at=utcnow()
                )
            )
        )
        await db.execute(addressees.delete().where(addressees.c.body == body))
        values = [
            {
                "import_id": import_id,
                "body": body,
                "country": m.country,
                "name": m.name,
                "email": m.email,
                "political_group": m.group,
                "committees": committees_cell(m.committees),
            }
            for m in members
        ]
        for start in range(0, len(values), 100):
            await db.execute(addressees.insert().values(values[start : start + 100]))
    return import_id


async def latest_imports(db: Database) -> dict[str, Row]:
    """Each body's latest import."""
    found: dict[str, Row] = {}
    for row in await db.fetch_all(addressee_imports.select().order_by(addressee_imports.c.id)):
        found[row["body"]] = row
    return found


def is_stale(row: Row, *, today: dt.date | None = None) -> bool:
    return (today or utcnow().date()) - row["source_date"] > STALE_AFTER


# --- routes for countries without members ----------------------------------------------------


async def routes_of(db: Database, *, country: str) -> dict[str, list[str]]:
    """The committees, by body, that receive `country`'s dossier besides its own members."""
    rows = await db.fetch_all(
        delivery_routes.select()
        .where(delivery_routes.c.country == country)
        .order_by(delivery_routes.c.body, delivery_routes.c.committee)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["body"], []).append(row["committee"])
    return found


async def all_routes(db: Database) -> dict[str, dict[str, list[str]]]:
    """Every routed country's committees, by body."""
    found: dict[str, dict[str, list[str]]] = {}
    for row in await db.fetch_all(
        delivery_routes.select().order_by(
            delivery_routes.c.country, delivery_routes.c.body, delivery_routes.c.committee
        )
    ):
        found.setdefault(row["country"], {}).setdefault(row["body"], []).append(row["committee"])
    return found


async def set_routes(db: Database, *, country: str, routes: dict[str, list[str]]) -> None:
    async with db.write():
        await db.execute(delivery_routes.delete().where(delivery_routes.c.country == country))
        values = [
            {"country": country, "body": body, "committee": code}
            for body, codes in routes.items()
            for code in sorted(set(codes))
        ]
        if values:
            await db.execute(delivery_routes.insert().values(values))


def parse_committees(text: str) -> list[str] | None:
    """ "DROI; PETI" → ["DROI", "PETI"]; None when a code is malformed."""
    codes = [c.strip().upper() for c in text.replace(",", ";").split(";") if c.strip()]
    return codes if all(COMMITTEE.match(c) for c in codes) else None


# --- recipients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    id: int
    body: str
    name: str
    email: str
    group: str
    committees: str
    #: Why they receive it: "member" (of the country) or the routed committee's code.
    reason: str
    suppressed: bool


async def recipients_for(
    db: Database,
    *,
    country: str,
    bodies: Sequence[str] = BODIES,
    committee: str | None = None,
    group: str | None = None,
) -> list[Recipient]:
    """Who receives `country`'s dossier: the country's members of each body, and the members and
    offices of the committees routed for it; narrowed to one committee or group if asked.
    Suppressed addresses are listed, marked: they get nothing."""
    routes = await routes_of(db, country=country)
    a = addressees.c
    conditions = []
    for body in bodies:
        per_body = [a.country == country]
        per_body += [a.committees.like(f"%;{code};%") for code in routes.get(body, [])]
        conditions.append(sa.and_(a.body == body, sa.or_(*per_body)))
    if not conditions:
        return []
    query = addressees.select().where(sa.or_(*conditions))
    if committee:
        query = query.where(a.committees.like(f"%;{committee};%"))
    if group:
        query = query.where(a.political_group == group)
    rows = await db.fetch_all(query.order_by(a.body, a.name, a.id))
    suppressed = {
        r["email_canonical"]
        for r in await db.fetch_all(
            sa.select(suppressions.c.email_canonical).where(
                suppressions.c.email_canonical.in_({canonical_email(r["email"]) for r in rows} or {""})
            )
        )
    }
    found: list[Recipient] = []
    seen: set[str] = set()
    for r in rows:
        key = canonical_email(r["email"])
        if key in seen:
            continue  # one email per mailbox, whichever way it was reached
        seen.add(key)
        routed = [c for c in routes.get(r["body"], []) if f";{c};" in r["committees"]]
        found.append(
            Recipient(
                id=int(r["id"]),
                body=r["body"],
                name=r["name"],
                email=r["email"],
                group=r["political_group"],
                committees=r["committees"],
                reason="member" if r["country"] == country else routed[0] if routed else "member",
                suppressed=key in suppressed,
            )
        )
    return found


async def groups_and_committees(db: Database) -> tuple[list[str], list[str]]:
    """Every political group and committee code in the lists (for the organisers' filters)."""
    rows = await db.fetch_all(sa.select(addressees.c.political_group, addressees.c.committees))
    groups = sorted({r["political_group"] for r in rows if r["political_group"]})
    codes = sorted({c for r in rows for c in committee_list(r["committees"])})
    return groups, codes


# --- suppressions -----------------------------------------------------------------------------


async def suppress(db: Database, *, email: str, reason: str) -> bool:
    """Add an address to the suppression list; False when it was on it."""
    key = canonical_email(email)
    async with db.write():
        known = await db.fetch_one(suppressions.select().where(suppressions.c.email_canonical == key))
        if known is not None:
            return False
        await db.execute(suppressions.insert().values(email_canonical=key, reason=reason[:200], created_at=utcnow()))
    return True


async def unsuppress(db: Database, *, suppression_id: int) -> None:
    async with db.write():
        await db.execute(suppressions.delete().where(suppressions.c.id == suppression_id))


async def list_suppressions(db: Database) -> Sequence[Row]:
    return await db.fetch_all(suppressions.select().order_by(suppressions.c.email_canonical))
