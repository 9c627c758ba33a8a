"""The endorsement life cycle, with every allowed transition in one place."""

import enum


class EndorsementState(enum.StrEnum):
    PENDING = "pending"  # submitted, email not yet confirmed
    CONFIRMED = "confirmed"  # email confirmed
    APPROVED = "approved"  # an organiser checked it is a real organisation
    REJECTED = "rejected"  # an organiser decided it is not
    WITHDRAWN = "withdrawn"  # the contact took it back
    QUARANTINED = "quarantined"  # held silently by anti-abuse rules


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # named in lists, open data and dossiers
    ANONYMOUS = "anonymous"  # only counted, as "an organisation from <country>"


S = EndorsementState

TRANSITIONS: dict[EndorsementState, frozenset[EndorsementState]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.WITHDRAWN, S.QUARANTINED}),
    S.CONFIRMED: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN}),
    S.APPROVED: frozenset({S.REJECTED, S.WITHDRAWN}),
    S.REJECTED: frozenset({S.APPROVED}),
    S.WITHDRAWN: frozenset({S.PENDING}),  # endorsing again starts over
    S.QUARANTINED: frozenset({S.PENDING, S.REJECTED}),
}


def can_transition(old: EndorsementState | str, new: EndorsementState | str) -> bool:
    return EndorsementState(new) in TRANSITIONS[EndorsementState(old)]


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


def _labels() -> dict[str, object]:
    from petition.i18n import lazy_gettext as _l

    return {
        S.PENDING: _l("pending"),
        S.CONFIRMED: _l("confirmed"),
        S.APPROVED: _l("approved"),
        S.REJECTED: _l("rejected"),
        S.WITHDRAWN: _l("withdrawn"),
        S.QUARANTINED: _l("quarantined"),
    }


#: The states as organisers read them, in their language.
STATE_LABELS = _labels()
