"""Who launched an appeal and when it runs: its initiators (several organisations may launch one
together), its start (`opens_at`) and its optional deadline (`closes_at`, the first instant after
the last day: past it the appeal is closed to new endorsements, petition.appeals.queries)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_INITIATORS = 20
MAX_NAME = 200
MAX_WEBSITE = 300


class AboutError(ValueError):
    """An initiator, a start or a deadline that cannot be stored; the message says which."""


@dataclass(frozen=True)
class Initiator:
    name: str
    website: str | None = None


@dataclass(frozen=True)
class About:
    initiators: tuple[Initiator, ...]
    start: dt.date | None
    deadline: dt.date | None  # the last day endorsements are taken
    closed_by_deadline: bool


def _website(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    host = (parts.hostname or "").strip(".")
    labels = host.split(".")
    # A domain with a real top-level label; "www.friedensnetz" is a name without one.
    top = labels[-1]
    if (
        parts.scheme not in ("http", "https")
        or len(labels) < (3 if labels[0] == "www" else 2)
        or not (top.startswith("xn--") or (top.isalpha() and len(top) >= 2))
        or any(c.isspace() for c in value)
    ):
        raise AboutError(f"not a website address: {raw.strip()!r}")
    if len(value) > MAX_WEBSITE:
        raise AboutError(f"a website address is longer than {MAX_WEBSITE} characters")
    return value


def parse_initiators(text: str) -> tuple[Initiator, ...]:
    """Initiators as organisers and text files write them: one a line (or separated by `;`),
    each "Name" or "Name | website"."""
    initiators = []
    for part in text.replace(";", "\n").splitlines():
        name, _sep, website = part.partition("|")
        name = " ".join(name.split())
        if not name:
            if website.strip():
                raise AboutError(f"a website without a name: {website.strip()!r}")
            continue
        if len(name) > MAX_NAME:
            raise AboutError(f"an initiator's name is longer than {MAX_NAME} characters")
        initiators.append(Initiator(name=name, website=_website(website)))
    if len(initiators) > MAX_INITIATORS:
        raise AboutError(f"at most {MAX_INITIATORS} initiators")
    return tuple(initiators)


def initiators_text(initiators: Iterable[Initiator]) -> str:
    """The inverse of parse_initiators: what the organiser's form shows."""
    return "\n".join(f"{i.name} | {i.website}" if i.website else i.name for i in initiators)


def initiators_json(initiators: Iterable[Initiator]) -> str:
    return json.dumps(
        [{"name": i.name, "website": i.website} for i in initiators], ensure_ascii=False, separators=(",", ":")
    )


def initiators_of(appeal: Mapping[str, Any]) -> tuple[Initiator, ...]:
    """An appeal row's initiators (none for a row read before migration 0012 added them)."""
    try:
        items = json.loads(_value(appeal, "initiators") or "[]")
    except (TypeError, ValueError):
        return ()
    return tuple(
        Initiator(name=str(item["name"]), website=item.get("website") or None)
        for item in items
        if isinstance(item, dict) and item.get("name")
    )


def parse_date(raw: str, what: str) -> dt.date | None:
    value = raw.strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise AboutError(f"{what} must be a date such as 2026-12-01, not {value!r}") from exc


def start_instant(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None


def deadline_instant(last_day: dt.date | None) -> dt.datetime | None:
    """`closes_at` for an appeal open until the end of `last_day` (UTC)."""
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) if last_day else None


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A stored UTC instant, timezone-aware whichever way the driver handed it back."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _value(appeal: Mapping[str, Any], name: str) -> Any:
    try:
        return appeal[name]
    except (KeyError, IndexError):
        return None


def about(appeal: Mapping[str, Any], *, now: dt.datetime | None = None) -> About:
    now = now or dt.datetime.now(dt.UTC)
    opens_at = aware(_value(appeal, "opens_at"))
    closes_at = aware(_value(appeal, "closes_at"))
    return About(
        initiators=initiators_of(appeal),
        start=opens_at.astimezone(dt.UTC).date() if opens_at else None,
        deadline=(closes_at - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date() if closes_at else None,
        closed_by_deadline=bool(closes_at and closes_at <= now),
    )
