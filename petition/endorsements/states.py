"""An endorsement's states, visibility and hold reasons, and which states are listed.

Which event may move a record from which state to which, and who may make it, is the
transitions table of `petition.endorsements.lifecycle`.
"""

import enum


class EndorsementState(enum.StrEnum):
    PENDING = "pending"  # submitted, email not yet confirmed
    CONFIRMED = "confirmed"  # email confirmed
    APPROVED = "approved"  # an organiser checked it is a real organisation
    REJECTED = "rejected"  # an organiser decided it is not
    WITHDRAWN = "withdrawn"  # the contact took it back
    # Confirmed by its mailbox, but held by an anti-abuse rule (or rejected before) until an
    # organiser releases it: never counted or listed meanwhile. The stored value predates the name.
    QUARANTINED = "quarantined"


HELD = EndorsementState.QUARANTINED


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # named in lists, open data and dossiers
    ANONYMOUS = "anonymous"  # only counted, as "an organisation from <country>"


S = EndorsementState


def listed_states(moderation: str) -> tuple[str, ...]:
    """States in which an endorsement counts and (if public) is named."""
    if moderation == "pre":
        return (S.APPROVED.value,)
    return (S.CONFIRMED.value, S.APPROVED.value)


#: Organisation types offered on the form (stored as these codes).
ORGANISATION_TYPES = (
    "ngo",
    "human_rights",
    "peace",
    "union",
    "religious",
    "refugee_support",
    "legal",
    "media",
    "political",
    "academic",
    "other",
)


class HoldReason(enum.StrEnum):
    """Why an endorsement waits for an organiser after its mailbox confirmed it."""

    IP = "form.ip"  # many submissions from one client address
    DOMAIN = "form.domain"  # many submissions for one email domain
    REJECTED_BEFORE = "rejected_before"  # an organiser rejected this mailbox's earlier endorsement
    LEGACY = "legacy"  # quarantined silently by an earlier release, never emailed


def _labels() -> dict[str, object]:
    from petition.i18n import lazy_gettext as _l

    return {
        S.PENDING: _l("pending"),
        S.CONFIRMED: _l("confirmed"),
        S.APPROVED: _l("approved"),
        S.REJECTED: _l("rejected"),
        S.WITHDRAWN: _l("withdrawn"),
        S.QUARANTINED: _l("held for review"),
    }


def _hold_labels() -> dict[str, object]:
    from petition.i18n import lazy_gettext as _l

    return {
        HoldReason.IP: _l("many submissions from one address"),
        HoldReason.DOMAIN: _l("many submissions for one email domain"),
        HoldReason.REJECTED_BEFORE: _l("rejected before"),
        HoldReason.LEGACY: _l("held by an earlier release"),
    }


#: The states as organisers read them, in their language.
STATE_LABELS = _labels()
#: Hold reasons as organisers read them.
HOLD_LABELS = _hold_labels()
