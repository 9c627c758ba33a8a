import enum


class AuditAction(enum.StrEnum):
    """Every action value the audit log stores; the organiser area's audit page filters by each.

    The stored values are kept as they are: rows written by earlier releases must stay findable.
    """

    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGIN_RECOVERY_CODE = "login.recovery_code"
    LOGOUT = "logout"
    # The endorsement life cycle (petition.endorsements.lifecycle): organisers' decisions, and
    # the command line's approvals (`petition moderate approve`, with no organiser).
    APPROVE = "endorsement.approve"
    REJECT = "endorsement.reject"
    RELEASE = "endorsement.release"
    EDIT = "endorsement.edit"
    # The mailbox owner's confirmation, listed or (held back by an anti-abuse rule) held.
    CONFIRM = "endorsement.confirm"
    HOLD = "endorsement.hold"
    # The contact's own withdrawal (the value predates the `endorsement.` prefix).
    WITHDRAW = "withdraw"
    # Deleted by the housekeeping (or `petition purge`) after the retention period.
    PURGE = "endorsement.purge"
    EXPORT = "export"
    DOSSIER_BUILD = "dossier.build"
    DOSSIER_DOWNLOAD = "dossier.download"
    APPEAL_CREATE = "appeal.create"
    APPEAL_EDIT = "appeal.edit"
    APPEAL_TEXT = "appeal.text"
    APPEAL_STATUS = "appeal.status"
    ORGANISER_CREATE = "organiser.create"
    ORGANISER_DEACTIVATE = "organiser.deactivate"
    ORGANISER_ACTIVATE = "organiser.activate"
    ORGANISER_ROLE = "organiser.role"
    ORGANISER_PASSWORD = "organiser.password"  # noqa: S105 - an action name, not a secret
    TOTP_ENROL = "organiser.totp.enrol"
    TOTP_RESET = "organiser.totp.reset"
    # An organiser queued failed emails again (petition.outbox.queries.requeue_failed).
    OUTBOX_REQUEUE = "outbox.requeue"
    # An organiser sent an update to the organisations that asked for news (petition.news), and a
    # contact's unsubscribe link stopped them for its endorsement.
    NEWS_SEND = "news.send"
    NEWS_UNSUBSCRIBE = "news.unsubscribe"
    # A country's dossier sent to its parliamentarians, and an answer recorded (petition.delivery).
    DELIVERY_SEND = "delivery.send"
    DELIVERY_ANSWER = "delivery.answer"
