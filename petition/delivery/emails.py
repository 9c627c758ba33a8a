"""The delivery email (petition.outbox.kinds): a covering letter and the signed dossier's link."""

from __future__ import annotations

from petition.outbox.kinds import email_kind
from petition.outbox.messages import Mailer


@email_kind("delivery")
def delivery_context(
    *,
    mailer: Mailer,
    subject: str,
    letter: str,
    title: str,
    country: str,
    dossier_url: str,
    sha256: str,
    named: int,
    anonymous: int,
    language: str,
) -> dict[str, object]:
    """One recipient's copy: the organiser's letter, then what no letter can leave out — the
    dossier's link and SHA-256, where to verify it, and its counts (anonymous ones only counted)."""
    return {
        "subject": subject,
        "letter": letter,
        "title": title,
        "country": country,
        "dossier_url": dossier_url,
        "sha256": sha256,
        "named": named,
        "anonymous": anonymous,
        "verify_url": mailer.settings.url_for_path(f"/verify?lang={language}"),
    }
