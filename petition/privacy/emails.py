"""The privacy emails, one builder per kind (petition.outbox.kinds)."""

from __future__ import annotations

from petition.outbox.kinds import email_kind
from petition.outbox.messages import Mailer, signed_link
from petition.tokens import Purpose


@email_kind("data_request")
def data_copy_context(*, mailer: Mailer, nonce: str, language: str) -> dict[str, object]:
    """A link to download everything held about the endorsements made with the mailbox."""
    return {
        "download_url": signed_link(Purpose.DATA_REQUEST, f"/privacy/data/{{token}}?lang={language}", nonce=nonce),
        "valid_days": max(1, mailer.settings.confirm_max_age // 86400),
    }
