"""The audit page's listing: the trail (petition.audit) in words, with who did it and to what.

A row stores codes and ids (petition.audit.actions); here each becomes what an organiser reads
in their language: the organiser's email address for their id (read here, for admins only, and
never stored in a row), "the contact" or "the housekeeping" for the rest, the record it names
(an endorsement's organisation, an appeal's address, an organiser's email address) and the
row's detail as a phrase. A detail this module does not know (of a later release) is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from petition import countries
from petition.appeals.tables import appeals
from petition.audit.actions import AuditAction
from petition.audit.labels import action_label
from petition.audit.tables import audit_log
from petition.db import Database, Row
from petition.endorsements.lifecycle import CLI_APPROVAL
from petition.endorsements.states import HOLD_LABELS, STATE_LABELS
from petition.endorsements.tables import endorsements
from petition.i18n import LANGUAGE_NAMES, ngettext
from petition.i18n import gettext as _
from petition.organisers import labels
from petition.organisers.tables import organisers

PAGE_SIZE = 50
A = AuditAction

target_organisers = organisers.alias("target_organisers")


def _filtered(action: str | None) -> sa.Select[tuple[object, ...]]:
    query = sa.select(
        audit_log,
        organisers.c.email.label("organiser_email"),
        endorsements.c.organisation_name.label("target_endorsement_name"),
        appeals.c.slug.label("target_appeal_slug"),
        target_organisers.c.email.label("target_organiser_email"),
    ).select_from(
        audit_log.outerjoin(organisers, organisers.c.id == audit_log.c.organiser_id)
        .outerjoin(
            endorsements,
            sa.and_(audit_log.c.target_type == "endorsement", endorsements.c.id == audit_log.c.target_id),
        )
        .outerjoin(appeals, sa.and_(audit_log.c.target_type == "appeal", appeals.c.id == audit_log.c.target_id))
        .outerjoin(
            target_organisers,
            sa.and_(audit_log.c.target_type == "organiser", target_organisers.c.id == audit_log.c.target_id),
        )
    )
    if action:
        query = query.where(audit_log.c.action == action)
    return query


async def list_audit(
    db: Database, *, action: str | None = None, page: int = 1, page_size: int = PAGE_SIZE
) -> Sequence[Row]:
    query = (
        _filtered(action)
        .order_by(audit_log.c.created_at.desc(), audit_log.c.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return await db.fetch_all(query)


async def count_audit(db: Database, *, action: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(audit_log)
    if action:
        query = query.where(audit_log.c.action == action)
    return int(await db.fetch_val(query) or 0)


# --- rows in words -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLine:
    """One row as the log shows it."""

    row: Row
    #: Who did it: an organiser's email address, or a phrase ("the contact").
    who: str
    #: True when `who` is an organiser's address (shown isolated, as data).
    who_is_organiser: bool
    what: object
    detail: str


def _login_failure(detail: str) -> str:
    reasons = {
        "unknown account": _("no organiser has this email address"),
        "inactive account": _("the account is deactivated"),
        "wrong password": _("wrong password"),
        "wrong totp code": _("wrong code from the authenticator app"),
        "wrong recovery code": _("wrong recovery code"),
    }
    return reasons.get(detail, detail)


def _field_names(detail: str) -> str:
    names = {
        "organisation_name": _("Name of the organisation"),
        "country": _("Country"),
        "city": _("City"),
        "organisation_type": _("Type of organisation"),
        "website": _("Website"),
        "comment": _("Public comment"),
    }
    fields = [f.strip() for f in detail.removeprefix("fields:").split(",") if f.strip()]
    return _("Corrected: %(fields)s", fields=", ".join(names.get(f, f) for f in fields))


def _pairs(detail: str) -> dict[str, str]:
    """`key=value key=value` as a mapping."""
    return dict(part.split("=", 1) for part in detail.split() if "=" in part)


def _change(detail: str, label: Callable[[object], object]) -> str | None:
    """`old -> new` in words, or None."""
    old, sep, new = detail.partition(" -> ")
    if not sep:
        return None
    return f"{label(old.strip())} → {label(new.strip())}"


def _recovery(detail: str) -> str | None:
    match = re.fullmatch(r"(\d+) left", detail)
    if match is None:
        return None
    left = int(match.group(1))
    return ngettext("%(num)s recovery code left.", "%(num)s recovery codes left.", left)


def _confirmation(detail: str) -> str | None:
    if detail == "by the contact":
        return ""
    held = detail.removeprefix("by the contact; held: ")
    if held != detail:
        return _("Held for review: %(reason)s.", reason=str(HOLD_LABELS.get(held, held)))
    return None


def _purge(detail: str) -> str | None:
    match = re.fullmatch(r"(\w+), unchanged since before (\d{4}-\d{2}-\d{2})", detail)
    if match is None:
        return None
    state = STATE_LABELS.get(match.group(1), match.group(1))
    return _("%(state)s, unchanged since before %(date)s.", state=str(state), date=match.group(2))


def _export(detail: str) -> str | None:
    match = re.fullmatch(r"contacts csv, (\d+) rows, states=(.*)", detail)
    if match is None:
        return None
    codes = match.group(2)
    states = (
        _("all states")
        if codes == "all"
        else ", ".join(str(STATE_LABELS.get(code, code)) for code in codes.split(",") if code)
    )
    return ngettext(
        "%(num)s row; states: %(states)s.", "%(num)s rows; states: %(states)s.", int(match.group(1)), states=states
    )


def _dossier(detail: str) -> str | None:
    if detail.startswith("zip countries="):
        codes = [c for c in detail.removeprefix("zip countries=").split(",") if c]
        return _(
            "The newest dossier of each country, as a ZIP: %(countries)s.",
            countries=", ".join(countries.name(c) for c in codes),
        )
    country = _pairs(detail).get("country")
    if country is None:
        return None
    return _("Country: %(country)s.", country=countries.name(country))


def _appeal_settings(detail: str) -> str | None:
    parts = []
    for change in (p.strip() for p in detail.split(";") if p.strip()):
        name, _sep, values = change.partition(": ")
        if name == "moderation":
            parts.append(_("Moderation") + ": " + str(_change(values, labels.moderation_short)))
        elif name == "default_language":
            parts.append(_("Default language") + ": " + str(_change(values, lambda c: LANGUAGE_NAMES.get(str(c), c))))
        elif name == "addressees":
            parts.append(_("Addressees"))
        else:
            return None
    return "; ".join(parts)


def _appeal_created(detail: str) -> str | None:
    pairs = _pairs(detail)
    if "moderation" not in pairs:
        return None
    return _("Moderation") + ": " + str(labels.moderation_short(pairs["moderation"]))


def _appeal_text(detail: str) -> str | None:
    pairs = _pairs(detail)
    if "language" not in pairs or "version" not in pairs:
        return None
    return _(
        "%(language)s text, version %(version)s.",
        language=str(LANGUAGE_NAMES.get(pairs["language"], pairs["language"])),
        version=pairs["version"],
    )


def _organiser_created(detail: str) -> str | None:
    role = _pairs(detail).get("role")
    return None if role is None else _("Role") + ": " + str(labels.role(role))


def _requeued(detail: str) -> str | None:
    return {"one": "", "all failed": _("Every failed email.")}.get(detail)


_DETAILS: dict[str, Callable[[str], str | None]] = {
    A.LOGIN_FAILED: _login_failure,
    A.LOGIN_RECOVERY_CODE: _recovery,
    A.APPROVE: lambda d: _("From the command line.") if d == CLI_APPROVAL else None,
    A.EDIT: _field_names,
    A.CONFIRM: _confirmation,
    A.HOLD: _confirmation,
    A.WITHDRAW: _confirmation,
    A.PURGE: _purge,
    A.EXPORT: _export,
    A.DOSSIER_BUILD: _dossier,
    A.DOSSIER_DOWNLOAD: _dossier,
    A.APPEAL_CREATE: _appeal_created,
    A.APPEAL_EDIT: _appeal_settings,
    A.APPEAL_TEXT: _appeal_text,
    A.APPEAL_STATUS: lambda d: _change(d, labels.appeal_status),
    A.ORGANISER_CREATE: _organiser_created,
    A.ORGANISER_ROLE: lambda d: _change(d, labels.role),
    A.OUTBOX_REQUEUE: _requeued,
}


def describe_detail(action: str, detail: str) -> str:
    """A row's detail in words (as stored when this module does not know it)."""
    if not detail:
        return ""
    reader = _DETAILS.get(action)
    described = reader(detail) if reader is not None else None
    return detail if described is None else described


def actor(row: Row) -> tuple[str, bool]:
    """Who did it, and whether that is an organiser's address."""
    if row["organiser_id"] is not None:
        if row["organiser_email"]:
            return str(row["organiser_email"]), True
        return _("an organiser no longer listed"), False
    action = row["action"]
    if action in (A.CONFIRM, A.HOLD, A.WITHDRAW):
        return _("the contact"), False
    if action == A.APPROVE and row["detail"] == CLI_APPROVAL:
        return _("the command line"), False
    if action == A.PURGE:
        return _("the housekeeping"), False
    if action == A.LOGIN_FAILED:
        return _("someone, with an unknown email address"), False
    return "–", False


def audit_lines(rows: Sequence[Row]) -> list[AuditLine]:
    lines = []
    for row in rows:
        who, is_organiser = actor(row)
        lines.append(
            AuditLine(
                row=row,
                who=who,
                who_is_organiser=is_organiser,
                what=action_label(row["action"]),
                detail=describe_detail(str(row["action"]), str(row["detail"] or "")),
            )
        )
    return lines
