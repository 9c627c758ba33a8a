"""Email kinds: each is a template folder (`templates/email/<kind>/`) and exactly one function that
builds its template values from domain values (warehouse's pattern).

A builder lives with the domain that sends its email (`petition.endorsements.emails`, ...) and
is registered here by `@email_kind`; every place that sends that kind calls it, so an email says
the same whoever sends it. Queueing, rendering and sending are the same for every kind
(`petition.outbox.messages`), and refuse a kind that has no builder.

The values are stored as JSON with the queued email and rendered when it is sent, possibly
by the next release: a builder may add values (its templates giving them a `default`), never
rename or drop one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Builder = Callable[..., dict[str, object]]
B = TypeVar("B", bound=Builder)

#: Kind → the one function that builds its values.
BUILDERS: dict[str, Builder] = {}


def _name(build: Builder) -> str:
    return f"{build.__module__}.{build.__qualname__}"


def email_kind(kind: str) -> Callable[[B], B]:
    """Register the builder of emails of `kind` (the name of its template folder)."""

    def register(build: B) -> B:
        known = BUILDERS.get(kind)
        # The same function again (its module imported anew) replaces itself; a second one is a mistake.
        if known is not None and _name(known) != _name(build):
            raise ValueError(f"the email kind {kind!r} has a builder already: {_name(known)}")
        BUILDERS[kind] = build
        return build

    return register


def check_kind(kind: str) -> None:
    """Refuse to queue an email of a kind that has no builder (its values would follow no one's rule)."""
    if kind not in BUILDERS:
        raise ValueError(f"no builder for the email kind {kind!r} (see petition.outbox.kinds)")
