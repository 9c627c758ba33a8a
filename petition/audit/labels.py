"""Each audit action as organisers read it (the audit page's filter, the log's rows), in their language.

The stored values (petition.audit.actions) stay codes; only their display is translated.
"""

from __future__ import annotations

from petition.audit.actions import AuditAction
from petition.i18n import LazyString
from petition.i18n import lazy_gettext as _l

A = AuditAction

ACTION_LABELS: dict[str, LazyString] = {
    A.LOGIN: _l("Login"),
    A.LOGIN_FAILED: _l("Failed login"),
    A.LOGIN_RECOVERY_CODE: _l("Login with a recovery code"),
    A.LOGOUT: _l("Logout"),
    A.APPROVE: _l("Endorsement approved"),
    A.REJECT: _l("Endorsement rejected"),
    A.RELEASE: _l("Held endorsement released"),
    A.EDIT: _l("Endorsement corrected"),
    A.CONFIRM: _l("Endorsement confirmed by its contact"),
    A.HOLD: _l("Endorsement held for review"),
    A.WITHDRAW: _l("Endorsement withdrawn by its contact"),
    A.PURGE: _l("Endorsement deleted after the retention period"),
    A.EXPORT: _l("Contact export downloaded"),
    A.DOSSIER_BUILD: _l("Dossier requested"),
    A.DOSSIER_DOWNLOAD: _l("Dossier downloaded"),
    A.APPEAL_CREATE: _l("Appeal created"),
    A.APPEAL_EDIT: _l("Appeal settings changed"),
    A.APPEAL_TEXT: _l("Appeal text saved"),
    A.APPEAL_STATUS: _l("Appeal status changed"),
    A.ORGANISER_CREATE: _l("Organiser added"),
    A.ORGANISER_DEACTIVATE: _l("Organiser deactivated"),
    A.ORGANISER_ACTIVATE: _l("Organiser reactivated"),
    A.ORGANISER_ROLE: _l("Organiser's role changed"),
    A.ORGANISER_PASSWORD: _l("Password changed"),
    A.TOTP_ENROL: _l("Two-step login turned on"),
    A.TOTP_RESET: _l("Two-step login reset"),
    A.OUTBOX_REQUEUE: _l("Failed email queued again"),
    A.NEWS_SEND: _l("News update sent"),
    A.NEWS_UNSUBSCRIBE: _l("News unsubscribed by the contact"),
    A.DELIVERY_SEND: _l("Dossier delivered to parliamentarians"),
    A.DELIVERY_ANSWER: _l("Answer from a parliamentarian recorded"),
}


def action_label(code: object) -> object:
    """The action in words (a code of a later release: the code itself)."""
    return ACTION_LABELS.get(str(code), code)
