"""The codes organisers meet, in words of their language: appeal states, moderation modes,
visibility, roles and email kinds. A code with no label (a row of a later release) is shown as it is."""

from __future__ import annotations

from collections.abc import Mapping

from petition.appeals.states import AppealStatus, Moderation
from petition.endorsements.states import Visibility
from petition.i18n import LazyString
from petition.i18n import lazy_gettext as _l
from petition.organisers.roles import Role

APPEAL_STATUS_LABELS: dict[str, LazyString] = {
    AppealStatus.DRAFT: _l("draft (not public yet)"),
    AppealStatus.OPEN: _l("open for endorsements"),
    AppealStatus.PAUSED: _l("paused"),
    AppealStatus.CLOSED: _l("closed"),
}

MODERATION_LABELS: dict[str, LazyString] = {
    Moderation.PRE: _l("Before: listed after an organiser approves"),
    Moderation.POST: _l("After: listed on confirmation, organisers may still reject"),
}

#: The same, short, beside each endorsement of a list.
MODERATION_SHORT_LABELS: dict[str, LazyString] = {
    Moderation.PRE: _l("listed after approval"),
    Moderation.POST: _l("listed on confirmation"),
}

VISIBILITY_LABELS: dict[str, LazyString] = {
    Visibility.PUBLIC: _l("named publicly"),
    Visibility.ANONYMOUS: _l("counted, not named"),
}

ROLE_LABELS: dict[str, LazyString] = {
    Role.ADMIN: _l("administrator"),
    Role.MODERATOR: _l("moderator"),
}

MAIL_KIND_LABELS: dict[str, LazyString] = {
    "confirm": _l("confirmation request"),
    "already_endorsed": _l("already endorsed"),
    "thank_you": _l("thank-you email"),
    "data_request": _l("data request"),
    "login_guessed": _l("login alert"),
    "news": _l("news update"),
    "countersign": _l("countersignature request"),
    "delivery": _l("dossier delivery"),
}


def _label(table: Mapping[str, object], code: object) -> object:
    return table.get(str(code), code) if code is not None else ""


def appeal_status(code: object) -> object:
    return _label(APPEAL_STATUS_LABELS, code)


def moderation(code: object) -> object:
    return _label(MODERATION_LABELS, code)


def moderation_short(code: object) -> object:
    return _label(MODERATION_SHORT_LABELS, code)


def visibility(code: object) -> object:
    return _label(VISIBILITY_LABELS, code)


def role(code: object) -> object:
    return _label(ROLE_LABELS, code)


def mail_kind(code: object) -> object:
    return _label(MAIL_KIND_LABELS, code)
