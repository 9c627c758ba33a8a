"""The news email (petition.outbox.kinds): an organiser's update, with its unsubscribe link."""

from __future__ import annotations

from petition.outbox.kinds import email_kind
from petition.outbox.messages import LIST_UNSUBSCRIBE, Mailer, signed_link
from petition.tokens import Purpose


@email_kind("news")
def news_context(
    *,
    mailer: Mailer,
    slug: str,
    title: str,
    organisation_name: str,
    subject: str,
    body: str,
    nonce: str,
    language: str,
) -> dict[str, object]:
    """One organisation's copy of an update: the text in its language (or the appeal's default),
    and its own unsubscribe link, signed when sent, in the body and in List-Unsubscribe."""
    return {
        "subject": subject,
        "body": body,
        "title": title,
        "organisation_name": organisation_name,
        "appeal_url": mailer.settings.url_for_path(f"/appeals/{slug}?lang={language}"),
        "unsubscribe_url": signed_link(Purpose.UNSUBSCRIBE, f"/unsubscribe/{{token}}?lang={language}", nonce=nonce),
        # Exactly /unsubscribe/{token}: what a mail program POSTs to (RFC 8058).
        LIST_UNSUBSCRIBE: signed_link(Purpose.UNSUBSCRIBE, "/unsubscribe/{token}", nonce=nonce),
    }
