"""The dossier build life cycle, with every allowed transition in one place."""

import enum


class DossierState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker
    BUILDING = "building"  # a worker holds the lease and reports progress
    DONE = "done"  # signed, stored, digests recorded
    FAILED = "failed"  # the error column says why (never personal data)


D = DossierState

TRANSITIONS: dict[DossierState, frozenset[DossierState]] = {
    D.QUEUED: frozenset({D.BUILDING}),
    D.BUILDING: frozenset({D.DONE, D.FAILED, D.BUILDING}),  # BUILDING again: a stale lease taken over
    D.DONE: frozenset(),
    D.FAILED: frozenset({D.QUEUED}),  # an organiser may retry
}


def can_transition(old: DossierState | str, new: DossierState | str) -> bool:
    return DossierState(new) in TRANSITIONS[DossierState(old)]
