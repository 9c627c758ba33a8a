"""The endorsement life cycle, with every allowed transition in one place.

Only the owner of a mailbox speaks for its organisation: every state in which an
endorsement counts or may come to count (`MAILBOX_CONFIRMED`) is entered only by
the mailbox owner pressing Confirm, or from another such state. An organiser can
approve, reject, hold or release, but never list what its mailbox did not confirm.
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

TRANSITIONS: dict[EndorsementState, frozenset[EndorsementState]] = {
    # confirm (held: a limit held back the submission), or withdraw an unconfirmed one
    S.PENDING: frozenset({S.CONFIRMED, S.QUARANTINED, S.WITHDRAWN}),
    S.CONFIRMED: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN, S.QUARANTINED}),
    S.APPROVED: frozenset({S.REJECTED, S.WITHDRAWN}),
    # an organiser changes their mind (only about what its mailbox confirmed: see `may_enter`),
    # or the mailbox owner confirms a new submission, which organisers then look at again
    S.REJECTED: frozenset({S.APPROVED, S.QUARANTINED}),
    # endorsing again, confirmed by the mailbox owner
    S.WITHDRAWN: frozenset({S.CONFIRMED, S.QUARANTINED}),
    # released (or approved at once) by an organiser, rejected, or withdrawn by its contact
    S.QUARANTINED: frozenset({S.CONFIRMED, S.APPROVED, S.REJECTED, S.WITHDRAWN}),
}

#: The moves that only the mailbox owner makes: confirming (with the link from its email) and
#: withdrawing. Organisers make the others: approve, reject, hold, release.
OWNER_MOVES = frozenset(
    {(old, new) for old in S for new in (S.CONFIRMED, S.QUARANTINED) if old in (S.PENDING, S.WITHDRAWN)}
    | {(S.REJECTED, S.QUARANTINED)}
    | {(old, S.WITHDRAWN) for old in S}
)

#: States that need the mailbox owner's confirmation: entering one from a state without it takes
#: the owner's Confirm (which records `confirmed_at`), never an organiser's decision.
MAILBOX_CONFIRMED = frozenset({S.CONFIRMED, S.APPROVED, S.QUARANTINED})

#: States in which a new submission for the same mailbox waits beside the record, with its own
#: link, instead of answering "already endorsed": nothing listed is lost, nothing is rewritten.
RESUBMITTABLE = frozenset({S.PENDING, S.WITHDRAWN, S.REJECTED, S.QUARANTINED})


def can_transition(old: EndorsementState | str, new: EndorsementState | str) -> bool:
    return EndorsementState(new) in TRANSITIONS[EndorsementState(old)]


def organiser_may(old: EndorsementState | str, new: EndorsementState | str, *, mailbox_confirmed: bool) -> bool:
    """An organiser's (or the CLI's) move: allowed by the table, not one of the owner's, and never
    into a state that needs the mailbox owner's confirmation for a record it never confirmed."""
    old, new = EndorsementState(old), EndorsementState(new)
    if not can_transition(old, new) or (old, new) in OWNER_MOVES:
        return False
    return mailbox_confirmed or new not in MAILBOX_CONFIRMED


def organiser_sources(target: EndorsementState) -> list[str]:
    """The states from which an organiser may move a mailbox-confirmed record to `target`."""
    return [state.value for state in S if organiser_may(state, target, mailbox_confirmed=True)]


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
