"""The emails about an endorsement, one builder per kind (petition.outbox.kinds): what each says.

Every place that sends one of these calls its builder (the confirmation, for instance, is
queued on submission, by the grouped intake, and again when its link expired), so the
email is the same whichever way it went out. Links are signed by the worker when it
sends the email (`signed_link`), never stored usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from petition.endorsements.states import Visibility
from petition.outbox.kinds import email_kind
from petition.outbox.messages import Mailer, signed_link
from petition.tokens import Purpose


def _valid_days(mailer: Mailer) -> int:
    return max(1, mailer.settings.confirm_max_age // 86400)


@email_kind("confirm")
def confirmation_context(
    *, mailer: Mailer, title: str, nonce: str, facts: Mapping[str, Any], language: str
) -> dict[str, object]:
    """What the confirmation email says: the facts its one link confirms, and that link, bound to
    the record and the nonce of exactly this submission."""
    return {
        "confirm_url": signed_link(Purpose.CONFIRM, f"/confirm/{{token}}?lang={language}", nonce=nonce),
        "title": title,
        "organisation_name": facts["organisation_name"],
        "country": facts["country"],
        "anonymous": facts["visibility"] == Visibility.ANONYMOUS,
        "valid_days": _valid_days(mailer),
    }


@email_kind("already_endorsed")
def already_endorsed_context(*, mailer: Mailer, slug: str, title: str, language: str) -> dict[str, object]:
    """A submission with an address whose endorsement is confirmed already: nothing changed."""
    return {"appeal_url": mailer.settings.url_for_path(f"/appeals/{slug}?lang={language}"), "title": title}


@email_kind("thank_you")
def thank_you_context(
    *,
    mailer: Mailer,
    slug: str,
    facts: Mapping[str, Any],
    nonce: str,
    listed_now: bool,
    held: bool,
    entry: str | None = None,
) -> dict[str, object]:
    """Sent on confirmation (and when the confirmation was held back for the organisers): whether
    it is listed now, the withdrawal link, valid for as long as the record is, the receipt
    link of its public log entry (`entry`, its public id), which never expires, and — for a
    named organisation — the link to ask a second officer to countersign and, with a website,
    the link to prove its domain (petition.identity). An anonymous one gets neither: a record
    on its domain, or an email to a third address, would name it."""
    language = facts["language"]
    receipt = None
    if entry is not None:
        receipt = signed_link(Purpose.RECEIPT, f"/receipts/{{token}}?lang={language}", nonce=entry)
    domain_proof = countersign = None
    if facts.get("website") and facts["visibility"] == Visibility.PUBLIC:
        domain_proof = signed_link(Purpose.DOMAIN_PROOF, f"/domain-proof/{{token}}?lang={language}", nonce=nonce)
    if facts["visibility"] == Visibility.PUBLIC:
        countersign = signed_link(Purpose.COUNTERSIGN_INVITE, f"/countersign/{{token}}?lang={language}", nonce=nonce)
    return {
        "organisation_name": facts["organisation_name"],
        "listed_now": listed_now,
        "held": held,
        "anonymous": facts["visibility"] == Visibility.ANONYMOUS,
        "list_url": mailer.settings.url_for_path(f"/appeals/{slug}/signatories?lang={language}"),
        "withdraw_url": signed_link(Purpose.WITHDRAW, f"/withdraw/{{token}}?lang={language}", nonce=nonce),
        "receipt_url": receipt,
        "domain_proof_url": domain_proof,
        "countersign_url": countersign,
    }
