import enum


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker; taken over after the lease runs out
    SENT = "sent"
    FAILED = "failed"  # permanent: the relay refused it (5xx) or too many 4xx


def _labels() -> dict[str, object]:
    from petition.i18n import lazy_gettext as _l

    return {
        OutboxState.QUEUED: _l("queued"),
        OutboxState.SENDING: _l("sending"),
        OutboxState.SENT: _l("sent"),
        OutboxState.FAILED: _l("failed"),
    }


#: The email states as organisers read them, in their language.
STATE_LABELS = _labels()
